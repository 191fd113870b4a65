package peer

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// TestReachDipKeepsServer: AutoNAT v2 moves an address from reachable
// to unknown whenever its confidence dips below two (successes minus
// failures over its last five probes), as when one server behind a
// firewall that blocks outgoing connections answers "dial error"; the
// address is probed again at once and comes back. The DHT must not be
// demoted for that: each switch to client resets every inbound DHT stream
// and makes every peer drop the node from its routing table, and back.
// An address once reachable counts as reachable for the DHT until it is
// judged unreachable or leaves; a new address that is only unknown does
// not make the node a server.
func TestReachDipKeepsServer(t *testing.T) {
	const pub = "/ip4/1.2.3.4/tcp/4001"
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Network().Listen(ma.StringCast(pub)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var told, heard []network.Reachability
	w := newReachWatch(h, func(r network.Reachability) {
		mu.Lock()
		told = append(told, r)
		mu.Unlock()
	}, nil)
	// A listener added by onReach (the relay parts) hears what the DHT
	// is told, after it.
	w.onReach(func(r network.Reachability) {
		mu.Lock()
		if len(heard) >= len(told) {
			t.Errorf("listener told %v before the DHT", r)
		}
		heard = append(heard, r)
		mu.Unlock()
	})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	em, err := h.EventBus().Emitter(new(event.EvtHostReachableAddrsChanged), eventbus.Stateful)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	steps := []struct {
		name string
		ev   event.EvtHostReachableAddrsChanged
		want network.Reachability
	}{
		{"confirmed", event.EvtHostReachableAddrsChanged{Reachable: mas(pub)}, network.ReachabilityPublic},
		{"a dip", event.EvtHostReachableAddrsChanged{Unknown: mas(pub)}, network.ReachabilityPublic},
		{"back", event.EvtHostReachableAddrsChanged{Reachable: mas(pub)}, network.ReachabilityPublic},
		{"a dip again", event.EvtHostReachableAddrsChanged{Unknown: mas(pub)}, network.ReachabilityPublic},
		{"judged unreachable", event.EvtHostReachableAddrsChanged{Unreachable: mas(pub)}, network.ReachabilityPrivate},
		{"unknown after unreachable", event.EvtHostReachableAddrsChanged{Unknown: mas(pub)}, network.ReachabilityUnknown},
	}
	for _, st := range steps {
		mu.Lock()
		n := len(told)
		mu.Unlock()
		if err := em.Emit(st.ev); err != nil {
			t.Fatal(err)
		}
		var got network.Reachability
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			done := len(told) > n && len(heard) == len(told)
			if done {
				got = told[len(told)-1]
			}
			mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the DHT and the listener were not both told", st.name)
			}
		}
		if got != st.want {
			mu.Lock()
			t.Fatalf("%s: the DHT was told %v, want %v (told so far: %v)", st.name, got, st.want, fmt.Sprint(told))
			mu.Unlock()
		}
		mu.Lock()
		if fmt.Sprint(heard) != fmt.Sprint(told) {
			t.Errorf("%s: the listener heard %v, the DHT was told %v", st.name, heard, told)
		}
		mu.Unlock()
	}
}
