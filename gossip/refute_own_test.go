package gossip

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// sinkStream is a stream that takes every write (no peer behind it).
type sinkStream struct{ network.Stream }

func (sinkStream) Write(b []byte) (int, error) { return len(b), nil }

// TestOwnPushPullNoAcknowledgment: an answered accusation is stale once
// another member states this node above anything stated before the answer
// (refute.go, doc.go). The push/pull state this node writes itself (its
// memberlist lists every node, itself at its own incarnation, which the
// answer's re-announcement raised) is no member's acknowledgment: it was
// read as one, on the write direction of the stream, so the node stopped
// answering retransmits of the accusation before anyone had heard its
// re-announcement.
func TestOwnPushPullNoAcknowledgment(t *testing.T) {
	seed := testSeed(t, 43)
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	h, err := mn.AddPeer(testKey(seed, 0), ma.StringCast("/ip4/10.0.0.1/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	other := testKey(seed, 1)
	m, err := New(h, testConfig(seed, testKey(seed, 0), newRoster(h.ID()), Timing{}))
	if err != nil {
		t.Fatal(err)
	}
	m.accused.held(7)   // the others hold this node at 7
	m.accused.answer(0) // refuteAccused answered an accusation at 0; this node is now at 8
	otherName := fmt.Sprint(mustID(t, other))
	own := sealStream(t, gossipKey(seed, 0), pushPullPlain(t, []pushNodeState{
		{Name: m.selfName, Incarnation: 8},
		{Name: otherName, Incarnation: 3},
	}, nil))
	c := newStreamConn(sinkStream{}, nil, nil, nil)
	c.teeFirst(m.tr.onStream) // as the transport does on every memberlist stream
	if _, err := c.Write(own); err != nil {
		t.Fatal(err)
	}
	if m.accused.stale(0) {
		t.Error("this node's own push/pull state, as it wrote it, counts as another member's acknowledgment of its re-announcement")
	}
}
