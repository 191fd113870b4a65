package peer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// reachWatch is the node's part "reach": it follows AutoNAT v2's verdicts
// on the host's addresses (event.EvtHostReachableAddrsChanged, which
// go-libp2p's address manager emits whenever one changes), keeps the last
// one for Reach, and tells its listeners the node's overall reachability
// (held: see follow) at start and at each verdict: the DHT first, then
// those added by onReach (the relay parts). One goroutine, which Close
// waits for; the listeners are called from it, one at a time, in order.
type reachWatch struct {
	h    host.Host
	tell []func(network.Reachability) // the DHT's SetReachability, then onReach's
	log  *slog.Logger

	mu   sync.Mutex
	last event.EvtHostReachableAddrsChanged
	sub  event.Subscription
	wg   sync.WaitGroup
	once sync.Once
}

func newReachWatch(h host.Host, tell func(network.Reachability), log *slog.Logger) *reachWatch {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &reachWatch{h: h, tell: []func(network.Reachability){tell}, log: log}
}

// onReach adds f to the listeners, told after those added before it. It
// must be called before Start. f must not block for long: it holds up
// the verdicts after it.
func (w *reachWatch) onReach(f func(network.Reachability)) {
	w.tell = append(w.tell, f)
}

// tellAll tells every listener r.
func (w *reachWatch) tellAll(r network.Reachability) {
	for _, f := range w.tell {
		f(r)
	}
}

// Start subscribes to the verdicts (the last one, if any was emitted
// before, comes at once), tells the listeners the reachability as of now, and
// follows them in a goroutine. It does not block.
func (w *reachWatch) Start(ctx context.Context) error {
	sub, err := w.h.EventBus().Subscribe(new(event.EvtHostReachableAddrsChanged), eventbus.Name("exopeer-reach"))
	if err != nil {
		return fmt.Errorf("peer: reach: subscribe: %w", err)
	}
	w.mu.Lock()
	w.sub = sub
	w.mu.Unlock()
	prev := reachOf(w.h.Addrs(), event.EvtHostReachableAddrsChanged{}).Overall
	w.tellAll(dhtReachability(prev))
	w.wg.Add(1)
	go w.follow(sub, prev)
	return nil
}

// follow takes each verdict until the subscription closes.
//
// The listeners (the DHT first) are told with some hysteresis: an address once reachable that
// AutoNAT v2 calls unknown again (its confidence dipped: mixed answers, as
// from a server that cannot dial out; it is probed again at once) still
// counts as reachable for the DHT until it is judged unreachable or
// leaves, so that the WAN table is not demoted and promoted at each dip
// (each demotion resets inbound DHT streams and has peers drop the node
// from their tables). Reach reports the verdicts as they are.
func (w *reachWatch) follow(sub event.Subscription, prev Reachability) {
	defer w.wg.Done()
	held := make(map[string]bool) // reachable, or unknown since
	for e := range sub.Out() {
		ev, ok := e.(event.EvtHostReachableAddrsChanged)
		if !ok {
			continue
		}
		w.mu.Lock()
		w.last = ev
		w.mu.Unlock()
		r := reachOf(w.h.Addrs(), ev)
		w.log.Debug("address reachability", "reachable", len(ev.Reachable), "unreachable", len(ev.Unreachable), "unknown", len(ev.Unknown))
		if r.Overall != prev {
			w.log.Info("reachability changed", "from", prev, "to", r.Overall)
			prev = r.Overall
		}
		next := make(map[string]bool, len(ev.Reachable))
		for _, a := range ev.Reachable {
			if a != nil {
				next[a.String()] = true
			}
		}
		tell := r.Overall
		for _, a := range ev.Unknown {
			if a != nil && held[a.String()] {
				next[a.String()] = true
				tell = ReachPublic
			}
		}
		held = next
		w.tellAll(dhtReachability(tell))
	}
}

// Reach returns the node's reachability as of now: the host's addresses
// with AutoNAT v2's last verdicts. It does not block; the caller owns the
// result.
func (w *reachWatch) Reach() Reach {
	w.mu.Lock()
	last := w.last
	w.mu.Unlock()
	return reachOf(w.h.Addrs(), last)
}

// Close ends the subscription and waits for the goroutine. Idempotent,
// and safe without Start.
func (w *reachWatch) Close() error {
	var err error
	w.once.Do(func() {
		w.mu.Lock()
		sub := w.sub
		w.mu.Unlock()
		if sub != nil {
			err = sub.Close()
		}
		w.wg.Wait()
	})
	return err
}
