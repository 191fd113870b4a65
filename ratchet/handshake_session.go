// This file joins the handshakes to the sessions: Initiate and Respond.

package ratchet

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"io"
)

// Initiate is InitiateSecret followed by NewInitiator with the
// responder's signed prekey as its first ratchet key: the session's first
// Encrypt makes the first message, sent after the header's encoding.
func Initiate(p *Params, rand io.Reader, signer ed25519.PrivateKey, ours *Prekeys, b *Bundle, enc *Encapsulation) (*Session, *InitialHeader, error) {
	return initiateWith(p, rand, signer, ours, b, enc, true)
}

// InitiateLastResort is Initiate with b's last-resort prekey, whatever
// one-time prekeys b has: for a new session with a device this one
// already had a session with (one per restart, message/service), so
// that such handshakes spend none of the responder's one-time prekeys.
// The responder's replay guard, not a one-time prekey, keeps its
// initial message from being accepted twice: it forgets this device's
// key only after ReplayCapacity newer handshakes of this device, or
// ReplayDevices other devices, under the same signed prekey.
func InitiateLastResort(p *Params, rand io.Reader, signer ed25519.PrivateKey, ours *Prekeys, b *Bundle, enc *Encapsulation) (*Session, *InitialHeader, error) {
	return initiateWith(p, rand, signer, ours, b, enc, false)
}

func initiateWith(p *Params, rand io.Reader, signer ed25519.PrivateKey, ours *Prekeys, b *Bundle, enc *Encapsulation, oneTime bool) (*Session, *InitialHeader, error) {
	s, ad, h, err := initiateSecret(p, rand, signer, ours, b, enc, oneTime)
	if err != nil {
		return nil, nil, err
	}
	spk, err := ecdh.X25519().NewPublicKey(b.Signed.Key[:])
	if err != nil {
		return nil, nil, err
	}
	sess, err := NewInitiator(p, rand, s, ad, spk)
	if err != nil {
		return nil, nil, err
	}
	return sess, h, nil
}

// Respond is RespondSecret followed by NewResponder, which opens
// first, the initial message's first Double Ratchet message (what
// ParseInitialHeader left). ours changes (the one-time prekey consumed,
// the ephemeral key remembered) only if all of it succeeds; every failure
// is ErrRefused.
func Respond(p *Params, self ed25519.PublicKey, ours *Prekeys, h *InitialHeader, first []byte, now int64) (*Session, []byte, error) {
	c := ours.clone()
	s, ad, spk, err := RespondSecret(p, self, c, h, now)
	if err != nil {
		return nil, nil, ErrRefused
	}
	sess, err := NewResponder(p, s, ad, spk)
	if err != nil {
		return nil, nil, ErrRefused
	}
	plain, err := sess.Decrypt(first)
	if err != nil {
		return nil, nil, ErrRefused
	}
	*ours = *c
	return sess, plain, nil
}
