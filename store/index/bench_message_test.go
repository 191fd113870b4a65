package index

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
)

// The message benchmarks measure the index's cost per call on the path
// of a message (package message/service records each message as an
// exo.message put, then catches the index up): an index of msgN
// messages in msgConvs conversations, then Apply of 1 and of 16 message
// puts (new messages, state "sent"; or the "delivered" update of
// existing ones), Get of one message, Checkpoint, and the page of a
// conversation in order.
const (
	msgN     = 5_000
	msgConvs = 5
)

// msgDoc is a ~400-byte exo.message document as message/service writes
// it (record.go's Message).
func msgDoc(i int, state string) json.RawMessage {
	sent := t0.Add(time.Duration(i) * time.Millisecond)
	doc, err := json.Marshal(map[string]any{
		"id":           fmt.Sprintf("%032x", i),
		"conversation": fmt.Sprintf("%064x", i%msgConvs),
		"direction":    "out",
		"cell":         fmt.Sprintf("%064x", 99),
		"device":       "12D3KooWRkGLz4YbVmrsWK75VjFTs8xKoCsYoVjDSuCr5ZrYVDDy",
		"sent":         sent.Format(time.RFC3339Nano),
		"order":        fmt.Sprintf("%016x%032x", sent.UnixMilli(), i),
		"text":         fmt.Sprintf("message %d: %s", i, "the quick brown fox jumps over the lazy dog, and then some more words to fill"),
		"state":        state,
	})
	if err != nil {
		panic(err)
	}
	return doc
}

// msgFeed makes arrivals of exo.message puts, one put per entry, at
// consecutive arrival indexes and clocks.
type msgFeed struct {
	next uint64
}

func (f *msgFeed) arrival(tb testing.TB, i int, state string) Arrival {
	tm := t0.Add(time.Duration(i) * time.Millisecond)
	p, err := store.Encode(store.Transaction{Ops: []store.Op{
		store.PutTrait(eid(i), store.Trait{Type: "exo.message", ID: "exo.message", Doc: msgDoc(i, state), Created: tm, Modified: tm}),
	}})
	if err != nil {
		tb.Fatal(err)
	}
	a := Arrival{Index: f.next, CID: fmt.Appendf(nil, "cid%d", f.next), Pos: store.Pos{Clock: f.next + 1, Key: fmt.Sprintf("cid%d", f.next)}, Payload: p}
	f.next++
	return a
}

// msgIndex opens a new index holding msgN messages (state "delivered").
func msgIndex(b *testing.B) (*Index, *msgFeed) {
	ix, err := Open(b.TempDir(), store.NewRegistry(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ix.Close() })
	f := &msgFeed{}
	for i := 0; i < msgN; i += 500 {
		as := make([]Arrival, 0, 500)
		for j := i; j < min(i+500, msgN); j++ {
			as = append(as, f.arrival(b, j, "delivered"))
		}
		if _, err := ix.Apply(context.Background(), as); err != nil {
			b.Fatal(err)
		}
	}
	return ix, f
}

// merge makes as, consecutive arrivals of f, one arrival of a batch
// entry (store.EncodeBatch) holding their transactions, as a group
// commit writes them.
func (f *msgFeed) merge(tb testing.TB, as []Arrival) []Arrival {
	txs := make([][]byte, len(as))
	for i, a := range as {
		txs[i] = a.Payload
	}
	p, err := store.EncodeBatch(txs)
	if err != nil {
		tb.Fatal(err)
	}
	f.next = as[0].Index + 1
	return []Arrival{{Index: as[0].Index, CID: as[0].CID, Pos: as[0].Pos, Payload: p}}
}

// BenchmarkApplyMessage: Apply of n arrivals of one message put each,
// to an index of msgN messages: new messages (state "sent"), or their
// update (state "delivered", the sender's second record of a message);
// "batch": the n puts in one arrival, a batch entry. The arrivals are
// made outside the timing.
func BenchmarkApplyMessage(b *testing.B) {
	for _, size := range []int{1, 16, -16} {
		n, merged := max(size, -size), size < 0
		for _, kind := range []string{"new", "update"} {
			name := fmt.Sprintf("%s/%d", kind, n)
			if merged {
				name += "-batch"
			}
			b.Run(name, func(b *testing.B) {
				ix, f := msgIndex(b)
				ctx := context.Background()
				next := msgN
				batch := func(state string) []Arrival {
					as := make([]Arrival, n)
					for j := range as {
						as[j] = f.arrival(b, next+j, state)
					}
					if merged {
						return f.merge(b, as)
					}
					return as
				}
				for b.Loop() {
					b.StopTimer()
					as := batch("sent")
					if kind == "update" {
						if _, err := ix.Apply(ctx, as); err != nil {
							b.Fatal(err)
						}
						as = batch("delivered")
					}
					b.StartTimer()
					if _, err := ix.Apply(ctx, as); err != nil {
						b.Fatal(err)
					}
					next += n
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/put")
			})
		}
	}
}

// BenchmarkMessageGet: Get of one message, with a context that is never
// canceled, and with one that may be (a caller's: a request's, a
// service's), which modernc watches with a goroutine per statement it
// is given to.
func BenchmarkMessageGet(b *testing.B) {
	ix, _ := msgIndex(b)
	for _, name := range []string{"background", "cancelable"} {
		b.Run("ctx="+name, func(b *testing.B) {
			ctx := context.Background()
			if name == "cancelable" {
				c, cancel := context.WithCancel(ctx)
				defer cancel()
				ctx = c
			}
			r := rand.New(rand.NewPCG(9, 10))
			for b.Loop() {
				if _, err := ix.Get(ctx, eid(r.IntN(msgN)), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckpoint: Checkpoint, as the store's service reads it
// before each catch-up.
func BenchmarkCheckpoint(b *testing.B) {
	ix, _ := msgIndex(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := ix.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessageConversation: the first 50 messages of a conversation
// (of msgN/msgConvs) by their order key, as message/service's
// ConversationQuery pages them.
func BenchmarkMessageConversation(b *testing.B) {
	ix, _ := msgIndex(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(11, 12))
	for b.Loop() {
		p, err := ix.Query(ctx, store.Query{Type: "exo.message", Limit: 50, Order: "order", Traits: []string{"exo.message"},
			Where: []store.Predicate{{Field: "conversation", Op: store.Eq, Value: fmt.Sprintf("%064x", r.IntN(msgConvs))}}})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Hits) != 50 {
			b.Fatalf("%d hits, want 50", len(p.Hits))
		}
	}
}

// BenchmarkMessageRead: a message's duplicate check as a receiver makes
// it, right after the index committed another message (a reader's page
// cache is emptied by each commit it has not seen): Get of the entity,
// or Trait of its exo.message trait (on the writer's connection), with
// a cancelable context. The Apply is outside the timing.
func BenchmarkMessageRead(b *testing.B) {
	for _, how := range []string{"get", "trait"} {
		b.Run(how, func(b *testing.B) {
			ix, f := msgIndex(b)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := rand.New(rand.NewPCG(13, 14))
			next := msgN
			for b.Loop() {
				b.StopTimer()
				if _, err := ix.Apply(ctx, []Arrival{f.arrival(b, next, "delivered")}); err != nil {
					b.Fatal(err)
				}
				next++
				e := eid(r.IntN(next))
				b.StartTimer()
				var err error
				if how == "get" {
					_, err = ix.Get(ctx, e, []string{"exo.message"})
				} else {
					_, err = ix.Trait(ctx, e, "exo.message")
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
