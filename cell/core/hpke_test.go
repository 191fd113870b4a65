package core

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHPKESealVector: with the ephemeral key of RFC 9180's test vector
// A.2.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, base
// mode; as in Go's crypto/hpke/testdata/rfc9180.json), hpkeSeal
// encapsulates to the vector's enc, and Go's hpke.Open, with the vector's
// recipient key, opens what it sealed.
func TestHPKESealVector(t *testing.T) {
	info := unhex(t, "4f6465206f6e2061204772656369616e2055726e")
	ikmE := unhex(t, "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b")
	skRm := unhex(t, "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb")
	pkRm := unhex(t, "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")
	enc := unhex(t, "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a")
	pt := []byte("Beauty is truth, truth beauty")

	kem := hpke.DHKEM(ecdh.X25519())
	skE, err := kem.DeriveKeyPair(ikmE)
	if err != nil {
		t.Fatal(err)
	}
	skEm, err := skE.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	pkR, err := ecdh.X25519().NewPublicKey(pkRm)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := hpkeSeal(bytes.NewReader(skEm), pkR, info, pt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sealed[:len(enc)], enc) {
		t.Errorf("enc %x, want %x", sealed[:len(enc)], enc)
	}
	skR, err := kem.NewPrivateKey(skRm)
	if err != nil {
		t.Fatal(err)
	}
	got, err := hpke.Open(skR, hpkeSuite.kdf, hpkeSuite.aead, info, sealed)
	if err != nil || !bytes.Equal(got, pt) {
		t.Errorf("hpke.Open: %q, %v; want %q", got, err, pt)
	}
}

// TestHPKESealOpens: what hpkeSeal seals, hpke.Open opens with the right
// key and info, and with nothing else; one random stream seals the same
// bytes twice, another other bytes.
func TestHPKESealOpens(t *testing.T) {
	box, err := NewBoxKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewBoxKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{3}, 32)
	for _, tc := range []struct {
		name     string
		info, pt []byte
	}{
		{"empty", nil, nil},
		{"secret", []byte("exopeer grant v1\x00cell"), bytes.Repeat([]byte{0xa5}, SecretLen)},
		{"long", bytes.Repeat([]byte("i"), 300), bytes.Repeat([]byte("p"), 5000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := hpkeSeal(bytes.NewReader(seed), box.priv.PublicKey(), tc.info, tc.pt)
			if err != nil {
				t.Fatal(err)
			}
			again, err := hpkeSeal(bytes.NewReader(seed), box.priv.PublicKey(), tc.info, tc.pt)
			if err != nil || !bytes.Equal(sealed, again) {
				t.Errorf("one stream sealed twice: %x, %x (%v)", sealed, again, err)
			}
			if fresh, err := hpkeSeal(rand.Reader, box.priv.PublicKey(), tc.info, tc.pt); err != nil || bytes.Equal(fresh, sealed) {
				t.Errorf("two streams sealed the same bytes %x (%v)", fresh, err)
			}
			sk, err := hpke.NewDHKEMPrivateKey(box.priv)
			if err != nil {
				t.Fatal(err)
			}
			got, err := hpke.Open(sk, hpkeSuite.kdf, hpkeSuite.aead, tc.info, sealed)
			if err != nil || !bytes.Equal(got, tc.pt) {
				t.Errorf("hpke.Open: %x, %v", got, err)
			}
			if _, err := hpke.Open(sk, hpkeSuite.kdf, hpkeSuite.aead, append(tc.info, 0), sealed); err == nil {
				t.Error("opened with other info")
			}
			osk, err := hpke.NewDHKEMPrivateKey(other.priv)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := hpke.Open(osk, hpkeSuite.kdf, hpkeSuite.aead, tc.info, sealed); err == nil {
				t.Error("opened with another key")
			}
		})
	}
}

// TestHPKESealShortRand: a random source that runs dry is an error.
func TestHPKESealShortRand(t *testing.T) {
	box, err := NewBoxKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hpkeSeal(bytes.NewReader(make([]byte, 31)), box.priv.PublicKey(), nil, []byte("x")); err == nil {
		t.Error("sealed with 31 random bytes")
	}
}

// TestGCMFormatUnchanged: sealGCM writes what crypto/cipher's
// NewGCMWithRandomNonce wrote before it (rosters and invites stored then
// still open), and openGCM opens both.
func TestGCMFormatUnchanged(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	pt, ad := []byte("epoch secrets"), []byte("ad")
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	old, err := cipher.NewGCMWithRandomNonce(b)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := sealGCM(rand.Reader, key, pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	for name, sealed := range map[string][]byte{"old": old.Seal(nil, nil, pt, ad), "sealGCM": mine} {
		if got, err := openGCM(key, sealed, ad); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("openGCM of %s: %q, %v", name, got, err)
		}
		if got, err := old.Open(nil, nil, sealed, ad); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("NewGCMWithRandomNonce's Open of %s: %q, %v", name, got, err)
		}
		if _, err := openGCM(key, sealed, []byte("other ad")); err == nil {
			t.Errorf("%s opened with other ad", name)
		}
	}
	if _, err := openGCM(key, mine[:27], ad); err == nil {
		t.Error("27 bytes opened")
	}
}
