package contact

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
)

func TestSafetyNumberKnownAnswer(t *testing.T) {
	a := cellKey(1).Public().(ed25519.PublicKey)
	b := cellKey(2).Public().(ed25519.PublicKey)
	if got, want := hex.EncodeToString(a), keyHex1; got != want {
		t.Fatalf("test key 1 is %s, want %s", got, want)
	}
	ab, err := SafetyNumber(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := SafetyNumber(b, a)
	if err != nil {
		t.Fatal(err)
	}
	if ab != ba {
		t.Errorf("not order-independent: %s and %s", ab, ba)
	}
	if ab != safetyKAT {
		t.Errorf("safety number %s, want %s", ab, safetyKAT)
	}
	if len(ab) != SafetyDigits || strings.Trim(ab, "0123456789") != "" {
		t.Errorf("safety number %q: want %d digits", ab, SafetyDigits)
	}
	if got, want := GroupDigits(ab), safetyKATGrouped; got != want {
		t.Errorf("grouped %q, want %q", got, want)
	}
	if ab == mustSafety(t, a, cellKey(3).Public().(ed25519.PublicKey)) {
		t.Error("another key gives the same number")
	}
}

func mustSafety(t *testing.T, a, b ed25519.PublicKey) string {
	t.Helper()
	n, err := SafetyNumber(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFingerprintIndependent checks Fingerprint against doc.go's
// construction written out another way (one growing buffer, big.Int for
// the 40-bit chunks).
func TestFingerprintIndependent(t *testing.T) {
	for b := byte(1); b < 4; b++ {
		key := cellKey(b).Public().(ed25519.PublicKey)
		in := binary.BigEndian.AppendUint16(nil, 0)
		in = append(append(in, key...), "exopeer-cell"...)
		h := sha512.Sum512(in)
		for range 5199 {
			h = sha512.Sum512(append(h[:], key...))
		}
		var want strings.Builder
		for i := 0; i < 30; i += 5 {
			v := new(big.Int).SetBytes(h[i : i+5])
			d := new(big.Int).Mod(v, big.NewInt(100000)).String()
			want.WriteString(strings.Repeat("0", 5-len(d)) + d)
		}
		got, err := Fingerprint(key)
		if err != nil {
			t.Fatal(err)
		}
		if got != want.String() {
			t.Errorf("key %d: %s, want %s", b, got, want.String())
		}
	}
	if _, err := Fingerprint(make([]byte, 31)); err == nil {
		t.Error("a 31-byte key has a fingerprint")
	}
}

// Known answers, computed once with this package (keys from the seeds
// 32 bytes of 0x01 and of 0x02, as cellKey makes them) and frozen; the
// construction is in doc.go and TestFingerprintIndependent checks it
// against a straightforward reading of it.
const (
	// the Ed25519 public key of the seed 32 × 0x01 (as other
	// implementations give it)
	keyHex1          = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	safetyKAT        = "543745815864917908100494657248170558979696084474150286375754"
	safetyKATGrouped = "54374 58158 64917 90810 04946 57248 17055 89796 96084 47415 02863 75754"
)
