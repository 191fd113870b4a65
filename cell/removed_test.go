package cell

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell/core"
)

// testPeer returns a fresh peer ID and box key.
func testPeer(t testing.TB) (peer.ID, BoxKey) {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	box, err := core.NewBoxKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id, box
}

// removedOne returns the roster of a cell of three members, ids, from
// which the last was removed.
func removedOne(t testing.TB) (*Roster, []peer.ID) {
	t.Helper()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var ids []peer.ID
	var boxes []BoxKey
	for range 3 {
		id, box := testPeer(t)
		ids, boxes = append(ids, id), append(boxes, box)
	}
	r, cellKey, keys, err := core.NewCell("home", Founder{Peer: ids[0], Name: "laptop", BoxKey: boxes[0].Public()}, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"phone", "tablet"} {
		if r, err = r.WithMember(Member{Peer: ids[i+1], Name: name, Roles: RoleChain, BoxKey: boxes[i+1].Public()}, keys, cellKey, now, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if r, err = r.Without(ids[2], Cutoff{}, keys, cellKey, now, rand.Reader); err != nil {
		t.Fatal(err)
	}
	return r, ids
}

// TestNoteFormerBounded: only former members are queued to be told of
// their removal, and the queue is bounded: a former member that keeps
// speaking never blocks gossip's goroutine.
func TestNoteFormerBounded(t *testing.T) {
	r, ids := removedOne(t)
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
