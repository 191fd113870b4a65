package service_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/exopeer/exopeer/internal/nodetest"
	"github.com/exopeer/exopeer/store"
)

var benchEntities = flag.Int("store.entities", 10_000, "entities (3 traits each, one chain entry each) BenchmarkReindex indexes")

// BenchmarkReindex: the follower's throughput on a real node: the chain's
// entries read (blocks, decryption) and applied to the index, from the
// first, as after `exopeer store reindex` or as a store node takes a
// synced chain. Each entry is one entity with 3 traits (a note, two of an
// unregistered type). Reports entries/s and µs per entry.
func BenchmarkReindex(b *testing.B) {
	opts := nodetest.Options(b, 30)
	opts.Cell, opts.Store.Dir = nodetest.FastCell, b.TempDir()
	n := nodetest.Start(b, opts)
	ctx := b.Context()
	if _, err := n.Cell().Create(ctx, "bench", "n"); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 1000
	for done := 0; done < *benchEntities; {
		var ps [][]byte
		for ; done < *benchEntities && len(ps) < batch; done++ {
			var id store.EntityID
			for i := range id {
				id[i] = byte(r.Uint32())
			}
			body := ""
			for range 8 {
				body += words[r.IntN(len(words))] + " "
			}
			doc, _ := json.Marshal(map[string]any{"title": fmt.Sprintf("note %d", done), "body": body, "tags": []string{words[r.IntN(3)]}})
			tx := store.Transaction{Ops: []store.Op{
				store.PutTrait(id, store.Trait{Type: "exo.note", ID: "exo.note", Doc: doc, Created: at, Modified: at}),
				store.PutTrait(id, store.Trait{Type: "x.a", ID: "a", Doc: json.RawMessage(`{"n":1}`), Created: at, Modified: at}),
				store.PutTrait(id, store.Trait{Type: "x.b", ID: "b", Doc: json.RawMessage(`{"s":"x"}`), Created: at, Modified: at}),
			}}
			p, err := store.Encode(tx)
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, p)
		}
		if _, err := n.Chain().AppendMany(ctx, ps); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var took time.Duration
	for range b.N {
		start := time.Now()
		rx, err := n.Store().Reindex(ctx)
		if err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		if rx.Entries != uint64(*benchEntities) || rx.Entities != int64(*benchEntities) {
			b.Fatalf("reindexed %+v, want %d entries and entities", rx, *benchEntities)
		}
	}
	per := took / time.Duration(b.N**benchEntities)
	b.ReportMetric(float64(*benchEntities*b.N)/took.Seconds(), "entries/s")
	b.ReportMetric(float64(per.Nanoseconds())/1e3, "µs/entry")
}
