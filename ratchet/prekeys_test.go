package ratchet

import (
	"bytes"
	"errors"
	"testing"
)

// Replenish tops the one-time prekeys up to the target with fresh ids,
// never an id used before, and leaves the state alone when it cannot.
func TestReplenish(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 3, hsNow)
	r := hsRand(t, "replenish")
	if n, err := b.keys.Replenish(r, 3); n != 0 || err != nil {
		t.Fatalf("at the target: added %d, %v", n, err)
	}
	_, _, h := hsInitiate(t, a, b, false)
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow); err != nil {
		t.Fatal(err)
	}
	if n, err := b.keys.Replenish(r, 5); n != 3 || err != nil || b.keys.OneTimeCount() != 5 {
		t.Fatalf("added %d (%v), %d left, want 3 and 5", n, err, b.keys.OneTimeCount())
	}
	if b.keys.oneTime[h.PrekeyID] != nil {
		t.Errorf("the used one-time prekey id %d came back", h.PrekeyID)
	}
	for id := range b.keys.oneTime {
		if id > 6 || id == 0 {
			t.Errorf("one-time prekey id %d, want 1 to 6", id)
		}
	}
	before := hsMarshal(t, b.keys)
	for _, target := range []int{-1, MaxOneTimePrekeys + 1} {
		if _, err := b.keys.Replenish(r, target); err == nil {
			t.Errorf("target %d taken", target)
		}
	}
	if _, err := b.keys.Replenish(bytes.NewReader(make([]byte, 40)), 10); err == nil {
		t.Error("a short read was not an error")
	}
	samePrekeys(t, b.keys, before)
}

// Rotation is due a week after the signed prekey was made, not before,
// and not when the clock went back.
func TestRotationDue(t *testing.T) {
	b := newHSDevice(t, "b", 0, hsNow)
	for _, tc := range []struct {
		now  int64
		want bool
	}{
		{hsNow - 1000, false}, {hsNow, false}, {hsNow + RotationPeriod - 1, false},
		{hsNow + RotationPeriod, true}, {hsNow + 10*RotationPeriod, true},
	} {
		if got := b.keys.RotationDue(tc.now); got != tc.want {
			t.Errorf("at hsNow%+d: %v, want %v", tc.now-hsNow, got, tc.want)
		}
	}
	if err := b.keys.Rotate(hsRand(t, "rotate"), hsNow+RotationPeriod); err != nil {
		t.Fatal(err)
	}
	if b.keys.RotationDue(hsNow + RotationPeriod + 1) {
		t.Error("due again right after a rotation")
	}
	if bn := b.bundle(t, 2); bn.Signed.ID != 2 || bn.Signed.Created != hsNow+RotationPeriod {
		t.Errorf("after a rotation the bundle has signed prekey %d made at %d", bn.Signed.ID, bn.Signed.Created)
	}
}

// Rotation keeps the replay sets of the current and the previous signed
// prekeys only.
func TestRotationPrunesReplayGuard(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 0, hsNow)
	_, _, h := hsInitiate(t, a, b, false)
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow); err != nil {
		t.Fatal(err)
	}
	r := hsRand(t, "rotate")
	for i, want := range []int{1, 0} {
		if err := b.keys.Rotate(r, hsNow+int64(i+1)*RotationPeriod); err != nil {
			t.Fatal(err)
		}
		if got := b.keys.seen.Len(h.SignedPrekeyID); got != want {
			t.Errorf("after rotation %d: %d keys under the first signed prekey, want %d", i+1, got, want)
		}
	}
}

// A state survives its encoding, with a previous signed prekey, one-time
// prekeys and remembered keys, and the restored state answers as the
// original would.
func TestPrekeysEncoding(t *testing.T) {
	a, b := newHSDevice(t, "a", 0, hsNow), newHSDevice(t, "b", 4, hsNow)
	_, _, h1 := hsInitiate(t, a, b, false)
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h1, hsNow); err != nil {
		t.Fatal(err)
	}
	if err := b.keys.Rotate(hsRand(t, "rotate"), hsNow+RotationPeriod); err != nil {
		t.Fatal(err)
	}
	_, _, h2 := hsInitiate(t, a, b, true)
	wire := hsMarshal(t, b.keys)
	var c Prekeys
	if err := c.UnmarshalBinary(wire); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hsMarshal(t, &c), wire) {
		t.Fatal("the state changed through its encoding")
	}
	want, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys.clone(), h2, hsNow+RotationPeriod)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _, err := RespondSecret(&Exopeer, b.pub(), &c, h2, hsNow+RotationPeriod); err != nil || got != want {
		t.Fatalf("the restored state answers %v, same secret %v", err, got == want)
	}
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), &c, h1, hsNow+RotationPeriod); !errors.Is(err, ErrRefused) {
		t.Fatalf("the restored state forgot a replay: %v", err)
	}
}

// The decoder refuses a corrupt state with ErrCorruptPrekeys (and the
// guard's error if the guard is corrupt) and leaves the value alone.
func TestPrekeysCorrupt(t *testing.T) {
	b := newHSDevice(t, "b", 2, hsNow)
	wire := hsMarshal(t, b.keys)
	var c Prekeys
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version", append([]byte{9}, wire[1:]...)},
		{"truncated", wire[:len(wire)-1]},
		{"trailing", append(bytes.Clone(wire), 0)},
		{"previous flag", func() []byte { w := bytes.Clone(wire); w[1+32+44] = 2; return w }()},
	} {
		if err := c.UnmarshalBinary(tc.data); !errors.Is(err, ErrCorruptPrekeys) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
	badGuard := bytes.Clone(wire)
	badGuard[len(badGuard)-2] = 9 // the empty guard's version
	if err := c.UnmarshalBinary(badGuard); !errors.Is(err, ErrCorruptPrekeys) || !errors.Is(err, ErrCorruptReplayGuard) {
		t.Errorf("a corrupt guard: got %v", err)
	}
	if c.identity != nil {
		t.Error("a failed decoding changed the value")
	}
}

func FuzzPrekeys(f *testing.F) {
	a, b := newHSDevice(f, "a", 0, hsNow), newHSDevice(f, "b", 3, hsNow)
	f.Add(hsMarshal(f, b.keys))
	r := hsRand(f, "initiator")
	s, _, h, err := InitiateSecret(&Exopeer, r, a.signer, a.keys, b.bundle(f, 1), nil)
	if err != nil {
		f.Fatal(err)
	}
	_ = s
	if _, _, _, err := RespondSecret(&Exopeer, b.pub(), b.keys, h, hsNow); err != nil {
		f.Fatal(err)
	}
	if err := b.keys.Rotate(r, hsNow+RotationPeriod); err != nil {
		f.Fatal(err)
	}
	f.Add(hsMarshal(f, b.keys))
	f.Fuzz(func(t *testing.T, data []byte) {
		var k Prekeys
		if err := k.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorruptPrekeys) {
				t.Fatalf("error %v is not ErrCorruptPrekeys", err)
			}
			return
		}
		wire := hsMarshal(t, &k)
		if !bytes.Equal(wire, data) {
			// Only a version 1 replay guard (the seed corpus's) encodes
			// to other bytes, as version 2; that encoding is stable.
			var c Prekeys
			if err := c.UnmarshalBinary(wire); err != nil || !bytes.Equal(hsMarshal(t, &c), wire) {
				t.Fatalf("a decoded state encodes to other bytes (%v)", err)
			}
		}
	})
}
