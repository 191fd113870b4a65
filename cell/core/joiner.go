package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/cpace"
)

// joinCI is CPace's channel identifier: it binds the run to the two peer
// IDs that libp2p authenticated, so that a run cannot be relayed.
func joinCI(admin, joiner peer.ID) []byte {
	b := []byte("exopeer join v1\x00")
	b = binary.AppendUvarint(b, uint64(len(admin)))
	b = append(b, admin...)
	return append(b, joiner...)
}

// Session keys from CPace's ISK, one per direction and purpose.
const (
	labelRequest = "exopeer join request v1"
	labelWelcome = "exopeer join welcome v1"
)

// sealWith seals pt under the session key for label, with a nonce read
// from rand.
func sealWith(rand io.Reader, isk []byte, label string, pt []byte) ([]byte, error) {
	return sealGCM(rand, cpace.SessionKey(isk, label, 32), pt, []byte(label))
}

func openWith(isk []byte, label string, ct []byte) ([]byte, error) {
	pt, err := openGCM(cpace.SessionKey(isk, label, 32), ct, []byte(label))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrDecrypt, label)
	}
	return pt, nil
}

// FinalError marks a join error that ends the whole join: an admin that
// proved the code refused it, or this node failed.
type FinalError struct{ Err error }

func (e *FinalError) Error() string { return e.Err.Error() }
func (e *FinalError) Unwrap() error { return e.Err }

// AnswerError marks a join error that is what the peer answered (a
// status, or a message that does not parse), not what the network did.
type AnswerError struct{ Err error }

func (e *AnswerError) Error() string { return e.Err.Error() }
func (e *AnswerError) Unwrap() error { return e.Err }

// IsAnswer reports whether err is what a peer answered.
func IsAnswer(err error) bool {
	var a *AnswerError
	return errors.As(err, &a)
}

// joinerState is how far a joiner's run got.
type joinerState int

const (
	joinerSentHello   joinerState = iota + 1 // the reply is next
	joinerSentConfirm                        // the welcome is next
	joinerFinished
)

// JoinerRun is one join run on the joiner's side, with one candidate
// inviter: a state machine with the I/O left to the caller, which sends
// the hello NewJoinerRun returns, and gives the frames it reads to Reply
// and Welcome, or the stream's failure to Broken. Not safe for concurrent
// use.
type JoinerRun struct {
	admin peer.ID
	state joinerState
	h     hello
	cp    *cpace.State
	isk   []byte
	req   joinRequest
	rand  io.Reader // the nonces of the sealed request
}

// NewJoinerRun starts a run of code c as self towards admin, asking to be
// listed as name with box key box, and returns it with the hello frame to
// send. rand gives the session ID, CPace's scalar and the nonce of the
// sealed request.
func NewJoinerRun(c Code, admin, self peer.ID, box [BoxKeyLen]byte, name string, rand io.Reader) (*JoinerRun, []byte, error) {
	h := hello{Version: joinVersion, Nameplate: c.Nameplate}
	if _, err := io.ReadFull(rand, h.Sid[:]); err != nil {
		return nil, nil, fmt.Errorf("cell: join session ID: %w", err)
	}
	cp, ya, err := cpace.Start(cpace.Initiator, c.Password(), joinCI(admin, self), h.Sid[:], nil, rand)
	if err != nil {
		return nil, nil, fmt.Errorf("cell: cpace: %w", err)
	}
	h.Y = [pointLen]byte(ya)
	j := &JoinerRun{admin: admin, state: joinerSentHello, h: h, cp: cp, req: joinRequest{Name: name, BoxKey: box}, rand: rand}
	return j, h.encode(), nil
}

// Reply takes the admin's reply and returns the confirm frame to send.
// The admin's tag is checked before anything is sent: ErrWrongCode (a
// plain error) means the code is wrong, or the peer is not the inviter;
// the caller resets the stream and says nothing more. Other errors are
// the peer's answer (AnswerError).
func (j *JoinerRun) Reply(frame []byte) ([]byte, error) {
	if j.state != joinerSentHello {
		return nil, ErrRunState
	}
	j.state = joinerFinished
	rep, err := decodeReply(frame)
	if err != nil {
		return nil, &AnswerError{err}
	}
	if err := statusErr(rep.Status); err != nil {
		return nil, &AnswerError{err}
	}
	isk, err := j.cp.Finish(rep.Y[:], nil)
	if err != nil {
		return nil, &AnswerError{fmt.Errorf("%w: %w", ErrBadMessage, err)}
	}
	if !cpace.VerifyTag(isk, j.h.Sid[:], rep.Y[:], nil, rep.Tag[:]) {
		// The inviter counted the attempt; say nothing more to it.
		return nil, ErrWrongCode
	}
	sealed, err := sealWith(j.rand, isk, labelRequest, j.req.encode())
	if err != nil {
		return nil, &FinalError{err}
	}
	j.isk, j.state = isk, joinerSentConfirm
	return confirm{Tag: [tagLen]byte(cpace.ConfirmTag(isk, j.h.Sid[:], j.h.Y[:], nil)), Sealed: sealed}.encode(), nil
}

// Welcome takes the admin's welcome and returns the roster it carries,
// checked: signed by its cell, with the inviter on it as an admin.
// Whether it lists this node with its box key is the caller's check
// (Roster.Accept). A refusal of the admin, which proved the code, is
// final (FinalError); other errors are the peer's answer.
func (j *JoinerRun) Welcome(frame []byte) (*Roster, error) {
	if j.state != joinerSentConfirm {
		return nil, ErrRunState
	}
	j.state = joinerFinished
	w, err := decodeWelcome(frame)
	if err != nil {
		return nil, &AnswerError{err}
	}
	if err := statusErr(w.Status); err != nil {
		if errors.Is(err, ErrJoinRefused) {
			// From the peer that proved the code: the inviter itself.
			return nil, &FinalError{fmt.Errorf("%w (%s)", err, j.admin)}
		}
		return nil, &AnswerError{err}
	}
	pt, err := openWith(j.isk, labelWelcome, w.Sealed)
	if err != nil {
		return nil, &AnswerError{err}
	}
	r, err := DecodeRoster(pt)
	if err != nil {
		return nil, &AnswerError{err}
	}
	if !r.Has(j.admin) {
		return nil, &AnswerError{fmt.Errorf("%w: the inviter is not on the roster it sent", ErrBadRoster)}
	}
	if m, _ := r.Member(j.admin); m.Roles&RoleAdmin == 0 {
		return nil, &AnswerError{fmt.Errorf("%w: the inviter is not an admin of the roster it sent", ErrBadRoster)}
	}
	return r, nil
}

// Broken returns the error of a run whose stream failed with err (a frame
// that did not come, or did not go). After the confirm went out, the
// admin may have admitted this node already: ErrWelcomeLost.
func (j *JoinerRun) Broken(err error) error {
	st := j.state
	j.state = joinerFinished
	if st == joinerSentConfirm {
		return fmt.Errorf("%w: %w", ErrWelcomeLost, err)
	}
	return fmt.Errorf("cell: join: %w", err)
}

// AnswerErr returns the error a reply or welcome frame stands for: nil
// for an OK status, else the status's error or ErrBadMessage.
func AnswerErr(frame []byte) error {
	if len(frame) > 0 && frame[0] == msgWelcome {
		w, err := decodeWelcome(frame)
		if err != nil {
			return err
		}
		return statusErr(w.Status)
	}
	r, err := decodeReply(frame)
	if err != nil {
		return err
	}
	return statusErr(r.Status)
}
