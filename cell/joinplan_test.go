package cell

import (
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func always(peer.ID) bool { return true }

// TestJoinPlanRetries: a wrong code is never asked again, another answer
// after rendezvousRounds rounds, a network failure at the next round.
func TestJoinPlanRetries(t *testing.T) {
	wrong, status, net := seededPeer(t, 1), seededPeer(t, 2), seededPeer(t, 3)
	all := []peer.ID{wrong, status, net}
	p := newJoinPlan()
	if got := p.next(all, always); len(got) != 3 {
		t.Fatalf("first round asks %v", got)
	}
	if got := p.next(all, always); len(got) != 0 {
		t.Fatalf("peers in flight asked again: %v", got)
	}
	p.failed(wrong, ErrWrongCode)
	p.failed(status, &joinAnswer{ErrInviteExpired})
	p.failed(net, errors.New("stream reset"))
	asked := map[peer.ID][]int{}
	for range 2 * rendezvousRounds {
		p.tick(always)
		for _, id := range p.next(all, always) {
			asked[id] = append(asked[id], p.round)
			p.failed(id, map[peer.ID]error{status: &joinAnswer{ErrNoInvite}, net: errors.New("stream reset")}[id])
		}
	}
	if len(asked[wrong]) != 0 {
		t.Errorf("the peer that said wrong code was asked again in rounds %v", asked[wrong])
	}
	if want := fmt.Sprint([]int{rendezvousRounds, 2 * rendezvousRounds}); fmt.Sprint(asked[status]) != want {
		t.Errorf("the peer that answered a status was asked in rounds %v, want %s", asked[status], want)
	}
	if len(asked[net]) != 2*rendezvousRounds {
		t.Errorf("the peer the network failed was asked in rounds %v, want every round", asked[net])
	}
	// The error names the most telling answer: the wrong code.
	if p.hint.peer != wrong || !errors.Is(p.hint.err, ErrWrongCode) {
		t.Errorf("hint from %s: %v, want the wrong code", p.hint.peer, p.hint.err)
	}
	p.failed(net, ErrWelcomeLost)
	if p.hint.peer != net || !errors.Is(p.hint.err, ErrWelcomeLost) {
		t.Errorf("hint from %s: %v, want the lost welcome", p.hint.peer, p.hint.err)
	}
}

// TestJoinPlanBounds: however many peers there are and whatever they
// answer, a Join runs at most maxJoinInFlight attempts at once, remembers
// at most maxJoinWrong wrong codes, and keeps retry times for connected
// peers only.
func TestJoinPlanBounds(t *testing.T) {
	const peers = 3 * maxJoinWrong
	var all []peer.ID
	for i := range peers {
		all = append(all, seededPeer(t, i))
	}
	p := newJoinPlan()
	for range peers {
		ask := p.next(all, always)
		if len(p.inflight) > maxJoinInFlight {
			t.Fatalf("%d attempts in flight, limit %d", len(p.inflight), maxJoinInFlight)
		}
		for _, id := range ask {
			p.failed(id, ErrWrongCode)
		}
		p.tick(always)
	}
	if len(p.wrong) != maxJoinWrong || len(p.inflight) != 0 {
		t.Errorf("%d wrong codes remembered, %d in flight; want %d, 0", len(p.wrong), len(p.inflight), maxJoinWrong)
	}
	if len(p.retry) == 0 {
		t.Fatal("no retry times kept past the wrong-code limit")
	}
	p.tick(func(peer.ID) bool { return false })
	if len(p.retry) != 0 {
		t.Errorf("%d retry times kept for peers no longer connected", len(p.retry))
	}
}
