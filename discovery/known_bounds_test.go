package discovery

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-datastore/query"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestKnownUnknownRedialWindow: while Interesting cannot judge the
// table's entries (a thin device that reaches no store member cannot read
// the contacts), a lost entry is redialled only if the table saw it
// within KnownUnknownRedial; one it accepts always is, one it refuses
// never is. Before, a device removed from the cell long ago was redialled
// for the 90 days its entry is kept.
func TestKnownUnknownRedialWindow(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	addr := mustAddr(t, "/ip4/11.213.0.7/tcp/4001")
	now := time.Now()
	recent, old := randomPeer(t), randomPeer(t)
	for id, seen := range map[peer.ID]time.Time{
		recent: now.Add(-KnownUnknownRedial + time.Hour),
		old:    now.Add(-KnownUnknownRedial - time.Hour),
	} {
		if err := d.Put(ctx, knownKey(id), encodeKnown(known{Addrs: []ma.Multiaddr{addr}, Seen: seen})); err != nil {
			t.Fatal(err)
		}
	}
	verdict := InterestUnknown
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return verdict }
	s := unstartedService(t, cfg)
	if _, err := s.loadKnown(ctx); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	for _, id := range []peer.ID{recent, old} {
		s.peers[id] = &entry{sources: []Source{SourceKnown}}
	}
	s.mu.Unlock()
	for _, tc := range []struct {
		v         Interest
		id        peer.ID
		keep      bool
		situation string
	}{
		{InterestUnknown, recent, true, "unjudged, seen within the window"},
		{InterestUnknown, old, false, "unjudged, seen before the window"},
		{InterestYes, old, true, "accepted, seen before the window"},
		{InterestNo, recent, false, "refused"},
	} {
		verdict = tc.v
		if got := s.keepKnown(tc.id); got != tc.keep {
			t.Errorf("%s: redialled %v, want %v", tc.situation, got, tc.keep)
		}
	}
}

// TestKnownTablePerContact: one contact's devices keep at most
// MaxKnownPerContact entries, that contact's oldest device evicted first
// (never the one just put); other contacts' devices and the members are
// untouched, and a member is not counted even if named as a device.
// Before, one contact with many devices could fill the table and push the
// other contacts' devices out.
func TestKnownTablePerContact(t *testing.T) {
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	tb := newKnownTable()
	tb.member = func(p peer.ID) bool { return p == "member" }
	put := func(id peer.ID, owner string, seen time.Time) []peer.ID {
		r := row(seen, false, a)
		r.owner = owner
		return tb.put(id, r)
	}
	put("member", "many", t0) // a member some contact's list names too
	for i := range 3 {
		put(peer.ID(fmt.Sprintf("other-%d", i)), "other", t0)
	}
	var evicted []peer.ID
	for i := range MaxKnownPerContact + 4 {
		evicted = append(evicted, put(peer.ID(fmt.Sprintf("many-%02d", i)), "many", t0.Add(time.Duration(i+1)*time.Second))...)
	}
	want := []peer.ID{"many-00", "many-01", "many-02", "many-03"}
	if !slices.Equal(evicted, want) {
		t.Fatalf("evicted %v, want the contact's 4 oldest devices %v", evicted, want)
	}
	// A device older than all its contact's others is kept when put; the
	// oldest other goes.
	if ev := put("many-old", "many", t0); !slices.Equal(ev, []peer.ID{"many-04"}) {
		t.Fatalf("evicted %v, want many-04", ev)
	}
	n := 0
	for _, r := range tb.rows {
		if r.owner == "many" {
			n++
		}
	}
	if n != MaxKnownPerContact+1 { // its devices, and the member
		t.Errorf("%d entries of the contact, want %d devices and the member", n, MaxKnownPerContact)
	}
	for _, id := range []peer.ID{"member", "other-0", "other-1", "other-2", "many-old"} {
		if _, ok := tb.rows[id]; !ok {
			t.Errorf("%s evicted", id)
		}
	}
}

// TestKnownPerContactDeleted: the entries a contact's cap evicts are
// deleted from the datastore, when a device is identified and when the
// ping round's sweep books the owner of entries loaded with none.
func TestKnownPerContactDeleted(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	addr := mustAddr(t, "/ip4/11.213.0.7/tcp/4001")
	stored := func() int {
		res, err := d.Query(ctx, query.Query{KeysOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		all, err := res.Rest()
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	// Loaded with no owner known: more than the cap.
	for i := range MaxKnownPerContact + 5 {
		if err := d.Put(ctx, knownKey(randomPeer(t)), encodeKnown(known{Addrs: []ma.Multiaddr{addr}, Seen: time.Now().Add(-time.Duration(i+1) * time.Minute)})); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return InterestYes }
	cfg.Owner = func(peer.ID) string { return "contact" }
	s := unstartedService(t, cfg)
	s.ctx = ctx
	if _, err := s.loadKnown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := stored(); n != MaxKnownPerContact+5 {
		t.Fatalf("%d entries stored after the load, want %d", n, MaxKnownPerContact+5)
	}
	s.sweepKnown()
	if n := stored(); n != MaxKnownPerContact {
		t.Fatalf("%d entries of one contact stored after the sweep, want %d", n, MaxKnownPerContact)
	}
	fresh := randomPeer(t)
	s.noteKnown(fresh, nil, []ma.Multiaddr{addr})
	if n := stored(); n != MaxKnownPerContact {
		t.Fatalf("%d entries of one contact stored after a new device, want %d", n, MaxKnownPerContact)
	}
	if ok, _ := d.Has(ctx, knownKey(fresh)); !ok {
		t.Fatal("the device just identified was evicted")
	}
	// A device of another contact, then named by this one's list too,
	// identified again within KnownDebounce (no write due).
	moved := randomPeer(t)
	s.cfg.Owner = func(id peer.ID) string {
		if id == moved {
			return "another"
		}
		return "contact"
	}
	s.noteKnown(moved, nil, []ma.Multiaddr{addr})
	s.cfg.Owner = func(peer.ID) string { return "contact" }
	s.noteKnown(moved, nil, []ma.Multiaddr{addr})
	if n := stored(); n != MaxKnownPerContact {
		t.Fatalf("%d entries of one contact stored after a device joined it, want %d", n, MaxKnownPerContact)
	}
}
