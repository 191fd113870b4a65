package blob

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
)

// checkSameAsBoxo imports data with o and checks that boxo's balanced
// layout over the same leaves (the ciphertext when sealed) makes the same
// blocks, byte for byte, and the same root.
func checkSameAsBoxo(t *testing.T, data []byte, o ImportOptions) Imported {
	t.Helper()
	st := newMemBlocks()
	im, err := Import(t.Context(), bytes.NewReader(data), st, o)
	if err != nil {
		t.Fatalf("import of %d bytes: %v", len(data), err)
	}
	if im.Size != int64(len(data)) || im.Blocks != st.len() {
		t.Fatalf("import of %d bytes: size %d, %d blocks (%d stored)", len(data), im.Size, im.Blocks, st.len())
	}
	stream, leaf := data, o.leafPlain()
	if !o.Public {
		stream = seal(im.Cap.Key, infoPayload, data)
		leaf = leaf / SegmentSize * SealedSegmentSize
	}
	root, want, err := boxoImport(stream, leaf)
	if err != nil {
		t.Fatal(err)
	}
	if root != im.Cap.Root {
		t.Fatalf("%d bytes in leaves of %d: root %s, boxo %s", len(data), leaf, im.Cap.Root, root)
	}
	if len(want) != st.len() {
		t.Fatalf("%d bytes: %d blocks, boxo %d", len(data), st.len(), len(want))
	}
	var bytesAll int64
	for c, b := range st.m {
		if w, ok := want[string(c.Hash())]; !ok || !bytes.Equal(w, b.RawData()) {
			t.Fatalf("%d bytes: block %s is not boxo's", len(data), c)
		}
		bytesAll += int64(len(b.RawData()))
	}
	if bytesAll != im.Bytes {
		t.Fatalf("Bytes %d, blocks hold %d", im.Bytes, bytesAll)
	}
	return im
}

func TestImportSameAsBoxo(t *testing.T) {
	const seed = 12
	k := Key{1, 2, 3}
	const small = 4 // bytes per public leaf
	for _, tc := range []struct {
		name string
		size int
		o    ImportOptions
	}{
		{"public empty", 0, ImportOptions{Public: true}},
		{"public 1", 1, ImportOptions{Public: true}},
		{"public leaf-1", PublicLeafSize - 1, ImportOptions{Public: true}},
		{"public leaf", PublicLeafSize, ImportOptions{Public: true}},
		{"public leaf+1", PublicLeafSize + 1, ImportOptions{Public: true}},
		{"public 5 leaves+3", 5*PublicLeafSize + 3, ImportOptions{Public: true, Workers: 3}},
		{"small 173 leaves", 173 * small, ImportOptions{Public: true, leaf: small}},
		{"small 174 leaves", 174 * small, ImportOptions{Public: true, leaf: small}},
		{"small 175 leaves", 175 * small, ImportOptions{Public: true, leaf: small}},
		{"small 174 leaves+1", 174*small + 1, ImportOptions{Public: true, leaf: small}},
		{"small 174*174-1 leaves", 174*174*small - small, ImportOptions{Public: true, leaf: small}},
		{"small 174*174 leaves", 174 * 174 * small, ImportOptions{Public: true, leaf: small}},
		{"small 174*174+1 leaves", 174*174*small + 1, ImportOptions{Public: true, leaf: small}},
		{"small 174*174+175 leaves", (174*174+175)*small - 2, ImportOptions{Public: true, leaf: small}},
		{"sealed empty", 0, ImportOptions{Key: &k}},
		{"sealed 1", 1, ImportOptions{Key: &k}},
		{"sealed segment-1", SegmentSize - 1, ImportOptions{Key: &k}},
		{"sealed leaf-1", 16*SegmentSize - 1, ImportOptions{Key: &k}},
		{"sealed leaf", 16 * SegmentSize, ImportOptions{Key: &k}},
		{"sealed leaf+1", 16*SegmentSize + 1, ImportOptions{Key: &k}},
		{"sealed 3 leaves+7", 3*16*SegmentSize + 7, ImportOptions{Key: &k, Workers: 5}},
		{"sealed 1-segment leaves 174", 174 * SegmentSize, ImportOptions{Key: &k, leaf: SegmentSize}},
		{"sealed 1-segment leaves 175", 174*SegmentSize + 1, ImportOptions{Key: &k, leaf: SegmentSize}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkSameAsBoxo(t, randomBytes(seed, tc.size), tc.o)
		})
	}
}

func TestImportProgressInOrder(t *testing.T) {
	data := randomBytes(3, 7*16*SegmentSize+5)
	var seen []int64
	o := ImportOptions{Workers: 4, Progress: func(n int64) { seen = append(seen, n) }}
	im, err := Import(t.Context(), bytes.NewReader(data), newMemBlocks(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 8 || seen[len(seen)-1] != im.Size {
		t.Fatalf("progress %v for %d bytes", seen, im.Size)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] != int64(i+1)*16*SegmentSize && i != len(seen)-1 {
			t.Fatalf("progress %v not in order", seen)
		}
	}
}

func TestImportKeys(t *testing.T) {
	data := randomBytes(4, 2*hashChunk+100)
	secret := []byte("the cell's blob secret")
	if _, err := Import(t.Context(), bytes.NewReader(data), newMemBlocks(), ImportOptions{Secret: secret}); !errors.Is(err, ErrNeedSize) {
		t.Fatalf("Import with a secret: %v, want ErrNeedSize", err)
	}
	a, err := ImportFile(t.Context(), bytes.NewReader(data), int64(len(data)), newMemBlocks(), ImportOptions{Secret: secret, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ImportFile(t.Context(), bytes.NewReader(data), int64(len(data)), newMemBlocks(), ImportOptions{Secret: secret, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if a.Cap != b.Cap {
		t.Fatalf("the same content under the same secret: %s and %s", a.Cap, b.Cap)
	}
	h, err := HashContent(t.Context(), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Cap.Key != DeriveKey(secret, h) {
		t.Fatal("the key is not DeriveKey(secret, HashContent)")
	}
	c, err := ImportFile(t.Context(), bytes.NewReader(data), int64(len(data)), newMemBlocks(), ImportOptions{Secret: []byte("another cell")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Cap.Root == a.Cap.Root || c.Cap.Key == a.Cap.Key {
		t.Fatal("another secret gave the same blob")
	}
	r1, err := Import(t.Context(), bytes.NewReader(data), newMemBlocks(), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Import(t.Context(), bytes.NewReader(data), newMemBlocks(), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Cap.Key == r2.Cap.Key || r1.Cap.Root == r2.Cap.Root {
		t.Fatal("two random keys are the same")
	}
	if r1.Cap.Root.Type() != cid.DagProtobuf || r1.Cap.Public || a.Cap.Public {
		t.Fatalf("capability %+v", r1.Cap)
	}
}

// TestContentHash freezes the tree hash for fixed inputs, computed by the
// definition (one SHA-256 over the prefix, the size and the chunks' sums).
func TestContentHash(t *testing.T) {
	for _, n := range []int{0, 1, hashChunk, hashChunk + 1, 3*hashChunk - 5} {
		data := randomBytes(5, n)
		var want bytes.Buffer
		want.WriteString("exopeer blob content v1")
		want.Write([]byte{0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		for off := 0; off < n; off += hashChunk {
			s := sha256Sum(data[off:min(n, off+hashChunk)])
			want.Write(s[:])
		}
		w := sha256Sum(want.Bytes())
		for _, workers := range []int{1, 4} {
			got, err := hashContent(t.Context(), bytes.NewReader(data), int64(n), workers, nil, nil)
			if err != nil || got != ContentHash(w) {
				t.Fatalf("%d bytes, %d workers: %x, %v; want %x", n, workers, got, err, w)
			}
		}
	}
}
