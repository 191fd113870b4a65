package remote

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/store"
)

// BenchmarkRoundTrip measures a Get, and a Query of a page of 50 and of
// 1,000 hits, from a client to a store member on loopback TCP (one stream
// each), beside the same calls on the backend itself: the difference is
// the protocol's cost. Notes of some 330 bytes.
func BenchmarkRoundTrip(b *testing.B) {
	sb := newStateBackend()
	for i := range store.MaxLimit {
		var e store.EntityID
		e[0], e[1], e[15] = byte(i), byte(i>>8), 1
		sb.put(e, "exo.note", fmt.Sprintf("note %d: %0300d", i, i), "all")
	}
	member, ch := newHost(b), newHost(b)
	srv := NewServer(member, sb, func(peer.ID) bool { return true }, nil)
	if err := srv.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	introduce(ch, member)
	c := NewClient(ch)
	var first store.EntityID
	first[15] = 1
	for _, n := range []int{50, store.MaxLimit} {
		q := store.Query{Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "all"}}, Limit: n}
		b.Run(fmt.Sprintf("query-%d/remote", n), func(b *testing.B) {
			for b.Loop() {
				pg, err := c.Query(b.Context(), member.ID(), q)
				if err != nil || len(pg.Hits) != n {
					b.Fatalf("%d hits, %v", len(pg.Hits), err)
				}
			}
		})
		b.Run(fmt.Sprintf("query-%d/local", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := sb.Query(b.Context(), q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("get/remote", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Get(b.Context(), member.ID(), first, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get/local", func(b *testing.B) {
		for b.Loop() {
			if _, err := sb.Get(b.Context(), first, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
