package ratchet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func guardKey(i int) [32]byte {
	var k [32]byte
	binary.BigEndian.PutUint64(k[:], uint64(i)+1)
	return k
}

// The guard remembers ReplayCapacity keys per signed prekey, forgetting
// the oldest first, and ReplaySets signed prekeys, forgetting the oldest
// set first.
func TestReplayGuardBounds(t *testing.T) {
	var g ReplayGuard
	for i := range ReplayCapacity {
		g.Add(1, guardKey(i))
	}
	g.Add(1, guardKey(0)) // already there: nothing forgotten
	if !g.Seen(1, guardKey(0)) || g.Len(1) != ReplayCapacity {
		t.Fatalf("full: %d keys, key 0 seen %v", g.Len(1), g.Seen(1, guardKey(0)))
	}
	if g.Seen(2, guardKey(0)) {
		t.Fatal("a key is seen under another signed prekey")
	}
	g.Add(1, guardKey(ReplayCapacity))
	if g.Seen(1, guardKey(0)) || !g.Seen(1, guardKey(1)) || !g.Seen(1, guardKey(ReplayCapacity)) || g.Len(1) != ReplayCapacity {
		t.Fatal("the oldest key was not the one forgotten")
	}
	g.Add(2, guardKey(0))
	g.Add(3, guardKey(0))
	if g.Len(1) != 0 || !g.Seen(2, guardKey(0)) || !g.Seen(3, guardKey(0)) {
		t.Fatal("the oldest set was not the one forgotten")
	}
	g.Keep(3, 7)
	if g.Seen(2, guardKey(0)) || !g.Seen(3, guardKey(0)) {
		t.Fatal("Keep kept the wrong sets")
	}
}

// A guard survives its encoding, full, and its size is what the constant
// says.
func TestReplayGuardEncoding(t *testing.T) {
	var g ReplayGuard
	for i := range ReplayCapacity + 5 {
		g.Add(1, guardKey(i))
		g.Add(2, guardKey(-i-10))
	}
	wire := hsMarshal(t, &g)
	if len(wire) != MaxReplayGuardSize {
		t.Errorf("full: %d bytes, want %d", len(wire), MaxReplayGuardSize)
	}
	var h ReplayGuard
	if err := h.UnmarshalBinary(wire); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hsMarshal(t, &h), wire) || !h.Seen(1, guardKey(ReplayCapacity+4)) || h.Seen(1, guardKey(4)) {
		t.Fatal("the guard changed through its encoding")
	}
	h.Add(1, guardKey(1<<20)) // the restored order: this forgets key 5
	if h.Seen(1, guardKey(5)) || !h.Seen(1, guardKey(6)) {
		t.Fatal("the restored guard lost its order")
	}
	var empty ReplayGuard
	if w := hsMarshal(t, &empty); !bytes.Equal(w, []byte{1, 0}) {
		t.Errorf("empty guard %x, want 0100", w)
	}
}

func TestReplayGuardCorrupt(t *testing.T) {
	var g ReplayGuard
	g.Add(1, guardKey(0))
	g.Add(1, guardKey(1))
	wire := hsMarshal(t, &g)
	twice := bytes.Clone(wire)
	copy(twice[2+6+32:], twice[2+6:2+6+32])
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version", append([]byte{2}, wire[1:]...)},
		{"too many sets", append([]byte{1, ReplaySets + 1}, wire[2:]...)},
		{"truncated", wire[:len(wire)-1]},
		{"trailing", append(bytes.Clone(wire), 0)},
		{"key twice", twice},
		{"set twice", append([]byte{1, 2}, append(bytes.Clone(wire[2:]), wire[2:]...)...)},
		{"count over capacity", append([]byte{1, 1, 0, 0, 0, 1, 0xFF, 0xFF}, make([]byte, 32)...)},
	} {
		h := g.clone()
		if err := h.UnmarshalBinary(tc.data); !errors.Is(err, ErrCorruptReplayGuard) {
			t.Errorf("%s: got %v", tc.name, err)
		}
		if !bytes.Equal(hsMarshal(t, &h), wire) {
			t.Errorf("%s: a failed decoding changed the guard", tc.name)
		}
	}
}

func FuzzReplayGuard(f *testing.F) {
	var g ReplayGuard
	f.Add(hsMarshal(f, &g))
	g.Add(1, guardKey(0))
	g.Add(1, guardKey(1))
	g.Add(2, guardKey(0))
	f.Add(hsMarshal(f, &g))
	f.Fuzz(func(t *testing.T, data []byte) {
		var g ReplayGuard
		if err := g.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorruptReplayGuard) {
				t.Fatalf("error %v is not ErrCorruptReplayGuard", err)
			}
			return
		}
		if !bytes.Equal(hsMarshal(t, &g), data) {
			t.Fatal("a decoded guard encodes to other bytes")
		}
	})
}

func FuzzInitialHeader(f *testing.F) {
	a, b := newHSDevice(f, "a", 0, hsNow), newHSDevice(f, "b", 1, hsNow)
	r := hsRand(f, "initiator")
	for _, pq := range []bool{false, true} {
		bundle := b.bundle(f, 1)
		var enc *Encapsulation
		if pq {
			enc = testEncapsulate(f, r, bundle)
		}
		_, _, h, err := InitiateSecret(&Exopeer, r, a.signer, a.keys, bundle, enc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(hsMarshal(f, h), "message"...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, rest, err := ParseInitialHeader(data)
		if err != nil {
			if err != ErrRefused {
				t.Fatalf("error %v is not ErrRefused", err)
			}
			return
		}
		if got := append(hsMarshal(t, h), rest...); !bytes.Equal(got, data) {
			t.Fatal("a parsed header encodes to other bytes")
		}
	})
}
