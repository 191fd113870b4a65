package index

import (
	"testing"

	"github.com/exopeer/exopeer/store"
)

// TestVersionsInFingerprint: a build that does not read a payload version
// skips its entries for good (store.ErrVersion, past the checkpoint), so
// an index made by a build that read version 1 only, and skipped a batch
// (version 2), is emptied by a build that reads batches, which then
// applies it; else that index would never hold the batch's writes, as
// store.State and every other device do. (Until now the schemas' change
// of the same release, exo.message's kept fields, hid it.)
func TestVersionsInFingerprint(t *testing.T) {
	dir := t.TempDir()
	reg := store.NewRegistry()
	ix := openIndex(t, dir, reg)
	f := &feeder{t: t, ix: ix}
	batch, err := store.EncodeBatch([][]byte{
		f.payload(store.PutTrait(eid(1), note("", "one", 1))),
		f.payload(store.PutTrait(eid(2), note("", "two", 1))),
	})
	if err != nil {
		t.Fatal(err)
	}
	// As an older build did: the batch skipped, the checkpoint past it,
	// the fingerprint of a build reading version 1 only.
	// The batch as that build saw it: a version it does not read (3, for
	// this build).
	old := append([]byte{batch[0], 3}, batch[2:]...)
	if skips := f.raw(store.Pos{Clock: 1, Key: "a"}, old); len(skips) != 1 {
		t.Fatalf("skips = %+v, want the unknown version skipped", skips)
	}
	if _, err := ix.wc.ExecContext(t.Context(), `UPDATE meta SET v = ? WHERE k = 'fingerprint'`, fingerprintOf(ix.reg, ix.engine, []byte{store.Version})); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if fingerprint(reg, "e") == fingerprintOf(reg, "e", []byte{store.Version}) {
		t.Fatal("the fingerprint does not say that this build reads batches")
	}
	ix = openIndex(t, dir, reg)
	if !ix.Emptied() {
		t.Fatal("an index made by a build that does not read batches: not emptied, its skipped batches never applied")
	}
	f = &feeder{t: t, ix: ix}
	if skips := f.raw(store.Pos{Clock: 1, Key: "a"}, batch); len(skips) != 0 {
		t.Fatalf("skips = %+v", skips)
	}
	for _, e := range []store.EntityID{eid(1), eid(2)} {
		if _, err := ix.Get(t.Context(), e, nil); err != nil {
			t.Errorf("%s after the rebuild: %v", e, err)
		}
	}
}
