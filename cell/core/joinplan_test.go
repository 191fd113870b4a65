package core

import (
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func always(peer.ID) bool { return true }

// TestJoinPlanRetries: a wrong code is never asked again, another answer
// after RendezvousRounds rounds, a network failure at the next round.
func TestJoinPlanRetries(t *testing.T) {
	wrong, status, net := seededPeer(t, 1), seededPeer(t, 2), seededPeer(t, 3)
	all := []peer.ID{wrong, status, net}
	p := NewJoinPlan()
	if got := p.Next(all, always); len(got) != 3 {
		t.Fatalf("first round asks %v", got)
	}
	if got := p.Next(all, always); len(got) != 0 {
		t.Fatalf("peers in flight asked again: %v", got)
	}
	p.Failed(wrong, ErrWrongCode)
	p.Failed(status, &AnswerError{ErrInviteExpired})
	p.Failed(net, errors.New("stream reset"))
	asked := map[peer.ID][]int{}
	for range 2 * RendezvousRounds {
		p.Tick(always)
		for _, id := range p.Next(all, always) {
			asked[id] = append(asked[id], p.Round)
			p.Failed(id, map[peer.ID]error{status: &AnswerError{ErrNoInvite}, net: errors.New("stream reset")}[id])
		}
	}
	if len(asked[wrong]) != 0 {
		t.Errorf("the peer that said wrong code was asked again in rounds %v", asked[wrong])
	}
	if want := fmt.Sprint([]int{RendezvousRounds, 2 * RendezvousRounds}); fmt.Sprint(asked[status]) != want {
		t.Errorf("the peer that answered a status was asked in rounds %v, want %s", asked[status], want)
	}
	if len(asked[net]) != 2*RendezvousRounds {
		t.Errorf("the peer the network failed was asked in rounds %v, want every round", asked[net])
	}
	// The error names the most telling answer: the wrong code.
	if p.Hint.Peer != wrong || !errors.Is(p.Hint.Err, ErrWrongCode) {
		t.Errorf("hint from %s: %v, want the wrong code", p.Hint.Peer, p.Hint.Err)
	}
	p.Failed(net, ErrWelcomeLost)
	if p.Hint.Peer != net || !errors.Is(p.Hint.Err, ErrWelcomeLost) {
		t.Errorf("hint from %s: %v, want the lost welcome", p.Hint.Peer, p.Hint.Err)
	}
}

// TestJoinPlanBounds: however many peers there are and whatever they
// answer, a Join runs at most MaxJoinInFlight attempts at once, remembers
// at most maxJoinWrong wrong codes, and keeps retry times for connected
// peers only.
func TestJoinPlanBounds(t *testing.T) {
	const peers = 3 * maxJoinWrong
	var all []peer.ID
	for i := range peers {
		all = append(all, seededPeer(t, i))
	}
	p := NewJoinPlan()
	for range peers {
		ask := p.Next(all, always)
		if len(p.inflight) > MaxJoinInFlight {
			t.Fatalf("%d attempts in flight, limit %d", len(p.inflight), MaxJoinInFlight)
		}
		for _, id := range ask {
			p.Failed(id, ErrWrongCode)
		}
		p.Tick(always)
	}
	if len(p.wrong) != maxJoinWrong || len(p.inflight) != 0 {
		t.Errorf("%d wrong codes remembered, %d in flight; want %d, 0", len(p.wrong), len(p.inflight), maxJoinWrong)
	}
	if len(p.retry) == 0 {
		t.Fatal("no retry times kept past the wrong-code limit")
	}
	p.Tick(func(peer.ID) bool { return false })
	if len(p.retry) != 0 {
		t.Errorf("%d retry times kept for peers no longer connected", len(p.retry))
	}
}
