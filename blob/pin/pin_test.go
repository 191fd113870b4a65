package pin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/boxo/ipld/merkledag"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
	leveldb "github.com/ipfs/go-ds-leveldb"
	format "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// env is a store on a leveldb (pins, chain blocks) and a flatfs (blob
// blocks), both on disk, and the Pins over them.
type env struct {
	meta  *leveldb.Datastore
	store *blocks.Store
	pins  *Pins
	rng   *rand.Rand
}

func newEnv(t testing.TB) *env {
	t.Helper()
	meta, err := leveldb.NewDatastore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := flatfs.CreateOrOpen(t.TempDir(), flatfs.NextToLast(2), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := blobs.Close(); err != nil {
			t.Error(err)
		}
		if err := meta.Close(); err != nil {
			t.Error(err)
		}
	})
	s := blocks.NewStoreWith(meta, blobs)
	seed := uint64(time.Now().UnixNano())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d", seed)
		}
	})
	return &env{meta: meta, store: s, pins: New(meta, s, nil), rng: rand.New(rand.NewPCG(seed, 1))}
}

var v1pb = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: multihash.SHA2_256, MhLength: -1}

// dag is a two-level UnixFS-shaped DAG: a root linking to mids, each
// linking to raw leaves.
type dag struct {
	root   cid.Cid
	mids   []blockformat.Block
	leaves [][]blockformat.Block // leaves[i] under mids[i]
	all    []blockformat.Block   // root first, then mids, then leaves
}

// newDAG makes a DAG of fanout mids of fanout leaves each, of random
// bytes; shared leaves, if given, hang under the first mid too.
func (e *env) newDAG(t testing.TB, fanout, leafSize int, shared ...blockformat.Block) *dag {
	t.Helper()
	d := &dag{}
	root := merkledag.NodeWithData([]byte("root"))
	if err := root.SetCidBuilder(v1pb); err != nil {
		t.Fatal(err)
	}
	for i := range fanout {
		mid := merkledag.NodeWithData(fmt.Appendf(nil, "mid %d", i))
		if err := mid.SetCidBuilder(v1pb); err != nil {
			t.Fatal(err)
		}
		var ls []blockformat.Block
		for range fanout {
			data := make([]byte, leafSize)
			for j := range data {
				data[j] = byte(e.rng.Uint32())
			}
			ls = append(ls, blocks.NewBlock(data))
		}
		if i == 0 {
			ls = append(ls, shared...)
		}
		for _, l := range ls {
			if err := mid.AddRawLink("", &format.Link{Cid: l.Cid(), Size: uint64(len(l.RawData()))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := root.AddNodeLink("", mid); err != nil {
			t.Fatal(err)
		}
		d.mids = append(d.mids, mid)
		d.leaves = append(d.leaves, ls)
	}
	d.root = root.Cid()
	d.all = append(append([]blockformat.Block{root}, d.mids...), flatten(d.leaves)...)
	return d
}

func flatten(ls [][]blockformat.Block) []blockformat.Block {
	var out []blockformat.Block
	for _, l := range ls {
		out = append(out, l...)
	}
	return out
}

func (e *env) put(t *testing.T, bs ...blockformat.Block) {
	t.Helper()
	if err := e.store.PutMany(t.Context(), bs); err != nil {
		t.Fatal(err)
	}
}

// wantHeld checks which of bs the store has.
func (e *env) wantHeld(t *testing.T, what string, want bool, bs ...blockformat.Block) {
	t.Helper()
	for _, b := range bs {
		has, err := e.store.Has(t.Context(), b.Cid())
		if err != nil {
			t.Fatal(err)
		}
		if has != want {
			t.Errorf("%s: Has(%s) = %v, want %v", what, b.Cid(), has, want)
		}
	}
}

func (e *env) gc(t *testing.T) GCStats {
	t.Helper()
	st, err := e.pins.GC(t.Context())
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	return st
}

func size(bs []blockformat.Block) (n int64) {
	for _, b := range bs {
		n += int64(len(b.RawData()))
	}
	return n
}

func TestPinReasons(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	e.pins.WithClock(func() time.Time { return now })
	a, b := e.newDAG(t, 1, 10).root, blocks.NewBlock([]byte("b")).Cid()
	for _, r := range []string{"manual", "file:2", "file:1", "manual"} {
		if err := e.pins.Pin(ctx, a, r); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Hour)
	if err := e.pins.Pin(ctx, b, "fetch"); err != nil {
		t.Fatal(err)
	}
	if err := e.pins.Pin(ctx, a, "late"); err != nil {
		t.Fatal(err)
	}
	want := []Pin{
		{Root: a, Reasons: []string{"file:1", "file:2", "late", "manual"}, Since: now.Add(-time.Hour)},
		{Root: b, Reasons: []string{"fetch"}, Since: now},
	}
	got, err := e.pins.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(cid.Cid.Equals)); diff != "" {
		t.Fatalf("List (-want +got):\n%s", diff)
	}
	for _, r := range []string{"file:1", "absent", "file:2", "late"} {
		if err := e.pins.Unpin(ctx, a, r); err != nil {
			t.Fatal(err)
		}
	}
	if p, ok, err := e.pins.Get(ctx, a); err != nil || !ok || !cmp.Equal(p.Reasons, []string{"manual"}) {
		t.Fatalf("Get = %+v, %v, %v; want the reason manual left", p, ok, err)
	}
	if err := e.pins.Unpin(ctx, a, "manual"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.pins.Get(ctx, a); err != nil || ok {
		t.Fatalf("Get after the last Unpin = %v, %v; want no pin", ok, err)
	}
	if err := e.pins.Unpin(ctx, a, "manual"); err != nil {
		t.Fatalf("Unpin of no pin: %v", err)
	}
	if got, _ := e.pins.List(ctx); len(got) != 1 {
		t.Fatalf("List = %v, want b's pin only", got)
	}
}

func TestPinRefusesBadPins(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	raw := blocks.NewBlock([]byte("x")).Cid()
	cbor, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte("entry"))
	for _, tt := range []struct {
		name   string
		root   cid.Cid
		reason string
	}{
		{"undefined root", cid.Undef, "manual"},
		{"chain entry", cbor, "manual"},
		{"empty reason", raw, ""},
		{"long reason", raw, strings.Repeat("r", MaxReasonLen+1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.pins.Pin(ctx, tt.root, tt.reason); !errors.Is(err, ErrPin) {
				t.Errorf("Pin = %v, want ErrPin", err)
			}
		})
	}
	t.Run("too many reasons", func(t *testing.T) {
		for i := range MaxReasons {
			if err := e.pins.Pin(ctx, raw, fmt.Sprint("file:", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.pins.Pin(ctx, raw, "one more"); !errors.Is(err, ErrPin) {
			t.Errorf("Pin past MaxReasons = %v, want ErrPin", err)
		}
		if err := e.pins.Pin(ctx, raw, "file:7"); err != nil {
			t.Errorf("Pin of a reason already there = %v, want nil", err)
		}
	})
}

// The GC keeps every block a pinned root reaches (a leaf shared with an
// unpinned blob too), deletes the rest of the blob blocks, and leaves the
// chain's blocks alone.
func TestGCKeepsPinnedDeletesRest(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	shared := blocks.NewBlock([]byte("a leaf in both blobs"))
	a := e.newDAG(t, 3, 1000, shared)
	b := e.newDAG(t, 2, 3000, shared)
	loose := blocks.NewBlock([]byte("a block of no blob"))
	entry, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum([]byte("entry"))
	entryBlock, _ := blockformat.NewBlockWithCid([]byte("entry"), entry)
	e.put(t, a.all...)
	e.put(t, b.all...)
	e.put(t, loose, entryBlock)
	if err := e.pins.Pin(ctx, a.root, "manual"); err != nil {
		t.Fatal(err)
	}
	st := e.gc(t)
	gone := []blockformat.Block{loose} // and all of b but the shared leaf
	for _, blk := range b.all {
		if !blk.Cid().Equals(shared.Cid()) {
			gone = append(gone, blk)
		}
	}
	if want := (GCStats{Deleted: int64(len(gone)), Kept: int64(len(a.all)), Freed: size(gone), Took: st.Took}); !reflect.DeepEqual(st, want) {
		t.Errorf("GC = %+v, want %+v", st, want)
	}
	e.wantHeld(t, "pinned", true, a.all...)
	e.wantHeld(t, "unpinned", false, gone...)
	e.wantHeld(t, "chain entry", true, entryBlock)
	if u, err := e.store.Usage(ctx); err != nil || u != (blocks.Usage{Blocks: int64(len(a.all)), Bytes: size(a.all)}) {
		t.Errorf("Usage = %+v, %v; want a's blocks", u, err)
	}
	if err := e.pins.Unpin(ctx, a.root, "manual"); err != nil {
		t.Fatal(err)
	}
	if st := e.gc(t); st.Deleted != int64(len(a.all)) || st.Kept != 0 {
		t.Errorf("GC after Unpin = %+v, want all of a deleted", st)
	}
	e.wantHeld(t, "chain entry", true, entryBlock)
}

// A pinned root whose DAG is held in part keeps what it has: every block
// reachable through held blocks; nothing missing is fetched.
func TestGCPartialDAG(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d := e.newDAG(t, 3, 500)
	held := []blockformat.Block{d.all[0], d.mids[0], d.mids[2], d.leaves[0][1], d.leaves[2][0], d.leaves[2][2]}
	e.put(t, held...)
	orphan := d.leaves[1][0] // under mids[1], which is not held: unreachable
	e.put(t, orphan)
	if err := e.pins.Pin(ctx, d.root, "fetch"); err != nil {
		t.Fatal(err)
	}
	if st := e.gc(t); st.Deleted != 1 || st.Kept != int64(len(held)) {
		t.Errorf("GC = %+v, want the orphan leaf deleted and %d kept", st, len(held))
	}
	e.wantHeld(t, "partial DAG", true, held...)
	e.wantHeld(t, "orphan", false, orphan)
}

// An import writing through a Holding while collections run loses
// nothing; once its root is pinned and the holds released, the blocks
// stay; unpinned, they go.
func TestGCDuringImportKeepsHeldBlocks(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d := e.newDAG(t, 6, 2000)
	h := e.pins.Holding(e.store)
	done := make(chan error, 1)
	go func() {
		// Leaves first, root last, as an import writes them.
		for i := len(d.all); i > 0; i -= 5 {
			if err := h.PutMany(ctx, append([]blockformat.Block(nil), d.all[max(0, i-5):i]...)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var gcs sync.WaitGroup
	for range 3 {
		gcs.Go(func() {
			if _, err := e.pins.GC(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	gcs.Wait()
	e.wantHeld(t, "held during import", true, d.all...)
	if err := e.pins.Pin(ctx, d.root, "manual"); err != nil {
		t.Fatal(err)
	}
	h.Release()
	h.Release()
	e.gc(t)
	e.wantHeld(t, "pinned", true, d.all...)
	if err := e.pins.Unpin(ctx, d.root, "manual"); err != nil {
		t.Fatal(err)
	}
	e.gc(t)
	e.wantHeld(t, "unpinned", false, d.all...)
}

// Holds are counted, and a release is idempotent.
func TestHoldCounts(t *testing.T) {
	e := newEnv(t)
	b := blocks.NewBlock([]byte("held"))
	e.put(t, b)
	r1 := e.pins.Hold(b.Cid())
	r2 := e.pins.Hold(b.Cid(), b.Cid())
	r1()
	r1()
	e.gc(t)
	e.wantHeld(t, "held by r2", true, b)
	r2()
	e.gc(t)
	e.wantHeld(t, "released", false, b)
}

// A root pinned while a collection sweeps keeps its blocks: the sweep
// marks from it before it deletes anything more.
func TestPinDuringSweep(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d := e.newDAG(t, 2, 100)
	e.put(t, d.all...)
	// A collection whose mark found no pin has begun; the root is pinned
	// before the sweep's next batch.
	e.pins.mu.Lock()
	e.pins.gcRunning, e.pins.late = true, make(map[cid.Cid]bool)
	e.pins.mu.Unlock()
	if err := e.pins.Pin(ctx, d.root, "manual"); err != nil {
		t.Fatal(err)
	}
	var batch []cand
	for _, b := range d.all {
		batch = append(batch, cand{b.Cid(), len(b.RawData())})
	}
	deleted, _, kept, _, err := e.pins.sweep(ctx, batch, map[string]struct{}{})
	if err != nil || deleted != 0 || kept != int64(len(d.all)) {
		t.Fatalf("sweep = %d deleted, %d kept, %v; want none deleted", deleted, kept, err)
	}
	e.wantHeld(t, "pinned during the sweep", true, d.all...)
}

// A cancelled collection deletes nothing, and one waiting for another
// ends with its context.
func TestGCCancelled(t *testing.T) {
	e := newEnv(t)
	d := e.newDAG(t, 2, 100)
	e.put(t, d.all...)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.pins.GC(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("GC(cancelled) = %v, want context.Canceled", err)
	}
	e.pins.gc <- struct{}{} // a collection under way
	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := e.pins.GC(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GC waiting = %v, want context.DeadlineExceeded", err)
	}
	<-e.pins.gc
	e.wantHeld(t, "after cancelled collections", true, d.all...)
}

func TestOverBudget(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d := e.newDAG(t, 2, 1000)
	e.put(t, d.all...)
	total := size(d.all)
	for _, tt := range []struct {
		budget int64
		over   bool
	}{{0, false}, {total, false}, {total - 1, true}, {-1, false}} {
		over, u, err := e.pins.OverBudget(ctx, tt.budget)
		if err != nil || over != tt.over || u.Bytes != total || u.Blocks != int64(len(d.all)) {
			t.Errorf("OverBudget(%d) = %v, %+v, %v; want %v with %d bytes", tt.budget, over, u, err, tt.over, total)
		}
	}
}

// stopAfter is a context whose Err reports it cancelled from its n-th
// call on: a collection stopped at every point where it looks.
type stopAfter struct {
	context.Context
	n int
}

func (c *stopAfter) Err() error {
	if c.n--; c.n <= 0 {
		return context.Canceled
	}
	return nil
}

// A collection stopped anywhere deletes nothing a pinned root reaches nor
// anything held; run again, it finishes the job.
func TestGCInterruptedDeletesNothingWrongly(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	pinned := e.newDAG(t, 4, 100)
	loose := e.newDAG(t, 4, 100)
	held := blocks.NewBlock([]byte("held"))
	e.put(t, pinned.all...)
	e.put(t, loose.all...)
	e.put(t, held)
	if err := e.pins.Pin(ctx, pinned.root, "manual"); err != nil {
		t.Fatal(err)
	}
	defer e.pins.Hold(held.Cid())()
	defer func(n int) { sweepBatch = n }(sweepBatch)
	sweepBatch = 3
	var deleted int64
	midSweep := false
	for n := 1; ; n++ {
		st, err := e.pins.GC(&stopAfter{ctx, n})
		deleted += st.Deleted
		midSweep = midSweep || (err != nil && st.Deleted > 0)
		e.wantHeld(t, fmt.Sprintf("stopped at %d", n), true, append([]blockformat.Block{held}, pinned.all...)...)
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("GC stopped at %d: %v", n, err)
		}
	}
	e.wantHeld(t, "loose", false, loose.all...)
	if !midSweep {
		t.Error("no collection was stopped in the middle of its sweep")
	}
	if deleted != int64(len(loose.all)) {
		t.Errorf("the collections deleted %d blocks in all, want %d", deleted, len(loose.all))
	}
}

// storeGetter gets blocks from a store (a fetch that finds them there).
type storeGetter struct{ s *blocks.Store }

func (g storeGetter) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	out := make([]blockformat.Block, len(cs))
	for i, c := range cs {
		b, err := g.s.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// What a fetch gets through a Holding's Getter stays until Release.
func TestHoldingGetter(t *testing.T) {
	e := newEnv(t)
	d := e.newDAG(t, 2, 100)
	e.put(t, d.all...)
	h := e.pins.Holding(nil)
	cs := []cid.Cid{d.all[0].Cid(), d.all[1].Cid()}
	got, err := h.Getter(storeGetter{e.store}).GetBlocks(t.Context(), cs)
	if err != nil || len(got) != 2 {
		t.Fatalf("GetBlocks = %d blocks, %v", len(got), err)
	}
	e.gc(t)
	e.wantHeld(t, "got through the Holding", true, d.all[:2]...)
	e.wantHeld(t, "not asked for", false, d.all[2:]...)
	h.Release()
	e.gc(t)
	e.wantHeld(t, "released", false, d.all[:2]...)
}
