package contact

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strings"
)

// Parameters of the safety number (doc.go has the construction).
const (
	// SafetyIterations is how many times each side's hash is iterated
	// (Signal's numeric fingerprint: 5200).
	SafetyIterations = 5200
	// safetyVersion is the 2-byte big-endian version hashed first.
	safetyVersion = 0
	// SafetyDigits is the length of a safety number: 30 digits a side.
	SafetyDigits = 60
	// safetyIdent is the stable identifier hashed with each key.
	safetyIdent = "exopeer-cell"
)

// Fingerprint returns one cell's half of a safety number: 30 decimal
// digits from its public key, or an error if key is not an Ed25519
// public key.
func Fingerprint(key ed25519.PublicKey) (string, error) {
	if len(key) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: cell key of %d bytes, want %d", ErrBadCard, len(key), ed25519.PublicKeySize)
	}
	return fingerprint(key, []byte(safetyIdent)), nil
}

// fingerprint is libsignal's displayable half of a numeric fingerprint
// (version 0) of key, an encoded public key, and ident, its stable
// identifier: the first hash is of 0x0000 || key || ident || key, each
// next one of the previous || key.
func fingerprint(key, ident []byte) string {
	in := binary.BigEndian.AppendUint16(nil, safetyVersion)
	in = append(append(append(in, key...), ident...), key...)
	sum := sha512.Sum512(in)
	next := make([]byte, sha512.Size+len(key))
	for i := 1; i < SafetyIterations; i++ {
		copy(next, sum[:])
		copy(next[sha512.Size:], key)
		sum = sha512.Sum512(next)
	}
	var out strings.Builder
	for i := range 6 {
		c := sum[i*5 : i*5+5]
		v := uint64(c[0])<<32 | uint64(c[1])<<24 | uint64(c[2])<<16 | uint64(c[3])<<8 | uint64(c[4])
		fmt.Fprintf(&out, "%05d", v%100000)
	}
	return out.String()
}

// SafetyNumber returns the 60 digits two cells compare to know that each
// holds the other's true key: both halves (Fingerprint), the one of the
// key that sorts first by bytes first, so that both sides compute the
// same number.
func SafetyNumber(a, b ed25519.PublicKey) (string, error) {
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	fa, err := Fingerprint(a)
	if err != nil {
		return "", err
	}
	fb, err := Fingerprint(b)
	if err != nil {
		return "", err
	}
	return fa + fb, nil
}

// GroupDigits writes a safety number in groups of 5 digits, separated by
// spaces, as people read it aloud.
func GroupDigits(n string) string {
	var out strings.Builder
	for i := 0; i < len(n); i += 5 {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(n[i:min(i+5, len(n))])
	}
	return out.String()
}
