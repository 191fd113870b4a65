package core

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds of a Join: attempts at once (one per peer), and peers remembered
// as having answered "wrong code".
const (
	MaxJoinInFlight = 16
	maxJoinWrong    = 256
)

// RendezvousRounds is how many rounds a peer that answered with a status
// waits before it is asked again; the joiner also looks the nameplate's
// rendezvous up again every RendezvousRounds rounds.
const RendezvousRounds = 5

// JoinPlan is a Join's bookkeeping of the peers it asks: which to ask now,
// which again later, which never, and the most telling answer so far. It
// is pure (rounds are counted by the caller's ticker) and bounded whatever
// the peers do: at most MaxJoinInFlight attempts at once, retry entries
// for connected peers only, at most maxJoinWrong peers remembered as
// wrong.
type JoinPlan struct {
	Round    int              // rounds ticked
	inflight map[peer.ID]bool // attempts running
	retry    map[peer.ID]int  // the round from which a peer may be asked again
	wrong    map[peer.ID]bool // peers that answered as if the code were wrong: never again
	Hint     JoinHint         // the most telling answer so far
}

func NewJoinPlan() *JoinPlan {
	return &JoinPlan{inflight: make(map[peer.ID]bool), retry: make(map[peer.ID]int), wrong: make(map[peer.ID]bool)}
}

// Next returns the peers to ask now among peers, those for which speaks
// holds, and books them as in flight.
func (p *JoinPlan) Next(peers []peer.ID, speaks func(peer.ID) bool) []peer.ID {
	var ask []peer.ID
	for _, id := range peers {
		if len(p.inflight) >= MaxJoinInFlight {
			break
		}
		if p.inflight[id] || p.wrong[id] || p.Round < p.retry[id] || !speaks(id) {
			continue
		}
		p.inflight[id] = true
		ask = append(ask, id)
	}
	return ask
}

// Failed records an attempt that ended in err: a peer that answered as if
// the code were wrong is not asked again (asking the admin again would
// spend another attempt of its invite); one that answered something else
// is asked again after RendezvousRounds rounds; one the network failed,
// at the next round.
func (p *JoinPlan) Failed(id peer.ID, err error) {
	delete(p.inflight, id)
	switch {
	case errors.Is(err, ErrWrongCode) && len(p.wrong) < maxJoinWrong:
		p.wrong[id] = true
	case IsAnswer(err), errors.Is(err, ErrWrongCode):
		p.retry[id] = p.Round + RendezvousRounds
	default:
		p.retry[id] = p.Round + 1
	}
	p.Hint.note(id, err)
}

// Tick starts the next round and forgets the retry times of peers no
// longer connected.
func (p *JoinPlan) Tick(connected func(peer.ID) bool) {
	p.Round++
	for id := range p.retry {
		if !connected(id) {
			delete(p.retry, id)
		}
	}
}

// JoinHint is the most telling answer a Join heard, for its error.
type JoinHint struct {
	Peer peer.ID
	Err  error
	rank int
}

// note keeps err if it tells at least as much as the answer kept: a lost
// welcome, a wrong code, what an inviter says of its invite, "no such
// invite", then the network.
func (h *JoinHint) note(id peer.ID, err error) {
	rank := 0
	switch {
	case errors.Is(err, ErrWelcomeLost):
		rank = 4
	case errors.Is(err, ErrWrongCode):
		rank = 3
	case errors.Is(err, ErrNoInvite):
		rank = 1
	case IsAnswer(err):
		rank = 2
	}
	if h.Err == nil || rank >= h.rank {
		h.Peer, h.Err, h.rank = id, err, rank
	}
}
