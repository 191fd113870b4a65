package ratchet

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
)

// ErrRefused is the one error of every failure to open a message or to
// answer a handshake: a wrong key, a tampered byte, a replay, a message
// past the skipped-key bounds, a bad signature. The reason is not told,
// to the caller or to the peer: a decryption oracle would be.
var ErrRefused = errors.New("ratchet: message refused")

// Params are the constants that make one instance of the protocols: the
// HKDF info strings. Exopeer is the instance exopeer speaks; libsignal's
// own strings, in a test, reproduce the chains published in libsignal's
// tests with the same functions.
type Params struct {
	// Handshake is the info of the X3DH secret ("WhisperText" in libsignal).
	Handshake string
	// PQHandshake is the info of the PQXDH secret.
	PQHandshake string
	// Root is the info of KDF_RK, the root chain's step ("WhisperRatchet").
	Root string
	// Message is the info that expands a message key ("WhisperMessageKeys").
	Message string
	// InitialIdentity is the info of the key that seals the initiator's
	// identity key in an initial header (no counterpart in libsignal).
	InitialIdentity string
}

// Exopeer is the protocol exopeer speaks, version 1.
var Exopeer = Params{
	Handshake:   "exopeer_X3DH_X25519_SHA-256_v1",
	PQHandshake: "exopeer_PQXDH_X25519_SHA-256_ML-KEM-1024_v1",
	Root:        "exopeer_Ratchet_v1",
	Message:     "exopeer_MessageKeys_v1",
	// InitialIdentity seals IK_A and its signature in an initial header.
	InitialIdentity: "exopeer_InitialIdentity_v1",
}

// Secret is what a handshake agrees on, 96 bytes of HKDF output: the
// first root key and the two header keys the Double Ratchet with header
// encryption starts with (its section 4: shared_hka, shared_nhkb).
type Secret struct {
	// Root is the first root key (the spec's SK).
	Root [32]byte
	// HeaderA is the initiator's first sending header key (shared_hka).
	HeaderA [32]byte
	// HeaderB is the responder's first next sending header key (shared_nhkb).
	HeaderB [32]byte
}

// discontinuity is X3DH's F for X25519: 32 bytes 0xFF before the DH
// outputs, so that the input is never a valid X25519 output alone.
var discontinuity = [32]byte{
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
}

// handshakeKDF is the KDF of X3DH and PQXDH: HKDF-SHA-256 with a salt of
// 32 zero bytes, input F || parts[0] || parts[1] || ..., the given info,
// expanded to n bytes. libsignal's derive_keys is handshakeKDF with info
// "WhisperText" and n = 64 (root key, then chain key); exopeer takes
// n = 96 (Secret). HKDF's output is a prefix of any longer output, so the
// first 64 bytes are the same either way.
func handshakeKDF(info string, n int, parts ...[]byte) []byte {
	ikm := make([]byte, 0, 32+32*len(parts))
	ikm = append(ikm, discontinuity[:]...)
	for _, p := range parts {
		ikm = append(ikm, p...)
	}
	return expand(ikm, zeroSalt[:], info, n)
}

// secretFrom cuts a 96-byte handshake output into a Secret.
func secretFrom(b []byte) Secret {
	var s Secret
	copy(s.Root[:], b[0:32])
	copy(s.HeaderA[:], b[32:64])
	copy(s.HeaderB[:], b[64:96])
	return s
}

// kdfRK is KDF_RK_HE, the root chain's step: HKDF-SHA-256 with the root
// key as salt, the DH output as input and info p.Root, expanded to 96
// bytes: the next root key, a chain key, and a next header key. The
// first 64 bytes are libsignal's RootKey::create_chain (root, chain).
func kdfRK(info string, rk *[32]byte, dhOut []byte) (root, chain, header [32]byte) {
	var b [96]byte
	hkdfInto(b[:], dhOut, rk[:], info)
	copy(root[:], b[0:32])
	copy(chain[:], b[32:64])
	copy(header[:], b[64:96])
	return
}

// kdfCK is KDF_CK, a symmetric chain's step, as in libsignal and the
// Double Ratchet specification's recommendation: the message key is
// HMAC-SHA-256(ck, 0x01), the next chain key HMAC-SHA-256(ck, 0x02).
func kdfCK(ck *[32]byte) (next, mk [32]byte) {
	return hmacSHA256(ck[:], []byte{0x02}), hmacSHA256(ck[:], []byte{0x01})
}

// messageKeys expands a message key: HKDF-SHA-256 with a salt of 32 zero
// bytes, input mk, the given info, n bytes. libsignal takes n = 80
// (cipher key 32, MAC key 32, IV 16); exopeer takes n = 44 (an
// AES-256-GCM key, then its 12-byte nonce).
func messageKeys(info string, mk *[32]byte, n int) []byte {
	return expand(mk[:], zeroSalt[:], info, n)
}

// messageAEAD is messageKeys with n = 44, cut into the AES-256-GCM key
// and nonce of one message, with no allocation.
func messageAEAD(info string, mk *[32]byte) (key [32]byte, nonce [12]byte) {
	var b [44]byte
	hkdfInto(b[:], mk[:], zeroSalt[:], info)
	copy(key[:], b[:32])
	copy(nonce[:], b[32:])
	return
}

// zeroSalt is HKDF's salt where none is given: HashLen zero bytes.
var zeroSalt [sha256.Size]byte

// expand is HKDF-SHA-256 (RFC 5869), extract then expand, n bytes.
func expand(ikm, salt []byte, info string, n int) []byte {
	out := make([]byte, n)
	hkdfInto(out, ikm, salt, info)
	return out
}

// The sizes below which hkdfInto and hmacSHA256 work in buffers on the
// stack; longer inputs (none of this package's) take crypto/hkdf and
// crypto/hmac, which give the same bytes.
const (
	maxStackInfo = 128
	maxStackMsg  = 320
)

// hkdfInto fills out with HKDF-SHA-256(salt, ikm, info) (RFC 5869).
// len(out) is at most 255*32 (every caller's is 96 or less).
func hkdfInto(out, ikm, salt []byte, info string) {
	if len(info) > maxStackInfo || len(out) > 255*sha256.Size {
		b, err := hkdf.Key(sha256.New, bytes.Clone(ikm), bytes.Clone(salt), info, len(out))
		if err != nil { // only for len(out) > 255*32, which no caller asks
			panic("ratchet: hkdf: " + err.Error())
		}
		copy(out, b)
		return
	}
	prk := hmacSHA256(salt, ikm)
	var buf [sha256.Size + maxStackInfo + 1]byte
	var t [sha256.Size]byte // T(i-1); T(0) is empty
	for i, off := 1, 0; off < len(out); i++ {
		n := 0
		if i > 1 {
			n = copy(buf[:], t[:])
		}
		n += copy(buf[n:], info)
		buf[n] = byte(i)
		t = hmacSHA256(prk[:], buf[:n+1])
		off += copy(out[off:], t[:])
	}
}

// slowHMAC is HMAC-SHA-256(key, msg) by crypto/hmac.
func slowHMAC(key, msg []byte) [32]byte {
	var out [32]byte
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return [32]byte(h.Sum(out[:0]))
}

// hmacSHA256 is HMAC-SHA-256(key, msg) (RFC 2104), computed in buffers on
// the stack for this package's short keys and messages.
func hmacSHA256(key, msg []byte) [32]byte {
	if len(msg) > maxStackMsg {
		// Copies, so that key and msg do not escape through the hash's
		// interface (the stack buffers of the callers would move to the heap).
		return slowHMAC(bytes.Clone(key), bytes.Clone(msg))
	}
	var k [64]byte
	if len(key) > len(k) {
		d := sha256.Sum256(key)
		copy(k[:], d[:])
	} else {
		copy(k[:], key)
	}
	var in [64 + maxStackMsg]byte
	for i := range k {
		in[i] = k[i] ^ 0x36
	}
	n := 64 + copy(in[64:], msg)
	inner := sha256.Sum256(in[:n])
	var outer [64 + sha256.Size]byte
	for i := range k {
		outer[i] = k[i] ^ 0x5c
	}
	copy(outer[64:], inner[:])
	return sha256.Sum256(outer[:])
}
