package contact

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/internal/cpace"
)

// Code is a one-time invite code, the cell join's (cell/core.Code):
// NNNN-word-word-word, the nameplate naming the meeting place and the
// words the PAKE password.
type Code = core.Code

// Errors of the invite exchange.
var (
	ErrBadMessage = errors.New("contact: malformed invite message")
	ErrNoInvite   = errors.New("contact: the peer has no open invite with this nameplate")
	ErrWrongCode  = errors.New("contact: wrong code (the failed attempt was counted)")
	ErrUsed       = errors.New("contact: invite run already used")
	ErrNotOnCard  = errors.New("contact: the peer of the invite exchange is not on the device list of the card it sent")
)

// Frame caps of the invite exchange (the shell reads no more).
const (
	MaxHelloFrame = len(helloMagic) + 2 + cpace.MessageSize
	MaxReplyFrame = 1 + cpace.MessageSize + cpace.TagSize
	MaxCardFrame  = cpace.TagSize + MaxCardLen + gcmOverhead
	gcmOverhead   = 16
)

const (
	helloMagic   = "EXI1"
	inviteCI     = "exopeer contact invite v1\x00"
	inviteKeyLbl = "exopeer contact invite card keys v1"

	replyOK       byte = 0
	replyNoInvite byte = 1
)

// inviteCIOf is CPace's channel identifier: the protocol's label and the
// two peers' IDs, the inviter's first, each length-prefixed.
func inviteCIOf(inviter, acceptor peer.ID) []byte {
	b := []byte(inviteCI)
	b = appendBytes(b, []byte(inviter))
	return appendBytes(b, []byte(acceptor))
}

func sidOf(nameplate uint16) []byte { return binary.BigEndian.AppendUint16(nil, nameplate) }

// cardKeys derives the two one-time card keys from CPace's ISK: the
// acceptor's card is sealed under the first, the inviter's under the
// second, each with AES-256-GCM and a zero nonce (each key seals one
// message only).
func cardKeys(isk []byte) (toInviter, toAcceptor cipher.AEAD) {
	k := cpace.SessionKey(isk, inviteKeyLbl, 64)
	defer clear(k)
	return gcmOf(k[:32]), gcmOf(k[32:])
}

func gcmOf(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte key
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

var zeroNonce [12]byte

// AcceptRun is the side that typed the code: it opens the exchange.
type AcceptRun struct {
	inviter   peer.ID
	st        *cpace.State
	msg       []byte
	ci, sid   []byte
	isk       []byte
	toInviter cipher.AEAD
	toMe      cipher.AEAD
	step      int
}

// NewAcceptRun starts an exchange with inviter, a peer that may hold the
// invite of code, and returns the hello to send it. rand is the CPace
// scalar's source.
func NewAcceptRun(code Code, inviter, self peer.ID, rand io.Reader) (*AcceptRun, []byte, error) {
	ci, sid := inviteCIOf(inviter, self), sidOf(code.Nameplate)
	st, msg, err := cpace.Start(cpace.Initiator, code.Password(), ci, sid, nil, rand)
	if err != nil {
		return nil, nil, err
	}
	hello := append([]byte(helloMagic), sid...)
	return &AcceptRun{inviter: inviter, st: st, msg: msg, ci: ci, sid: sid}, append(hello, msg...), nil
}

// Reply reads the inviter's reply and returns the message that proves the
// code and carries mine, sealed. ErrNoInvite: the peer has no such invite
// (a hint: nameplates are public); ErrWrongCode: it proved a different
// password, or it is not the inviter.
func (a *AcceptRun) Reply(b []byte, mine *Card) ([]byte, error) {
	if a.step != 0 {
		return nil, ErrUsed
	}
	a.step = 1
	if len(b) == 1 && b[0] == replyNoInvite {
		return nil, ErrNoInvite
	}
	if len(b) != MaxReplyFrame || b[0] != replyOK {
		return nil, fmt.Errorf("%w: reply of %d bytes", ErrBadMessage, len(b))
	}
	msg, tag := b[1:1+cpace.MessageSize], b[1+cpace.MessageSize:]
	isk, err := a.st.Finish(msg, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if !cpace.VerifyTag(isk, a.sid, msg, nil, tag) {
		return nil, ErrWrongCode
	}
	a.isk = isk
	a.toInviter, a.toMe = cardKeys(isk)
	out := cpace.ConfirmTag(isk, a.sid, a.msg, nil)
	return a.toInviter.Seal(out, zeroNonce[:], mine.Encode(), a.ci), nil
}

// Final opens the inviter's card, which it sent once it checked mine.
// ErrNotOnCard: the inviter is not on the card's device list.
func (a *AcceptRun) Final(b []byte) (*Card, error) {
	if a.step != 1 || a.toMe == nil {
		return nil, ErrUsed
	}
	a.step = 2
	plain, err := a.toMe.Open(nil, zeroNonce[:], b, a.ci)
	if err != nil {
		return nil, fmt.Errorf("%w: the inviter's card does not open", ErrBadMessage)
	}
	return cardOf(plain, a.inviter)
}

// cardOf decodes the card a peer sent and checks that the peer is on
// its device list.
func cardOf(plain []byte, from peer.ID) (*Card, error) {
	c, err := DecodeCard(plain)
	if err != nil {
		return nil, err
	}
	if !c.Devices.Has(from) {
		return nil, fmt.Errorf("%w: %s, card %q of version %d (a device that joined its cell since the list was signed is on it once an admin signs it again)", ErrNotOnCard, from, c.Name, c.Devices.Version)
	}
	return c, nil
}

// ReadHello reads an acceptor's hello: the nameplate it names.
func ReadHello(b []byte) (uint16, error) {
	if len(b) != MaxHelloFrame || string(b[:len(helloMagic)]) != helloMagic {
		return 0, fmt.Errorf("%w: hello of %d bytes", ErrBadMessage, len(b))
	}
	return binary.BigEndian.Uint16(b[len(helloMagic):]), nil
}

// NoInviteReply is the reply to a hello naming no open invite.
func NoInviteReply() []byte { return []byte{replyNoInvite} }

// InviteRun is the inviter's side of one exchange.
type InviteRun struct {
	acceptor     peer.ID
	msg, peerMsg []byte
	ci, sid      []byte
	isk          []byte
	toMe         cipher.AEAD
	toAcceptor   cipher.AEAD
	step         int
}

// NewInviteRun answers acceptor's hello for the invite of code (ReadHello
// named its nameplate) and returns the reply to send.
func NewInviteRun(code Code, self, acceptor peer.ID, hello []byte, rand io.Reader) (*InviteRun, []byte, error) {
	np, err := ReadHello(hello)
	if err != nil {
		return nil, nil, err
	}
	if np != code.Nameplate {
		return nil, nil, fmt.Errorf("%w: hello for nameplate %04d, invite of %04d", ErrBadMessage, np, code.Nameplate)
	}
	peerMsg := hello[len(helloMagic)+2:]
	ci, sid := inviteCIOf(self, acceptor), sidOf(code.Nameplate)
	st, msg, err := cpace.Start(cpace.Responder, code.Password(), ci, sid, nil, rand)
	if err != nil {
		return nil, nil, err
	}
	isk, err := st.Finish(peerMsg, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	r := &InviteRun{acceptor: acceptor, msg: msg, peerMsg: append([]byte(nil), peerMsg...), ci: ci, sid: sid, isk: isk}
	r.toMe, r.toAcceptor = cardKeys(isk)
	reply := append([]byte{replyOK}, msg...)
	return r, append(reply, cpace.ConfirmTag(isk, sid, msg, nil)...), nil
}

// Confirm checks the acceptor's proof of the code and opens its card, and
// returns the final message carrying mine. ErrWrongCode: the acceptor
// used another code (the caller counts the attempt); ErrNotOnCard: the
// acceptor is not on its card's device list (nothing is sent back).
func (r *InviteRun) Confirm(b []byte, mine *Card) (*Card, []byte, error) {
	if r.step != 0 {
		return nil, nil, ErrUsed
	}
	r.step = 1
	if len(b) < cpace.TagSize+gcmOverhead || len(b) > MaxCardFrame {
		return nil, nil, fmt.Errorf("%w: card message of %d bytes", ErrBadMessage, len(b))
	}
	if !cpace.VerifyTag(r.isk, r.sid, r.peerMsg, nil, b[:cpace.TagSize]) {
		return nil, nil, ErrWrongCode
	}
	plain, err := r.toMe.Open(nil, zeroNonce[:], b[cpace.TagSize:], r.ci)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the acceptor's card does not open", ErrBadMessage)
	}
	theirs, err := cardOf(plain, r.acceptor)
	if err != nil {
		return nil, nil, err
	}
	return theirs, r.toAcceptor.Seal(nil, zeroNonce[:], mine.Encode(), r.ci), nil
}
