package remote

import (
	"strings"
	"testing"

	"github.com/exopeer/exopeer/store"
)

// TestAPageTooLargeIsCutShort: a page over the message cap is answered
// shorter, with the cursor that reads on (as the control API cuts its
// own), not refused: a thin member gets the answer a store member's own
// API gives. The first page of a watch too.
func TestAPageTooLargeIsCutShort(t *testing.T) {
	r := newRig(t, Config{}, nil)
	r.srv.msgCap = 1 << 20 // a cap of 1 MiB: some 12 hits of 60 KiB in base64
	for i := range byte(40) {
		r.b.put(id(i+1), "exo.note", strings.Repeat("x", 60<<10))
	}
	q := store.Query{Limit: 40}
	var all []store.EntityID
	for pages := 0; ; pages++ {
		if pages == 10 {
			t.Fatal("10 pages and not done")
		}
		pg, err := r.c.Query(t.Context(), r.member.ID(), q)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		if len(pg.Hits) == 0 || len(pg.Hits) == 40 {
			t.Fatalf("a page of %d hits", len(pg.Hits))
		}
		for _, h := range pg.Hits {
			all = append(all, h.Entity.ID)
		}
		if pg.Next == "" {
			break
		}
		q.After = pg.Next
	}
	if len(all) != 40 {
		t.Fatalf("read %d entities in pages, want 40", len(all))
	}
	for i, e := range all {
		if e != id(byte(i+1)) {
			t.Fatalf("hit %d is %s, want %s", i, e, id(byte(i+1)))
		}
	}

	w, err := r.c.Subscribe(t.Context(), r.member.ID(), store.Query{Limit: 40})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	if ev := next(t, w); ev.Page == nil || len(ev.Page.Hits) == 0 || len(ev.Page.Hits) == 40 || ev.Page.Next == "" {
		t.Fatalf("watch's first event: a page of %d hits", len(ev.Page.Hits))
	}
}
