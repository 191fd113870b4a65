package blob

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// HKDF info strings of format version 1: the payload key of a file and of a
// directory listing are derived from the capability's key with these.
const (
	infoPayload = "exopeer blob v1 payload"
	infoDir     = "exopeer blob v1 dir"
)

// payloadAEAD returns the AES-256-GCM instance sealing the segments of a
// blob under key k, with the payload key HKDF-SHA256(ikm=k, salt=empty,
// info) (info is infoPayload or infoDir).
func payloadAEAD(k Key, info string) cipher.AEAD {
	pk, err := hkdf.Key(sha256.New, k[:], nil, info, KeySize)
	if err != nil {
		panic("blob: hkdf: " + err.Error()) // only for lengths HKDF refuses; ours is fixed
	}
	b, err := aes.NewCipher(pk)
	if err != nil {
		panic("blob: aes: " + err.Error())
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic("blob: gcm: " + err.Error())
	}
	return a
}

// segmentNonce is the nonce of segment i: i as 11 bytes big-endian, then
// 0x01 for the final segment of the stream, 0x00 otherwise.
func segmentNonce(n *[12]byte, i int64, last bool) {
	clear(n[:3])
	binary.BigEndian.PutUint64(n[3:11], uint64(i))
	n[11] = 0
	if last {
		n[11] = 1
	}
}

// sealSegment appends to dst segment i of a stream (at most SegmentSize
// bytes of plaintext) sealed under a.
func sealSegment(a cipher.AEAD, dst, plain []byte, i int64, last bool) []byte {
	var n [12]byte
	segmentNonce(&n, i, last)
	return a.Seal(dst, n[:], plain, nil)
}

// openSegment appends to dst the plaintext of sealed segment i; the error
// wraps ErrWrongKey when authentication fails.
func openSegment(a cipher.AEAD, dst, sealed []byte, i int64, last bool) ([]byte, error) {
	if len(sealed) < TagSize || len(sealed) > SealedSegmentSize || (!last && len(sealed) != SealedSegmentSize) {
		return nil, fmt.Errorf("segment %d of %d bytes: %w", i, len(sealed), ErrMalformed)
	}
	var n [12]byte
	segmentNonce(&n, i, last)
	out, err := a.Open(dst, n[:], sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", i, ErrWrongKey)
	}
	return out, nil
}

// sealLeaf appends to dst the sealed segments of plaintext p, leaf i of
// a stream cut in leaves of segsPerLeaf segments (last: the final leaf, so
// its final segment is flagged).
func sealLeaf(a cipher.AEAD, dst, p []byte, i, segsPerLeaf int64, last bool) []byte {
	for s := int64(0); ; s++ {
		end := min(len(p), SegmentSize)
		dst = sealSegment(a, dst, p[:end], i*segsPerLeaf+s, last && end == len(p))
		p = p[end:]
		if len(p) == 0 {
			return dst
		}
	}
}

// CiphertextSize is the size of the sealed stream of a plaintext of size
// bytes: one tag per segment, and one empty final segment for an empty
// plaintext.
func CiphertextSize(size int64) int64 {
	n := size / SegmentSize
	if size%SegmentSize != 0 || size == 0 {
		n++
	}
	return size + n*TagSize
}

// PlaintextSize is the plaintext size of a sealed stream of c bytes, or an
// error wrapping ErrMalformed when no stream has that length (c < 16, or a
// last partial segment shorter than a tag).
func PlaintextSize(c int64) (int64, error) {
	if c < TagSize {
		return 0, fmt.Errorf("ciphertext of %d bytes: %w", c, ErrMalformed)
	}
	n := c / SealedSegmentSize
	if r := c % SealedSegmentSize; r != 0 {
		if r < TagSize {
			return 0, fmt.Errorf("ciphertext of %d bytes: %w", c, ErrMalformed)
		}
		n++
	}
	return c - n*TagSize, nil
}

// segments returns the number of segments of a sealed stream of c bytes
// (c valid per PlaintextSize).
func segments(c int64) int64 {
	n := c / SealedSegmentSize
	if c%SealedSegmentSize != 0 {
		n++ // not (c + SealedSegmentSize - 1) / SealedSegmentSize: it overflows near 2^63
	}
	return n
}

// Seal returns the whole sealed stream of plaintext under key k with the
// given HKDF info (infoPayload for files). It is the reference of the
// format; Import seals the same segments in parallel.
func seal(k Key, info string, plaintext []byte) []byte {
	a := payloadAEAD(k, info)
	out := make([]byte, 0, CiphertextSize(int64(len(plaintext))))
	i := int64(0)
	for {
		end := min(len(plaintext), SegmentSize)
		last := end == len(plaintext)
		out = sealSegment(a, out, plaintext[:end], i, last)
		plaintext = plaintext[end:]
		if last {
			return out
		}
		i++
	}
}

// open returns the plaintext of a whole sealed stream, or an error wrapping
// ErrMalformed (a length no stream has) or ErrWrongKey (a segment that does
// not authenticate under k, truncation and reordering included).
func open(k Key, info string, ciphertext []byte) ([]byte, error) {
	size, err := PlaintextSize(int64(len(ciphertext)))
	if err != nil {
		return nil, err
	}
	a := payloadAEAD(k, info)
	out := make([]byte, 0, size)
	n := segments(int64(len(ciphertext)))
	for i := int64(0); i < n; i++ {
		end := min(len(ciphertext), SealedSegmentSize)
		out, err = openSegment(a, out, ciphertext[:end], i, i == n-1)
		if err != nil {
			return nil, err
		}
		ciphertext = ciphertext[end:]
	}
	return out, nil
}
