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

// guardDevice is a test device's identity key (never the legacy one).
func guardDevice(i int) [32]byte {
	var k [32]byte
	k[0] = 0xD0
	binary.BigEndian.PutUint64(k[8:], uint64(i))
	return k
}

// The guard remembers ReplayCapacity keys per device and signed prekey:
// a device's next key makes it forget that device's own oldest key and
// no other device's; and ReplaySets signed prekeys, forgetting the
// oldest set first.
func TestReplayGuardBounds(t *testing.T) {
	var g ReplayGuard
	a, b := guardDevice(1), guardDevice(2)
	g.Add(1, b, guardKey(-1))
	for i := range ReplayCapacity {
		g.Add(1, a, guardKey(i))
	}
	g.Add(1, a, guardKey(0)) // already there: nothing forgotten
	if !g.Seen(1, a, guardKey(0)) || g.Len(1) != ReplayCapacity+1 {
		t.Fatalf("full: %d keys, key 0 seen %v", g.Len(1), g.Seen(1, a, guardKey(0)))
	}
	if g.Seen(2, a, guardKey(0)) || g.Seen(1, b, guardKey(0)) {
		t.Fatal("a key is seen under another signed prekey or for another device")
	}
	g.Add(1, a, guardKey(ReplayCapacity)) // accepted: the device's 65th
	if !g.Seen(1, a, guardKey(ReplayCapacity)) || g.Seen(1, a, guardKey(0)) || !g.Seen(1, a, guardKey(1)) {
		t.Fatal("a device's key past its capacity did not take the place of its own oldest")
	}
	if !g.Seen(1, b, guardKey(-1)) || g.Len(1) != ReplayCapacity+1 {
		t.Fatalf("a device's key past its capacity forgot another device's (%d keys)", g.Len(1))
	}
	g.Add(2, a, guardKey(0))
	g.Add(3, a, guardKey(0))
	if g.Len(1) != 0 || !g.Seen(2, a, guardKey(0)) || !g.Seen(3, a, guardKey(0)) {
		t.Fatal("the oldest set was not the one forgotten")
	}
	g.Keep(3, 7)
	if g.Seen(2, a, guardKey(0)) || !g.Seen(3, a, guardKey(0)) {
		t.Fatal("Keep kept the wrong sets")
	}
}

// TestReplayGuardFloodOfIdentities: ReplayDevices-1 other devices, each
// flooding its own entry past its capacity, make no key of the victim
// forgotten; the next new device makes the guard forget the device whose
// keys were added least recently, which is not the victim once it added
// again.
func TestReplayGuardFloodOfIdentities(t *testing.T) {
	var g ReplayGuard
	victim := guardDevice(0)
	g.Add(1, victim, guardKey(-1))
	for dev := 1; dev < ReplayDevices; dev++ {
		for i := range ReplayCapacity + 3 {
			g.Add(1, guardDevice(dev), guardKey(i))
		}
	}
	if !g.Seen(1, victim, guardKey(-1)) {
		t.Fatal("a flood of fewer than ReplayDevices other identities made the guard forget a device's key")
	}
	if got, want := g.Len(1), 1+(ReplayDevices-1)*ReplayCapacity; got != want {
		t.Fatalf("%d keys kept, want %d", got, want)
	}
	g.Add(1, victim, guardKey(-2)) // the victim is now the most recent
	g.Add(1, guardDevice(ReplayDevices), guardKey(0))
	if !g.Seen(1, victim, guardKey(-1)) || g.Seen(1, guardDevice(1), guardKey(ReplayCapacity+2)) || !g.Seen(1, guardDevice(2), guardKey(ReplayCapacity+2)) {
		t.Fatal("the device past ReplayDevices did not take the place of the least recently added one")
	}
	if !g.Seen(1, guardDevice(ReplayDevices), guardKey(0)) {
		t.Fatal("a new device past ReplayDevices was not remembered")
	}
	g.Add(1, guardDevice(ReplayDevices+1), guardKey(0))
	if g.Seen(1, guardDevice(2), guardKey(ReplayCapacity+2)) || !g.Seen(1, victim, guardKey(-1)) {
		t.Fatal("the next new device did not forget the next least recent one")
	}
}

// A guard survives its encoding, full, and its largest size is what the
// constant says (a version 1 set's legacy keys and ReplayDevices-1
// devices in each set).
func TestReplayGuardEncoding(t *testing.T) {
	v1 := []byte{1, 2}
	for id := range ReplaySets {
		v1 = binary.BigEndian.AppendUint32(v1, uint32(id+1))
		v1 = binary.BigEndian.AppendUint16(v1, legacyCapacity)
		for i := range legacyCapacity {
			k := guardKey(-i - 1000*(id+1))
			v1 = append(v1, k[:]...)
		}
	}
	var g ReplayGuard
	if err := g.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	for dev := range ReplayDevices - 1 {
		for i := range ReplayCapacity + 5 {
			g.Add(1, guardDevice(dev), guardKey(i))
			g.Add(2, guardDevice(dev), guardKey(-i-10))
		}
	}
	wire := hsMarshal(t, &g)
	if len(wire) != MaxReplayGuardSize {
		t.Errorf("full: %d bytes, want %d", len(wire), MaxReplayGuardSize)
	}
	var h ReplayGuard
	if err := h.UnmarshalBinary(wire); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hsMarshal(t, &h), wire) || !h.Seen(1, guardDevice(3), guardKey(ReplayCapacity+4)) || h.Seen(1, guardDevice(3), guardKey(4)) || !h.Seen(2, guardDevice(9), guardKey(-2000)) {
		t.Fatal("the guard changed through its encoding")
	}
	var empty ReplayGuard
	if w := hsMarshal(t, &empty); !bytes.Equal(w, []byte{2, 0}) {
		t.Errorf("empty guard %x, want 0200", w)
	}
}

// A version 1 guard (keys without their device) decodes, and its keys
// are refused for every device.
func TestReplayGuardVersion1(t *testing.T) {
	v1 := []byte{1, 1, 0, 0, 0, 7, 0, 2}
	k0, k1 := guardKey(0), guardKey(1)
	v1 = append(append(v1, k0[:]...), k1[:]...)
	var g ReplayGuard
	if err := g.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	if !g.Seen(7, guardDevice(1), k0) || !g.Seen(7, guardDevice(2), k1) || g.Seen(7, guardDevice(1), guardKey(2)) {
		t.Fatal("a version 1 guard's keys are not refused for every device")
	}
	var h ReplayGuard
	if err := h.UnmarshalBinary(hsMarshal(t, &g)); err != nil || !h.Seen(7, guardDevice(5), k1) {
		t.Fatalf("a version 1 guard re-encoded: %v", err)
	}
}

func TestReplayGuardCorrupt(t *testing.T) {
	var g ReplayGuard
	g.Add(1, guardDevice(1), guardKey(0))
	g.Add(1, guardDevice(1), guardKey(1))
	wire := hsMarshal(t, &g)
	const keysAt = 2 + 6 + 34
	twice := bytes.Clone(wire)
	copy(twice[keysAt+32:], twice[keysAt:keysAt+32])
	devTwice := append([]byte{2, 1, 0, 0, 0, 1, 0, 2}, append(bytes.Clone(wire[8:]), wire[8:]...)...)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version", append([]byte{3}, wire[1:]...)},
		{"too many sets", append([]byte{2, ReplaySets + 1}, wire[2:]...)},
		{"truncated", wire[:len(wire)-1]},
		{"trailing", append(bytes.Clone(wire), 0)},
		{"key twice", twice},
		{"device twice", devTwice},
		{"set twice", append([]byte{2, 2}, append(bytes.Clone(wire[2:]), wire[2:]...)...)},
		{"too many devices", append([]byte{2, 1, 0, 0, 0, 1, 0xFF, 0xFF}, make([]byte, 34)...)},
		{"count over capacity", append(append([]byte{2, 1, 0, 0, 0, 1, 0, 1}, make([]byte, 32)...), 0xFF, 0xFF)},
		{"device without keys", append(append([]byte{2, 1, 0, 0, 0, 1, 0, 1}, make([]byte, 32)...), 0, 0)},
		{"version 1 over its size", append([]byte{1, 1, 0, 0, 0, 1, 0, 0}, make([]byte, maxReplayGuardV1Size)...)},
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
	g.Add(1, guardDevice(1), guardKey(0))
	g.Add(1, guardDevice(1), guardKey(1))
	g.Add(1, guardDevice(2), guardKey(0))
	g.Add(2, guardDevice(1), guardKey(0))
	f.Add(hsMarshal(f, &g))
	k := guardKey(0)
	f.Add(append([]byte{1, 1, 0, 0, 0, 7, 0, 1}, k[:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var g ReplayGuard
		if err := g.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorruptReplayGuard) {
				t.Fatalf("error %v is not ErrCorruptReplayGuard", err)
			}
			return
		}
		wire := hsMarshal(t, &g)
		if data[0] == replayVersion && !bytes.Equal(wire, data) {
			t.Fatal("a decoded guard encodes to other bytes")
		}
		var h ReplayGuard
		if err := h.UnmarshalBinary(wire); err != nil || !bytes.Equal(hsMarshal(t, &h), wire) {
			t.Fatalf("a decoded guard's encoding does not decode to itself: %v", err)
		}
	})
}
