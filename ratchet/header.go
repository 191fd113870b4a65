package ratchet

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
)

// The layout of a message (doc.go, "Double Ratchet"):
//
//	version (1) || header nonce (12) || sealed header (40 + 16) || sealed body
const (
	// MessageVersion is the first byte of every message of this format.
	MessageVersion = 0x01
	// MessageOverhead is how many bytes a message has beyond its
	// plaintext: the version byte, the header nonce, the sealed header and
	// the body's GCM tag.
	MessageOverhead = headerEnd + gcmTag

	nonceLen      = 12
	gcmTag        = 16
	headerLen     = 32 + 4 + 4 // ratchet public key, PN, N
	sealedHeader  = headerLen + gcmTag
	headerNonceAt = 1
	sealedAt      = headerNonceAt + nonceLen
	headerEnd     = sealedAt + sealedHeader // 69: the encrypted header's end
)

// header is a message's header in the clear: the sender's ratchet public
// key, the length of its previous sending chain (PN) and the message's
// number in its current one (N).
type header struct {
	dh [32]byte
	pn uint32
	n  uint32
}

// newGCM is AES-256-GCM under a 32-byte key with the standard 12-byte
// nonce and 16-byte tag.
func newGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil { // only for a key that is not 16, 24 or 32 bytes
		panic("ratchet: aes: " + err.Error())
	}
	g, err := cipher.NewGCM(b)
	if err != nil { // only for a block size other than 16
		panic("ratchet: gcm: " + err.Error())
	}
	return g
}

// sealHeader appends the encrypted header to out, which holds the
// version byte and the header's nonce (out[1:13]): HENCRYPT(hk, header)
// with the version byte as the GCM's associated data. plain is scratch
// space (a buffer on the stack would escape through the AEAD interface).
func sealHeader(g cipher.AEAD, out []byte, h *header, plain *[headerLen]byte) []byte {
	copy(plain[:32], h.dh[:])
	binary.BigEndian.PutUint32(plain[32:36], h.pn)
	binary.BigEndian.PutUint32(plain[36:40], h.n)
	return g.Seal(out, out[headerNonceAt:sealedAt], plain[:], out[:1])
}

// openHeader is HDECRYPT: the header of msg (at least headerEnd bytes)
// under the header key of g, or false. plain is scratch space.
func openHeader(g cipher.AEAD, msg []byte, plain *[headerLen]byte) (header, bool) {
	var h header
	if _, err := g.Open(plain[:0], msg[headerNonceAt:sealedAt], msg[sealedAt:headerEnd], msg[:1]); err != nil {
		return h, false
	}
	copy(h.dh[:], plain[:32])
	h.pn = binary.BigEndian.Uint32(plain[32:36])
	h.n = binary.BigEndian.Uint32(plain[36:40])
	return h, true
}
