package peer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"

	"github.com/exopeer/exopeer/datadir"
)

// lockingSweepACL is an ACL whose first sweep stops half-way (in
// freeSlots) until released, then needs the service's lock (reach).
type lockingSweepACL struct {
	relayACL
	svc              *relayService
	once             sync.Once
	entered, release chan struct{}
}

func (a *lockingSweepACL) freeSlots(func(src, dest peer.ID) int) {
	a.once.Do(func() {
		close(a.entered)
		<-a.release
		a.svc.reach(network.ReachabilityPublic)
	})
}

// TestRelayCloseDuringSweep: Close comes while a sweep is mid-run and
// that sweep then needs the service's lock. Close waits for the sweep
// with the lock released: before, it held the lock while it waited, and
// neither could go on.
func TestRelayCloseDuringSweep(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	h := loopbackHost(t, 1)
	acl := &lockingSweepACL{relayACL: relayACL{self: h.ID(), member: func(peer.ID) bool { return true }, contactDevice: noContact},
		entered: make(chan struct{}), release: make(chan struct{})}
	svc, err := newRelayService(h, RelayOn, acl, nil)
	if err != nil {
		t.Fatal(err)
	}
	acl.svc = svc
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-acl.entered: // the first sweep, relaySweep after Start
	case <-ctx.Done():
		t.Fatal("no sweep ran")
	}
	closed := make(chan error, 1)
	go func() { closed <- svc.Close() }()
	// Wait until Close has marked the service closed and let go of its
	// lock while the sweep is still held.
	for {
		if svc.mu.TryLock() {
			done := svc.closed
			svc.mu.Unlock()
			if done {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("Close holds the service's lock while it waits for the sweep")
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(acl.release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return once the sweep could end")
	}
	if svc.stats().Running {
		t.Fatal("relay runs after Close")
	}
}

// TestRelayScopeCircuits: what the docs say of the relay's room. Each
// circuit holds two streams of go-libp2p's relay service scope (the hop
// stream in, the stop stream out) and 2×BufferSize of its memory; at the
// smallest memory budget (128 MiB) the scope's 256 streams, not its
// 16 MiB, bind: about 128 circuits, and 128 more per GiB of budget. A
// member's MaxCircuits fit the scope's streams per peer.
func TestRelayScopeCircuits(t *testing.T) {
	res := relayResources()
	for _, tc := range []struct{ mib, want int }{{128, 128}, {1024, 256}, {4096, 640}} {
		cfg := limits(datadir.ResourceConfig{MemoryMiB: tc.mib}, 0).ToPartialLimitConfig()
		svc, perPeer := cfg.Service[relay.ServiceName], cfg.ServicePeer[relay.ServiceName]
		byStreams := int(svc.Streams) / 2
		byMemory := int(int64(svc.Memory) / int64(2*res.BufferSize))
		if got := min(byStreams, byMemory); got != tc.want || byStreams > byMemory {
			t.Errorf("%d MiB: room for %d circuits (%d by streams, %d by memory), want %d bound by streams",
				tc.mib, got, byStreams, byMemory, tc.want)
		}
		if int(perPeer.Streams) < res.MaxCircuits || int(perPeer.StreamsOutbound) < res.MaxCircuits {
			t.Errorf("%d MiB: the scope allows %d streams per peer, fewer than MaxCircuits %d", tc.mib, perPeer.Streams, res.MaxCircuits)
		}
	}
}
