package ratchet

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// X3DH and PQXDH (doc.go, "Handshakes and prekey bundles").

const (
	// InitialHeaderVersion is the version byte of an initial message's header.
	InitialHeaderVersion = 2
	// identitySealedSize is IK_A and its signature, sealed (AES-256-GCM).
	identitySealedSize = 32 + 64 + gcmTag
	// initialClearSize is a header's clear part without PQXDH; PQXDH adds
	// the ML-KEM key id and ciphertext. The sealed identity follows it.
	initialClearSize    = 1 + 1 + 1 + 32 + 32 + 4 + 4
	initialHeaderSize   = initialClearSize + identitySealedSize
	initialHeaderPQSize = initialHeaderSize + 4 + KEMCiphertextSize
	// adPrefix starts the associated data of every session.
	adPrefix = "exopeer-ad-v1"
)

// PrekeyKind says which of the responder's prekeys is the fourth DH's.
type PrekeyKind byte

const (
	// PrekeyOneTime is a one-time prekey, consumed by the responder.
	PrekeyOneTime PrekeyKind = 1
	// PrekeyLastResort is the last-resort prekey, used when the bundle has no
	// one-time prekey left; never consumed.
	PrekeyLastResort PrekeyKind = 2
)

// InitialHeader is what an initial message carries before its first
// Double Ratchet message: who the initiator is, its ephemeral key, which
// of the responder's prekeys it used, and (PQXDH) the ML-KEM ciphertext.
//
// On the wire the initiator's identity key and its signature are sealed
// under a key from DH3 (doc.go): a header made by InitiateSecret holds
// that key and MarshalBinary seals them; ParseInitialHeader keeps the
// sealed bytes and leaves Identity and IdentitySig zero, and
// RespondSecret opens them. A header from neither cannot be encoded.
type InitialHeader struct {
	// SigningKey is the initiator's Ed25519 public key (its libp2p key);
	// the shell checks it is a device it expects.
	SigningKey [32]byte
	// Identity is the initiator's identity X25519 public key (IK_A),
	// sealed on the wire.
	Identity [32]byte
	// IdentitySig is SigningKey's signature of Identity, sealed on the wire.
	IdentitySig [64]byte
	// Ephemeral is the initiator's ephemeral X25519 public key (EK_A).
	Ephemeral [32]byte
	// SignedPrekeyID is the id of the responder's signed prekey used.
	SignedPrekeyID uint32
	// Kind and PrekeyID say which other prekey of the responder was used.
	Kind     PrekeyKind
	PrekeyID uint32
	// PQ says the handshake is PQXDH; KEMID and KEMCiphertext are then the
	// responder's ML-KEM key's id and the ciphertext to it.
	PQ            bool
	KEMID         uint32
	KEMCiphertext []byte

	seal   *[44]byte // the initiator's sealing key and nonce (identityKey)
	sealed []byte    // the sealed identity, as parsed
}

// appendClear appends the header's clear part: the sealed identity's
// associated data.
func (h *InitialHeader) appendClear(out []byte) []byte {
	pq := byte(0)
	if h.PQ {
		pq = 1
	}
	out = append(out, InitialHeaderVersion, byte(h.Kind), pq)
	out = append(out, h.SigningKey[:]...)
	out = append(out, h.Ephemeral[:]...)
	out = binary.BigEndian.AppendUint32(out, h.SignedPrekeyID)
	out = binary.BigEndian.AppendUint32(out, h.PrekeyID)
	if h.PQ {
		out = binary.BigEndian.AppendUint32(out, h.KEMID)
		out = append(out, h.KEMCiphertext...)
	}
	return out
}

// identityKey is the sealed identity's AES-256-GCM key and nonce:
// HKDF(salt = 32 zero bytes, ikm = DH3, info = p.InitialIdentity), 44
// bytes, the key then the nonce. DH3 is new with each ephemeral key, so a
// key seals one identity.
func identityKey(p *Params, dh3 []byte) *[44]byte {
	var b [44]byte
	hkdfInto(b[:], dh3, zeroSalt[:], p.InitialIdentity)
	return &b
}

// MarshalBinary encodes h (doc.go), sealing its identity; a header
// neither made by InitiateSecret nor parsed is an error.
func (h *InitialHeader) MarshalBinary() ([]byte, error) {
	n := initialHeaderSize
	if h.PQ {
		n = initialHeaderPQSize
	}
	out := h.appendClear(make([]byte, 0, n))
	switch {
	case h.seal != nil:
		plain := append(h.Identity[:], h.IdentitySig[:]...)
		return newGCM(h.seal[:32]).Seal(out, h.seal[32:], plain, out), nil
	case len(h.sealed) == identitySealedSize:
		return append(out, h.sealed...), nil
	}
	return nil, errors.New("ratchet: an initial header neither made by InitiateSecret nor parsed has no sealing key")
}

// ParseInitialHeader reads an initial message's header from the start of
// data and returns it and the rest of data (the first Double Ratchet
// message). The identity stays sealed: RespondSecret opens it. Any failure
// is ErrRefused: data comes from a peer.
func ParseInitialHeader(data []byte) (*InitialHeader, []byte, error) {
	if len(data) < initialHeaderSize || data[0] != InitialHeaderVersion {
		return nil, nil, ErrRefused
	}
	h := &InitialHeader{Kind: PrekeyKind(data[1])}
	if h.Kind != PrekeyOneTime && h.Kind != PrekeyLastResort {
		return nil, nil, ErrRefused
	}
	switch data[2] {
	case 0:
	case 1:
		if len(data) < initialHeaderPQSize {
			return nil, nil, ErrRefused
		}
		h.PQ = true
	default:
		return nil, nil, ErrRefused
	}
	d := hsDecoder{b: data[3:]}
	d.copy(h.SigningKey[:])
	d.copy(h.Ephemeral[:])
	h.SignedPrekeyID = d.uint32()
	h.PrekeyID = d.uint32()
	if h.PQ {
		h.KEMID = d.uint32()
		h.KEMCiphertext = append([]byte(nil), d.take(KEMCiphertextSize)...)
	}
	h.sealed = append([]byte(nil), d.take(identitySealedSize)...)
	return h, d.b, nil
}

// openIdentity opens a parsed header's sealed identity under dh3 (the
// responder's DH3) and returns IK_A and its signature, or false. A header
// not parsed (made by InitiateSecret in this process) is taken as it is.
func (h *InitialHeader) openIdentity(p *Params, dh3 []byte) (ik [32]byte, sig [64]byte, ok bool) {
	if h.sealed == nil {
		return h.Identity, h.IdentitySig, true
	}
	k := identityKey(p, dh3)
	n := initialClearSize
	if h.PQ {
		n += 4 + len(h.KEMCiphertext)
	}
	plain, err := newGCM(k[:32]).Open(nil, k[32:], h.sealed, h.appendClear(make([]byte, 0, n)))
	if err != nil || len(plain) != 96 {
		return ik, sig, false
	}
	copy(ik[:], plain[:32])
	copy(sig[:], plain[32:])
	return ik, sig, true
}

// Encapsulation is an ML-KEM-1024 encapsulation to a bundle's ML-KEM key
// (Bundle.KEM.EncapsulationKey), made by the caller: the core draws no
// randomness for it. A shell calls crypto/mlkem's Encapsulate; tests use
// crypto/mlkem/mlkemtest with fixed randomness.
type Encapsulation struct {
	SharedKey  []byte // 32 bytes
	Ciphertext []byte // KEMCiphertextSize bytes
}

// handshakeAD is AD = "exopeer-ad-v1" || ED_A || IK_A || ED_B || IK_B:
// each side's Ed25519 key beside its identity X25519 key, so that a
// device that certified someone else's identity key under its own
// Ed25519 key cannot pass a session off as its own (an unknown key-share).
func handshakeAD(edA, ikA, edB, ikB *[32]byte) []byte {
	ad := make([]byte, 0, len(adPrefix)+128)
	ad = append(ad, adPrefix...)
	ad = append(ad, edA[:]...)
	ad = append(ad, ikA[:]...)
	ad = append(ad, edB[:]...)
	return append(ad, ikB[:]...)
}

// canonicalX25519 reports whether k is the one encoding of its
// u-coordinate that X25519 makes: the top bit clear and u < 2^255 - 19.
// X25519 reads any other the same as one of these (RFC 7748, section 5).
func canonicalX25519(k *[32]byte) bool {
	if k[31] < 0x7f {
		return true
	}
	if k[31] > 0x7f {
		return false
	}
	for _, b := range k[1:31] {
		if b != 0xff {
			return true
		}
	}
	return k[0] < 0xed
}

// dh is X25519; an all-zero output (a low-order public key) is refused.
func hsDH(priv *ecdh.PrivateKey, pub []byte) ([]byte, error) {
	k, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, ErrRefused
	}
	out, err := priv.ECDH(k)
	if err != nil {
		return nil, ErrRefused
	}
	return out, nil
}

// InitiateSecret is X3DH's (or, with enc, PQXDH's) initiator: it verifies
// the responder's bundle b, reads 32 bytes from rand for its ephemeral key
// and, if b has one-time prekeys, 4 more to pick one (index: their
// big-endian uint32 mod the count), else uses b's last-resort prekey, and
// returns the Secret, the associated data, and the initial message's
// header. ours is the initiator's own prekey state (its identity key),
// signer its Ed25519 key. enc, if not nil, is an encapsulation to b.KEM
// (PQXDH); nil means X3DH. The responder's first ratchet key is
// b.Signed.Key.
func InitiateSecret(p *Params, rand io.Reader, signer ed25519.PrivateKey, ours *Prekeys, b *Bundle, enc *Encapsulation) (Secret, []byte, *InitialHeader, error) {
	return initiateSecret(p, rand, signer, ours, b, enc, true)
}

// initiateSecret is InitiateSecret; oneTime false uses b's last-resort
// prekey whatever one-time prekeys b has (and reads no index).
func initiateSecret(p *Params, rand io.Reader, signer ed25519.PrivateKey, ours *Prekeys, b *Bundle, enc *Encapsulation, oneTime bool) (Secret, []byte, *InitialHeader, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return Secret{}, nil, nil, fmt.Errorf("ratchet: an Ed25519 private key has %d bytes, not %d", ed25519.PrivateKeySize, len(signer))
	}
	if err := b.Verify(); err != nil {
		return Secret{}, nil, nil, err
	}
	if enc != nil && (b.KEM == nil || len(enc.SharedKey) != 32 || len(enc.Ciphertext) != KEMCiphertextSize) {
		return Secret{}, nil, nil, fmt.Errorf("ratchet: an encapsulation needs a bundle's ML-KEM key, a 32-byte key and a %d-byte ciphertext", KEMCiphertextSize)
	}
	ek, err := prekeyFrom(rand)
	if err != nil {
		return Secret{}, nil, nil, err
	}
	h := &InitialHeader{
		SigningKey:     [32]byte(signer.Public().(ed25519.PublicKey)),
		Identity:       ours.IdentityPublic(),
		Ephemeral:      [32]byte(ek.PublicKey().Bytes()),
		SignedPrekeyID: b.Signed.ID,
		Kind:           PrekeyLastResort,
		PrekeyID:       b.LastResort.ID,
	}
	h.IdentitySig = [64]byte(ed25519.Sign(signer, identityMessage(&h.Identity)))
	fourth := b.LastResort.Key
	if n := len(b.OneTime); n > 0 && oneTime {
		var r [4]byte
		if _, err := io.ReadFull(rand, r[:]); err != nil {
			return Secret{}, nil, nil, fmt.Errorf("ratchet: reading randomness: %w", err)
		}
		o := b.OneTime[binary.BigEndian.Uint32(r[:])%uint32(n)]
		h.Kind, h.PrekeyID, fourth = PrekeyOneTime, o.ID, o.Key
	}
	var dhs [4][]byte
	for i, pair := range [4]struct {
		priv *ecdh.PrivateKey
		pub  []byte
	}{
		{ours.identity, b.Signed.Key[:]}, // DH1 = DH(IK_A, SPK_B)
		{ek, b.Identity[:]},              // DH2 = DH(EK_A, IK_B)
		{ek, b.Signed.Key[:]},            // DH3 = DH(EK_A, SPK_B)
		{ek, fourth[:]},                  // DH4 = DH(EK_A, OPK_B or LRK_B)
	} {
		if dhs[i], err = hsDH(pair.priv, pair.pub); err != nil {
			return Secret{}, nil, nil, fmt.Errorf("ratchet: a bundle's key is of low order: %w", ErrBadBundle)
		}
	}
	s := handshakeSecret(p, dhs, enc)
	h.seal = identityKey(p, dhs[2])
	if enc != nil {
		h.PQ, h.KEMID, h.KEMCiphertext = true, b.KEM.ID, append([]byte(nil), enc.Ciphertext...)
	}
	return s, handshakeAD(&h.SigningKey, &h.Identity, &b.SigningKey, &b.Identity), h, nil
}

// handshakeSecret is the KDF of both sides: X3DH's with info p.Handshake,
// or PQXDH's (ss appended) with info p.PQHandshake.
func handshakeSecret(p *Params, dhs [4][]byte, enc *Encapsulation) Secret {
	if enc == nil {
		return secretFrom(handshakeKDF(p.Handshake, 96, dhs[0], dhs[1], dhs[2], dhs[3]))
	}
	return secretFrom(handshakeKDF(p.PQHandshake, 96, dhs[0], dhs[1], dhs[2], dhs[3], enc.SharedKey))
}

// RespondSecret is X3DH's (PQXDH's if h.PQ) responder: it checks h
// against ours at now (Unix seconds), self being the responder's own
// Ed25519 public key (its libp2p key, bound in the AD), and returns the Secret, the
// associated data and the signed prekey's private key (the responder's
// first ratchet key pair). A parsed h's identity is opened under DH3
// (DH(SPK_B, EK_A)) with the header's clear bytes as associated data;
// a header made by InitiateSecret is taken as it is. It refuses, with
// ErrRefused and ours unchanged: a sealed identity that does not open
// (a changed header byte); a bad identity signature; a signed prekey id that is neither
// the current one nor the previous one within its grace period; an
// last-resort initial message whose ephemeral key the replay guard holds
// from that initiator (signing key) under that signed prekey,
// or an ephemeral or identity key not canonically encoded;
// the zero signing key (of low order: the replay guard's version 1 keys
// are kept under it); a one-time prekey id not held (never made, or used); a last-resort or
// ML-KEM id that is not ours; a low-order key; the responder's own
// identity key as the initiator's. On success the one-time
// prekey used is deleted (a replay of a one-time initial message finds
// it not held), and a last-resort one's ephemeral key is added to the
// replay guard under the initiator's signing key:
// the caller stores ours before it answers.
func RespondSecret(p *Params, self ed25519.PublicKey, ours *Prekeys, h *InitialHeader, now int64) (Secret, []byte, *ecdh.PrivateKey, error) {
	if len(self) != ed25519.PublicKeySize {
		return Secret{}, nil, nil, fmt.Errorf("ratchet: the responder's Ed25519 key is %d bytes, want %d", len(self), ed25519.PublicKeySize)
	}
	if !canonicalX25519(&h.Ephemeral) {
		// Another encoding of a key X25519 reads the same: the replay
		// guard, which holds the bytes, would not know it.
		return Secret{}, nil, nil, ErrRefused
	}
	spk := ours.signedByID(h.SignedPrekeyID, now)
	if spk == nil {
		return Secret{}, nil, nil, ErrRefused
	}
	dh3, err := hsDH(spk.key, h.Ephemeral[:]) // DH3 = DH(SPK_B, EK_A)
	if err != nil {
		return Secret{}, nil, nil, ErrRefused
	}
	ikA, sig, ok := h.openIdentity(p, dh3)
	if !ok || !ed25519.Verify(ed25519.PublicKey(h.SigningKey[:]), identityMessage(&ikA), sig[:]) {
		return Secret{}, nil, nil, ErrRefused
	}
	ik := ours.IdentityPublic()
	if ikA == ik || !canonicalX25519(&ikA) || h.SigningKey == legacyDevice { // not itself, nor the zero key
		return Secret{}, nil, nil, ErrRefused
	}
	// The guard goes by the initiator's signing key, which signed IK_A
	// (a device that makes many identity keys fills one entry) and which
	// the shell checks is the stream's peer: a device pushes out only
	// its own keys. It tracks last-resort handshakes only: a one-time
	// one's prekey is deleted below.
	if h.Kind == PrekeyLastResort && ours.seen.Seen(spk.id, h.SigningKey, h.Ephemeral) {
		return Secret{}, nil, nil, ErrRefused
	}
	var fourth *ecdh.PrivateKey
	switch h.Kind {
	case PrekeyOneTime:
		fourth = ours.oneTime[h.PrekeyID]
	case PrekeyLastResort:
		if h.PrekeyID == ours.lastResort.id {
			fourth = ours.lastResort.key
		}
	}
	if fourth == nil {
		return Secret{}, nil, nil, ErrRefused
	}
	var enc *Encapsulation
	if h.PQ {
		if h.KEMID != ours.kemID || len(h.KEMCiphertext) != KEMCiphertextSize {
			return Secret{}, nil, nil, ErrRefused
		}
		ss, err := ours.kem.Decapsulate(h.KEMCiphertext)
		if err != nil {
			return Secret{}, nil, nil, ErrRefused
		}
		enc = &Encapsulation{SharedKey: ss}
	}
	dhs := [4][]byte{2: dh3}
	for i, pair := range [4]struct {
		priv *ecdh.PrivateKey
		pub  []byte
	}{
		{spk.key, ikA[:]},               // DH1 = DH(SPK_B, IK_A)
		{ours.identity, h.Ephemeral[:]}, // DH2 = DH(IK_B, EK_A)
		{},                              // DH3, above
		{fourth, h.Ephemeral[:]},        // DH4 = DH(OPK_B or LRK_B, EK_A)
	} {
		if pair.priv == nil {
			continue
		}
		if dhs[i], err = hsDH(pair.priv, pair.pub); err != nil {
			return Secret{}, nil, nil, ErrRefused
		}
	}
	s := handshakeSecret(p, dhs, enc)
	if h.Kind == PrekeyOneTime {
		delete(ours.oneTime, h.PrekeyID)
	} else {
		ours.seen.Add(spk.id, h.SigningKey, h.Ephemeral)
	}
	return s, handshakeAD(&h.SigningKey, &ikA, (*[32]byte)(self), &ik), spk.key, nil
}
