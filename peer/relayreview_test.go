package peer

import (
	"bytes"
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/doctor"
)

// TestRelayCloseEndsCircuits: relayService.Close says "Circuits open
// through it end as their streams are reset", and the service stops in
// RelayAuto when the node is no longer public. go-libp2p's Relay.Close
// only removes the hop handler: the copy goroutines of open circuits go
// on, unlimited, through a relay that says it stopped. After Close, B's
// circuit to A must carry nothing.
func TestRelayCloseEndsCircuits(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha, hb := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3)
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true}}
	acl := relayACL{self: hr.ID(), member: members.has, contactDevice: noContact}
	svc, err := newRelayService(hr, RelayOn, acl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ha.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		if _, err := io.Copy(s, s); err != nil {
			s.Reset()
		}
	})
	if _, err := client.Reserve(ctx, ha, peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}); err != nil {
		t.Fatalf("reservation: %v", err)
	}
	if err := hb.Connect(ctx, circuitTo(t, hr, ha.ID())); err != nil {
		t.Fatalf("through the relay: %v", err)
	}
	data := bytes.Repeat([]byte("x"), 4096)
	if got, err := echo(ctx, hb, ha.ID(), data); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo through the relay: %d bytes, %v", len(got), err)
	}
	conns := hb.Network().ConnsToPeer(ha.ID())
	if len(conns) != 1 || !isRelayed(conns[0].RemoteMultiaddr()) {
		t.Fatalf("B's connections to A: %v, want one relayed", conns)
	}
	c := conns[0]
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	// The relayed connection itself, not a new one (A and B could dial
	// each other directly on loopback).
	deadline := time.Now().Add(3 * time.Second)
	for !c.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !c.IsClosed() {
		t.Errorf("the circuit is still open 3 s after the relay service's Close (stats %+v)", svc.stats())
	}
}

// everyone is a rule that admits every peer as a member.
var everyone = peerRule{member: func(peer.ID) bool { return true }, contact: func(_ context.Context, p peer.ID) (string, error) { return ownerIf(p, true) }}

// TestNATVerdictAfterMove: a laptop at home (its NAT keeps port 61001,
// seen by two peers) moves to a café (another NAT, another public IP,
// port 40000, seen by two peers) and keeps its LAN address 192.168.1.5,
// as home and café routers both hand out. Each NAT maps the port the same
// for every peer, but the observations are kept with no age and grouped
// by the local address only: the doctor says the NAT maps a different
// port for each peer and tells the user to forward ports.
func TestNATVerdictAfterMove(t *testing.T) {
	b := newObservations(everyone, time.Now, nil)
	local := ma.StringCast("/ip4/192.168.1.5/udp/4777/quic-v1")
	for i, o := range []struct{ observer, observed string }{
		{"/ip4/192.0.2.1/udp/4001/quic-v1", "/ip4/11.213.0.7/udp/61001/quic-v1"},
		{"/ip4/192.0.2.2/udp/4001/quic-v1", "/ip4/11.213.0.7/udp/61001/quic-v1"},
		// At the café.
		{"/ip4/192.0.2.3/udp/4001/quic-v1", "/ip4/12.34.56.78/udp/40000/quic-v1"},
		{"/ip4/192.0.2.4/udp/4001/quic-v1", "/ip4/12.34.56.78/udp/40000/quic-v1"},
	} {
		b.identified(peer.ID(rune('A'+i)), local, ma.StringCast(o.observer), ma.StringCast(o.observed))
	}
	for _, f := range doctor.Diagnose(doctor.Facts{Observations: b.list()}) {
		if f.Check == doctor.CheckNAT && f.Level != doctor.OK {
			t.Errorf("two NATs that each keep the port are judged as one that does not: %s: %s", f.Level, f.Say)
		}
	}
}

// TestNATVerdictOneLiar: identify's observed address is what the remote
// peer says, and any peer on the internet (a DHT peer, no member) is an
// observer. One honest observer and one stranger that reports a made-up
// port make the doctor say the NAT maps a different port for each peer,
// and tell the user to change the router or move a device. Only the
// cell's members and its contacts' devices count.
func TestNATVerdictOneLiar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rule := peerRule{
			member:  func(p peer.ID) bool { return p == "honest" },
			contact: func(context.Context, peer.ID) (string, error) { return "", nil },
		}
		b := newObservations(rule, time.Now, nil)
		b.start()
		defer b.close()
		local := ma.StringCast("/ip4/192.168.1.5/udp/4777/quic-v1")
		b.identified("honest", local, ma.StringCast("/ip4/192.0.2.1/udp/4001/quic-v1"), ma.StringCast("/ip4/11.213.0.7/udp/61001/quic-v1"))
		b.identified("stranger", local, ma.StringCast("/ip4/192.0.2.66/udp/4001/quic-v1"), ma.StringCast("/ip4/11.213.0.7/udp/1234/quic-v1"))
		synctest.Wait()
		for _, f := range doctor.Diagnose(doctor.Facts{Observations: b.list()}) {
			if f.Check == doctor.CheckNAT && f.Level != doctor.OK {
				t.Errorf("one stranger's observed address decides the NAT's type: %s: %s", f.Level, f.Say)
			}
		}
	})
}

// TestRelayCircuitEndsWithMembership: the ACL is read when a circuit
// opens, never again. A member removed from the cell (a lost laptop that
// keeps its key) keeps the unlimited circuit it opened before, through
// the cell's relay, for as long as it likes. Once B is off the roster,
// its circuit through R must end.
func TestRelayCircuitEndsWithMembership(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha, hb := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3)
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true}}
	acl := relayACL{self: hr.ID(), member: members.has, contactDevice: noContact}
	svc := startRelay(ctx, t, hr, acl)
	if _, err := client.Reserve(ctx, ha, peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}); err != nil {
		t.Fatalf("reservation: %v", err)
	}
	if err := hb.Connect(ctx, circuitTo(t, hr, ha.ID())); err != nil {
		t.Fatalf("through the relay: %v", err)
	}
	conns := hb.Network().ConnsToPeer(ha.ID())
	if len(conns) != 1 || !isRelayed(conns[0].RemoteMultiaddr()) {
		t.Fatalf("B's connections to A: %v, want one relayed", conns)
	}
	c := conns[0]
	members.set(hb.ID(), false)
	deadline := time.Now().Add(10 * time.Second)
	for !c.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !c.IsClosed() {
		t.Errorf("a removed member's circuit is still open 10 s after its removal (stats %+v)", svc.stats())
	}
}
