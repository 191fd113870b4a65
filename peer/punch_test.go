package peer

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

func punchEvt(remote peer.ID, at int64, e any) *holepunch.Event {
	return &holepunch.Event{Remote: remote, Timestamp: at, Evt: e}
}

// TestPunchTracer: the tracer keeps the last outcome per peer, counts the
// rounds, and a new start clears the old result.
func TestPunchTracer(t *testing.T) {
	tr := newPunchTracer(4)
	a := peer.ID("a")
	tr.Trace(punchEvt(a, 1, &holepunch.DirectDialEvt{Error: "no route"}))
	tr.Trace(punchEvt(a, 2, &holepunch.StartHolePunchEvt{}))
	tr.Trace(punchEvt(a, 3, &holepunch.HolePunchAttemptEvt{Attempt: 1}))
	tr.Trace(punchEvt(a, 4, &holepunch.HolePunchAttemptEvt{Attempt: 2}))
	tr.Trace(punchEvt(a, 5, &holepunch.EndHolePunchEvt{Error: "all retries failed"}))
	r, ok := tr.result(a)
	if !ok || r.OK || r.Error != "all retries failed" || r.Attempts != 2 || r.At.UnixNano() != 5 {
		t.Fatalf("after a failed punch: %+v, %v", r, ok)
	}
	tr.Trace(punchEvt(a, 6, &holepunch.StartHolePunchEvt{}))
	tr.Trace(punchEvt(a, 7, &holepunch.EndHolePunchEvt{Success: true}))
	if r, _ := tr.result(a); !r.OK || r.Error != "" || r.Attempts != 0 {
		t.Fatalf("after a successful punch: %+v", r)
	}
	tr.Trace(punchEvt(a, 8, &holepunch.ProtocolErrorEvt{Error: "x"}))
	tr.Trace(nil)
	tr.Trace(punchEvt("", 9, &holepunch.EndHolePunchEvt{}))
	if r, _ := tr.result(a); !r.OK || r.At.UnixNano() != 7 {
		t.Fatalf("an event that is no outcome changed the result: %+v", r)
	}
	if _, ok := (*punchTracer)(nil).result(a); ok {
		t.Fatal("a nil tracer has a result")
	}
}

// TestPunchTracerBound: a peer can fill the tracer (every relayed peer
// adds one); it keeps at most max, forgetting the oldest.
func TestPunchTracerBound(t *testing.T) {
	const max = 8
	tr := newPunchTracer(max)
	for i := range 3 * max {
		tr.Trace(punchEvt(peer.ID(fmt.Sprint(i)), int64(100+i), &holepunch.EndHolePunchEvt{}))
	}
	if n := len(tr.last); n != max {
		t.Fatalf("tracer holds %d peers, want %d", n, max)
	}
	for i := range 3 * max {
		_, ok := tr.result(peer.ID(fmt.Sprint(i)))
		if want := i >= 2*max; ok != want {
			t.Errorf("peer %d kept %v, want %v (the newest %d only)", i, ok, want, max)
		}
	}
}

// TestConnPath: a non-circuit connection makes the path direct; circuit
// ones alone make it relayed through the relay their address names.
func TestConnPath(t *testing.T) {
	const relay = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	const dst = "12D3KooWLrDD4BURmWvfbHc1YYP5QNyaTpWfTgc9wwQGXxqKDfKR"
	direct := ma.StringCast("/ip4/2.2.0.1/udp/8000/quic-v1")
	relayed := ma.StringCast("/ip4/1.2.0.1/udp/8000/quic-v1/p2p/" + relay + "/p2p-circuit/p2p/" + dst)
	anon := ma.StringCast("/p2p-circuit")
	rid, _ := peer.Decode(relay)
	for _, c := range []struct {
		remotes []ma.Multiaddr
		want    Path
		s       string
	}{
		{nil, Path{}, ""},
		{[]ma.Multiaddr{direct}, Path{Direct: true}, "direct"},
		{[]ma.Multiaddr{relayed}, Path{Relayed: true, Relay: rid}, "relayed"},
		{[]ma.Multiaddr{relayed, direct}, Path{Direct: true}, "direct"},
		{[]ma.Multiaddr{anon}, Path{Relayed: true}, "relayed"},
	} {
		got := connPath(c.remotes)
		if got.Direct != c.want.Direct || got.Relayed != c.want.Relayed || got.Relay != c.want.Relay || got.String() != c.s {
			t.Errorf("connPath(%v) = %+v (%q), want %+v (%q)", c.remotes, got, got.String(), c.want, c.s)
		}
	}
}
