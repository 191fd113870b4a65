package blob

import (
	"bytes"
	"testing"

	car "github.com/ipld/go-car/v2"
)

// TestExportCAR reads the export back with go-car and checks every block:
// the root first, each block of the DAG once, bytes as stored.
func TestExportCAR(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		o    ImportOptions
	}{
		{"one leaf", 10, ImportOptions{Public: true}},
		{"sealed, two levels", 180 * SegmentSize, ImportOptions{leaf: SegmentSize}},
		{"public", 3*PublicLeafSize + 5, ImportOptions{Public: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, im := importBytes(t, randomBytes(50, tc.size), tc.o)
			var buf bytes.Buffer
			n, size, err := ExportCAR(t.Context(), &buf, st, im.Cap.Root)
			if err != nil {
				t.Fatal(err)
			}
			if n != st.len() || size != im.Bytes {
				t.Fatalf("wrote %d blocks of %d bytes, the DAG has %d of %d", n, size, st.len(), im.Bytes)
			}
			br, err := car.NewBlockReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if br.Version != 1 || len(br.Roots) != 1 || br.Roots[0] != im.Cap.Root {
				t.Fatalf("CAR version %d, roots %v", br.Version, br.Roots)
			}
			seen := 0
			for {
				b, err := br.Next()
				if err != nil {
					break
				}
				if seen == 0 && b.Cid() != im.Cap.Root {
					t.Fatalf("first block %s, not the root", b.Cid())
				}
				want, ok := st.m[b.Cid()]
				if !ok || !bytes.Equal(want.RawData(), b.RawData()) {
					t.Fatalf("block %s is not the DAG's", b.Cid())
				}
				if chk, err := b.Cid().Prefix().Sum(b.RawData()); err != nil || chk != b.Cid() {
					t.Fatalf("block %s does not hash to its CID", b.Cid())
				}
				seen++
			}
			if seen != n {
				t.Fatalf("read %d blocks back, wrote %d", seen, n)
			}
		})
	}
}
