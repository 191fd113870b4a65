package replica

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	mh "github.com/multiformats/go-multihash"
)

// FuzzReadIndex: readIndex, which a removal's cut reads the stored index
// with, takes any records under the prefix: it returns the CIDs of a
// contiguous index, or an error, never a panic. The input is records
// separated by 0xff; a record starting with 0xfe is stored one slot late
// (a hole in the index).
func FuzzReadIndex(f *testing.F) {
	h, _ := mh.Sum([]byte("entry"), mh.SHA2_256, -1)
	c := cid.NewCidV1(cid.DagCBOR, h).Bytes()
	f.Add(c)
	f.Add(bytes.Join([][]byte{c, c, c}, []byte{0xff}))
	f.Add(append([]byte{0xfe}, c...))
	f.Add([]byte("not a cid"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := t.Context()
		d := dssync.MutexWrap(ds.NewMapDatastore())
		prefix := ds.NewKey("/chain/cell/a")
		records := bytes.Split(in, []byte{0xff})
		slot := uint64(0)
		for _, rec := range records {
			if len(rec) > 0 && rec[0] == 0xfe {
				slot++
				rec = rec[1:]
			}
			if err := d.Put(ctx, indexKey(prefix, slot), rec); err != nil {
				t.Fatal(err)
			}
			slot++
		}
		got, err := readIndex(ctx, d, prefix)
		if err != nil {
			if got != nil {
				t.Fatalf("readIndex returned %d CIDs with error %v", len(got), err)
			}
			if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
				t.Fatal(err)
			}
			return
		}
		if len(got) != len(records) || slot != uint64(len(records)) {
			t.Fatalf("readIndex accepted %d CIDs from %d records over %d slots", len(got), len(records), slot)
		}
		for i, c := range got {
			if !bytes.Equal(c.Bytes(), records[i]) {
				t.Fatalf("CID %d is %x, stored %x", i, c.Bytes(), records[i])
			}
		}
	})
}
