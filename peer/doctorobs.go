package peer

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/exopeer/exopeer/doctor"
)

const (
	// MaxObservations bounds the observed addresses the node keeps for
	// the doctor: one per observer (by peer ID: one vote a peer, whatever
	// addresses it comes from) and local address. Past it a contact's
	// device's oldest is dropped first; a member's only for a member's.
	MaxObservations = 64
	// MaxContactObservers bounds the observers among the devices of one
	// contact (counted by the set of contacts whose device lists name
	// the device, as the known table's owner): past it, the oldest of
	// them is dropped. Any cell may sign a device list naming any number
	// of peer IDs it controls; without the bound one contact's fake
	// devices would fill the slots and outvote the members.
	MaxContactObservers = 4
	// MaxPendingObservations bounds the observations of peers not on the
	// roster that wait for the contact check; past it, new ones are
	// dropped.
	MaxPendingObservations = 16
)

// peerRule is who the doctor's part serves the time protocol and takes
// observed addresses from: the cell's members and its contacts' devices.
// Any other peer (a DHT peer, anyone on the internet) could say anything:
// identify's observed address is what the remote peer writes.
type peerRule struct {
	// member reports whether p is on the cell's roster now, other than
	// the node itself. It reads memory only and does not block.
	member func(p peer.ID) bool
	// contact names the contacts whose device lists name p, as one key
	// (contactsKey of their IDs; "" when none does: p is no contact's
	// device). It may read the store of another member (a thin device),
	// so it blocks up to ctx's end. An error (the contacts not read, at
	// once or in time) says nothing about p.
	contact func(ctx context.Context, p peer.ID) (owner string, err error)
}

// allows reports whether p is a member or a contact's device; a failed
// look-up does not allow.
func (r peerRule) allows(ctx context.Context, p peer.ID) bool {
	if r.member(p) {
		return true
	}
	owner, err := r.contact(ctx, p)
	return err == nil && owner != ""
}

// observation is one observed address, its observer, and when it was
// seen.
type observation struct {
	doctor.Observation
	peer peer.ID
	// owner is the contacts whose device lists name peer (see
	// peerRule.contact); "" for a member.
	owner string
	at    time.Time
}

// pendingObs is an observation that waits for the contact check of its
// observer.
type pendingObs struct {
	p peer.ID
	o doctor.Observation
}

// observations keeps the addresses the cell's members and contacts'
// devices observed this node at, one per observer peer and local address,
// at most MaxContactObservers observers per contact and never a
// contact's device's in place of a member's (keep).
// A member's observation is kept at once, and so is that of a peer the
// gate remembers as a contact's device; one the gate remembers as no
// contact's is refused; any other peer's waits, at most
// MaxPendingObservations of them, for one goroutine to check, through the
// gate (at most LookupRate look-ups a second), whether the peer is a
// contact's device (a store read, remote on a thin device, bounded by
// kindWait), off identify's event loop. Close waits for that goroutine.
type observations struct {
	rule    peerRule
	gate    *contactGate
	now     func() time.Time
	log     *slog.Logger
	pending chan pendingObs

	mu      sync.Mutex
	obs     map[string]observation // by observer and local address
	dropped int                    // pending ones dropped: the queue was full
	refused int                    // of peers neither member nor contact, or past the look-up rate

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newObservations(rule peerRule, now func() time.Time, log *slog.Logger) *observations {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &observations{
		rule: rule, gate: newContactGate(rule, now), now: now, log: log,
		pending: make(chan pendingObs, MaxPendingObservations),
		obs:     make(map[string]observation),
	}
}

// start starts the goroutine that checks pending observations.
func (b *observations) start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case po := <-b.pending:
				cctx, ccancel := context.WithTimeout(ctx, kindWait)
				owner, ok := b.gate.admits(cctx, po.p)
				ccancel()
				if ok {
					b.keep(po.p, owner, po.o)
					continue
				}
				b.mu.Lock()
				b.refused++
				b.mu.Unlock()
			}
		}
	}()
}

// close stops the check and waits for it; pending observations are lost.
func (b *observations) close() {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
}

// identified takes identify's report that peer p, at remote, saw this
// node's end local at observed. Only what tells the NAT counts: a direct
// connection, observed at a public address (a peer on the LAN sees the
// LAN address), by a member or a contact's device. It does not block.
func (b *observations) identified(p peer.ID, local, remote, observed ma.Multiaddr) {
	o, ok := observationOf(local, remote, observed)
	if !ok {
		return
	}
	if b.rule.member(p) {
		b.keep(p, "", o)
		return
	}
	if v, known := b.gate.remembered(p, b.now()); known && v.owner != "" {
		b.keep(p, v.owner, o)
		return
	} else if known {
		b.mu.Lock()
		b.refused++
		b.mu.Unlock()
		return
	}
	select {
	case b.pending <- pendingObs{p: p, o: o}:
	default:
		b.mu.Lock()
		b.dropped++
		b.mu.Unlock()
		b.log.Debug("observed address dropped: too many wait for the contact check", "peer", p)
	}
}

// observationOf is what the observation tells the NAT rule, if anything.
func observationOf(local, remote, observed ma.Multiaddr) (doctor.Observation, bool) {
	lo, ok := thinWaist(local)
	if !ok || isRelayed(remote) || !manet.IsPublicAddr(observed) {
		return doctor.Observation{}, false
	}
	ext, ok := thinWaist(observed)
	if !ok {
		return doctor.Observation{}, false
	}
	if _, err := manet.ToIP(remote); err != nil {
		return doctor.Observation{}, false
	}
	return doctor.Observation{Local: lo.String(), External: ext.String(), Port: portOf(ext)}, true
}

// keep stores o, p's observation, in place of p's earlier one of the same
// local address. The observer is p, whatever address it came from: a
// peer with several addresses (IPv4, IPv6, several interfaces) is one
// vote. owner is the contacts p is a device of ("" for a member): past
// MaxContactObservers observers of that owner, the oldest of them is
// dropped; past MaxObservations, a contact's device's oldest observation
// is dropped, or, when there is none, a member's for a member's, and a
// contact's device's is not kept.
func (b *observations) keep(p peer.ID, owner string, o doctor.Observation) {
	o.Observer = p.String()
	key := o.Observer + " " + o.Local
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.obs[key]; ok && old.owner == owner {
		b.obs[key] = observation{Observation: o, peer: p, owner: owner, at: b.now()}
		return
	}
	b.dropOtherOwnerLocked(p, owner)
	if owner != "" {
		b.roomForContactLocked(p, owner)
	}
	if len(b.obs) >= MaxObservations {
		k, ok := b.oldestLocked(func(v observation) bool { return v.owner != "" })
		if !ok && owner == "" {
			k, ok = b.oldestLocked(func(observation) bool { return true })
		}
		if !ok {
			b.log.Debug("observed address dropped: every slot is a member's", "peer", p)
			return
		}
		delete(b.obs, k)
	}
	b.obs[key] = observation{Observation: o, peer: p, owner: owner, at: b.now()}
}

// dropOtherOwnerLocked drops p's observations kept under another owner
// than owner (a member that became a contact's device, a device another
// contact now names too): all of a peer's are under one owner, the last.
func (b *observations) dropOtherOwnerLocked(p peer.ID, owner string) {
	for k, v := range b.obs {
		if v.peer == p && v.owner != owner {
			delete(b.obs, k)
		}
	}
}

// roomForContactLocked makes room for p among owner's observers: while
// owner has MaxContactObservers others, the observations of the one seen
// last the longest ago are dropped.
func (b *observations) roomForContactLocked(p peer.ID, owner string) {
	for {
		last := map[peer.ID]time.Time{}
		for _, v := range b.obs {
			if t, seen := last[v.peer]; v.owner == owner && v.peer != p && (!seen || v.at.After(t)) {
				last[v.peer] = v.at
			}
		}
		if len(last) < MaxContactObservers {
			return
		}
		var oldest peer.ID
		for q, at := range last {
			if oldest == "" || at.Before(last[oldest]) || (at.Equal(last[oldest]) && q < oldest) {
				oldest = q
			}
		}
		for k, v := range b.obs {
			if v.peer == oldest {
				delete(b.obs, k)
			}
		}
	}
}

// oldestLocked is the key of the oldest observation that match admits.
func (b *observations) oldestLocked(match func(observation) bool) (string, bool) {
	oldest := ""
	for k, v := range b.obs {
		if !match(v) {
			continue
		}
		if o, ok := b.obs[oldest]; !ok || v.at.Before(o.at) || (v.at.Equal(o.at) && k < oldest) {
			oldest = k
		}
	}
	return oldest, oldest != ""
}

// prune drops the observations of the peers the rule no longer admits (a
// device removed from the cell, a deleted contact's), or admits as
// another owner's (a member now a contact's device, a device another
// contact now names too), asking once per peer (not through the gate:
// the user asked, and at most MaxObservations peers). A failed look-up
// drops too: the observation comes back with the peer's next identify.
func (b *observations) prune(ctx context.Context) {
	b.mu.Lock()
	kept := map[peer.ID]string{}
	for _, o := range b.obs {
		kept[o.peer] = o.owner
	}
	b.mu.Unlock()
	gone := map[peer.ID]bool{}
	for p, was := range kept {
		if owner, ok := b.ownerOf(ctx, p); !ok || owner != was {
			gone[p] = true
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, o := range b.obs {
		if gone[o.peer] {
			delete(b.obs, k)
		}
	}
}

// ownerOf is p's owner as keep counts it ("" for a member), if the rule
// admits p.
func (b *observations) ownerOf(ctx context.Context, p peer.ID) (string, bool) {
	if b.rule.member(p) {
		return "", true
	}
	owner, err := b.rule.contact(ctx, p)
	return owner, err == nil && owner != ""
}

// list returns the observations kept, sorted.
func (b *observations) list() []doctor.Observation {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]doctor.Observation, 0, len(b.obs))
	for _, o := range b.obs {
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

// counts returns the observations dropped (queue full) and refused
// (neither member nor contact) so far.
func (b *observations) counts() (dropped, refused int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped, b.refused
}
