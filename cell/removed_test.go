package cell

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestNoteFormerBounded: only former members are queued to be told of
// their removal, and the queue is bounded: a former member that keeps
// speaking never blocks gossip's goroutine.
func TestNoteFormerBounded(t *testing.T) {
	r, _, _, ids, _ := removedOne(t)
	stranger, _ := testPeer(t)
	s := &Service{self: ids[0], tell: make(chan peer.ID, tellQueue)}
	s.roster.Store(r)
	s.noteFormer(stranger)
	s.noteFormer(ids[1])
	if len(s.tell) != 0 {
		t.Fatalf("a stranger or a member was queued: %d", len(s.tell))
	}
	if s.allowed(stranger) || !s.allowed(ids[1]) {
		t.Error("allowed: wrong answer")
	}
	for range 3 * tellQueue {
		s.noteFormer(ids[2])
		s.allowed(ids[2])
	}
	if len(s.tell) != tellQueue {
		t.Errorf("queue holds %d, want its bound %d", len(s.tell), tellQueue)
	}
	// A node that was removed itself tells no one.
	s.self = ids[2]
	s.tell = make(chan peer.ID, tellQueue)
	s.noteFormer(ids[2])
	if len(s.tell) != 0 {
		t.Error("a removed node queued a former member")
	}
}
