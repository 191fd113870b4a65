package peer

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/prekey"
)

// TestNodePrekeys: a node runs the part "prekeys": its bundle is signed by
// the node's key, with the configured number of one-time prekeys, and is
// stored in the node's datastore; another node connected to it fetches
// it directly. A corrupt stored prekey state stops Start, naming the
// part and the key, after the parts before it started, and closes the
// node.
func TestNodePrekeys(t *testing.T) {
	t.Run("running", func(t *testing.T) {
		opts := loopbackOptions(t, 21)
		opts.Prekeys = prekey.Config{OneTime: 10}
		a := startNode(t, opts)
		b := startNode(t, loopbackOptions(t, 22, a.Host().Peerstore().PeerInfo(a.ID())))
		mine := a.Prekeys().Bundle()
		if mine == nil || len(mine.OneTime) != 10 {
			t.Fatalf("bundle %v", mine)
		}
		if !bytes.Equal(mine.SigningKey[:], testKey(21).Public().(ed25519.PublicKey)) {
			t.Fatal("the bundle is not signed by the node's key")
		}
		if v, err := opts.Datastore.Get(t.Context(), prekey.StateKey); err != nil || len(v) == 0 {
			t.Fatalf("state not stored: %v", err)
		}
		got, err := b.Prekeys().Fetch(t.Context(), a.ID())
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := got.MarshalBinary()
		want, _ := mine.MarshalBinary()
		if !bytes.Equal(enc, want) {
			t.Fatal("fetched another bundle")
		}
		if st := b.Prekeys().Stats(); st.Direct != 1 {
			t.Fatalf("stats %+v, want a direct fetch", st)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		opts := loopbackOptions(t, 23)
		if err := opts.Datastore.Put(t.Context(), prekey.StateKey, []byte("not a state")); err != nil {
			t.Fatal(err)
		}
		n, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		err = n.Start(t.Context())
		if !errors.Is(err, prekey.ErrCorruptState) || !strings.HasPrefix(err.Error(), "peer: start prekeys: ") ||
			!strings.Contains(err.Error(), prekey.StateKey.String()) {
			t.Fatalf("Start = %v, want the prekeys' failure, naming the part and the key", err)
		}
		if addrs := n.Host().Network().ListenAddresses(); len(addrs) != 0 {
			t.Errorf("the host still listens on %v after a failed Start", addrs)
		}
		if err := n.Close(); err != nil {
			t.Errorf("Close after a failed Start: %v", err)
		}
	})
}

// TestPrekeysForkedLast: the prekeys' random stream is forked after every
// other part's, so that adding it changed no stream a seed gave before:
// the i-th fork is keyed by the i-th 32 bytes of Options.Rand.
func TestPrekeysForkedLast(t *testing.T) {
	seed := make([]byte, 256)
	for i := range seed {
		seed[i] = byte(3 * i)
	}
	in, err := Options{Rand: bytes.NewReader(seed)}.inputs()
	if err != nil {
		t.Fatal(err)
	}
	for i, part := range []struct {
		name string
		r    io.Reader
	}{
		{"discovery", in.disc.Rand}, {"cell", in.cellRand}, {"chain", in.chain.Rand},
		{"store", in.store.Rand}, {"blobs", in.blobs.Rand}, {"prekeys", in.prekeys.Rand},
	} {
		want, err := ambient.Fork(bytes.NewReader(seed[32*i:]), part.name)
		if err != nil {
			t.Fatal(err)
		}
		a, b := make([]byte, 32), make([]byte, 32)
		if _, err := io.ReadFull(part.r, a); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(want, b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s is not fork %d", part.name, i)
		}
	}
}
