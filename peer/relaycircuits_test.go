package peer

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/util"
	"github.com/multiformats/go-varint"
	pbproto "google.golang.org/protobuf/proto"
)

// relayedConn is h's one relayed connection to p.
func relayedConn(t *testing.T, h host.Host, p peer.ID) network.Conn {
	t.Helper()
	conns := h.Network().ConnsToPeer(p)
	if len(conns) != 1 || !isRelayed(conns[0].RemoteMultiaddr()) {
		t.Fatalf("connections to %s: %v, want one relayed", p, conns)
	}
	return conns[0]
}

// waitClosed waits (ctx bounds it) for c to close.
func waitClosed(ctx context.Context, c network.Conn) bool {
	for !c.IsClosed() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// TestRelaySweepJudgesPairs: B, a member with a circuit to member A,
// leaves the cell and then reaches member C through C's open invite
// window. The sweep judges each circuit by its source and destination:
// B's circuit to A ends (it was admitted as a member), its circuit to C
// stays (C's window holds B, whose slot the sweep keeps while that
// circuit lives). Before, a slot in any window kept all of its source's
// circuits.
func TestRelaySweepJudgesPairs(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha, hb, hc := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3), loopbackHost(t, 4)
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true, hc.ID(): true}}
	var tab windowTable
	var late atomic.Bool // the sweep frees slots as if slotGrace had passed
	acl := relayACL{self: hr.ID(), member: members.has, contactDevice: noContact,
		window: func(src, dest peer.ID) bool { return tab.admit(src, dest, time.Now()) },
		held:   func(src, dest peer.ID) bool { return tab.holds(src, dest, time.Now()) },
		free: func(live func(src, dest peer.ID) bool) {
			now := time.Now()
			if late.Load() {
				now = now.Add(slotGrace)
			}
			tab.free(live, now)
		},
	}
	svc := startRelay(ctx, t, hr, acl)
	rinfo := peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}
	for _, h := range []host.Host{ha, hc} {
		if _, err := client.Reserve(ctx, h, rinfo); err != nil {
			t.Fatalf("member's reservation: %v", err)
		}
	}
	if err := hb.Connect(ctx, circuitTo(t, hr, ha.ID())); err != nil {
		t.Fatalf("member B to A through the relay: %v", err)
	}
	toA := relayedConn(t, hb, ha.ID())
	members.set(hb.ID(), false)
	now := time.Now()
	tab.put(windowMsg{member: hc.ID(), issued: now, until: now.Add(windowLease)}, now, members.has)
	if err := hb.Connect(ctx, circuitTo(t, hr, hc.ID())); err != nil {
		t.Fatalf("former member B to C through C's window: %v", err)
	}
	toC := relayedConn(t, hb, hc.ID())
	// A stranger admitted to C whose circuit never came: its slot frees
	// once its grace has passed; B's, with its circuit, stays.
	ghost := seedID(t, 9)
	if !tab.admit(ghost, hc.ID(), time.Now()) {
		t.Fatal("stranger refused through C's window")
	}
	late.Store(true)
	sweep(hr, svc.book, acl)
	if !tab.holds(hb.ID(), hc.ID(), time.Now()) || tab.holds(ghost, hc.ID(), time.Now()) {
		t.Fatalf("slots after a sweep: B holds %v, want true; a stranger with no circuit holds %v, want false",
			tab.holds(hb.ID(), hc.ID(), time.Now()), tab.holds(ghost, hc.ID(), time.Now()))
	}
	if !waitClosed(ctx, toA) {
		t.Fatal("B's circuit to A (no window) is still open after a sweep, kept by its slot in C's window")
	}
	sweep(hr, svc.book, acl)
	if toC.IsClosed() || svc.book.len() != 1 {
		t.Fatalf("B's circuit to C through C's window ended (closed %v, %d circuits noted)", toC.IsClosed(), svc.book.len())
	}
}

// hopConnect asks relay r, from h, for a circuit to dest over a new hop
// stream, left open: the relay's answer.
func hopConnect(ctx context.Context, t *testing.T, h host.Host, r, dest peer.ID) pbv2.Status {
	t.Helper()
	s, err := h.NewStream(ctx, r, proto.ProtoIDv2Hop)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	s.SetDeadline(time.Now().Add(10 * time.Second))
	msg := pbv2.HopMessage{Type: pbv2.HopMessage_CONNECT.Enum(), Peer: util.PeerInfoToPeerV2(peer.AddrInfo{ID: dest})}
	if err := util.NewDelimitedWriter(s).WriteMsg(&msg); err != nil {
		t.Fatal(err)
	}
	rd := util.NewDelimitedReader(s, 4096)
	defer rd.Close()
	var resp pbv2.HopMessage
	if err := rd.ReadMsg(&resp); err != nil {
		t.Fatal(err)
	}
	s.SetDeadline(time.Time{})
	return resp.GetStatus()
}

// TestRelayGuestCircuitBound: go-libp2p's MaxCircuits (64) counts per
// peer, so one contact's device could hold 64 idle circuits to a member.
// A source other than a member holds at most maxGuestCircuits at once; a
// member is not bound by it.
func TestRelayGuestCircuitBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha, hb, hd := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3), loopbackHost(t, 4)
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true}}
	acl := relayACL{self: hr.ID(), member: members.has,
		contactDevice: func(p peer.ID) (bool, error) { return p == hd.ID(), nil },
		hops:          func(src peer.ID) int { return hopStreams(hr, src) },
	}
	startRelay(ctx, t, hr, acl)
	rinfo := peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}
	if _, err := client.Reserve(ctx, ha, rinfo); err != nil {
		t.Fatalf("member's reservation: %v", err)
	}
	for _, h := range []host.Host{hb, hd} {
		if err := h.Connect(ctx, rinfo); err != nil {
			t.Fatal(err)
		}
	}
	for i := range maxGuestCircuits {
		if st := hopConnect(ctx, t, hd, hr.ID(), ha.ID()); st != pbv2.Status_OK {
			t.Fatalf("contact's device's circuit %d: %v", i, st)
		}
	}
	if st := hopConnect(ctx, t, hd, hr.ID(), ha.ID()); st != pbv2.Status_PERMISSION_DENIED {
		t.Fatalf("contact's device's circuit %d: %v, want PERMISSION_DENIED", maxGuestCircuits, st)
	}
	for i := range maxGuestCircuits + 2 {
		if st := hopConnect(ctx, t, hb, hr.ID(), ha.ID()); st != pbv2.Status_OK {
			t.Fatalf("member's circuit %d: %v", i, st)
		}
	}
}

// TestRelaySweepKeepsOnUnknown: a contact's device's circuit survives
// sweeps while the contacts cannot be read (a slow store, a restart) or
// the roster is not there; it ends once the contact is known deleted.
func TestRelaySweepKeepsOnUnknown(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha, he := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3)
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true}}
	var state atomic.Int32 // 0: a contact, 1: the read fails, 2: deleted
	var noRoster atomic.Bool
	acl := relayACL{self: hr.ID(), member: members.has,
		rosterKnown: func() bool { return !noRoster.Load() },
		contactDevice: func(p peer.ID) (bool, error) {
			switch {
			case p != he.ID():
				return false, nil
			case state.Load() == 1:
				return false, context.DeadlineExceeded
			}
			return state.Load() == 0, nil
		},
	}
	svc := startRelay(ctx, t, hr, acl)
	if _, err := client.Reserve(ctx, ha, peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}); err != nil {
		t.Fatalf("member's reservation: %v", err)
	}
	if err := he.Connect(ctx, circuitTo(t, hr, ha.ID())); err != nil {
		t.Fatalf("contact's device through the relay: %v", err)
	}
	c := relayedConn(t, he, ha.ID())
	state.Store(1)
	sweep(hr, svc.book, acl)
	if n := svc.book.len(); n != 1 {
		t.Fatalf("a sweep whose contacts' read failed ended the circuit (%d noted)", n)
	}
	state.Store(2)
	noRoster.Store(true)
	sweep(hr, svc.book, acl)
	if n := svc.book.len(); n != 1 {
		t.Fatalf("a sweep with no roster ended the circuit (%d noted)", n)
	}
	noRoster.Store(false)
	sweep(hr, svc.book, acl)
	if !waitClosed(ctx, c) {
		t.Fatal("a deleted contact's circuit is still open after a sweep")
	}
}

// TestRelayACLVerdicts: the sweep's verdicts on circuits (admitsCircuit).
func TestRelayACLVerdicts(t *testing.T) {
	self, a, b, contact, stranger := seedID(t, 1), seedID(t, 2), seedID(t, 3), seedID(t, 4), seedID(t, 5)
	broken := errors.New("store closed")
	acl := relayACL{self: self,
		member: func(p peer.ID) bool { return p == self || p == a || p == b },
		contactDevice: func(p peer.ID) (bool, error) {
			if p == stranger {
				return false, broken
			}
			return p == contact, nil
		},
	}
	for _, c := range []struct {
		name      string
		src, dest peer.ID
		want      verdict
	}{
		{"member to member", b, a, verdictYes},
		{"contact's device to member", contact, a, verdictYes},
		{"member to contact's device", a, contact, verdictYes},
		{"to the relay itself", a, self, verdictNo},
		{"contact's device to contact's device", contact, contact, verdictNo},
		{"source not read", stranger, a, verdictUnknown},
		{"destination not read", a, stranger, verdictUnknown},
	} {
		if got := acl.admitsCircuit(c.src, c.dest); got != c.want {
			t.Errorf("admitsCircuit(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	if acl.AllowConnect(stranger, nil, a) || acl.AllowReserve(stranger, nil) {
		t.Error("a peer whose contacts' read failed was admitted")
	}
}

// stopMsg is a STOP CONNECT from src, length-prefixed.
func stopMsg(t testing.TB, src peer.ID) []byte {
	msg := pbv2.StopMessage{Type: pbv2.StopMessage_CONNECT.Enum(), Peer: util.PeerInfoToPeerV2(peer.AddrInfo{ID: src})}
	b, err := pbproto.Marshal(&msg)
	if err != nil {
		t.Fatal(err)
	}
	return append(varint.ToUvarint(uint64(len(b))), b...)
}

// TestStopSource: the source is read from a STOP CONNECT however it is
// split; other messages and lengths are refused.
func TestStopSource(t *testing.T) {
	src := seedID(t, 7)
	b := stopMsg(t, src)
	for i := range len(b) {
		if _, done, err := stopSource(b[:i]); done || err != nil {
			t.Fatalf("%d of %d bytes: done %v, err %v", i, len(b), done, err)
		}
	}
	if got, done, err := stopSource(b); !done || err != nil || got != src {
		t.Fatalf("stopSource = %s, %v, %v; want %s", got, done, err, src)
	}
	status, _ := pbproto.Marshal(&pbv2.StopMessage{Type: pbv2.StopMessage_STATUS.Enum()})
	for name, bad := range map[string][]byte{
		"status":    append(varint.ToUvarint(uint64(len(status))), status...),
		"too long":  varint.ToUvarint(maxStopMsg),
		"no source": {0},
	} {
		if _, _, err := stopSource(bad); !errors.Is(err, errCircuitBook) {
			t.Errorf("%s: err %v, want errCircuitBook", name, err)
		}
	}
}

func FuzzStopSource(f *testing.F) {
	f.Add(stopMsg(f, seedID(f, 7)))
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add(varint.ToUvarint(maxStopMsg))
	f.Fuzz(func(t *testing.T, b []byte) {
		src, done, err := stopSource(b)
		if done && (err != nil || src.Validate() != nil) {
			t.Fatalf("done with source %q, err %v", src, err)
		}
		if err != nil && !errors.Is(err, errCircuitBook) {
			t.Fatalf("unwrapped error %v", err)
		}
	})
}

// TestCircuitBookBound: the book holds at most its max circuits; a
// circuit already noted is noted again.
func TestCircuitBookBound(t *testing.T) {
	b := newCircuitBook(2)
	c := circuit{src: seedID(t, 1), dest: seedID(t, 2)}
	for _, id := range []string{"s1", "s2", "s2"} {
		if err := b.add(id, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.add("s3", c); !errors.Is(err, errCircuitBook) || !strings.Contains(err.Error(), "none more") {
		t.Fatalf("third circuit: %v, want refused", err)
	}
	b.keep(func(id string) bool { return id == "s2" })
	if err := b.add("s3", c); err != nil || b.len() != 2 {
		t.Fatalf("after the book dropped a gone circuit: %v, %d noted", err, b.len())
	}
}
