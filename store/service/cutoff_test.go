package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
)

// cutChain is a chain whose arrival order a removal's cut-off changes
// while the follower reads it: before the read from arrival cutAt, it
// drops the entries of drop (kept ones keep their order, renumbered), as
// replica's cut does.
type cutChain struct {
	mu    sync.Mutex
	es    []replica.Entry
	cutAt uint64
	drop  map[int]bool // by entry number
	cut   bool
	asked []int // the limit of each Arrivals call
}

func (c *cutChain) AppendMany(context.Context, [][]byte) ([]replica.Entry, error) {
	panic("not used")
}

func (c *cutChain) Tip(context.Context) (uint64, cid.Cid, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.es) == 0 {
		return 0, cid.Undef, nil
	}
	return uint64(len(c.es)), c.es[len(c.es)-1].CID, nil
}
func (c *cutChain) Watch() (<-chan struct{}, func())               { return nil, func() {} }
func (c *cutChain) Status(context.Context) (replica.Status, error) { return replica.Status{}, nil }

func (c *cutChain) Arrivals(_ context.Context, from uint64, limit int) ([]replica.Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, limit)
	if !c.cut && from >= c.cutAt {
		c.cut = true
		var kept []replica.Entry
		for i, e := range c.es {
			if !c.drop[i] {
				e.Index = uint64(len(kept))
				kept = append(kept, e)
			}
		}
		c.es = kept
	}
	var out []replica.Entry
	for i := from; i < uint64(len(c.es)) && len(out) < limit; i++ {
		out = append(out, c.es[i])
	}
	return out, nil
}

// cutEntries returns n chain entries, entry i putting a note on entity i+1.
func cutEntries(t *testing.T, n int) []replica.Entry {
	t.Helper()
	var es []replica.Entry
	for i := range n {
		var e store.EntityID
		e[15] = byte(i + 1)
		doc, _ := json.Marshal(map[string]string{"body": fmt.Sprint("note ", i)})
		tm := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		p, err := store.Encode(store.Transaction{Ops: []store.Op{store.PutTrait(e, store.Trait{Type: "exo.note", ID: "exo.note", Doc: doc, Created: tm, Modified: tm})}})
		if err != nil {
			t.Fatal(err)
		}
		h, _ := mh.Sum([]byte(fmt.Sprint("entry", i)), mh.SHA2_256, -1)
		c := cid.NewCidV1(cid.DagCBOR, h)
		es = append(es, replica.Entry{CID: c, Pos: chain.Pos{Clock: uint64(i + 1), CID: c}, Index: uint64(i), Payload: p})
	}
	return es
}

// TestCutOffDuringCatchUp: a removal's cut-off that renumbers the chain's
// arrivals while the follower is between two reads (the check of its
// checkpoint and the first batch, or two batches) is noticed: the index
// ends with the state of the chain as it is, not with a dropped entry
// applied and a renumbered one passed over.
func TestCutOffDuringCatchUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first uint64 // arrivals applied before the catch-up
		cutAt uint64
	}{
		{"between batches", 0, 2},
		{"after the checkpoint's check", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := cutEntries(t, 6)
			ch := &cutChain{es: es, cutAt: 1 << 60, drop: map[int]bool{1: true}}
			s := &Service{chain: ch, cfg: Config{Batch: 2}.withDefaults(), log: slog.New(slog.DiscardHandler)}
			s.reg = s.cfg.Registry
			ix, err := index.Open(t.TempDir(), s.reg, index.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			if tc.first > 0 {
				if _, err := ix.Apply(t.Context(), s.arrivals(es[:tc.first])); err != nil {
					t.Fatal(err)
				}
			}
			ch.cutAt = tc.cutAt
			for range 2 { // the next pass too: it must not leave the index wrong
				if _, err := s.catchUp(t.Context(), ix); err != nil {
					t.Fatal(err)
				}
			}
			for i := range es {
				var e store.EntityID
				e[15] = byte(i + 1)
				_, err := ix.Get(t.Context(), e, nil)
				if got, want := err == nil, i != 1; got != want {
					t.Errorf("entity of entry %d: in the index %v, want %v (%v)", i, got, want, err)
				}
			}
			cp, err := ix.Checkpoint(t.Context())
			if err != nil || cp.Next != 5 {
				t.Errorf("checkpoint %+v, %v; want 5 arrivals", cp, err)
			}
		})
	}
}

// TestCatchUpReadsBounded: the follower reads the chain in chunks of at
// most ReadChunk arrivals, and ends a batch once its payloads reach
// Config.BatchBytes: a chain of large entries does not make it hold 512
// of them (128 MiB at 256 KiB each) at once, twice. The index still
// applies every entry.
func TestCatchUpReadsBounded(t *testing.T) {
	const n = 150
	var es []replica.Entry
	big := `"` + strings.Repeat("x", store.MaxDoc-2) + `"`
	for i := range n {
		var e store.EntityID
		e[14], e[15] = byte(i>>8), byte(i+1)
		p, err := store.Encode(store.Transaction{Ops: []store.Op{store.PutTrait(e, store.Trait{Type: "x.blob", ID: "b", Doc: json.RawMessage(big)})}})
		if err != nil {
			t.Fatal(err)
		}
		h, _ := mh.Sum([]byte(fmt.Sprint("big", i)), mh.SHA2_256, -1)
		c := cid.NewCidV1(cid.DagCBOR, h)
		es = append(es, replica.Entry{CID: c, Pos: chain.Pos{Clock: uint64(i + 1), CID: c}, Index: uint64(i), Payload: p})
	}
	ch := &cutChain{es: es, cutAt: 1 << 60}
	s := &Service{chain: ch, cfg: Config{BatchBytes: 1 << 20}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	s.reg = s.cfg.Registry
	ix, err := index.Open(t.TempDir(), s.reg, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	got, err := s.catchUp(t.Context(), ix)
	if err != nil || got != n {
		t.Fatalf("catchUp = %d, %v; want %d", got, err, n)
	}
	for i, l := range ch.asked {
		if l > ReadChunk+1 {
			t.Errorf("read %d asked for %d arrivals, over %d (%v)", i, l, ReadChunk+1, ch.asked)
			break
		}
	}
	st, err := ix.Stats(t.Context())
	if err != nil || st.Entities != n {
		t.Errorf("index stats %+v, %v; want %d entities", st, err, n)
	}
}
