package peer

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/exopeer/exopeer/doctor"
)

// MaxObservations bounds the observed addresses the node keeps for the
// doctor: one per observer and local address, the oldest dropped first.
const MaxObservations = 64

// doctorPart is the node's part "doctor": it answers the time protocol
// (ProtocolTime) for the peers allow admits, and keeps the addresses peers
// on the internet observed this node's connections at (identify's
// observed address, event.EvtPeerIdentificationCompleted), which tell the
// NAT's type. One goroutine, which Close waits for.
type doctorPart struct {
	h    host.Host
	time *timeServer
	now  func() time.Time
	log  *slog.Logger

	mu   sync.Mutex
	obs  map[string]observation // by observer and local address
	sub  event.Subscription
	wg   sync.WaitGroup
	once sync.Once
}

// observation is one observed address and when it was seen.
type observation struct {
	doctor.Observation
	at time.Time
}

func newDoctorPart(h host.Host, allow func(peer.ID) bool, now func() time.Time, log *slog.Logger) *doctorPart {
	return &doctorPart{
		h:    h,
		time: &timeServer{allow: allow, now: now, rate: newBucket(TimeRate, TimeBurst)},
		now:  now, log: log, obs: make(map[string]observation),
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
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for e := range sub.Out() {
			ev := e.(event.EvtPeerIdentificationCompleted)
			if ev.Conn == nil || ev.ObservedAddr == nil {
				continue
			}
			d.observe(ev.Conn.LocalMultiaddr(), ev.Conn.RemoteMultiaddr(), ev.ObservedAddr)
		}
	}()
	return nil
}

// observe records that the peer at remote saw this node's end local at
// observed. Only what tells the NAT counts: a direct connection, observed
// at a public address (a peer on the LAN sees the LAN address).
func (d *doctorPart) observe(local, remote, observed ma.Multiaddr) {
	lo, ok := thinWaist(local)
	if !ok || isRelayed(remote) || !manet.IsPublicAddr(observed) {
		return
	}
	ext, ok := thinWaist(observed)
	if !ok {
		return
	}
	ip, err := manet.ToIP(remote)
	if err != nil {
		return
	}
	o := doctor.Observation{Local: lo.String(), Observer: ip.String(), External: ext.String(), Port: portOf(ext)}
	key := o.Observer + " " + o.Local
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.obs[key]; !ok && len(d.obs) >= MaxObservations {
		oldest := ""
		for k, v := range d.obs {
			if oldest == "" || v.at.Before(d.obs[oldest].at) {
				oldest = k
			}
		}
		delete(d.obs, oldest)
	}
	d.obs[key] = observation{Observation: o, at: d.now()}
}

// observations returns the observations kept, sorted.
func (d *doctorPart) observations() []doctor.Observation {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]doctor.Observation, 0, len(d.obs))
	for _, o := range d.obs {
		out = append(out, o.Observation)
	}
	slices.SortFunc(out, func(a, b doctor.Observation) int {
		if a.Local != b.Local {
			return strings.Compare(a.Local, b.Local)
		}
		return strings.Compare(a.Observer, b.Observer)
	})
	return out
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
