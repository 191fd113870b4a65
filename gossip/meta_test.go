package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func mustID(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestMetaRoundTrip(t *testing.T) {
	key := testKey(1, 0)
	id := mustID(t, key)
	tag := testTag(1)
	for _, tt := range []struct {
		name  string
		seq   uint64
		flags byte
		app   []byte
	}{
		{"empty", 0, 0, nil},
		{"roster version", 1764094200123456789, 0, []byte("roster v7")},
		{"leaving", 7, flagLeaving, []byte("x")},
		{"largest", math.MaxUint64, 0, bytes.Repeat([]byte{0xAB}, MaxAppMeta)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeMeta(key, tag, id, tt.seq, tt.flags, tt.app)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > maxMetaSize || len(b) > 512 {
				t.Errorf("encoded metadata has %d bytes, limit %d", len(b), maxMetaSize)
			}
			nm, err := verifyMeta(tag, id, b)
			if err != nil {
				t.Fatalf("verifyMeta: %v", err)
			}
			if diff := cmp.Diff(string(tt.app), string(nm.App)); diff != "" {
				t.Errorf("app metadata (-want +got):\n%s", diff)
			}
			if nm.Seq != tt.seq {
				t.Errorf("sequence number %d, want %d", nm.Seq, tt.seq)
			}
			if nm.leaving() != (tt.flags&flagLeaving != 0) {
				t.Errorf("leaving = %v, flags %#x", nm.leaving(), tt.flags)
			}
		})
	}
	if _, err := encodeMeta(key, tag, id, 1, 0, make([]byte, MaxAppMeta+1)); err == nil {
		t.Error("encodeMeta took app metadata over MaxAppMeta")
	}
}

// TestMetaRejected: every change to the metadata, or checking it as
// another node's or another cell's, fails verification.
func TestMetaRejected(t *testing.T) {
	key := testKey(2, 0)
	id := mustID(t, key)
	other := mustID(t, testKey(2, 1))
	tag := testTag(2)
	good, err := encodeMeta(key, tag, id, 42, 0, []byte("roster v1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		if _, err := verifyMeta(tag, id, bad); !errors.Is(err, ErrBadMeta) {
			t.Errorf("byte %d flipped: verifyMeta = %v, want ErrBadMeta", i, err)
		}
	}
	for _, tt := range []struct {
		name string
		tag  [8]byte
		id   peer.ID
		b    []byte
	}{
		{"other node", tag, other, good},
		{"other cell", testTag(3), id, good},
		{"truncated", tag, id, good[:len(good)-1]},
		{"extended", tag, id, append(bytes.Clone(good), 0)},
		{"empty", tag, id, nil},
		{"peer ID without key", tag, peer.ID("\x12\x20" + strings.Repeat("a", 32)), good},
	} {
		if _, err := verifyMeta(tt.tag, tt.id, tt.b); !errors.Is(err, ErrBadMeta) {
			t.Errorf("%s: verifyMeta = %v, want ErrBadMeta", tt.name, err)
		}
	}
}

// FuzzDecodeMeta: arbitrary bytes never panic the decoder or the
// verifier, and whatever decodes re-encodes to the same bytes.
func FuzzDecodeMeta(f *testing.F) {
	key := testKey(3, 0)
	id := mustID(f, key)
	tag := testTag(3)
	for i, app := range [][]byte{nil, []byte("roster v1"), bytes.Repeat([]byte{7}, MaxAppMeta)} {
		for _, flags := range []byte{0, flagLeaving} {
			b, err := encodeMeta(key, tag, id, uint64(i)<<40|uint64(flags), flags, app)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{metaVersion, 0, 0xFF, 0xFF})
	f.Add([]byte{1, 0, 0, 0}) // version 1: no sequence number
	f.Fuzz(func(t *testing.T, b []byte) {
		nm, err := decodeMeta(b)
		if _, verr := verifyMeta(tag, id, b); verr == nil && err != nil {
			t.Fatalf("verifyMeta accepted what decodeMeta refused: %v", err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("decodeMeta error %v is not ErrBadMeta", err)
			}
			return
		}
		if len(nm.App) > MaxAppMeta || len(nm.Sig) != metaSigSize {
			t.Fatalf("decoded %d app bytes and a %d-byte signature", len(nm.App), len(nm.Sig))
		}
		if again := append(nm.appendBody(nil), nm.Sig...); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, want %x", again, b)
		}
	})
}

// TestSeqTable: older metadata of a node is refused once newer was seen,
// the same again is not, nodes do not interfere, and the table is bounded:
// pruned to the allowed nodes, never above maxSeqs.
func TestSeqTable(t *testing.T) {
	a, b := mustID(t, testKey(4, 0)), mustID(t, testKey(4, 1))
	var st seqTable
	steps := []struct {
		id      peer.ID
		seq     uint64
		wantErr error
	}{
		{a, 10, nil},
		{a, 10, nil}, // the same metadata, gossiped again
		{a, 9, errStaleMeta},
		{b, 3, nil}, // another node's numbers are its own
		{a, 11, nil},
		{a, 10, errStaleMeta},
		{b, 2, errStaleMeta},
	}
	for i, s := range steps {
		if err := st.admit(s.id, s.seq); !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
			t.Errorf("step %d: admit(%s, %d) = %v, want %v", i, s.id.ShortString(), s.seq, err, s.wantErr)
		}
	}
	st.prune(func(id peer.ID) bool { return id == a })
	if n := st.len(); n != 1 {
		t.Errorf("%d nodes after pruning to one", n)
	}
	if err := st.admit(a, 10); !errors.Is(err, errStaleMeta) {
		t.Errorf("a kept node forgot its sequence number: admit = %v", err)
	}
	st.forget(a) // it left or failed: any number is taken again
	if err := st.admit(a, 1); err != nil {
		t.Errorf("a forgotten node refused: %v", err)
	}
	if err := st.admit(a, 11); err != nil {
		t.Errorf("admit after forget: %v", err)
	}
	for i := st.len(); i < maxSeqs; i++ {
		if err := st.admit(peer.ID(fmt.Sprint("node ", i)), 1); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	if err := st.admit(b, 100); !errors.Is(err, errSeqsFull) {
		t.Errorf("admit beyond maxSeqs = %v, want errSeqsFull", err)
	}
	if err := st.admit(a, 12); err != nil {
		t.Errorf("a known node refused when the table is full: %v", err)
	}
	if n := st.len(); n != maxSeqs {
		t.Errorf("%d nodes, bound %d", n, maxSeqs)
	}
}

// BenchmarkAdmitMeta is what NotifyAlive does with a member's metadata:
// verify its signature, then check and record its sequence number, the
// part that refuses replays.
func BenchmarkAdmitMeta(b *testing.B) {
	key := testKey(5, 0)
	id := mustID(b, key)
	tag := testTag(5)
	meta, err := encodeMeta(key, tag, id, 1, 0, []byte("roster v1"))
	if err != nil {
		b.Fatal(err)
	}
	var st seqTable
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := verifyMeta(tag, id, meta); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("admit", func(b *testing.B) {
		for b.Loop() {
			if err := st.admit(id, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
