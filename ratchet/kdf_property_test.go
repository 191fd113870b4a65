package ratchet

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// The properties of kdf.go's KDFs that doc.go states and that
// libsignal_test.go's published values rely on, each checked against
// HKDF and HMAC computed here from their definitions, on random inputs
// (a seeded ChaCha8; the seed is printed on failure).

const kdfSeed = 13

func kdfRand(t testing.TB) *rand.ChaCha8 {
	t.Helper()
	var seed [32]byte
	seed[0] = kdfSeed
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ChaCha8 seed: %x", seed)
		}
	})
	return rand.NewChaCha8(seed)
}

func randBytes(r *rand.ChaCha8, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func hkdfRef(t *testing.T, ikm, salt []byte, info string, n int) []byte {
	t.Helper()
	b, err := hkdf.Key(sha256.New, ikm, salt, info, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hmacRef(key []byte, msg ...byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// handshakeKDF is HKDF with a salt of 32 zero bytes over F (32 bytes
// 0xFF) then the parts in order: F is there, the order of the parts
// counts, and the output's length is no domain separator (n = 64 is a
// prefix of n = 96, which is how libsignal's 64 bytes are reproduced).
func TestHandshakeKDFDefinition(t *testing.T) {
	r := kdfRand(t)
	for range 20 {
		dh1, dh2, dh3, dh4 := randBytes(r, 32), randBytes(r, 32), randBytes(r, 32), randBytes(r, 32)
		ff := bytes.Repeat([]byte{0xFF}, 32)
		ikm := slicesConcat(ff, dh1, dh2, dh3, dh4)
		got := handshakeKDF(Exopeer.Handshake, 96, dh1, dh2, dh3, dh4)
		wantEqual(t, "handshakeKDF", got, hkdfRef(t, ikm, make([]byte, 32), Exopeer.Handshake, 96))
		// RFC 5869: an absent salt is HashLen zero bytes (libsignal's None).
		wantEqual(t, "handshakeKDF, salt absent", got, hkdfRef(t, ikm, nil, Exopeer.Handshake, 96))
		if without := hkdfRef(t, ikm[32:], make([]byte, 32), Exopeer.Handshake, 96); bytes.Equal(got, without) {
			t.Fatal("handshakeKDF's output does not depend on F")
		}
		if swapped := handshakeKDF(Exopeer.Handshake, 96, dh2, dh1, dh3, dh4); bytes.Equal(got, swapped) {
			t.Fatal("handshakeKDF's output does not depend on the order of DH1 and DH2")
		}
		wantEqual(t, "handshakeKDF's 64 bytes", handshakeKDF(Exopeer.Handshake, 64, dh1, dh2, dh3, dh4), got[:64])
		if pq := handshakeKDF(Exopeer.PQHandshake, 96, dh1, dh2, dh3, dh4); bytes.Equal(got, pq) {
			t.Fatal("X3DH and PQXDH give the same secret for the same input")
		}
	}
}

// secretFrom cuts Root, HeaderA, HeaderB in that order.
func TestSecretFromSplit(t *testing.T) {
	b := make([]byte, 96)
	for i := range b {
		b[i] = byte(i)
	}
	s := secretFrom(b)
	wantEqual(t, "Root", s.Root[:], b[0:32])
	wantEqual(t, "HeaderA", s.HeaderA[:], b[32:64])
	wantEqual(t, "HeaderB", s.HeaderB[:], b[64:96])
}

// kdfRK is HKDF with the root key as salt and the DH output as input,
// 96 bytes cut into root, chain and header keys; its first 64 bytes are
// a 64-byte HKDF (libsignal's create_chain); it does not change the root
// key it is given.
func TestKDFRKDefinition(t *testing.T) {
	r := kdfRand(t)
	for range 20 {
		rk := [32]byte(randBytes(r, 32))
		before := rk
		dh := randBytes(r, 32)
		root, chain, header := kdfRK(Exopeer.Root, &rk, dh)
		if rk != before {
			t.Fatal("kdfRK changed the root key it was given")
		}
		got := slicesConcat(root[:], chain[:], header[:])
		wantEqual(t, "kdfRK", got, hkdfRef(t, dh, rk[:], Exopeer.Root, 96))
		wantEqual(t, "kdfRK's first 64 bytes", got[:64], hkdfRef(t, dh, rk[:], Exopeer.Root, 64))
		if root == chain || chain == header || root == header {
			t.Fatalf("kdfRK's outputs repeat: %x %x %x", root, chain, header)
		}
		if r2, _, _ := kdfRK(Exopeer.Root, &rk, randBytes(r, 32)); r2 == root {
			t.Fatal("kdfRK's root key does not depend on the DH output")
		}
	}
}

// kdfCK's message key is HMAC-SHA-256(ck, 0x01), its next chain key
// HMAC-SHA-256(ck, 0x02); the two differ; it does not change ck; and a
// chain does not repeat a chain key, message key or nonce.
func TestKDFCKDefinition(t *testing.T) {
	r := kdfRand(t)
	ck := [32]byte(randBytes(r, 32))
	seen := map[[32]byte]bool{}
	nonces := map[[12]byte]bool{}
	for i := range 1000 {
		before := ck
		next, mk := kdfCK(&ck)
		if ck != before {
			t.Fatal("kdfCK changed the chain key it was given")
		}
		wantEqual(t, "message key", mk[:], hmacRef(ck[:], 0x01))
		wantEqual(t, "next chain key", next[:], hmacRef(ck[:], 0x02))
		if seen[next] || seen[mk] || next == mk {
			t.Fatalf("step %d: a chain key or message key repeats", i)
		}
		seen[next], seen[mk] = true, true
		keys := messageKeys(Exopeer.Message, &mk, 44)
		nonce := [12]byte(keys[32:44])
		if nonces[nonce] {
			t.Fatalf("step %d: a nonce repeats", i)
		}
		nonces[nonce] = true
		ck = next
	}
}

// messageKeys is HKDF with a salt of 32 zero bytes over the message key:
// exopeer's 44 bytes (AES-256 key, then 12-byte nonce) are a prefix of
// libsignal's 80 (cipher key, MAC key, IV), so the AES key is
// libsignal's cipher key and the nonce the first 12 bytes of its MAC key.
func TestMessageKeysDefinition(t *testing.T) {
	r := kdfRand(t)
	for range 20 {
		mk := [32]byte(randBytes(r, 32))
		got := messageKeys(Exopeer.Message, &mk, 44)
		wantEqual(t, "messageKeys", got, hkdfRef(t, mk[:], make([]byte, 32), Exopeer.Message, 44))
		wantEqual(t, "messageKeys' 44 of 80", got, messageKeys(Exopeer.Message, &mk, 80)[:44])
		if bytes.Equal(got, messageKeys(libsignalParams.Message, &mk, 44)) {
			t.Fatal("messageKeys does not depend on its info")
		}
	}
}

// Each KDF has an info of its own, so no output of one is an output of
// another for the same input; exopeer's differ from libsignal's, so a
// key of one protocol is never a key of the other.
func TestInfoStringsSeparate(t *testing.T) {
	for _, p := range []Params{Exopeer, libsignalParams} {
		infos := []string{p.Handshake, p.PQHandshake, p.Root, p.Message}
		for i, a := range infos {
			if a == "" {
				t.Errorf("%+v: info %d is empty", p, i)
			}
			for _, b := range infos[i+1:] {
				if a == b {
					t.Errorf("%+v: info %q is used twice", p, a)
				}
			}
		}
	}
	ex := []string{Exopeer.Handshake, Exopeer.PQHandshake, Exopeer.Root, Exopeer.Message}
	for _, a := range ex {
		for _, b := range []string{libsignalParams.Handshake, libsignalParams.PQHandshake, libsignalParams.Root, libsignalParams.Message} {
			if a == b {
				t.Errorf("exopeer and libsignal share the info %q", a)
			}
		}
	}
}

func slicesConcat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// The KDFs' cost, per call (go test -run '^$' -bench KDF -benchmem ./ratchet/).
func BenchmarkKDFCK(b *testing.B) {
	var ck [32]byte
	for b.Loop() {
		ck, _ = kdfCK(&ck)
	}
}

func BenchmarkKDFMessageKeys(b *testing.B) {
	var mk [32]byte
	for b.Loop() {
		messageKeys(Exopeer.Message, &mk, 44)
	}
}

func BenchmarkKDFRK(b *testing.B) {
	var rk [32]byte
	dh := make([]byte, 32)
	for b.Loop() {
		rk, _, _ = kdfRK(Exopeer.Root, &rk, dh)
	}
}

func BenchmarkKDFHandshake(b *testing.B) {
	dh := make([]byte, 32)
	for b.Loop() {
		handshakeKDF(Exopeer.PQHandshake, 96, dh, dh, dh, dh, dh)
	}
}
