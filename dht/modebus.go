package dht

import (
	"errors"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
)

// modeBus is the event bus as kad-dht sees it. kad-dht in ModeAuto
// switches a table between server and client on
// EvtLocalReachabilityChanged, which go-libp2p's AutoNAT v1 emits for the
// host as a whole. exopeer decides instead from AutoNAT v2's verdicts per
// address (the node's SetReachability): on this bus every event type comes
// from the host's bus except that one, which comes from the reachability
// last set here, and only from it.
//
// Its methods are safe for concurrent use.
type modeBus struct {
	event.Bus // the host's

	mu   sync.Mutex
	r    network.Reachability
	set  bool // SetReachability was called
	subs map[*modeSub]struct{}
}

func newModeBus(b event.Bus) *modeBus {
	return &modeBus{Bus: b, subs: make(map[*modeSub]struct{})}
}

// Subscribe subscribes to the host's bus, except for
// EvtLocalReachabilityChanged, which this bus delivers itself: the last
// reachability set at once if one was, then each new one. evtTypes is a
// pointer to an event type or a slice of them, as for event.Bus.
func (b *modeBus) Subscribe(evtTypes any, opts ...event.SubscriptionOpt) (event.Subscription, error) {
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
	s := &modeSub{b: b, out: make(chan any, 16), wake: make(chan struct{}, 1), done: make(chan struct{})}
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

// Emitter refuses EvtLocalReachabilityChanged, which only SetReachability
// emits here, and is the host's bus's for every other type.
func (b *modeBus) Emitter(eventType any, opts ...event.EmitterOpt) (event.Emitter, error) {
	if _, is := eventType.(*event.EvtLocalReachabilityChanged); is {
		return nil, errors.New("dht: reachability is set by the DHT's SetReachability, not emitted")
	}
	return b.Bus.Emitter(eventType, opts...)
}

// setReachability records r and wakes every subscriber to it. It does not
// block: a subscriber that has not yet taken the previous value gets only
// the latest.
func (b *modeBus) setReachability(r network.Reachability) {
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

func (b *modeBus) current() network.Reachability {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r
}

// modeSub is a subscription of modeBus: the host bus's events of the other
// types, and this bus's reachability, on one channel.
type modeSub struct {
	b     *modeBus
	inner event.Subscription // nil: no other type
	out   chan any
	wake  chan struct{} // buffered, 1: the reachability changed
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func (s *modeSub) forward() {
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
			ev = event.EvtLocalReachabilityChanged{Reachability: s.b.current()}
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

func (s *modeSub) Out() <-chan any { return s.out }

func (s *modeSub) Name() string { return "exopeer-dht-mode" }

// Close ends the subscription and waits for its goroutine. Idempotent.
func (s *modeSub) Close() error {
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
