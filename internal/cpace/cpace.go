// Package cpace implements the CPace balanced password-authenticated key
// exchange (PAKE) for the ciphersuite CPACE-RISTR255-SHA512: the group
// ristretto255 (RFC 9496) with SHA-512, as specified in the IRTF CFRG draft
// "CPace, a balanced composable PAKE", draft-irtf-cfrg-cpace-21 (April 2026),
// https://datatracker.ietf.org/doc/draft-irtf-cfrg-cpace/ and
// https://github.com/cfrg/draft-irtf-cfrg-cpace.
//
// Two parties that share a low-entropy password PRS each call [Start], send
// the returned 32-byte message to the other together with their associated
// data, and pass what they receive to [State.Finish]. Both obtain the same
// 64-byte intermediate session key ISK if and only if they used the same PRS,
// channel identifier CI, session id sid, and saw the same two messages and
// associated data. An active attacker gets one password guess per run; a
// passive one learns nothing about the password.
//
// This package implements the initiator-responder setting of the draft
// (transcript_ir, Section 6.3): the [Role] fixes which message comes first in
// the transcript. Explicit key confirmation follows Section 10.4 of the draft
// ([ConfirmTag], [VerifyTag]); keys for use are derived from ISK with HKDF
// ([SessionKey]), as Section 10.3 recommends. The draft's test vectors for
// ristretto255 (Appendix B.3) are checked in the tests.
//
// The package is pure: randomness is an argument, it starts no goroutines,
// reads no clock and does not log. A [State] is not safe for concurrent use.
package cpace

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"

	"github.com/gtank/ristretto255"
)

// Sizes of the values this package produces and accepts, in bytes.
const (
	// MessageSize is the size of a CPace message: an encoded ristretto255 element.
	MessageSize = 32
	// ISKSize is the size of the intermediate session key returned by Finish.
	ISKSize = sha512.Size
	// TagSize is the size of a key-confirmation tag (untruncated HMAC-SHA-512).
	TagSize = sha512.Size
)

// ErrInvalidMessage is returned, wrapped, by [State.Finish] when the peer's
// message is not a valid CPace message: wrong length, not a canonical
// ristretto255 encoding, or the identity element. The run must be aborted.
var ErrInvalidMessage = errors.New("cpace: invalid peer message")

var (
	errUsed       = errors.New("cpace: Finish already called on this state")
	errBadRole    = errors.New("cpace: unknown role")
	errZeroScalar = errors.New("cpace: random source keeps yielding a zero scalar")
)

// Role says which side a party plays; it fixes the transcript order
// (initiator-responder mode): the initiator's message and associated data
// come first. The two parties of a run must take different roles.
type Role int

const (
	// Initiator is party A of the draft.
	Initiator Role = iota
	// Responder is party B of the draft.
	Responder
)

// String returns "initiator" or "responder".
func (r Role) String() string {
	switch r {
	case Initiator:
		return "initiator"
	case Responder:
		return "responder"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Constants of the ciphersuite (draft Sections 6.2, 7.2 and 8.3).
const (
	dsi       = "CPaceRistretto255" // G_Ristretto255.DSI
	dsiISK    = dsi + "_ISK"        // G.DSI || b"_ISK"
	macPrefix = "CPaceMac"          // Section 10.4
	sInBytes  = 128                 // H.s_in_bytes of SHA-512

	// scalarTries bounds the resampling of a zero scalar. A zero scalar has
	// probability about 2^-252 per try, so reaching the bound means the
	// random source is broken.
	scalarTries = 8
)

// State is one party's state between [Start] and [State.Finish]. It holds
// the secret scalar, which Finish zeroes; a State can finish only once.
type State struct {
	role Role
	y    *ristretto255.Scalar // nil once Finish has been called
	msg  []byte               // this party's message Y
	ad   []byte               // this party's associated data
	sid  []byte
}

// Start begins one CPace run: prs is the password, ci the channel
// identifier, sid the session id, ad this party's associated data (sent to
// the peer in the clear alongside the message). Any of ci, sid and ad may be
// empty; a fresh sid agreed by both sides is recommended (draft Section 10.9),
// and identities should go into ci (Section 10.1).
//
// It returns the state and this party's message (the encoded element Y,
// [MessageSize] bytes). rand supplies the secret scalar: pass
// crypto/rand.Reader in production. Start reads 64 bytes from rand and
// reduces them modulo the group order (statistically uniform; draft Section
// 10.7), rejecting zero; it uses rand itself, so a fixed reader in a test
// gives a fixed scalar. Start copies its arguments; it does not block
// unless rand does.
func Start(role Role, prs, ci, sid, ad []byte, rand io.Reader) (*State, []byte, error) {
	if role != Initiator && role != Responder {
		return nil, nil, fmt.Errorf("cpace: start as %v: %w", role, errBadRole)
	}
	y, err := sampleScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	g := calculateGenerator(prs, ci, sid)
	msg := ristretto255.NewElement().ScalarMult(y, g).Bytes()
	g.Zero() // the generator is derived from the password
	s := &State{
		role: role,
		y:    y,
		msg:  msg,
		ad:   append([]byte(nil), ad...),
		sid:  append([]byte(nil), sid...),
	}
	return s, append([]byte(nil), msg...), nil
}

// Finish takes the peer's message and associated data and returns the
// intermediate session key ISK ([ISKSize] bytes). It rejects a peer message
// of the wrong length, one that does not decode, and the identity element,
// with an error wrapping [ErrInvalidMessage]; the caller must then abort.
//
// Finish zeroes the secret scalar whatever the outcome, so it may be called
// only once per State. It does not retain peerMsg or peerAD.
//
// ISK authenticates the transcript implicitly. Before relying on the peer,
// exchange [ConfirmTag] tags; before using ISK as a key, derive keys with
// [SessionKey].
func (s *State) Finish(peerMsg, peerAD []byte) ([]byte, error) {
	if s.y == nil {
		return nil, errUsed
	}
	defer func() {
		s.y.Zero()
		s.y = nil
	}()
	k, err := scalarMultVfy(s.y, peerMsg)
	if err != nil {
		return nil, err
	}
	var tr []byte
	if s.role == Initiator {
		tr = transcriptIR(s.msg, s.ad, peerMsg, peerAD)
	} else {
		tr = transcriptIR(peerMsg, peerAD, s.msg, s.ad)
	}
	isk := deriveISK(s.sid, k, tr)
	clear(k)
	return isk, nil
}

// ConfirmTag returns the explicit key-confirmation tag that a party sends
// after [State.Finish], as recommended in draft Section 10.4:
//
//	mac_key = SHA-512(b"CPaceMac" || sid || ISK)
//	tag     = HMAC-SHA-512(mac_key, lv_cat(Y, AD))
//
// where Y and AD are the message and associated data that this same party
// sent. Each side thus authenticates its own message, so the two tags of a
// run differ and a reflected tag does not verify. The result is [TagSize]
// bytes.
func ConfirmTag(isk, sid, msg, ad []byte) []byte {
	key := macKey(isk, sid)
	defer clear(key)
	m := hmac.New(sha512.New, key)
	m.Write(lvCat(msg, ad))
	return m.Sum(nil)
}

// VerifyTag reports, in constant time, whether tag is the peer's
// confirmation tag for ISK, where peerMsg and peerAD are the message and
// associated data the peer sent (the inputs of [ConfirmTag] on its side).
// On false the caller must abort and discard ISK.
func VerifyTag(isk, sid, peerMsg, peerAD, tag []byte) bool {
	return hmac.Equal(ConfirmTag(isk, sid, peerMsg, peerAD), tag)
}

// SessionKey derives an n-byte key for the purpose named by label from ISK
// with HKDF-SHA-512 (RFC 5869; no salt, label as info). Distinct labels give
// independent keys. It panics if n is not in 1..255*64, which is a
// programming error.
func SessionKey(isk []byte, label string, n int) []byte {
	if n <= 0 {
		panic(fmt.Sprintf("cpace: SessionKey length %d", n))
	}
	k, err := hkdf.Key(sha512.New, isk, nil, label, n)
	if err != nil {
		panic("cpace: SessionKey: " + err.Error())
	}
	return k
}

// sampleScalar returns a uniformly random nonzero scalar: 64 bytes from rand
// reduced modulo the group order.
func sampleScalar(rand io.Reader) (*ristretto255.Scalar, error) {
	var buf [64]byte
	defer clear(buf[:])
	zero := ristretto255.NewScalar()
	for range scalarTries {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return nil, fmt.Errorf("cpace: read random scalar: %w", err)
		}
		y, err := ristretto255.NewScalar().SetUniformBytes(buf[:])
		if err != nil {
			panic(err) // buf has the right length
		}
		if y.Equal(zero) == 0 {
			return y, nil
		}
	}
	return nil, errZeroScalar
}

// calculateGenerator implements G.calculate_generator (draft Section 8.3):
// element_derivation(SHA-512(generator_string(DSI, PRS, CI, sid))).
func calculateGenerator(prs, ci, sid []byte) *ristretto255.Element {
	gs := generatorString(prs, ci, sid)
	h := sha512.Sum512(gs)
	clear(gs)
	g, err := ristretto255.NewElement().SetUniformBytes(h[:])
	clear(h[:])
	if err != nil {
		panic(err) // h has the right length
	}
	return g
}

// generatorString implements generator_string (draft Section 8.1 and A.2):
// lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid), where the zero padding
// makes DSI and PRS fill the first hash block.
func generatorString(prs, ci, sid []byte) []byte {
	zpad := sInBytes - 1 - len(prependLen(nil, prs)) - len(prependLen(nil, []byte(dsi)))
	return lvCat([]byte(dsi), prs, make([]byte, max(0, zpad)), ci, sid)
}

// scalarMultVfy implements G.scalar_mult_vfy (draft Section 8.3) with the
// abort folded in: it returns the encoding of y*X, or an error wrapping
// ErrInvalidMessage when X does not decode or the result is the identity.
func scalarMultVfy(y *ristretto255.Scalar, x []byte) ([]byte, error) {
	p, err := decodeMessage(x)
	if err != nil {
		return nil, err
	}
	k := ristretto255.NewElement().ScalarMult(y, p)
	if k.Equal(ristretto255.NewIdentityElement()) == 1 { // unreachable for nonzero y in a prime-order group
		return nil, fmt.Errorf("cpace: shared element is the identity: %w", ErrInvalidMessage)
	}
	return k.Bytes(), nil
}

// decodeMessage decodes a peer's message: MessageSize bytes, the canonical
// encoding of an element other than the identity.
func decodeMessage(x []byte) (*ristretto255.Element, error) {
	if len(x) != MessageSize {
		return nil, fmt.Errorf("cpace: peer message is %d bytes, want %d: %w", len(x), MessageSize, ErrInvalidMessage)
	}
	p, err := ristretto255.NewElement().SetCanonicalBytes(x)
	if err != nil {
		return nil, fmt.Errorf("cpace: peer element does not decode: %w", ErrInvalidMessage)
	}
	if p.Equal(ristretto255.NewIdentityElement()) == 1 {
		return nil, fmt.Errorf("cpace: peer element is the identity: %w", ErrInvalidMessage)
	}
	return p, nil
}

// CheckMessage returns the error [State.Finish] would return for peerMsg
// before any scalar multiplication: nil for a valid message, else an error
// wrapping [ErrInvalidMessage]. It lets a responder refuse junk before
// the work of [Start].
func CheckMessage(peerMsg []byte) error {
	_, err := decodeMessage(peerMsg)
	return err
}

// deriveISK implements the ISK computation of draft Section 7.2:
// SHA-512(lv_cat(DSI || b"_ISK", sid, K) || transcript).
func deriveISK(sid, k, transcript []byte) []byte {
	h := sha512.New()
	h.Write(lvCat([]byte(dsiISK), sid, k))
	h.Write(transcript)
	return h.Sum(nil)
}

// macKey implements mac_key = H.hash(b"CPaceMac" || sid || ISK) from draft
// Section 10.4 (plain concatenation, as written there).
func macKey(isk, sid []byte) []byte {
	h := sha512.New()
	h.Write([]byte(macPrefix))
	h.Write(sid)
	h.Write(isk)
	return h.Sum(nil)
}

// transcriptIR implements transcript_ir (draft A.3.4):
// lv_cat(Ya, ADa) || lv_cat(Yb, ADb).
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// transcriptOC implements transcript_oc (draft A.3.6) of the symmetric
// setting. This package does not offer that setting; the function exists to
// check the draft's test vectors.
func transcriptOC(ya, ada, yb, adb []byte) []byte {
	return oCat(lvCat(ya, ada), lvCat(yb, adb))
}

// oCat implements o_cat (draft A.3.2): b"oc" followed by the
// lexicographically larger string, then the other.
func oCat(a, b []byte) []byte {
	if lexLarger(a, b) {
		return append(append([]byte("oc"), a...), b...)
	}
	return append(append([]byte("oc"), b...), a...)
}

// lexLarger implements lexiographically_larger (draft A.3.1).
func lexLarger(a, b []byte) bool {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}

// lvCat implements lv_cat (draft A.1.3): each argument prefixed with its
// LEB128-encoded length.
func lvCat(args ...[]byte) []byte {
	n := 0
	for _, a := range args {
		n += len(a) + 10
	}
	out := make([]byte, 0, n)
	for _, a := range args {
		out = prependLen(out, a)
	}
	return out
}

// prependLen appends prepend_len(data) (draft A.1.1) to dst: the LEB128
// encoding of len(data), then data.
func prependLen(dst, data []byte) []byte {
	n := uint64(len(data))
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	dst = append(dst, byte(n))
	return append(dst, data...)
}
