package core

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/exopeer/exopeer/internal/cpace"
)

// The messages of the join and roster protocols. Each travels as one frame:
// a uvarint length, then that many bytes; the first byte of a frame is the
// message type. doc.go gives every layout.

// Message types.
const (
	msgHello   byte = 1
	msgReply   byte = 2
	msgConfirm byte = 3
	msgWelcome byte = 4
	MsgPush    byte = 5
	MsgPull    byte = 6
	MsgRoster  byte = 7
)

// The largest frame of each message, the caps readFrame is given: the
// exact or largest size each message can have, so that a peer cannot make
// a node wait for, or buffer, more than the message it is at.
const (
	MaxHelloFrame   = 2 + 2 + sidLen + pointLen
	MaxReplyFrame   = 2 + pointLen + tagLen
	MaxConfirmFrame = 1 + tagLen + maxSealedRequest
	MaxWelcomeFrame = 2 + MaxRosterLen + aeadOverhead
	MaxPushFrame    = 1 + MaxRosterLen // a push or a pull, which is smaller
	MaxAnswerFrame  = 2 + MaxRosterLen
	// MaxFrame is the largest of them.
	MaxFrame = MaxWelcomeFrame

	// aeadOverhead is what sealWith adds: AES-GCM's random nonce and tag.
	aeadOverhead = 12 + 16
	// maxSealedRequest is the largest sealed join request: version, box
	// key, the longest name, sealed.
	maxSealedRequest = 1 + BoxKeyLen + MaxNameLen + aeadOverhead
)

// ErrBadMessage means a peer sent a frame that does not parse.
var ErrBadMessage = errors.New("cell: malformed message")

// Join status codes, in a reply or a welcome.
const (
	StatusOK byte = iota
	StatusNoInvite
	StatusExpired
	StatusExhausted
	StatusWrongCode
	StatusRefused
	StatusBadMessage
	StatusInternal
)

// ErrNoInvite, ErrInviteExpired, ErrInviteExhausted and ErrWrongCode are
// the join outcomes a joiner is told.
var (
	ErrNoInvite        = errors.New("cell: the peer has no invite with this code")
	ErrInviteExpired   = errors.New("cell: the invite has expired")
	ErrInviteExhausted = errors.New("cell: the invite has had too many failed attempts and is void")
	ErrWrongCode       = errors.New("cell: wrong code (the failed attempt was counted)")
	ErrJoinRefused     = errors.New("cell: the inviter refused the join")
	errInviterFailed   = errors.New("cell: the inviter failed")
	// ErrWelcomeLost means the inviter accepted the code but its answer
	// did not arrive: it may have put this node on its roster already.
	ErrWelcomeLost = errors.New("cell: the inviter took the code but its welcome did not arrive " +
		"(it may have admitted this node: joining again, with this code or a fresh one, completes the join)")
)

func statusErr(s byte) error {
	switch s {
	case StatusOK:
		return nil
	case StatusNoInvite:
		return ErrNoInvite
	case StatusExpired:
		return ErrInviteExpired
	case StatusExhausted:
		return ErrInviteExhausted
	case StatusWrongCode:
		return ErrWrongCode
	case StatusRefused:
		return ErrJoinRefused
	case StatusBadMessage:
		return fmt.Errorf("%w (the inviter could not parse ours)", ErrBadMessage)
	default:
		return fmt.Errorf("%w (status %d)", errInviterFailed, s)
	}
}

const (
	joinVersion = 1
	sidLen      = 16
	pointLen    = cpace.MessageSize
	tagLen      = cpace.TagSize
)

// hello opens a join: the joiner's CPace message.
type hello struct {
	Version   byte
	Nameplate uint16
	Sid       [sidLen]byte
	Y         [pointLen]byte
}

func (m hello) encode() []byte {
	b := []byte{msgHello, m.Version}
	b = binary.BigEndian.AppendUint16(b, m.Nameplate)
	b = append(b, m.Sid[:]...)
	return append(b, m.Y[:]...)
}

func decodeHello(b []byte) (hello, error) {
	var m hello
	if len(b) != 2+2+sidLen+pointLen || b[0] != msgHello {
		return m, fmt.Errorf("%w: hello of %d bytes", ErrBadMessage, len(b))
	}
	m.Version = b[1]
	m.Nameplate = binary.BigEndian.Uint16(b[2:4])
	copy(m.Sid[:], b[4:4+sidLen])
	copy(m.Y[:], b[4+sidLen:])
	return m, nil
}

// reply answers a hello: a status, and when it is OK the inviter's CPace
// message and its key-confirmation tag.
type reply struct {
	Status byte
	Y      [pointLen]byte
	Tag    [tagLen]byte
}

func (m reply) encode() []byte {
	b := []byte{msgReply, m.Status}
	if m.Status != StatusOK {
		return b
	}
	b = append(b, m.Y[:]...)
	return append(b, m.Tag[:]...)
}

func decodeReply(b []byte) (reply, error) {
	var m reply
	if len(b) < 2 || b[0] != msgReply {
		return m, fmt.Errorf("%w: not a reply", ErrBadMessage)
	}
	m.Status = b[1]
	if m.Status != StatusOK {
		if len(b) != 2 {
			return m, fmt.Errorf("%w: reply of %d bytes", ErrBadMessage, len(b))
		}
		return m, nil
	}
	if len(b) != 2+pointLen+tagLen {
		return m, fmt.Errorf("%w: reply of %d bytes", ErrBadMessage, len(b))
	}
	copy(m.Y[:], b[2:2+pointLen])
	copy(m.Tag[:], b[2+pointLen:])
	return m, nil
}

// confirm proves the joiner's key and carries its request, sealed under a
// key from the PAKE.
type confirm struct {
	Tag    [tagLen]byte
	Sealed []byte
}

func (m confirm) encode() []byte {
	b := append([]byte{msgConfirm}, m.Tag[:]...)
	return append(b, m.Sealed...)
}

func decodeConfirm(b []byte) (confirm, error) {
	var m confirm
	if len(b) < 1+tagLen+1 || len(b) > MaxConfirmFrame || b[0] != msgConfirm {
		return m, fmt.Errorf("%w: confirm of %d bytes", ErrBadMessage, len(b))
	}
	copy(m.Tag[:], b[1:1+tagLen])
	m.Sealed = append([]byte(nil), b[1+tagLen:]...)
	return m, nil
}

// joinRequest is what the joiner asks to be put on the roster as.
type joinRequest struct {
	Name   string
	BoxKey [BoxKeyLen]byte
}

func (m joinRequest) encode() []byte {
	b := append([]byte{joinVersion}, m.BoxKey[:]...)
	return append(b, m.Name...)
}

func decodeJoinRequest(b []byte) (joinRequest, error) {
	var m joinRequest
	if len(b) < 1+BoxKeyLen || b[0] != joinVersion {
		return m, fmt.Errorf("%w: join request of %d bytes", ErrBadMessage, len(b))
	}
	copy(m.BoxKey[:], b[1:1+BoxKeyLen])
	m.Name = string(b[1+BoxKeyLen:])
	if !ValidName(m.Name) {
		return m, fmt.Errorf("%w: member name %q is empty, too long or not printable", ErrBadMessage, m.Name)
	}
	return m, nil
}

// welcome ends a join: a status and, when OK, the new roster sealed under
// a key from the PAKE.
type welcome struct {
	Status byte
	Sealed []byte
}

func (m welcome) encode() []byte { return append([]byte{msgWelcome, m.Status}, m.Sealed...) }

func decodeWelcome(b []byte) (welcome, error) {
	if len(b) < 2 || b[0] != msgWelcome {
		return welcome{}, fmt.Errorf("%w: not a welcome", ErrBadMessage)
	}
	m := welcome{Status: b[1], Sealed: append([]byte(nil), b[2:]...)}
	if (m.Status == StatusOK) == (len(m.Sealed) == 0) {
		return welcome{}, fmt.Errorf("%w: welcome with status %d and %d sealed bytes", ErrBadMessage, m.Status, len(m.Sealed))
	}
	return m, nil
}

// RosterMsg is one message of the roster protocol: a push carries a
// roster; a pull asks for a newer roster than Version of the cell tagged
// Tag; the answer to either is a MsgRoster with a status and, for a pull
// that found a newer one, the roster.
type RosterMsg struct {
	Type    byte
	Tag     [8]byte
	Version uint64
	Status  byte
	Roster  []byte
}

// Encode returns the message's frame.
func (m RosterMsg) Encode() []byte {
	b := []byte{m.Type}
	switch m.Type {
	case MsgPull:
		b = append(b, m.Tag[:]...)
		return binary.BigEndian.AppendUint64(b, m.Version)
	case MsgPush:
		return append(b, m.Roster...)
	default: // MsgRoster
		return append(append(b, m.Status), m.Roster...)
	}
}

func DecodeRosterMsg(b []byte) (RosterMsg, error) {
	if len(b) == 0 {
		return RosterMsg{}, fmt.Errorf("%w: empty", ErrBadMessage)
	}
	m := RosterMsg{Type: b[0]}
	switch m.Type {
	case MsgPull:
		if len(b) != 1+8+8 {
			return RosterMsg{}, fmt.Errorf("%w: pull of %d bytes", ErrBadMessage, len(b))
		}
		copy(m.Tag[:], b[1:9])
		m.Version = binary.BigEndian.Uint64(b[9:])
	case MsgPush:
		if len(b) < 2 {
			return RosterMsg{}, fmt.Errorf("%w: empty push", ErrBadMessage)
		}
		m.Roster = b[1:]
	case MsgRoster:
		if len(b) < 2 {
			return RosterMsg{}, fmt.Errorf("%w: roster answer without status", ErrBadMessage)
		}
		m.Status, m.Roster = b[1], b[2:]
	default:
		return RosterMsg{}, fmt.Errorf("%w: unknown message type %d", ErrBadMessage, m.Type)
	}
	return m, nil
}

// EncodeMeta and DecodeMeta are the app metadata a member gossips: its
// roster version and epoch, 8 bytes each, big-endian.
func EncodeMeta(version, epoch uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, version), epoch)
}

func DecodeMeta(b []byte) (version, epoch uint64, err error) {
	if len(b) != 16 {
		return 0, 0, fmt.Errorf("%w: member metadata of %d bytes", ErrBadMessage, len(b))
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), nil
}
