package remote

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/store"
)

func hit(b byte, body string) store.Hit {
	return store.Hit{Entity: store.Entity{ID: id(b), Traits: []store.Trait{{Type: "t", ID: "t", Doc: []byte(`"` + body + `"`), Created: testTime, Modified: testTime}}}}
}

func added(b byte, body string) store.Change {
	return store.Change{Kind: store.Added, Hit: hit(b, body)}
}
func changed(b byte, body string) store.Change {
	return store.Change{Kind: store.Changed, Hit: hit(b, body)}
}
func removed(b byte) store.Change {
	return store.Change{Kind: store.Removed, Hit: store.Hit{Entity: store.Entity{ID: id(b)}}}
}

func pageOf(hs ...store.Hit) store.WatchEvent { return store.WatchEvent{Page: &store.Page{Hits: hs}} }
func changes(cs ...store.Change) store.WatchEvent {
	return store.WatchEvent{Changes: cs}
}

func TestCoalescer(t *testing.T) {
	type step struct {
		push *store.WatchEvent // else take an event, which must be want
		want *store.WatchEvent // nil: none waits
	}
	push := func(ev store.WatchEvent) step { return step{push: &ev} }
	take := func(ev store.WatchEvent) step { return step{want: &ev} }
	none := step{}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a consumer that keeps up gets the events as they came", []step{
			push(pageOf(hit(1, "a"))), take(pageOf(hit(1, "a"))), none,
			push(changes(added(2, "b"), changed(1, "A"))), take(changes(added(2, "b"), changed(1, "A"))),
			push(changes(removed(2))), take(changes(removed(2))), none,
		}},
		{"changes wait behind an untaken page", []step{
			push(pageOf(hit(1, "a"))), push(changes(added(2, "b"))),
			take(pageOf(hit(1, "a"))), take(changes(added(2, "b"))), none,
		}},
		{"two events merge into their difference, in order of appearance", []step{
			push(pageOf(hit(1, "a"), hit(2, "b"))), take(pageOf(hit(1, "a"), hit(2, "b"))),
			push(changes(added(3, "c"), changed(1, "A"))),
			push(changes(removed(2), added(4, "d"), removed(3))),
			take(changes(changed(1, "A"), removed(2), added(4, "d"))), none,
		}},
		{"a change and its undoing leave nothing", []step{
			push(pageOf(hit(1, "a"))), take(pageOf(hit(1, "a"))),
			push(changes(changed(1, "A"))), push(changes(changed(1, "a"))), none,
			push(changes(added(2, "b"))), push(changes(removed(2))), none,
		}},
		{"removed then added back differently is changed", []step{
			push(pageOf(hit(1, "a"))), take(pageOf(hit(1, "a"))),
			push(changes(removed(1))), push(changes(added(1, "z"))),
			take(changes(changed(1, "z"))), none,
		}},
		{"a page supersedes what waits", []step{
			push(pageOf(hit(1, "a"))), take(pageOf(hit(1, "a"))),
			push(changes(added(2, "b"))), push(pageOf(hit(3, "c"))),
			take(pageOf(hit(3, "c"))), none,
			push(changes(added(4, "d"))), push(changes(removed(3))),
			take(changes(added(4, "d"), removed(3))),
		}},
		{"a merge after a taken merge starts from what was taken", []step{
			push(pageOf()), take(pageOf()),
			push(changes(added(1, "a"))), push(changes(added(2, "b"))),
			take(changes(added(1, "a"), added(2, "b"))),
			push(changes(removed(1))), push(changes(changed(2, "B"))),
			take(changes(removed(1), changed(2, "B"))), none,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCoalescer()
			for i, s := range tt.steps {
				if s.push != nil {
					if err := c.push(*s.push); err != nil {
						t.Fatalf("step %d: push: %v", i, err)
					}
					continue
				}
				got, ok := c.next()
				if s.want == nil {
					if ok {
						t.Fatalf("step %d: %+v waits, want nothing", i, got)
					}
					continue
				}
				if !ok {
					t.Fatalf("step %d: nothing waits, want %+v", i, *s.want)
				}
				if diff := cmp.Diff(*s.want, got, cmpOpts); diff != "" {
					t.Fatalf("step %d (-want +got):\n%s", i, diff)
				}
				c.pop()
			}
		})
	}
}

func TestCoalescerRefusesAnOverlongPage(t *testing.T) {
	c := newCoalescer()
	if err := c.push(pageOf()); err != nil {
		t.Fatal(err)
	}
	cs := make([]store.Change, store.MaxLimit+1)
	for i := range cs {
		cs[i] = store.Change{Kind: store.Added, Hit: store.Hit{Entity: store.Entity{ID: store.EntityID{byte(i), byte(i >> 8), 1}}}}
	}
	if err := c.push(changes(cs[:store.MaxLimit]...)); err != nil {
		t.Fatalf("a page of MaxLimit hits: %v", err)
	}
	if err := c.push(changes(cs[store.MaxLimit:]...)); err == nil {
		t.Fatal("a page of MaxLimit+1 hits was accepted")
	}
}
