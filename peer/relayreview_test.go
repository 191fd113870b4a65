package peer

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
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
	acl := relayACL{self: hr.ID(), member: members.has, contactDevice: func(peer.ID) bool { return false }}
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
