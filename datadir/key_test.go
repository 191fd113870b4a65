package datadir

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func TestKeyRoundTrip(t *testing.T) {
	priv := testKey(1)
	data, err := EncodeKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k, err := DecodeKey(data)
	if err != nil {
		t.Fatalf("DecodeKey: %v", err)
	}
	if !bytes.Equal(k, priv) {
		t.Error("decoded key differs from the encoded one")
	}
}

func TestDecodeKeyErrors(t *testing.T) {
	good, _ := EncodeKey(testKey(2))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), bytes.NewReader(bytes.Repeat([]byte{7}, 128)))
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no PEM block"},
		{"not pem", []byte("hello"), "no PEM block"},
		{"wrong type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), `"CERTIFICATE"`},
		{"headers", pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), "headers"},
		{"trailing", append(append([]byte{}, good...), "junk"...), "trailing data"},
		{"garbage der", pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: []byte{0x30, 0x01}}), "PKCS#8"},
		{"ecdsa", pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: ecDER}), "want an Ed25519 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeKey(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeKey error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeKey(f *testing.F) {
	good, _ := EncodeKey(testKey(3))
	f.Add(good)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := DecodeKey(data)
		if err != nil {
			return
		}
		if len(k) != ed25519.PrivateKeySize {
			t.Fatalf("accepted a key of %d bytes, not a whole Ed25519 key", len(k))
		}
		// The key must sign and verify: a decoded key is usable.
		sig := ed25519.Sign(k, []byte("x"))
		if !ed25519.Verify(k.Public().(ed25519.PublicKey), []byte("x"), sig) {
			t.Fatal("decoded key does not verify its own signature")
		}
	})
}
