package cell

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds of a Join: attempts at once (one per peer), and peers remembered
// as having answered "wrong code".
const (
	maxJoinInFlight = 16
	maxJoinWrong    = 256
)

// joinPlan is a Join's bookkeeping of the peers it asks: which to ask now,
// which again later, which never, and the most telling answer so far. It
// is pure (rounds are counted by the caller's ticker) and bounded whatever
// the peers do: at most maxJoinInFlight attempts at once, retry entries
// for connected peers only, at most maxJoinWrong peers remembered as
// wrong.
type joinPlan struct {
	round    int
	inflight map[peer.ID]bool // attempts running
	retry    map[peer.ID]int  // the round from which a peer may be asked again
	wrong    map[peer.ID]bool // peers that answered as if the code were wrong: never again
	hint     joinHint
}

func newJoinPlan() *joinPlan {
	return &joinPlan{inflight: make(map[peer.ID]bool), retry: make(map[peer.ID]int), wrong: make(map[peer.ID]bool)}
}

// next returns the peers to ask now among peers, those for which speaks
// holds, and books them as in flight.
func (p *joinPlan) next(peers []peer.ID, speaks func(peer.ID) bool) []peer.ID {
	var ask []peer.ID
	for _, id := range peers {
		if len(p.inflight) >= maxJoinInFlight {
			break
		}
		if p.inflight[id] || p.wrong[id] || p.round < p.retry[id] || !speaks(id) {
			continue
		}
		p.inflight[id] = true
		ask = append(ask, id)
	}
	return ask
}

// failed records an attempt that ended in err: a peer that answered as if
// the code were wrong is not asked again (asking the admin again would
// spend another attempt of its invite); one that answered something else
// is asked again after rendezvousRounds rounds; one the network failed,
// at the next round.
func (p *joinPlan) failed(id peer.ID, err error) {
	delete(p.inflight, id)
	switch {
	case errors.Is(err, ErrWrongCode) && len(p.wrong) < maxJoinWrong:
		p.wrong[id] = true
	case isStatus(err), errors.Is(err, ErrWrongCode):
		p.retry[id] = p.round + rendezvousRounds
	default:
		p.retry[id] = p.round + 1
	}
	p.hint.note(id, err)
}

// tick starts the next round and forgets the retry times of peers no
// longer connected.
func (p *joinPlan) tick(connected func(peer.ID) bool) {
	p.round++
	for id := range p.retry {
		if !connected(id) {
			delete(p.retry, id)
		}
	}
}

// joinHint is the most telling answer a Join heard, for its error.
type joinHint struct {
	peer peer.ID
	err  error
	rank int
}

// note keeps err if it tells at least as much as the answer kept: a lost
// welcome, a wrong code, what an inviter says of its invite, "no such
// invite", then the network.
func (h *joinHint) note(id peer.ID, err error) {
	rank := 0
	switch {
	case errors.Is(err, ErrWelcomeLost):
		rank = 4
	case errors.Is(err, ErrWrongCode):
		rank = 3
	case errors.Is(err, ErrNoInvite):
		rank = 1
	case isStatus(err):
		rank = 2
	}
	if h.err == nil || rank >= h.rank {
		h.peer, h.err, h.rank = id, err, rank
	}
}
