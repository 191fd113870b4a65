// Package reachbus is an event bus that carries the node's own
// reachability. go-libp2p's parts that follow reachability (kad-dht's
// ModeAuto, AutoRelay) listen for event.EvtLocalReachabilityChanged, which
// go-libp2p's AutoNAT v1 emits for the host as a whole; exopeer decides
// instead from AutoNAT v2's verdicts per address (peer's reachWatch). A Bus
// wraps the host's bus: every event type comes from the host's bus except
// that one, which comes from the reachability last Set on the Bus, and
// only from it. A part handed a host whose EventBus is a Bus follows
// exopeer's verdict.
package reachbus

import (
	"errors"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
)

// Bus is the host's bus with the reachability set here (Set): on it every
// event type comes from the host's bus except
// EvtLocalReachabilityChanged, which comes from Set only.
//
// Its methods are safe for concurrent use.
type Bus struct {
	event.Bus // the host's

	mu   sync.Mutex
	r    network.Reachability
	set  bool // Set was called
	subs map[*subscription]struct{}
}

// New wraps b, the host's bus. Nothing is set yet: a subscriber to
// reachability gets nothing until the first Set.
func New(b event.Bus) *Bus {
	return &Bus{Bus: b, subs: make(map[*subscription]struct{})}
}

// Subscribe subscribes to the host's bus, except for
// EvtLocalReachabilityChanged, which this bus delivers itself: the last
// reachability set at once if one was, then each new one. evtTypes is a
// pointer to an event type or a slice of them, as for event.Bus.
func (b *Bus) Subscribe(evtTypes any, opts ...event.SubscriptionOpt) (event.Subscription, error) {
	types, ok := evtTypes.([]any)
	if !ok {
		types = []any{evtTypes}
	}
	rest := make([]any, 0, len(types))
	reach := false
	for _, t := range types {
		if _, is := t.(*event.EvtLocalReachabilityChanged); is {
			reach = true
			continue
		}
		rest = append(rest, t)
	}
	// Every type includes reachability: the host's bus's is dropped
	// (forward) and this bus's delivered.
	wild := evtTypes == event.WildcardSubscription
	if !reach && !wild {
		return b.Bus.Subscribe(evtTypes, opts...)
	}
	s := &subscription{b: b, out: make(chan any, 16), wake: make(chan struct{}, 1), done: make(chan struct{})}
	if wild {
		inner, err := b.Bus.Subscribe(evtTypes, opts...)
		if err != nil {
			return nil, err
		}
		s.inner = inner
	} else if len(rest) > 0 {
		inner, err := b.Bus.Subscribe(rest, opts...)
		if err != nil {
			return nil, err
		}
		s.inner = inner
	}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	if b.set {
		s.wake <- struct{}{}
	}
	b.mu.Unlock()
	s.wg.Add(1)
	go s.forward()
	return s, nil
}

// Emitter refuses EvtLocalReachabilityChanged, which only Set
// emits here, and is the host's bus's for every other type.
func (b *Bus) Emitter(eventType any, opts ...event.EmitterOpt) (event.Emitter, error) {
	if _, is := eventType.(*event.EvtLocalReachabilityChanged); is {
		return nil, errors.New("reachbus: reachability is set on the bus (Set), not emitted")
	}
	return b.Bus.Emitter(eventType, opts...)
}

// Set records r and wakes every subscriber to it. It does not
// block: a subscriber that has not yet taken the previous value gets only
// the latest.
func (b *Bus) Set(r network.Reachability) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.r, b.set = r, true
	for s := range b.subs {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Current returns the reachability last set (ReachabilityUnknown before
// any Set).
func (b *Bus) Current() network.Reachability {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r
}

// subscription is one of Bus: the host bus's events of the other
// types, and this bus's reachability, on one channel.
type subscription struct {
	b     *Bus
	inner event.Subscription // nil: no other type
	out   chan any
	wake  chan struct{} // buffered, 1: the reachability changed
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func (s *subscription) forward() {
	defer s.wg.Done()
	defer close(s.out)
	var in <-chan any
	if s.inner != nil {
		in = s.inner.Out()
	}
	for {
		var ev any
		select {
		case e, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			if _, is := e.(event.EvtLocalReachabilityChanged); is {
				continue // the host's (a wildcard subscription): not ours
			}
			ev = e
		case <-s.wake:
			ev = event.EvtLocalReachabilityChanged{Reachability: s.b.Current()}
		case <-s.done:
			return
		}
		select {
		case s.out <- ev:
		case <-s.done:
			return
		}
	}
}

func (s *subscription) Out() <-chan any { return s.out }

func (s *subscription) Name() string { return "exopeer-reachbus" }

// Close ends the subscription and waits for its goroutine. Idempotent.
func (s *subscription) Close() error {
	var err error
	s.once.Do(func() {
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
		close(s.done)
		if s.inner != nil {
			err = s.inner.Close()
		}
		s.wg.Wait()
	})
	return err
}
