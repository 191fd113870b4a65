package cell

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/exopeer/exopeer/cell/core"
)

// TestStoredInvites: invites are stored and read back; one that does not
// decode, or sits under another nameplate's name, is reported with its
// record's name and left as it is.
func TestStoredInvites(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	st := newStore(d)
	now := time.Unix(1_800_000_000, 0)
	inv := core.NewInvite(Code{Nameplate: 42, Words: [3]uint16{1, 2, 3}}, RoleChain, now)
	if err := st.putInvite(ctx, inv); err != nil {
		t.Fatal(err)
	}
	got, err := st.loadInvites(ctx)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Encode(), inv.Encode()) {
		t.Fatalf("loaded %v, %v", got, err)
	}
	if err := st.deleteInvite(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if got, err := st.loadInvites(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after delete: %v, %v", got, err)
	}
	for _, tc := range []struct {
		name, key string
		value     []byte
	}{
		{"junk", "/cell/invites/0001", []byte("EXI1junk")},
		{"misplaced", "/cell/invites/0001", inv.Encode()},
	} {
		k := ds.NewKey(tc.key)
		if err := d.Put(ctx, k, tc.value); err != nil {
			t.Fatal(err)
		}
		_, err := st.loadInvites(ctx)
		if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v, want ErrCorruptState naming %s", tc.name, err, tc.key)
		}
		if b, err := d.Get(ctx, k); err != nil || !bytes.Equal(b, tc.value) {
			t.Errorf("%s: the record was changed: %x, %v", tc.name, b, err)
		}
		_ = d.Delete(ctx, k)
	}
}
