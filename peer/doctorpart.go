package peer

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/doctor"
)

// doctorPart is the node's part "doctor": it answers the time protocol
// (ProtocolTime) for the peers its rule admits (the cell's members and its
// contacts' devices), and keeps the addresses those peers observed this
// node's connections at (identify's observed address,
// event.EvtPeerIdentificationCompleted), which tell the NAT's type; peers
// off the roster pass one gate (contactGate: a bounded rate of contact
// look-ups, verdicts remembered) for both. Two
// goroutines (the event loop, the contact check), which Close waits for.
type doctorPart struct {
	h    host.Host
	time *timeServer
	obs  *observations

	mu   sync.Mutex
	sub  event.Subscription
	wg   sync.WaitGroup
	once sync.Once
}

func newDoctorPart(h host.Host, rule peerRule, now func() time.Time, log *slog.Logger) *doctorPart {
	obs := newObservations(rule, now, log)
	// The time protocol's askers off the roster go through the same gate
	// as observers: a bounded rate of contact look-ups, verdicts kept.
	allow := func(p peer.ID) bool {
		// kindWait, as rule.contact's own bound: the gate then sees a
		// look-up that timed out.
		ctx, cancel := context.WithTimeout(context.Background(), kindWait)
		defer cancel()
		return obs.gate.allows(ctx, p)
	}
	return &doctorPart{
		h:    h,
		time: &timeServer{allow: allow, now: now, rate: newBucket(TimeRate, TimeBurst)},
		obs:  obs,
	}
}

// Start serves the time protocol and follows identify's observations. It
// does not block.
func (d *doctorPart) Start(ctx context.Context) error {
	sub, err := d.h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted), eventbus.Name("exopeer-doctor"), eventbus.BufSize(64))
	if err != nil {
		return fmt.Errorf("peer: doctor: subscribe: %w", err)
	}
	d.mu.Lock()
	d.sub = sub
	d.mu.Unlock()
	d.h.SetStreamHandler(ProtocolTime, d.time.serve)
	d.obs.start()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for e := range sub.Out() {
			ev := e.(event.EvtPeerIdentificationCompleted)
			if ev.Conn == nil || ev.ObservedAddr == nil {
				continue
			}
			d.obs.identified(ev.Conn.RemotePeer(), ev.Conn.LocalMultiaddr(), ev.Conn.RemoteMultiaddr(), ev.ObservedAddr)
		}
	}()
	return nil
}

// observations returns the observations kept, sorted, once those of
// peers no longer members or contacts' devices are dropped.
func (d *doctorPart) observations(ctx context.Context) []doctor.Observation {
	d.obs.prune(ctx)
	return d.obs.list()
}

// Close stops serving and following, and waits. Idempotent.
func (d *doctorPart) Close() error {
	d.once.Do(func() {
		d.h.RemoveStreamHandler(ProtocolTime)
		d.mu.Lock()
		sub := d.sub
		d.mu.Unlock()
		if sub != nil {
			_ = sub.Close()
		}
		d.wg.Wait()
		d.obs.close()
	})
	return nil
}

// thinWaist is a's IP and TCP or UDP port (say /ip4/10.0.0.2/udp/4777).
func thinWaist(a ma.Multiaddr) (ma.Multiaddr, bool) {
	if len(a) < 2 {
		return nil, false
	}
	switch a[0].Code() {
	case ma.P_IP4, ma.P_IP6:
	default:
		return nil, false
	}
	switch a[1].Code() {
	case ma.P_TCP, ma.P_UDP:
	default:
		return nil, false
	}
	return ma.Multiaddr{a[0], a[1]}, true
}

// portOf is a's TCP or UDP port; 0 if it has none.
func portOf(a ma.Multiaddr) int {
	for _, code := range []int{ma.P_TCP, ma.P_UDP} {
		if v, err := a.ValueForProtocol(code); err == nil {
			p, _ := strconv.Atoi(v)
			return p
		}
	}
	return 0
}
