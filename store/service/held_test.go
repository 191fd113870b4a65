package service

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/store"
)

func hit(id byte, doc string) store.Hit {
	return store.Hit{Entity: store.Entity{ID: store.EntityID{id}, Traits: []store.Trait{{Type: "t", ID: "t", Doc: json.RawMessage(doc)}}}}
}

// TestHeldPageReplace: the changes from the page a watch's consumer holds
// to a new member's first page: added and changed hits in the new page's
// order, then removed ones by ID; none for the same page.
func TestHeldPageReplace(t *testing.T) {
	h := newHeldPage(&store.Page{Hits: []store.Hit{hit(1, `1`), hit(2, `2`), hit(3, `3`)}})
	h.apply([]store.Change{{Kind: store.Removed, Hit: store.Hit{Entity: store.Entity{ID: store.EntityID{3}}}}, {Kind: store.Added, Hit: hit(4, `4`)}})
	got := h.replace(&store.Page{Hits: []store.Hit{hit(5, `5`), hit(2, `22`), hit(4, `4`)}})
	want := []store.Change{
		{Kind: store.Added, Hit: hit(5, `5`)},
		{Kind: store.Changed, Hit: hit(2, `22`)},
		{Kind: store.Removed, Hit: store.Hit{Entity: store.Entity{ID: store.EntityID{1}}}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	if again := h.replace(&store.Page{Hits: []store.Hit{hit(5, `5`), hit(2, `22`), hit(4, `4`)}}); len(again) != 0 {
		t.Errorf("the same page again gave changes: %+v", again)
	}
	if all := h.replace(&store.Page{}); len(all) != 3 {
		t.Errorf("an empty page: %+v, want 3 removals", all)
	}
}
