package core

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// wordlist.txt is the BIP-39 English word list (2048 words, one per line,
// sorted; no two words share their first four letters). It was copied from
// github.com/tyler-smith/go-bip39 v1.1.0, file wordlists/english.go
// (MIT License, Copyright (c) 2014-2018 Tyler Smith and contributors), which
// reproduces bip-0039/english.txt of github.com/bitcoin/bips unchanged
// (CRC-32 c1dbd296, checked by the tests).
//
//go:embed wordlist.txt
var codeWordListText string

// codeWords is the word list; a Code's Words index it.
var codeWords = func() []string {
	w := strings.Split(strings.TrimSuffix(codeWordListText, "\n"), "\n")
	if len(w) != codeWordListSize || !slices.IsSorted(w) {
		panic("cell: embedded word list is corrupt")
	}
	return w
}()

const (
	codeWordListSize = 2048 // 11 bits per word
	codeNumWords     = 3
	codeNameplates   = 10000 // nameplates are 0000-9999
	codePrefixLen    = 4     // letters that identify a word
	codeMaxLen       = 200   // longest input ParseCode looks at, in bytes
	codeRandomTries  = 64    // rejection-sampling bound, see codeUniform
)

// ErrBadCode is returned, wrapped with the specific reason, by [ParseCode]
// for input that is not an invite code.
var ErrBadCode = errors.New("cell: bad invite code")

// Code is a one-time invite code, the one a person reads aloud to another
// device: NNNN-word-word-word, e.g. 4721-apple-orbit-tunnel.
//
// The nameplate NNNN (0000-9999) only names the meeting place: both sides
// derive the rendezvous key from it, so it is not secret. The three words,
// from the 2048-word BIP-39 English list, are the PAKE password: 3 x 11 = 33
// bits chosen uniformly, of which an attacker can test one guess per run.
// The zero Code is valid (0000-abandon-abandon-abandon).
type Code struct {
	// Nameplate names the meeting place; it is 0-9999 and not secret.
	Nameplate uint16
	// Words index the word list (0-2047); they are the PAKE password.
	Words [codeNumWords]uint16
}

// NewCode returns a code with a uniformly random nameplate and words, read
// from rand (crypto/rand.Reader in production). It uses rejection sampling,
// so there is no modulo bias; it fails only if rand fails or keeps
// returning out-of-range values.
func NewCode(rand io.Reader) (Code, error) {
	var c Code
	var err error
	if c.Nameplate, err = codeUniform(rand, codeNameplates); err != nil {
		return Code{}, err
	}
	for i := range c.Words {
		if c.Words[i], err = codeUniform(rand, codeWordListSize); err != nil {
			return Code{}, err
		}
	}
	return c, nil
}

// codeUniform returns a uniform value in [0, n) for 0 < n <= 1<<15: it masks
// two random bytes to the smallest covering power of two and rejects values
// not below n.
func codeUniform(rand io.Reader, n uint16) (uint16, error) {
	mask := uint16(1)
	for mask < n-1 {
		mask = mask<<1 | 1
	}
	var b [2]byte
	for range codeRandomTries {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return 0, fmt.Errorf("cell: read random code: %w", err)
		}
		if v := (uint16(b[0])<<8 | uint16(b[1])) & mask; v < n {
			return v, nil
		}
	}
	return 0, errors.New("cell: random source keeps returning out-of-range values")
}

// ParseCode parses an invite code as a person types it. It is tolerant:
// letters may be in any case, leading and trailing white space is ignored,
// parts may be separated by '-', spaces or tabs (runs count as one), the
// nameplate may have 1-4 digits ("42" is 0042), and a word may be given by
// its first four letters or more ("orbi" for "orbit"). Words shorter than
// four letters must be complete.
//
// Errors wrap [ErrBadCode] and say what is wrong: input longer than 200
// bytes, not exactly four parts, a nameplate that is not 1-4 digits, or an
// unknown word (quoted).
func ParseCode(s string) (Code, error) {
	if len(s) > codeMaxLen {
		return Code{}, fmt.Errorf("cell: code is %d bytes, longer than %d: %w", len(s), codeMaxLen, ErrBadCode)
	}
	parts := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool {
		return r == '-' || r == ' ' || r == '\t'
	})
	if len(parts) != 1+codeNumWords {
		return Code{}, fmt.Errorf("cell: code has %d parts, want 4 (NNNN-word-word-word): %w", len(parts), ErrBadCode)
	}
	var c Code
	np, ok := parseNameplate(parts[0])
	if !ok {
		return Code{}, fmt.Errorf("cell: nameplate %q is not 1 to 4 digits: %w", parts[0], ErrBadCode)
	}
	c.Nameplate = np
	for i, w := range parts[1:] {
		idx, ok := lookupCodeWord(w)
		if !ok {
			return Code{}, fmt.Errorf("cell: unknown word %q (word %d of %d): %w", w, i+1, codeNumWords, ErrBadCode)
		}
		c.Words[i] = idx
	}
	return c, nil
}

// parseNameplate accepts 1-4 ASCII digits.
func parseNameplate(s string) (uint16, bool) {
	if len(s) < 1 || len(s) > 4 {
		return 0, false
	}
	var n uint16
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint16(s[i]-'0')
	}
	return n, true
}

// lookupCodeWord returns the index of the word w names, compared without
// regard to ASCII case: the word itself, or, if w has at least four
// letters, the only word it is a prefix of.
func lookupCodeWord(w string) (uint16, bool) {
	b := []byte(w)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case 'a' <= c && c <= 'z':
		default:
			return 0, false // the list has only ASCII letters
		}
	}
	lw := string(b)
	i, found := slices.BinarySearch(codeWords, lw)
	if found {
		return uint16(i), true
	}
	// Words sharing a prefix of four or more letters are unique, so the only
	// candidate is the first word after lw in sorted order.
	if len(lw) >= codePrefixLen && i < len(codeWords) && strings.HasPrefix(codeWords[i], lw) {
		return uint16(i), true
	}
	return 0, false
}

// Valid reports whether c is a possible code: nameplate 0-9999 and every
// word index below 2048.
func (c Code) Valid() bool {
	if c.Nameplate >= codeNameplates {
		return false
	}
	for _, w := range c.Words {
		if w >= codeWordListSize {
			return false
		}
	}
	return true
}

// String returns the canonical form, e.g. "0042-apple-orbit-tunnel": the
// nameplate zero-padded to four digits and the lowercase words, joined by
// '-'. For an invalid code it returns "invalid-code", which does not parse.
func (c Code) String() string {
	if !c.Valid() {
		return "invalid-code"
	}
	return fmt.Sprintf("%04d-%s", c.Nameplate, strings.Join(c.words(), "-"))
}

// Password returns the PAKE password of c: its three lowercase words
// separated by single spaces, e.g. "apple orbit tunnel". It depends only on
// the words, never on how the code was typed, and not on the nameplate. It
// panics if c is not valid, which ParseCode and NewCode never return.
func (c Code) Password() []byte {
	if !c.Valid() {
		panic("cell: Password of an invalid code")
	}
	return []byte(strings.Join(c.words(), " "))
}

func (c Code) words() []string {
	w := make([]string, codeNumWords)
	for i, idx := range c.Words {
		w[i] = codeWords[idx]
	}
	return w
}
