package blocks

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/boxo/datastore/dshelp"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

func TestStoreRoundTrip(t *testing.T) {
	for _, kind := range datastoreKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			s := NewStore(newDatastore(t, kind))
			b1 := NewBlock([]byte("hello, exopeer"))
			more := []blockformat.Block{randomBlock(t, 1024), randomBlock(t, 256<<10)}

			if err := s.Put(ctx, b1); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if err := s.Put(ctx, b1); err != nil { // already stored: no-op
				t.Fatalf("Put again: %v", err)
			}
			if err := s.PutMany(ctx, more); err != nil {
				t.Fatalf("PutMany: %v", err)
			}
			wantCount(t, s, 3)

			for _, want := range append(more, b1) {
				got, err := s.Get(ctx, want.Cid())
				if err != nil {
					t.Fatalf("Get(%s): %v", want.Cid(), err)
				}
				if got.Cid() != want.Cid() {
					t.Errorf("Get(%s).Cid() = %s", want.Cid(), got.Cid())
				}
				if diff := cmp.Diff(want.RawData(), got.RawData()); diff != "" {
					t.Errorf("Get(%s) data mismatch (-want +got):\n%s", want.Cid(), diff)
				}
				wantHas(t, s, want.Cid(), true)
			}

			if err := s.Delete(ctx, b1.Cid()); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := s.Delete(ctx, b1.Cid()); err != nil {
				t.Fatalf("Delete of a missing block: %v", err)
			}
			wantHas(t, s, b1.Cid(), false)
			wantCount(t, s, 2)
			got, err := s.Get(ctx, b1.Cid())
			checkNotFound(t, got, err, b1.Cid())
		})
	}
}

func checkNotFound(t *testing.T, got blockformat.Block, err error, c cid.Cid) {
	t.Helper()
	if got != nil {
		t.Errorf("missing block: got a block %v", got)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing block: err = %v, want ErrNotFound", err)
	}
	if !ipld.IsNotFound(err) {
		t.Errorf("missing block: ipld.IsNotFound(%v) = false; bitswap needs true", err)
	}
	var inf ipld.ErrNotFound
	if !errors.As(err, &inf) || inf.Cid != c {
		t.Errorf("missing block: errors.As(ipld.ErrNotFound) gave %v, want Cid %s", inf, c)
	}
	if err != nil && !strings.Contains(err.Error(), c.String()) {
		t.Errorf("missing block: error %q does not name %s", err, c)
	}
}

func wantHas(t *testing.T, s *Store, c cid.Cid, want bool) {
	t.Helper()
	has, err := s.Has(t.Context(), c)
	if err != nil || has != want {
		t.Errorf("Has(%s) = %v, %v; want %v", c, has, err, want)
	}
}

func wantCount(t *testing.T, s *Store, want int) {
	t.Helper()
	n, err := s.Count(t.Context())
	if err != nil || n != want {
		t.Errorf("Count() = %d, %v; want %d", n, err, want)
	}
}

func TestStoreOtherCIDs(t *testing.T) {
	data := []byte("any valid CID is accepted")
	for _, tt := range []struct {
		name   string
		prefix cid.Prefix
	}{
		{"v1 raw sha2-256", rawV1},
		{"v0 dag-pb sha2-256", cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: multihash.SHA2_256, MhLength: -1}},
		{"v1 dag-cbor blake2b-256", cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.BLAKE2B_MIN + 31, MhLength: -1}},
		{"v1 raw sha2-256 truncated to 20 bytes", cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: 20}},
		{"v1 raw identity", cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.IDENTITY, MhLength: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore(newDatastore(t, "memory"))
			c, err := tt.prefix.Sum(data)
			if err != nil {
				t.Fatalf("Sum: %v", err)
			}
			b, err := blockformat.NewBlockWithCid(data, c)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(t.Context(), b); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := s.Get(t.Context(), c)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if diff := cmp.Diff(data, got.RawData()); diff != "" {
				t.Errorf("data mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStorePutRejectsMismatch(t *testing.T) {
	ctx := t.Context()
	good := NewBlock([]byte("good"))
	bad, err := blockformat.NewBlockWithCid([]byte("not what the CID says"), NewBlock([]byte("other")).Cid())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		put  func(*Store) error
	}{
		{"Put", func(s *Store) error { return s.Put(ctx, bad) }},
		{"PutMany", func(s *Store) error { return s.PutMany(ctx, []blockformat.Block{good, bad}) }},
		{"Blockstore().Put", func(s *Store) error { return s.Blockstore().Put(ctx, bad) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore(newDatastore(t, "memory"))
			err := tt.put(s)
			if !errors.Is(err, ErrInvalidBlock) || !strings.Contains(err.Error(), bad.Cid().String()) {
				t.Errorf("err = %v, want ErrInvalidBlock naming %s", err, bad.Cid())
			}
			wantCount(t, s, 0) // nothing stored, not even the good block
		})
	}
}

func TestStoreCorruption(t *testing.T) {
	orig := NewBlock([]byte("the true content of the block"))
	for _, kind := range datastoreKinds {
		for _, tt := range []struct {
			name   string
			stored []byte
		}{
			{"garbage", []byte("garbage written by a faulty disk")},
			{"empty", []byte{}},
			{"truncated", orig.RawData()[:10]},
			{"one bit flipped", flipBit(orig.RawData())},
		} {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				ctx := t.Context()
				root := newDatastore(t, kind)
				s := NewStore(root)
				if err := s.Put(ctx, orig); err != nil {
					t.Fatalf("Put: %v", err)
				}
				d, key := s.where(orig.Cid())
				if err := d.Put(ctx, key, tt.stored); err != nil {
					t.Fatalf("overwriting %s: %v", key, err)
				}
				for name, get := range map[string]func(context.Context, cid.Cid) (blockformat.Block, error){
					"Store.Get":            s.Get,
					"Blockstore().Get":     s.Blockstore().Get,
					"Exchange.Get (local)": mustExchange(t, s).Get,
				} {
					got, err := get(ctx, orig.Cid())
					if got != nil {
						t.Errorf("%s returned a block (%q) for a corrupt record", name, got.RawData())
					}
					if !errors.Is(err, ErrCorrupt) {
						t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
					}
					if err != nil && !strings.Contains(err.Error(), orig.Cid().String()) {
						t.Errorf("%s: error %q does not name the CID", name, err)
					}
				}
			})
		}
	}
}

// mustExchange returns an Exchange on s that is never started (Get only
// reads the store).
func mustExchange(t *testing.T, s *Store) *Exchange {
	ex, err := NewExchange(nil, s, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func flipBit(b []byte) []byte {
	out := append([]byte(nil), b...)
	out[len(out)/2] ^= 0x01
	return out
}

func TestStoreNamespace(t *testing.T) {
	ctx := t.Context()
	root := newDatastore(t, "disk")
	if err := root.Put(ctx, ds.NewKey("/peer/identity"), []byte("not a block")); err != nil {
		t.Fatal(err)
	}
	s := NewStore(root)
	b := NewBlock([]byte("namespaced"))
	entry := cborBlock(t, "a chain entry")
	if err := s.PutMany(ctx, []blockformat.Block{b, entry}); err != nil {
		t.Fatal(err)
	}
	wantCount(t, s, 2)
	// Blob blocks (raw, dag-pb) under /blobs, the chain's under /blocks.
	for _, w := range []struct {
		ns string
		b  blockformat.Block
	}{{"/blobs", b}, {"/blocks", entry}} {
		key := ds.NewKey(w.ns).Child(dshelp.MultihashToDsKey(w.b.Cid().Hash()))
		if has, err := root.Has(ctx, key); err != nil || !has {
			t.Errorf("root datastore Has(%s) = %v, %v; want true", key, has, err)
		}
	}
}

func TestStoreCountCancelled(t *testing.T) {
	s := NewStore(newDatastore(t, "memory"))
	if err := s.Put(t.Context(), NewBlock([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := s.Count(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Count(cancelled) = %d, %v; want context.Canceled", n, err)
	}
}

func TestNewBlockCID(t *testing.T) {
	b := NewBlock([]byte("hello"))
	// Known answer, computed independently of go-cid with Python's hashlib
	// and base64: "b" + lowercase unpadded base32 of
	// 0x01 (CIDv1) 0x55 (raw) 0x12 (sha2-256) 0x20 (32 bytes) sha256("hello").
	const want = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
	if got := b.Cid().String(); got != want {
		t.Errorf("NewBlock(%q).Cid() = %s, want %s", "hello", got, want)
	}
	if p := b.Cid().Prefix(); p.Version != 1 || p.Codec != cid.Raw || p.MhType != multihash.SHA2_256 {
		t.Errorf("prefix = %+v, want CIDv1 raw sha2-256", p)
	}
}

func TestPutManyWithStoresBlocksAndRecordsTogether(t *testing.T) {
	d := dssync.MutexWrap(ds.NewMapDatastore())
	s := NewStore(d)
	ctx := t.Context()
	b1, b2 := NewBlock([]byte("one")), NewBlock([]byte("two"))
	rec := map[ds.Key][]byte{ds.NewKey("/index/1"): b1.Cid().Bytes()}
	if err := s.PutManyWith(ctx, []blockformat.Block{b1, b2}, rec); err != nil {
		t.Fatal(err)
	}
	for _, b := range []blockformat.Block{b1, b2} {
		got, err := s.Get(ctx, b.Cid())
		if err != nil || string(got.RawData()) != string(b.RawData()) {
			t.Fatalf("Get(%s) = %v, %v", b.Cid(), got, err)
		}
	}
	if v, err := d.Get(ctx, ds.NewKey("/index/1")); err != nil || string(v) != string(b1.Cid().Bytes()) {
		t.Fatalf("record = %x, %v", v, err)
	}
	bad := blockformat.NewBlock([]byte("three"))
	forged, _ := blockformat.NewBlockWithCid([]byte("four"), bad.Cid())
	if err := s.PutManyWith(ctx, []blockformat.Block{forged}, map[ds.Key][]byte{ds.NewKey("/index/2"): nil}); !errors.Is(err, ErrInvalidBlock) {
		t.Fatalf("forged block: err = %v, want ErrInvalidBlock", err)
	}
	if ok, _ := d.Has(ctx, ds.NewKey("/index/2")); ok {
		t.Fatal("the record of a refused batch was written")
	}
	if err := s.PutManyWith(ctx, nil, map[ds.Key][]byte{ds.NewKey("/blocks/x"): nil}); err == nil {
		t.Fatal("a record inside /blocks was accepted")
	}
}

// hasCounter counts the lookups (Has) of a datastore.
type hasCounter struct {
	ds.Batching
	n int
}

func (h *hasCounter) Has(ctx context.Context, k ds.Key) (bool, error) {
	h.n++
	return h.Batching.Has(ctx, k)
}

// TestPutNewWith: PutNewWith stores blocks and records as PutManyWith
// does, and does not look the blocks outside the blob store up first (a
// datastore read per block, of no use for a block just made); blob
// blocks are looked up still (their count depends on it).
func TestPutNewWith(t *testing.T) {
	d := &hasCounter{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	s := NewStore(d)
	ctx := t.Context()
	entry := func(data string) blockformat.Block {
		mh, err := multihash.Sum([]byte(data), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := blockformat.NewBlockWithCid([]byte(data), cid.NewCidV1(cid.DagCBOR, mh))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	e1, e2, blob := entry("one"), entry("two"), NewBlock([]byte("a blob's leaf"))
	if err := s.PutManyWith(ctx, []blockformat.Block{e1}, nil); err != nil {
		t.Fatal(err)
	}
	if d.n != 1 {
		t.Fatalf("PutManyWith looked %d blocks up, want 1", d.n)
	}
	d.n = 0
	rec := map[ds.Key][]byte{ds.NewKey("/index/2"): e2.Cid().Bytes()}
	if err := s.PutNewWith(ctx, []blockformat.Block{e2, blob}, rec); err != nil {
		t.Fatal(err)
	}
	if d.n != 1 {
		t.Errorf("PutNewWith looked %d blocks up, want 1 (the blob's)", d.n)
	}
	for _, b := range []blockformat.Block{e2, blob} {
		got, err := s.Get(ctx, b.Cid())
		if err != nil || string(got.RawData()) != string(b.RawData()) {
			t.Fatalf("Get(%s) = %v, %v", b.Cid(), got, err)
		}
	}
	if v, err := d.Get(ctx, ds.NewKey("/index/2")); err != nil || string(v) != string(e2.Cid().Bytes()) {
		t.Fatalf("record = %x, %v", v, err)
	}
	bad := entry("three")
	forged, _ := blockformat.NewBlockWithCid([]byte("four"), bad.Cid())
	if err := s.PutNewWith(ctx, []blockformat.Block{forged}, nil); !errors.Is(err, ErrInvalidBlock) {
		t.Fatalf("forged block: err = %v, want ErrInvalidBlock", err)
	}
}
