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
		in = append(append(append(in, key...), "exopeer-cell"...), key...)
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
	safetyKAT        = "588565372705768566481197836267214124757585200512872066324153"
	safetyKATGrouped = "58856 53727 05768 56648 11978 36267 21412 47575 85200 51287 20663 24153"
)

// TestFingerprintLibsignal checks the construction against the values
// libsignal publishes (numbers only): its displayable fingerprint of
// version 1 (whose displayable half is version 0's) for two 0x05-prefixed
// identity keys and phone numbers as stable identifiers, 5200 iterations,
// the two halves in the order of their digits. Sources:
// signalapp/libsignal rust/protocol/src/fingerprint.rs fingerprint_test_v1,
// and libsignal-protocol-java's NumericFingerprintGeneratorTest
// testVectorsVersion1.
func TestFingerprintLibsignal(t *testing.T) {
	alice, _ := hex.DecodeString("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
	bob, _ := hex.DecodeString("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
	a := fingerprint(alice, []byte("+14152222222"))
	b := fingerprint(bob, []byte("+14153333333"))
	if a > b {
		a, b = b, a
	}
	if got, want := a+b, "300354477692869396892869876765458257569162576843440918079131"; got != want {
		t.Errorf("libsignal's vector: %s, want %s", got, want)
	}
}
