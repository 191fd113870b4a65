package ratchet

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// libsignalParams are libsignal's info strings: with them, kdf.go's
// functions are libsignal's KDFs (derive_keys, RootKey::create_chain,
// ChainKey, MessageKeys::derive_keys in rust/protocol/src/ratchet*.rs).
var libsignalParams = Params{
	Handshake:   "WhisperText",
	PQHandshake: "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024",
	Root:        "WhisperRatchet",
	Message:     "WhisperMessageKeys",
}

// libsignalVector is one vector of testdata/libsignal.txt: values that a
// test of one of Signal's libraries publishes, with where.
type libsignalVector struct {
	name    string
	line    int
	sources []string
	fields  map[string][]byte
	order   []string
	used    map[string]bool
}

var sourceLine = regexp.MustCompile(`^signalapp/[a-z-]+ \S+ [0-9a-f]{40} \w+$`)

// readLibsignalVectors parses testdata/libsignal.txt (its format is in its
// first lines), strictly: a malformed line fails the test.
func readLibsignalVectors(t *testing.T) []*libsignalVector {
	t.Helper()
	f, err := os.Open("testdata/libsignal.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []*libsignalVector
	var v *libsignalVector
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, rest, _ := strings.Cut(line, " ")
		switch {
		case key == "vector":
			if seen[rest] || rest == "" {
				t.Fatalf("libsignal.txt:%d: vector %q again or unnamed", n, rest)
			}
			seen[rest] = true
			v = &libsignalVector{name: rest, line: n, fields: map[string][]byte{}, used: map[string]bool{}}
			vs = append(vs, v)
		case v == nil:
			t.Fatalf("libsignal.txt:%d: %q before the first vector", n, line)
		case key == "source":
			if !sourceLine.MatchString(rest) {
				t.Fatalf("libsignal.txt:%d: source %q is not REPOSITORY PATH COMMIT TEST", n, rest)
			}
			v.sources = append(v.sources, rest)
		default:
			b, err := hex.DecodeString(rest)
			if err != nil || len(b) == 0 || v.fields[key] != nil {
				t.Fatalf("libsignal.txt:%d: field %q: not hex, empty or given twice (%v)", n, key, err)
			}
			v.fields[key] = b
			v.order = append(v.order, key)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if len(v.sources) == 0 || len(v.fields) == 0 {
			t.Fatalf("libsignal.txt:%d: vector %s has no source or no values", v.line, v.name)
		}
	}
	return vs
}

// get returns field name of the vector, which must be n bytes long (or
// any length if n is 0), and marks it checked.
func (v *libsignalVector) get(t *testing.T, name string, n int) []byte {
	t.Helper()
	b, ok := v.fields[name]
	if !ok {
		t.Fatalf("vector %s has no %s", v.name, name)
	}
	if n != 0 && len(b) != n {
		t.Fatalf("vector %s: %s is %d bytes, want %d", v.name, name, len(b), n)
	}
	v.used[name] = true
	return b
}

// public returns field name, a libsignal-encoded X25519 public key (0x05
// then 32 bytes), without its prefix.
func (v *libsignalVector) public(t *testing.T, name string) []byte {
	t.Helper()
	b := v.get(t, name, 33)
	if b[0] != 0x05 {
		t.Fatalf("vector %s: %s has type byte %#x, want 0x05", v.name, name, b[0])
	}
	return b[1:]
}

// x25519 is X25519 as crypto/ecdh computes it (RFC 7748, the scalar
// clamped), of a raw 32-byte private and public key.
func x25519(t *testing.T, priv, pub []byte) []byte {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.ECDH(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// x25519Public is the public key of a raw private key, scalar clamped.
func x25519Public(t *testing.T, priv []byte) []byte {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

// basepoint is X25519's base point, u = 9.
var basepoint = [32]byte{9}

// x25519Unclamped is RFC 7748's Montgomery ladder over all 256 bits of k
// as given, without clamping: what libsignal-protocol-c (its
// curve25519-donna.c has the clamping commented out; keys are clamped
// when generated, not when used) and libsignal-protocol-java compute
// for a private key that was never clamped. Only the tests need it, to
// show why two published values differ from what RFC 7748 gives.
func x25519Unclamped(k, u []byte) []byte {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	m := func(x *big.Int) *big.Int { return x.Mod(x, p) }
	le := func(b []byte) *big.Int { // little-endian bytes to integer
		r := slices.Clone(b)
		slices.Reverse(r)
		return new(big.Int).SetBytes(r)
	}
	uc := slices.Clone(u)
	uc[31] &= 0x7f
	x1 := m(le(uc))
	x2, z2, x3, z3 := big.NewInt(1), big.NewInt(0), new(big.Int).Set(x1), big.NewInt(1)
	a24 := big.NewInt(121665)
	swap := byte(0)
	for i := 255; i >= 0; i-- {
		bit := k[i/8] >> (i % 8) & 1
		if swap^bit == 1 {
			x2, x3, z2, z3 = x3, x2, z3, z2
		}
		swap = bit
		a := m(new(big.Int).Add(x2, z2))
		aa := m(new(big.Int).Mul(a, a))
		b := m(new(big.Int).Sub(x2, z2))
		bb := m(new(big.Int).Mul(b, b))
		e := m(new(big.Int).Sub(aa, bb))
		da := m(new(big.Int).Mul(m(new(big.Int).Sub(x3, z3)), a))
		cb := m(new(big.Int).Mul(m(new(big.Int).Add(x3, z3)), b))
		s, d := m(new(big.Int).Add(da, cb)), m(new(big.Int).Sub(da, cb))
		x3 = m(new(big.Int).Mul(s, s))
		z3 = m(new(big.Int).Mul(x1, m(new(big.Int).Mul(d, d))))
		x2 = m(new(big.Int).Mul(aa, bb))
		z2 = m(new(big.Int).Mul(e, m(new(big.Int).Add(aa, new(big.Int).Mul(a24, e)))))
	}
	if swap == 1 {
		x2, z2 = x3, z3
	}
	r := m(new(big.Int).Mul(x2, new(big.Int).Exp(z2, new(big.Int).Sub(p, big.NewInt(2)), p)))
	out := r.FillBytes(make([]byte, 32))
	slices.Reverse(out)
	return out
}

// hkdfV2 is the HKDF of libsignal's session version 2 (HKDFv2 in
// libsignal-protocol-java): RFC 5869's extract, and its expand with the
// block counter starting at 0 instead of 1. kdf.go has no such function
// (exopeer and libsignal since 2021 use RFC 5869's); the tests use it to
// show that the version 2 vectors differ from kdf.go's only there.
func hkdfV2(ikm, salt []byte, info string, n int) []byte {
	ex := hmac.New(sha256.New, salt)
	ex.Write(ikm)
	prk := ex.Sum(nil)
	var out, prev []byte
	for i := 0; len(out) < n; i++ {
		h := hmac.New(sha256.New, prk)
		h.Write(prev)
		h.Write([]byte(info))
		h.Write([]byte{byte(i)})
		prev = h.Sum(nil)
		out = append(out, prev...)
	}
	return out[:n]
}

func wantEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

// The checks of libsignal.txt's vectors, by name. Each must use every
// value of its vector, and each vector must have a check.
var libsignalChecks = map[string]func(t *testing.T, v *libsignalVector){
	"curve25519-agreement": func(t *testing.T, v *libsignalVector) {
		ap, apriv := v.public(t, "alice_public"), v.get(t, "alice_private", 32)
		bp, bpriv := v.public(t, "bob_public"), v.get(t, "bob_private", 32)
		shared := v.get(t, "shared", 32)
		wantEqual(t, "X25519(alice_private, bob_public)", x25519(t, apriv, bp), shared)
		wantEqual(t, "X25519(bob_private, alice_public)", x25519(t, bpriv, ap), shared)
		wantEqual(t, "public key of alice_private", x25519Public(t, apriv), ap)
		wantEqual(t, "public key of bob_private", x25519Public(t, bpriv), bp)
		// These private keys are clamped: the unclamped ladder agrees
		// with crypto/ecdh on them, so its other results can be trusted.
		wantEqual(t, "unclamped X25519(alice_private, bob_public)", x25519Unclamped(apriv, bp), shared)
		wantEqual(t, "unclamped public key of bob_private", x25519Unclamped(bpriv, basepoint[:]), bp)
	},
	"hkdf-v3": func(t *testing.T, v *libsignalVector) {
		okm := v.get(t, "okm", 0)
		got := expand(v.get(t, "ikm", 0), v.get(t, "salt", 0), string(v.get(t, "info", 0)), len(okm))
		wantEqual(t, "expand", got, okm)
	},
	"hkdf-v2": func(t *testing.T, v *libsignalVector) {
		okm := v.get(t, "okm", 0)
		ikm, salt, info := v.get(t, "ikm", 0), v.get(t, "salt", 0), string(v.get(t, "info", 0))
		wantEqual(t, "hkdfV2", hkdfV2(ikm, salt, info, len(okm)), okm)
		// RFC 5869's expand (kdf.go's) differs from the first block on.
		if got := expand(ikm, salt, info, len(okm)); bytes.Equal(got[:32], okm[:32]) {
			t.Errorf("expand = HKDFv2 on the first block: %x", got)
		}
	},
	"chain-key": func(t *testing.T, v *libsignalVector) {
		ck := [32]byte(v.get(t, "seed", 32))
		next, mk := kdfCK(&ck)
		wantEqual(t, "kdfCK's next chain key", next[:], v.get(t, "next_chain_key", 32))
		keys := messageKeys(libsignalParams.Message, &mk, 80)
		wantEqual(t, "cipher key (messageKeys[0:32])", keys[0:32], v.get(t, "cipher_key", 32))
		wantEqual(t, "MAC key (messageKeys[32:64])", keys[32:64], v.get(t, "mac_key", 32))
	},
	"chain-key-v2": func(t *testing.T, v *libsignalVector) {
		ck := [32]byte(v.get(t, "seed", 32))
		next, mk := kdfCK(&ck)
		wantEqual(t, "kdfCK's next chain key", next[:], v.get(t, "next_chain_key", 32))
		// Version 2's message keys are HKDFv2's: not kdf.go's messageKeys,
		// the same inputs (salt 32 zero bytes, info WhisperMessageKeys).
		keys := hkdfV2(mk[:], make([]byte, 32), libsignalParams.Message, 80)
		wantEqual(t, "HKDFv2 cipher key", keys[0:32], v.get(t, "cipher_key", 32))
		wantEqual(t, "HKDFv2 MAC key", keys[32:64], v.get(t, "mac_key", 32))
	},
	"root-key-v2": func(t *testing.T, v *libsignalVector) {
		dh := x25519(t, v.get(t, "alice_private", 32), v.public(t, "bob_public"))
		checkRootKeyV2(t, v, dh)
	},
	"root-key-v2-unclamped": func(t *testing.T, v *libsignalVector) {
		priv, pub := v.get(t, "alice_private", 32), v.public(t, "bob_public")
		checkRootKeyV2(t, v, x25519Unclamped(priv, pub))
		if dh := x25519(t, priv, pub); bytes.Equal(dh, x25519Unclamped(priv, pub)) {
			t.Errorf("clamping changed nothing: the vector's point is lost")
		}
	},
	"root-key-v2-unclamped-public": func(t *testing.T, v *libsignalVector) {
		priv, pub := v.get(t, "alice_private", 32), v.public(t, "alice_public")
		wantEqual(t, "unclamped public key of alice_private", x25519Unclamped(priv, basepoint[:]), pub)
		if bytes.Equal(x25519Public(t, priv), pub) {
			t.Errorf("crypto/ecdh gives the unclamped public key: clamping changed nothing")
		}
	},
	"session-bob": func(t *testing.T, v *libsignalVector) {
		checkBobKeys(t, v)
		checkBob(t, v)
	},
	"session-alice-unclamped": func(t *testing.T, v *libsignalVector) {
		base := v.get(t, "alice_base_private", 32)
		wantEqual(t, "unclamped public key of alice_base_private", x25519Unclamped(base, basepoint[:]), v.public(t, "alice_base_public"))
		checkAlice(t, v, func(pub []byte) []byte { return x25519Unclamped(base, pub) })
	},
	"session-alice-clamped": func(t *testing.T, v *libsignalVector) {
		base := v.get(t, "alice_base_private", 32)
		checkAlice(t, v, func(pub []byte) []byte { return x25519(t, base, pub) })
	},
	"session-2025": func(t *testing.T, v *libsignalVector) {
		base := v.get(t, "alice_base_private", 32)
		wantEqual(t, "public key of alice_base_private", x25519Public(t, base), v.public(t, "alice_base_public"))
		checkBobKeys(t, v)
		checkBob(t, v)
		checkAlice(t, v, func(pub []byte) []byte { return x25519(t, base, pub) })
	},
	"transcript": checkTranscript,
}

// checkRootKeyV2 checks RootKey::create_chain of session version 2: the
// arrangement of kdfRK (salt the root key, input the DH output, info
// WhisperRatchet, the root key then the chain key) with HKDFv2.
func checkRootKeyV2(t *testing.T, v *libsignalVector, dh []byte) {
	t.Helper()
	out := hkdfV2(dh, v.get(t, "root_key", 32), libsignalParams.Root, 64)
	wantEqual(t, "next root key", out[0:32], v.get(t, "next_root", 32))
	wantEqual(t, "next chain key", out[32:64], v.get(t, "next_chain", 32))
}

// checkBobKeys checks that Bob's published key pairs are pairs (the
// ratchet key pair's private key is not clamped, as published: its
// public key is the unclamped one; it takes no part in the X3DH).
func checkBobKeys(t *testing.T, v *libsignalVector) {
	t.Helper()
	wantEqual(t, "public key of bob_identity_private", x25519Public(t, v.get(t, "bob_identity_private", 32)), v.public(t, "bob_identity_public"))
	wantEqual(t, "public key of bob_signed_prekey_private", x25519Public(t, v.get(t, "bob_signed_prekey_private", 32)), v.public(t, "bob_signed_prekey_public"))
	wantEqual(t, "unclamped public key of bob_ratchet_private", x25519Unclamped(v.get(t, "bob_ratchet_private", 32), basepoint[:]), v.public(t, "bob_ratchet_public"))
}

// checkBob is libsignal's initialize_bob_session without a one-time
// prekey: the X3DH DHs in the X3DH specification's order, DH1 =
// DH(SPK_B, IK_A), DH2 = DH(IK_B, EK_A), DH3 = DH(SPK_B, EK_A), through
// handshakeKDF to 64 bytes; the chain key, bytes 32 to 64, is Bob's first
// sending chain key.
func checkBob(t *testing.T, v *libsignalVector) {
	t.Helper()
	spk, ik := v.get(t, "bob_signed_prekey_private", 32), v.get(t, "bob_identity_private", 32)
	ikA, ekA := v.public(t, "alice_identity_public"), v.public(t, "alice_base_public")
	out := handshakeKDF(libsignalParams.Handshake, 64, x25519(t, spk, ikA), x25519(t, ik, ekA), x25519(t, spk, ekA))
	wantEqual(t, "Bob's sending chain key (handshakeKDF[32:64])", out[32:64], v.get(t, "chain_key", 32))
}

// checkAlice is libsignal's initialize_alice_session without a one-time
// prekey, up to Alice's receiving chain key: DH1 = DH(IK_A, SPK_B), DH2 =
// DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B), with base computing Alice's
// ephemeral (base key) DHs. bob_ratchet_public only names the chain.
func checkAlice(t *testing.T, v *libsignalVector, base func(pub []byte) []byte) {
	t.Helper()
	ik := v.get(t, "alice_identity_private", 32)
	wantEqual(t, "public key of alice_identity_private", x25519Public(t, ik), v.public(t, "alice_identity_public"))
	spkB, ikB := v.public(t, "bob_signed_prekey_public"), v.public(t, "bob_identity_public")
	v.public(t, "bob_ratchet_public")
	out := handshakeKDF(libsignalParams.Handshake, 64, x25519(t, ik, spkB), base(ikB), base(spkB))
	wantEqual(t, "Alice's receiving chain key (handshakeKDF[32:64])", out[32:64], v.get(t, "chain_key", 32))
}

// The values published in the tests of libsignal (Rust), of
// libsignal-protocol-c and of libsignal-protocol-java for their KDF
// chains and session set-up, recorded with their sources in
// testdata/libsignal.txt, come out of kdf.go's functions with libsignal's
// parameters: every one of them, except where libsignal used what kdf.go
// does not (HKDFv2, unclamped scalars), and there the test shows that it
// is that, and only that, which differs.
func TestLibsignalVectors(t *testing.T) {
	vs := readLibsignalVectors(t)
	names := map[string]bool{}
	for _, v := range vs {
		names[v.name] = true
		check, ok := libsignalChecks[v.name]
		if !ok {
			t.Errorf("libsignal.txt:%d: vector %s has no check", v.line, v.name)
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			check(t, v)
			for _, f := range v.order {
				if !v.used[f] {
					t.Errorf("value %s is not checked", f)
				}
			}
		})
	}
	for name := range libsignalChecks {
		if !names[name] {
			t.Errorf("check %s has no vector in libsignal.txt", name)
		}
	}
}
