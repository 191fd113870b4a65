package core

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/cpace"
)

// Limits bounds the failed attempts on an invite.
type Limits struct {
	PerPeer int // failed attempts one remote peer may make on an invite
	Total   int // failed attempts of all peers together that kill it
}

// Admin is the admin's side of the join protocol: its open invites and
// the rules by which it answers each message of a run. It is a state
// machine with the I/O left to the caller, in the manner of etcd's raft:
// the caller reads a frame, gives it to Hello or Confirm with the time and
// a random source, and carries out the Step it gets back, in order (store,
// then send). Not safe for concurrent use: the caller serialises the calls
// (the cell service holds its mutex); a run's frames may be read without
// it.
type Admin struct {
	Self    peer.ID
	Limits  Limits
	Invites map[uint16]*Invite // the open invites, by nameplate
}

// NewAdmin returns an Admin with no open invite.
func NewAdmin(self peer.ID, l Limits) *Admin {
	return &Admin{Self: self, Limits: l, Invites: make(map[uint16]*Invite)}
}

// Step is what the caller must do after a call of the admin's machine,
// in this order.
type Step struct {
	// Store is an invite to store before Send goes out (its attempts, or
	// the joiner it is bound to). If storing fails, the caller calls
	// StoreFailed and carries out the step it returns instead.
	Store *Invite
	// End is an invite that can admit no one any more (expired or
	// exhausted): stop serving it and delete it.
	End *Invite
	// Send is the frame to send, if any.
	Send []byte
	// Admit says that the joiner proved the code: the caller decides
	// with Admit, stores what it says, then calls Admitted or Refuse.
	Admit bool
	// Done says that the run is over: close the stream after Send.
	Done bool
	// Err says why the run ended without a member joining, if it did.
	Err error
}

// runState is how far an admin's run got.
type runState int

const (
	runReplied  runState = iota + 1 // our CPace message went out: the confirm is next
	runProved                       // the joiner proved the code: admission is next
	runFinished                     // over
)

// AdminRun is one join run on the admin's side: one stream, from the
// hello to the welcome.
type AdminRun struct {
	from  peer.ID
	state runState
	inv   *Invite
	h     hello
	isk   []byte
	req   joinRequest
	rand  io.Reader // Hello's: the new member's grant and the welcome's nonce
}

// From is the joiner's peer ID.
func (r *AdminRun) From() peer.ID { return r.from }

// Request is what the joiner asked to be listed as, once it proved the
// code.
func (r *AdminRun) Request() (name string, box [BoxKeyLen]byte) { return r.req.Name, r.req.BoxKey }

// Errors of runs that the joiner is not told in these words.
var (
	// ErrAlreadyMember refuses a device already on the roster with
	// another box key.
	ErrAlreadyMember = errors.New("cell: already a member")
	// ErrReplay refuses a hello whose CPace message was answered before.
	ErrReplay = errors.New("cell: replayed hello")
	// ErrRunState is a call out of turn, a caller's mistake.
	ErrRunState = errors.New("cell: join run called out of turn")
)

func finish(status byte, err error) Step {
	return Step{Send: reply{Status: status}.encode(), Done: true, Err: err}
}

func finishWelcome(status byte, err error) Step {
	return Step{Send: welcome{Status: status}.encode(), Done: true, Err: err}
}

// Hello starts a run with the hello frame of from. Cheap checks come
// first (no scalar multiplication for a peer that may not try, a replay,
// or junk); then the attempt is booked, as failed until the joiner proves
// the code, and the reply carries the admin's CPace message: Step.Store
// must be stored before it goes out, so that a restart gives no one more
// guesses.
func (a *Admin) Hello(from peer.ID, frame []byte, now time.Time, rand io.Reader) (*AdminRun, Step) {
	run := &AdminRun{from: from, state: runFinished, rand: rand}
	h, err := decodeHello(frame)
	if err == nil && h.Version != joinVersion {
		err = fmt.Errorf("%w: hello of version %d", ErrBadMessage, h.Version)
	}
	if err != nil {
		return run, finish(StatusBadMessage, err)
	}
	run.h = h
	inv := a.Invites[h.Nameplate]
	if inv == nil {
		return run, finish(StatusNoInvite, ErrNoInvite)
	}
	var end *Invite
	status, why := inv.check(from, now, a.Limits.PerPeer, a.Limits.Total), error(nil)
	if _, replay := inv.seen[h.Y]; replay && status == StatusOK {
		status, why = StatusBadMessage, ErrReplay
	}
	if inv.Dead(now, a.Limits.Total) {
		delete(a.Invites, h.Nameplate)
		end = inv
	}
	if status == StatusOK && cpace.CheckMessage(h.Y[:]) != nil {
		status, why = StatusBadMessage, fmt.Errorf("%w: invalid CPace message", ErrBadMessage)
	}
	if status != StatusOK {
		if why == nil {
			why = statusErr(status)
		}
		s := finish(status, why)
		s.End = end
		return run, s
	}
	state, yb, err := cpace.Start(cpace.Responder, inv.Code.Password(), joinCI(a.Self, from), h.Sid[:], nil, rand)
	if err != nil {
		return run, finish(StatusInternal, fmt.Errorf("cell: cpace: %w", err))
	}
	isk, err := state.Finish(h.Y[:], nil)
	if err != nil {
		return run, finish(StatusBadMessage, fmt.Errorf("%w: %w", ErrBadMessage, err))
	}
	// Booked before our CPace message goes out: a run in which we send it
	// lets the peer test one guess, so it counts as failed unless the
	// peer proves the code. A replayed message tests nothing new: refused,
	// not counted.
	if status := inv.book(from, h.Y, now, a.Limits.PerPeer, a.Limits.Total); status != StatusOK {
		err := statusErr(status)
		if status == StatusBadMessage {
			err = ErrReplay
		}
		return run, finish(status, err)
	}
	run.inv, run.isk, run.state = inv, isk, runReplied
	rep := reply{Status: StatusOK, Y: [pointLen]byte(yb), Tag: [tagLen]byte(cpace.ConfirmTag(isk, h.Sid[:], yb, nil))}
	return run, Step{Store: inv, Send: rep.encode()}
}

// StoreFailed is the step instead of the one whose Store could not be
// stored: a booking is taken back and the joiner told of an internal
// error; a settlement or a binding stays (in this process: a failure too
// many is safe, and a binding is one in memory).
func (a *Admin) StoreFailed(run *AdminRun, step Step) Step {
	if run.state == runReplied {
		run.inv.settle(run.from, run.h.Y)
		run.state = runFinished
		return finish(StatusInternal, errors.New("cell: invite not stored"))
	}
	step.Store = nil
	return step
}

// Confirm takes the joiner's confirm frame. A wrong tag is a wrong code:
// the attempt stays counted. A right one settles the attempt (Store) and
// asks for admission (Admit).
func (a *Admin) Confirm(run *AdminRun, frame []byte) Step {
	if run.state != runReplied {
		return Step{Done: true, Err: ErrRunState}
	}
	run.state = runFinished
	c, err := decodeConfirm(frame)
	if err != nil {
		return finishWelcome(StatusBadMessage, err)
	}
	if !cpace.VerifyTag(run.isk, run.h.Sid[:], run.h.Y[:], nil, c.Tag[:]) {
		return finishWelcome(StatusWrongCode, ErrWrongCode)
	}
	run.inv.settle(run.from, run.h.Y)
	var step Step
	if a.Invites[run.inv.Code.Nameplate] == run.inv {
		step.Store = run.inv
	}
	pt, err := openWith(run.isk, labelRequest, c.Sealed)
	if err == nil {
		run.req, err = decodeJoinRequest(pt)
	}
	if err != nil {
		s := finishWelcome(StatusBadMessage, err)
		s.Store = step.Store
		return s
	}
	run.state = runProved
	step.Admit = true
	return step
}

// Admission is the admin's decision on a joiner that proved the code.
type Admission struct {
	// Roster is what the joiner is welcomed with: the current roster
	// again (the joiner is on it: its welcome was lost), or the next
	// version, with it.
	Roster *Roster
	// Adopt says that Roster is a new version: the caller stores and
	// spreads it before it calls Admitted.
	Adopt bool
	// Err refuses the join (then Roster is nil): the caller calls Refuse.
	Err error
}

// Admit decides on the joiner of run, which proved the code, given the
// admin's current roster, keys and cell key. Admission is idempotent for
// one device: a device already on the roster with the same box key is
// sent the roster again, and an invite is bound to the device that proved
// its code (Admitted binds it), which alone may use it again until it
// expires, and only while it is a member: removed, it is not let back in
// by it.
func (a *Admin) Admit(run *AdminRun, cur *Roster, keys *Keys, cellKey ed25519.PrivateKey, now time.Time) Admission {
	if run.state != runProved {
		return Admission{Err: ErrRunState}
	}
	inv, id := run.inv, run.from
	if a.Invites[inv.Code.Nameplate] != inv || (inv.Joiner != "" && inv.Joiner != id) {
		return Admission{Err: ErrNoInvite}
	}
	if cellKey == nil || cur == nil {
		return Admission{Err: ErrNotAdmin}
	}
	m, member := cur.Member(id)
	switch {
	case member && m.BoxKey != run.req.BoxKey:
		return Admission{Err: fmt.Errorf("%w: %s, with another box key (remove it first)", ErrAlreadyMember, id)}
	case member:
		return Admission{Roster: cur}
	case inv.Joiner == id:
		return Admission{Err: fmt.Errorf("%w: it admitted %s, removed since", ErrNoInvite, id)}
	}
	r, err := cur.WithMember(Member{Peer: id, Name: run.req.Name, Roles: inv.Roles, BoxKey: run.req.BoxKey}, keys, cellKey, now, run.rand)
	if err != nil {
		return Admission{Err: err}
	}
	return Admission{Roster: r, Adopt: true}
}

// Admitted ends a run whose joiner is on r, the roster now stored: it
// binds the invite to the joiner (Store: after the roster, so that if the
// admin crashes in between, the invite is still open and the device, a
// member now, gets the roster again) and welcomes it with r, sealed.
func (a *Admin) Admitted(run *AdminRun, r *Roster) Step {
	if run.state != runProved {
		return Step{Done: true, Err: ErrRunState}
	}
	run.state = runFinished
	var step Step
	if run.inv.Joiner == "" {
		run.inv.Joiner = run.from
		step.Store = run.inv
	}
	sealed, err := sealWith(run.rand, run.isk, labelWelcome, r.Encode())
	if err != nil {
		s := finishWelcome(StatusInternal, err)
		s.Store = step.Store
		return s
	}
	step.Send, step.Done = welcome{Status: StatusOK, Sealed: sealed}.encode(), true
	return step
}

// Refuse ends a run whose joiner proved the code but is not admitted: the
// error of Admit, or the caller's (it could not store the roster).
func (a *Admin) Refuse(run *AdminRun, err error) Step {
	run.state = runFinished
	status := StatusInternal
	if errors.Is(err, ErrAlreadyMember) || errors.Is(err, ErrNoInvite) {
		status = StatusRefused
	}
	return finishWelcome(status, err)
}

// Expire ends the invites that expired by now, and returns them by
// nameplate: the caller stops serving them and deletes them.
func (a *Admin) Expire(now time.Time) []*Invite {
	var ended []*Invite
	for _, np := range slices.Sorted(maps.Keys(a.Invites)) {
		if inv := a.Invites[np]; now.After(inv.Expires) {
			delete(a.Invites, np)
			ended = append(ended, inv)
		}
	}
	return ended
}
