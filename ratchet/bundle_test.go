package ratchet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"
)

// A bundle survives its encoding, and its size is what the constants say.
func TestBundleEncoding(t *testing.T) {
	for _, n := range []int{0, 1, MaxOneTimePrekeys} {
		d := newHSDevice(t, "b", n, hsNow)
		b := d.bundle(t, 7)
		wire := hsMarshal(t, b)
		if want := bundleFixed + bundleKEM + n*bundleOne; len(wire) != want {
			t.Errorf("%d one-time prekeys: %d bytes, want %d", n, len(wire), want)
		}
		got, err := VerifyBundle(wire)
		if err != nil {
			t.Fatalf("%d one-time prekeys: %v", n, err)
		}
		if !bytes.Equal(hsMarshal(t, got), wire) {
			t.Errorf("%d one-time prekeys: the bundle changed through its encoding", n)
		}
	}
	if MaxBundleSize != 5648 {
		t.Errorf("MaxBundleSize %d, doc.go says 5648", MaxBundleSize)
	}
}

// Any byte changed, anywhere in a bundle, and VerifyBundle refuses it.
func TestBundleEveryByte(t *testing.T) {
	d := newHSDevice(t, "b", 2, hsNow)
	wire := hsMarshal(t, d.bundle(t, 1))
	for i := range wire {
		for _, bit := range []byte{0x01, 0x80} {
			changed := bytes.Clone(wire)
			changed[i] ^= bit
			if _, err := VerifyBundle(changed); !errors.Is(err, ErrBadBundle) {
				t.Fatalf("byte %d ^ %#x: got %v, want ErrBadBundle", i, bit, err)
			}
		}
	}
	for _, n := range []int{0, 1, len(wire) - 1} {
		if _, err := VerifyBundle(wire[:n]); !errors.Is(err, ErrBadBundle) {
			t.Errorf("%d bytes: got %v", n, err)
		}
	}
	if _, err := VerifyBundle(append(bytes.Clone(wire), 0)); !errors.Is(err, ErrBadBundle) {
		t.Errorf("a trailing byte: got %v", err)
	}
}

// Each signature is checked on its own: a bundle whose outer signature is
// remade over a changed part still fails at that part's signature.
func TestBundleInnerSignatures(t *testing.T) {
	d := newHSDevice(t, "b", 1, hsNow)
	for _, tc := range []struct {
		name   string
		change func(b *Bundle)
	}{
		{"identity", func(b *Bundle) { b.Identity[3] ^= 1 }},
		{"signed prekey", func(b *Bundle) { b.Signed.Created++ }},
		{"last resort", func(b *Bundle) { b.LastResort.ID++ }},
		{"ML-KEM key", func(b *Bundle) { b.KEM.ID++ }},
	} {
		b := d.bundle(t, 1)
		tc.change(b)
		b.Sig = [64]byte(ed25519.Sign(d.signer, append([]byte(sigBundle), b.body()...)))
		if err := b.Verify(); !errors.Is(err, ErrBadBundle) {
			t.Errorf("%s: got %v, want ErrBadBundle", tc.name, err)
		}
	}
}

// The decoder's caps: more than MaxOneTimePrekeys, ids not ascending, a
// bad ML-KEM flag, a length that does not match the count.
func TestBundleCaps(t *testing.T) {
	d := newHSDevice(t, "b", 2, hsNow)
	wire := hsMarshal(t, d.bundle(t, 1))
	countAt := bundleFixed + bundleKEM - 64 - 2
	for _, tc := range []struct {
		name   string
		change func(w []byte) []byte
	}{
		{"count over the cap", func(w []byte) []byte {
			binary.BigEndian.PutUint16(w[countAt:], MaxOneTimePrekeys+1)
			return w
		}},
		{"count over the length", func(w []byte) []byte { binary.BigEndian.PutUint16(w[countAt:], 3); return w }},
		{"ids not ascending", func(w []byte) []byte {
			copy(w[countAt+2+36:], w[countAt+2:countAt+6])
			return w
		}},
		{"ML-KEM flag", func(w []byte) []byte { w[bundleFixed-64-2-1] = 2; return w }},
		{"too long", func(w []byte) []byte { return make([]byte, MaxBundleSize+1) }},
	} {
		if _, err := DecodeBundle(tc.change(bytes.Clone(wire))); !errors.Is(err, ErrBadBundle) {
			t.Errorf("%s: got %v, want ErrBadBundle", tc.name, err)
		}
	}
	over := d.bundle(t, 1)
	over.OneTime = make([]OneTimePrekey, MaxOneTimePrekeys+1)
	for i := range over.OneTime {
		over.OneTime[i].ID = uint32(i + 1)
	}
	over.sign(d.signer)
	if err := over.Verify(); !errors.Is(err, ErrBadBundle) {
		t.Errorf("a bundle value over the cap: got %v", err)
	}
	noKEM := d.bundle(t, 1)
	noKEM.KEM = nil
	noKEM.sign(d.signer)
	got, err := VerifyBundle(hsMarshal(t, noKEM))
	if err != nil || got.KEM != nil {
		t.Fatalf("a bundle without ML-KEM: %v", err)
	}
}

// A newer bundle of the same hsDevice replaces an older; another hsDevice's
// does not.
func TestBundleReplaces(t *testing.T) {
	d, e := newHSDevice(t, "d", 0, hsNow), newHSDevice(t, "e", 0, hsNow)
	b1, b2, other := d.bundle(t, 1), d.bundle(t, 2), e.bundle(t, 3)
	if !b2.Replaces(b1) || b1.Replaces(b2) || b1.Replaces(b1) || other.Replaces(b1) {
		t.Fatal("Replaces is wrong")
	}
}

func FuzzBundle(f *testing.F) {
	for _, n := range []int{0, 3} {
		d := newHSDevice(f, "b", n, hsNow)
		f.Add(hsMarshal(f, d.bundle(f, 1)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBundle(data)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error %v is not ErrBadBundle", err)
			}
			return
		}
		if !bytes.Equal(hsMarshal(t, b), data) {
			t.Fatal("a decoded bundle encodes to other bytes")
		}
		_ = b.Verify()
	})
}
