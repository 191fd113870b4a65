package service

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxDeliveriesPerDevice bounds the deliveries under way at once to one
// remote device, each a stream of Protocol. A node accepts 16 inbound
// streams of one protocol from one peer by default
// (datadir.ResourceConfig.ProtocolPeerStreams) and resets the others: a
// sender with more messages at once than that saw deliveries fail with a
// reset, and its messages stay sent, not delivered. The others wait here
// for their turn (or their ctx).
const MaxDeliveriesPerDevice = 12

// slots counts the deliveries under way to each remote device. A
// device's entry lives while a delivery holds or waits for one of its
// slots, so the map holds at most the calls under way.
type slots struct {
	mu sync.Mutex
	m  map[peer.ID]*slot
}

type slot struct {
	ch    chan struct{} // a value per delivery under way
	users int           // holders and waiters; under slots.mu
}

// acquire waits for one of id's slots, or for ctx: it returns the
// release, or ctx's error.
func (s *slots) acquire(ctx context.Context, id peer.ID) (release func(), err error) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[peer.ID]*slot)
	}
	sl := s.m[id]
	if sl == nil {
		sl = &slot{ch: make(chan struct{}, MaxDeliveriesPerDevice)}
		s.m[id] = sl
	}
	sl.users++
	s.mu.Unlock()
	leave := func() {
		s.mu.Lock()
		if sl.users--; sl.users == 0 {
			delete(s.m, id)
		}
		s.mu.Unlock()
	}
	select {
	case sl.ch <- struct{}{}:
		return func() { <-sl.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
