package blocks

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
)

var readAt1G = flag.Bool("blocks.readat1g", false, "TestReadAtRemoteFetchesOnlyTheRange: also the 1 GiB blob (a minute or more)")

// seededBlob is the plaintext of the test blobs: ChaCha8 from a seed.
func seededBlob(seed uint64, size int64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return io.LimitReader(rand.NewChaCha8(s), size)
}

// TestReadAtRemoteFetchesOnlyTheRange: 1 MiB read at random offsets of a
// remote encrypted blob, through a Reader on a Session, fetches exactly
// the leaves covering the range and the internal nodes on their path
// (the root came with Open), as the session's OnBlock and Stats count
// them. 64 MiB always (one level under the root); 1 GiB (two levels) with
// -blocks.readat1g.
func TestReadAtRemoteFetchesOnlyTheRange(t *testing.T) {
	sizes := []int64{64 << 20}
	if *readAt1G {
		sizes = append(sizes, 1<<30)
	}
	for _, size := range sizes {
		t.Run(byteSize(size), func(t *testing.T) {
			const seed = 12
			seeder := newNode(t, Config{}, true)
			key := blob.Key{12}
			imp, err := blob.Import(t.Context(), seededBlob(seed, size), seeder.ex, blob.ImportOptions{Key: &key})
			if err != nil {
				t.Fatal(err)
			}
			leafPlain := int64(16 * blob.SegmentSize)
			rng := rand.New(rand.NewPCG(seed, uint64(size)))
			p := make([]byte, 1<<20)
			for i := range 4 {
				// A fresh fetcher each time: nothing held but what this
				// read fetches.
				fetcher := newNode(t, Config{}, true)
				connect(t, fetcher, seeder, "")
				var fetched []cid.Cid
				sess := fetcher.ex.NewSession(t.Context(), SessionOptions{OnBlock: func(_ peer.ID, c cid.Cid, _ int) {
					fetched = append(fetched, c)
				}})
				r, err := blob.Open(t.Context(), sess, imp.Cap, blob.ReaderOptions{Prefetch: -1})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if st := sess.Stats(); st.Blocks != 1 || fetched[0] != imp.Cap.Root {
					t.Fatalf("Open fetched %d blocks %v, want the root only", st.Blocks, fetched)
				}
				off := rng.Int64N(size - int64(len(p)))
				if i == 0 {
					off = size - int64(len(p)) // the last leaf, shorter than the others
				}
				if _, err := r.ReadAt(p, off); err != nil {
					t.Fatalf("ReadAt(%d): %v", off, err)
				}
				r.Close()
				sess.Close()

				// What the read needed, from the seeder's own copy of the DAG.
				first, last := off/leafPlain, (off+int64(len(p))-1)/leafPlain
				want := pathTo(t, seeder.store, imp.Cap.Root, first, last)
				got := map[cid.Cid]bool{}
				for _, c := range fetched[1:] {
					got[c] = true
				}
				t.Logf("1 MiB at %d: leaves %d–%d, %d blocks fetched, %d needed", off, first, last, len(fetched)-1, len(want))
				if len(fetched)-1 != len(want) || !sameSet(got, want) {
					t.Errorf("ReadAt of 1 MiB at %d (leaves %d–%d) fetched %d blocks, want %d: the leaves and the nodes above them (seed %d)",
						off, first, last, len(fetched)-1, len(want), seed)
				}
				if st := sess.Stats(); st.Blocks != int64(len(fetched)) || st.Peers[seeder.host.ID()].Blocks != st.Blocks {
					t.Errorf("Stats %+v disagree with the %d blocks OnBlock saw", st, len(fetched))
				}
				plain := seededBlob(seed, size)
				if _, err := io.CopyN(io.Discard, plain, off); err != nil {
					t.Fatal(err)
				}
				wantBytes := make([]byte, len(p))
				if _, err := io.ReadFull(plain, wantBytes); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p, wantBytes) {
					t.Errorf("ReadAt at %d: wrong bytes (seed %d)", off, seed)
				}
			}
		})
	}
}

// pathTo returns the blocks under root, other than root, that lead to the
// leaves first to last (by index, in order) and those leaves, read from s.
func pathTo(t *testing.T, s *Store, root cid.Cid, first, last int64) map[cid.Cid]bool {
	t.Helper()
	want := map[cid.Cid]bool{}
	var leafIndex int64
	// walk visits the DAG depth first, counting leaves in order, and
	// keeps the leaves in [first, last] and the nodes above them.
	var walk func(c cid.Cid, top bool)
	walk = func(c cid.Cid, top bool) {
		b, err := s.Get(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		links, err := blob.Children(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(links) == 0 {
			if leafIndex >= first && leafIndex <= last {
				want[c] = true
			}
			leafIndex++
			return
		}
		startLeaf := leafIndex
		for _, l := range links {
			walk(l, false)
		}
		if !top && startLeaf <= last && leafIndex-1 >= first {
			want[c] = true
		}
	}
	walk(root, true)
	return want
}

func sameSet(a, b map[cid.Cid]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for c := range a {
		if !b[c] {
			return false
		}
	}
	return true
}

func byteSize(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%dGiB", n>>30)
	}
	return fmt.Sprintf("%dMiB", n>>20)
}
