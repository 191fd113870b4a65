package ratchet

import "crypto/sha256"

// The per-message KDFs of the Double Ratchet without allocations: the
// same functions as kdfCK and messageKeys(info, mk, 44) (kdf.go; a test
// checks they agree), written over sha256.Sum256 with the buffers on the
// stack, because HMAC and HKDF of the standard library allocate about
// twenty times per call.

// maxInfo is the longest info string a session takes (it is stored with
// a one-byte length).
const maxInfo = 255

// macKey is a 32-byte HMAC-SHA-256 key's two padded blocks.
type macKey struct{ ipad, opad [sha256.BlockSize]byte }

func newMACKey(key *[32]byte) *macKey {
	var m macKey
	for i := range 32 {
		m.ipad[i] = key[i] ^ 0x36
		m.opad[i] = key[i] ^ 0x5c
	}
	for i := 32; i < sha256.BlockSize; i++ {
		m.ipad[i] = 0x36
		m.opad[i] = 0x5c
	}
	return &m
}

// zeroKey is the key of HKDF's extract with a salt of 32 zero bytes.
var zeroKey = newMACKey(&[32]byte{})

// sum sets out to HMAC-SHA-256(key, a || b || c), for
// len(a)+len(b)+len(c) at most 32+maxInfo+1.
func (m *macKey) sum(out *[32]byte, a, b, c []byte) {
	var buf [sha256.BlockSize + 32 + maxInfo + 1]byte
	n := copy(buf[:], m.ipad[:])
	n += copy(buf[n:], a)
	n += copy(buf[n:], b)
	n += copy(buf[n:], c)
	inner := sha256.Sum256(buf[:n])
	copy(buf[:], m.opad[:])
	copy(buf[sha256.BlockSize:], inner[:])
	*out = sha256.Sum256(buf[:sha256.BlockSize+32])
}

var (
	one = []byte{0x01}
	two = []byte{0x02}
)

// chainStep is kdfCK: the next chain key and the message key.
func chainStep(ck *[32]byte) (next, mk [32]byte) {
	m := newMACKey(ck)
	m.sum(&mk, one, nil, nil)
	m.sum(&next, two, nil, nil)
	return
}

// bodyKeys is messageKeys(info, mk, 44): HKDF-SHA-256 with a salt of 32
// zero bytes, cut into an AES-256 key and a 12-byte GCM nonce.
func bodyKeys(info string, mk *[32]byte) (key [32]byte, nonce [12]byte) {
	var prk, t1, t2 [32]byte
	zeroKey.sum(&prk, mk[:], nil, nil)
	var in [maxInfo]byte
	i := in[:copy(in[:], info)]
	m := newMACKey(&prk)
	m.sum(&t1, i, one, nil)
	m.sum(&t2, t1[:], i, two)
	copy(nonce[:], t2[:12])
	return t1, nonce
}
