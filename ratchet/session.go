package ratchet

import (
	"crypto/cipher"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"math"
)

// ErrCannotSend is Encrypt's error before a session can send: a
// responder sends only once it has opened a message of the initiator.
var ErrCannotSend = errors.New("ratchet: no sending chain yet (a responder sends after its first message in)")

// ErrChainExhausted is Encrypt's error after 2^32-1 messages in one
// sending chain (N is a uint32); a message from the peer starts a new one.
var ErrChainExhausted = errors.New("ratchet: sending chain exhausted")

// MaxAD is the longest associated data a session takes.
const MaxAD = math.MaxUint16

// Session is one side of a Double Ratchet conversation with header
// encryption (the specification's section 4). It is a value: its methods
// are not safe for concurrent use, do no I/O, and take their randomness
// from the reader they are given. MarshalBinary and UnmarshalBinary store
// and restore it.
type Session struct {
	root, message string // the KDF info strings (Params.Root, Params.Message)
	ad            []byte // the handshake's associated data

	dhs    *dhPair  // DHRs, our current ratchet key pair
	dhr    [32]byte // DHRr, the peer's ratchet public key
	hasDHr bool

	rk       [32]byte // RK
	cks, ckr [32]byte // CKs, CKr
	hasCKs   bool     // a sending chain exists (else: the next Encrypt steps)
	hasCKr   bool
	ns, nr   uint32 // Ns, Nr
	pn       uint32 // PN

	hks, hkr   [32]byte // HKs, HKr
	hasHKs     bool
	hasHKr     bool
	nhks, nhkr [32]byte    // NHKs, NHKr
	hksG, hkrG cipher.AEAD // GCMs of hks and hkr, made on first use; not stored
	skipped    []skippedKey
	adBuf      []byte          // ad || encrypted header, the body's associated data; scratch
	hdrBuf     [headerLen]byte // a header in the clear; scratch
}

// NewInitiator is RatchetInitAliceHE: the session of the side that made
// the handshake (the initiator), which sends first. remoteRatchet is the
// responder's ratchet public key (its signed prekey); rand gives the 32
// bytes of the initiator's first ratchet private key.
func NewInitiator(p *Params, rand io.Reader, s Secret, ad []byte, remoteRatchet *ecdh.PublicKey) (*Session, error) {
	if err := checkParams(p, ad); err != nil {
		return nil, err
	}
	if remoteRatchet == nil || remoteRatchet.Curve() != ecdh.X25519() {
		return nil, errors.New("ratchet: the remote ratchet key is not an X25519 key")
	}
	dhs, err := readDHPair(rand)
	if err != nil {
		return nil, err
	}
	dh, err := dhs.dh((*[32]byte)(remoteRatchet.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("ratchet: initiator's first DH: %w", err)
	}
	x := &Session{root: p.Root, message: p.Message, ad: append([]byte(nil), ad...), dhs: dhs, hasDHr: true,
		hks: s.HeaderA, hasHKs: true, nhkr: s.HeaderB, hasCKs: true}
	copy(x.dhr[:], remoteRatchet.Bytes())
	x.rk, x.cks, x.nhks = kdfRK(x.root, &s.Root, dh)
	return x, nil
}

// NewResponder is RatchetInitBobHE: the session of the side that answered
// the handshake, whose ratchet key pair is its signed prekey pair. It can
// decrypt the initiator's messages, and encrypt once it has opened one.
func NewResponder(p *Params, s Secret, ad []byte, ourRatchet *ecdh.PrivateKey) (*Session, error) {
	if err := checkParams(p, ad); err != nil {
		return nil, err
	}
	if ourRatchet == nil || ourRatchet.Curve() != ecdh.X25519() {
		return nil, errors.New("ratchet: our ratchet key is not an X25519 key")
	}
	dhs, err := newDHPair(ourRatchet.Bytes())
	if err != nil {
		return nil, err
	}
	return &Session{root: p.Root, message: p.Message, ad: append([]byte(nil), ad...), dhs: dhs,
		rk: s.Root, nhks: s.HeaderB, nhkr: s.HeaderA}, nil
}

// maxInfo is the longest info string a session takes (it is stored with
// a one-byte length). The KDFs work on the stack up to maxStackInfo bytes
// (Exopeer's strings are 18 to 22) and beyond it through crypto/hkdf.
const maxInfo = 255

// checkParams checks what a session stores with a length: the info
// strings (at most 255 bytes) and the associated data (MaxAD).
func checkParams(p *Params, ad []byte) error {
	if len(p.Root) > maxInfo || len(p.Message) > maxInfo {
		return fmt.Errorf("ratchet: an info string longer than %d bytes", maxInfo)
	}
	if len(ad) > MaxAD {
		return fmt.Errorf("ratchet: associated data of %d bytes, more than %d", len(ad), MaxAD)
	}
	return nil
}

// Encrypt is RatchetEncryptHE: it returns plaintext sealed as the next
// message of the session's sending chain, and advances the chain. If the
// session opened a message with a new ratchet key since it last sent, it
// first takes the sending half of the DH ratchet step (a new ratchet key
// pair of 32 bytes read from rand). Then it reads the header's 12-byte
// nonce from rand. On an error the session is unchanged. plaintext is
// not kept.
func (s *Session) Encrypt(rand io.Reader, plaintext []byte) ([]byte, error) {
	if !s.hasCKs && !s.hasDHr {
		return nil, ErrCannotSend
	}
	var dhs *dhPair
	var rk, cks, nhks [32]byte
	step := !s.hasCKs
	if step {
		var err error
		if dhs, err = readDHPair(rand); err != nil {
			return nil, err
		}
		dh, err := dhs.dh(&s.dhr)
		if err != nil {
			return nil, fmt.Errorf("ratchet: DH step: %w", err)
		}
		rk, cks, nhks = kdfRK(s.root, &s.rk, dh)
	} else if s.ns == math.MaxUint32 {
		return nil, ErrChainExhausted
	}
	out := make([]byte, headerEnd, headerEnd+len(plaintext)+gcmTag)
	out[0] = MessageVersion
	if _, err := io.ReadFull(rand, out[headerNonceAt:sealedAt]); err != nil {
		return nil, fmt.Errorf("ratchet: reading a header nonce: %w", err)
	}
	if step {
		s.dhs, s.rk, s.cks, s.hasCKs = dhs, rk, cks, true
		s.nhks = nhks
	}
	h := header{pn: s.pn, n: s.ns}
	h.dh = s.dhs.pub
	if s.hksG == nil {
		s.hksG = newGCM(s.hks[:])
	}
	out = sealHeader(s.hksG, out[:sealedAt], &h, &s.hdrBuf)
	var mk [32]byte
	s.cks, mk = kdfCK(&s.cks)
	s.ns++
	return s.sealBody(out, &mk, plaintext), nil
}

// sealBody appends the body, plaintext sealed under message key mk with
// ad || the encrypted header (out) as associated data.
func (s *Session) sealBody(out []byte, mk *[32]byte, plaintext []byte) []byte {
	key, nonce := messageAEAD(s.message, mk)
	return newGCM(key[:]).Seal(out, nonce[:], plaintext, s.bodyAD(out[:headerEnd]))
}

// openBody opens the body of msg under message key mk.
func (s *Session) openBody(msg []byte, mk *[32]byte) ([]byte, bool) {
	key, nonce := messageAEAD(s.message, mk)
	pt, err := newGCM(key[:]).Open(nil, nonce[:], msg[headerEnd:], s.bodyAD(msg[:headerEnd]))
	return pt, err == nil
}

// bodyAD is ad || the encrypted header, in the session's scratch buffer.
func (s *Session) bodyAD(encHeader []byte) []byte {
	s.adBuf = append(append(s.adBuf[:0], s.ad...), encHeader...)
	return s.adBuf
}

// Decrypt is RatchetDecryptHE: it opens message and returns its
// plaintext, advancing the session (a DH step if the header is under the
// next header key; skipped message keys stored, or one used). Any failure
// is ErrRefused and leaves the session exactly as it was.
//
// The order of the specification's trials is changed, not their result:
// the current receiving header key HKr is tried first (a header that
// opens under it with N below Nr is looked up in the skipped keys, as
// TrySkippedMessageKeysHE would have found it), then each other stored
// header key, then NHKr. A header opens under one key only.
func (s *Session) Decrypt(message []byte) ([]byte, error) {
	if len(message) < MessageOverhead || message[0] != MessageVersion || s.dhs == nil {
		return nil, ErrRefused
	}
	if s.hasHKr {
		if s.hkrG == nil {
			s.hkrG = newGCM(s.hkr[:])
		}
		if h, ok := openHeader(s.hkrG, message, &s.hdrBuf); ok {
			if h.n < s.nr {
				return s.openSkipped(&s.hkr, h.n, message)
			}
			return s.receive(&h, false, message)
		}
	}
	var skip *[32]byte
	if s.hasHKr {
		skip = &s.hkr
	}
	if hk, h, ok := s.trySkippedHeaders(message, skip); ok {
		return s.openSkipped(&hk, h.n, message)
	}
	if h, ok := openHeader(newGCM(s.nhkr[:]), message, &s.hdrBuf); ok {
		if s.hasDHr && !s.hasCKs {
			// A second new ratchet key before we answered the first: an
			// honest peer cannot send it (it needs our next key).
			return nil, ErrRefused
		}
		return s.receive(&h, true, message)
	}
	return nil, ErrRefused
}

// openSkipped opens message with the stored key of message n under
// header key hk, and drops that key if it opens it.
func (s *Session) openSkipped(hk *[32]byte, n uint32, message []byte) ([]byte, error) {
	i := s.findSkipped(hk, n)
	if i < 0 {
		return nil, ErrRefused
	}
	pt, ok := s.openBody(message, &s.skipped[i].mk)
	if !ok {
		return nil, ErrRefused
	}
	s.dropSkipped(i)
	return pt, nil
}

// receive opens a message whose header h opened under HKr (step false)
// or NHKr (step true): SkipMessageKeysHE, DHRatchetHE's receiving half
// on a step, SkipMessageKeysHE again, KDF_CK. It works on a copy of the
// state and keeps it only if the body opens.
func (s *Session) receive(h *header, step bool, message []byte) ([]byte, error) {
	if h.n == math.MaxUint32 {
		// No sender makes it (Encrypt stops at 2^32-2), and Nr would wrap.
		return nil, ErrRefused
	}
	t := *s
	var keys []skippedKey // the keys skipped, stored if the body opens
	var ok bool
	if step {
		if keys, ok = skipKeys(keys, &t.hkr, &t.ckr, t.hasCKr, &t.nr, h.pn); !ok {
			return nil, ErrRefused
		}
		dh, err := t.dhs.dh(&h.dh)
		if err != nil {
			return nil, ErrRefused
		}
		t.pn, t.ns, t.nr = t.ns, 0, 0
		t.hks, t.hasHKs, t.hksG = t.nhks, true, nil
		t.hkr, t.hasHKr, t.hkrG = t.nhkr, true, nil
		t.dhr, t.hasDHr = h.dh, true
		rk := t.rk
		t.rk, t.ckr, t.nhkr = kdfRK(t.root, &rk, dh)
		t.hasCKr = true
		t.cks, t.hasCKs = [32]byte{}, false // the sending half of the step comes with the next Encrypt
	}
	if keys, ok = skipKeys(keys, &t.hkr, &t.ckr, t.hasCKr, &t.nr, h.n); !ok {
		return nil, ErrRefused
	}
	var mk [32]byte
	t.ckr, mk = kdfCK(&t.ckr)
	t.nr++
	pt, ok := s.openBody(message, &mk)
	if !ok {
		clear(keys)
		return nil, ErrRefused
	}
	t.adBuf = s.adBuf // scratch, grown by openBody
	*s = t
	s.addSkipped(keys)
	clear(keys)
	return pt, nil
}
