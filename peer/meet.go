package peer

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/cell"
)

// meetBackoff is the wait after each dial of part "meet" to a member it
// cannot reach yet: the member may not hold its relay slot yet (AutoRelay
// asks the roster for candidates every relayMinInterval once the node is
// a member). After the last, no more until the member is reached or
// leaves the alive members, and then starts over: in all 10 dials over
// about two and a half minutes, by when discovery's rendezvous (every minute) and
// known table have had their turns.
var meetBackoff = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
	16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}

// meetYield is how long the member with the higher peer ID of a pair
// waits before its first dial: the lower one dials at once, so that the
// pair usually ends with one relayed connection, dialled by one side
// (hole punching runs on the side that receives it; punchretry on the
// side that dialled it, and, while both dialled one, on the lower peer
// ID only, closing both: mutualRetry).
const meetYield = 5 * time.Second

// meetSweep is how often part "meet" looks at the cell's members.
const meetSweep = time.Second

// meetDialWait bounds one dial through the cell's relays.
const meetDialWait = 10 * time.Second

// meetParallel bounds the dials of one sweep under way at once.
const meetParallel = 4

// meetState is one unreached member's back-off: the next dial is due at
// next; tries counts the dials made.
type meetState struct {
	next  time.Time
	tries int
}

// planMeets is one sweep of part "meet". unreached are the cell's alive
// members (gossip) other than self that the host holds no connection to
// and never held one to (firstMeets); relays says whether a relay of the cell is at hand to dial
// through. The next state holds exactly the unreached members: one
// reached, or no longer alive (failed, left, removed), is dropped, and
// so the state is bounded by the roster (cell.MaxMembers). A member seen
// unreached for the first time is due at once if its ID is above self's,
// meetYield later if below (counted from the first sweep with a relay at
// hand); after each dial the next waits meetBackoff,
// and after the last there are none. Without a relay nothing is due and
// nothing is counted: the dials wait for one. Pure.
func planMeets(self peer.ID, state map[peer.ID]meetState, unreached []peer.ID, relays bool, now time.Time) (next map[peer.ID]meetState, due []peer.ID) {
	next = make(map[peer.ID]meetState, len(unreached))
	for _, id := range unreached {
		if id == self {
			continue
		}
		st, ok := state[id]
		// The yield counts from when a relay is at hand: both ends of a
		// pair that saw each other before would otherwise dial at once.
		if !ok || (!relays && st.tries == 0) {
			st.next = now
			if id < self {
				st.next = now.Add(meetYield)
			}
		}
		if relays && st.tries <= len(meetBackoff) && !now.Before(st.next) {
			due = append(due, id)
			if st.tries < len(meetBackoff) {
				st.next = now.Add(meetBackoff[st.tries])
			}
			st.tries++
		}
		next[id] = st
	}
	slices.Sort(due)
	return next, due
}

// meetMember is a roster member as part "meet" sees it: alive in gossip
// or not.
type meetMember struct {
	id    peer.ID
	alive bool
}

// meetView is a roster member at one sweep: alive in gossip or not, and
// whether the host holds a connection to it now.
type meetView struct {
	meetMember
	connected bool
}

// firstMeets picks the members part "meet" dials: those alive that the
// host holds no connection to and has held none to since the node
// started (met). Part "meet" is for the first meeting: once a member
// was connected, the known table holds its addresses (its relayed ones
// among them) and discovery and gossip redial it when it is lost; a
// dial of part "meet" then would race them and the peer's own redials
// (two relayed connections, one each way, which punchretry retries
// only from the lower peer ID, after the punch it cannot rule out). The next met set holds only members of views (the roster),
// so it is bounded by it, and a member removed and added again is met
// afresh. Pure.
func firstMeets(self peer.ID, met map[peer.ID]bool, views []meetView) (nextMet map[peer.ID]bool, unreached []peer.ID) {
	nextMet = make(map[peer.ID]bool)
	for _, v := range views {
		switch {
		case v.id == self:
		case v.connected || met[v.id]:
			nextMet[v.id] = true
		case v.alive:
			unreached = append(unreached, v.id)
		}
	}
	return nextMet, unreached
}

// cellMeetMembers reads the roster and gossip's view of it
// (meetMembersOf). Nothing while the node is in no cell.
func cellMeetMembers(c *cell.Service) func() []meetMember {
	return func() []meetMember {
		info, err := c.Members()
		if err != nil {
			return nil
		}
		return meetMembersOf(info)
	}
}

// meetMembersOf is every member of info but this node, alive or not.
// Alive is gossip's alive or suspect: gossip shows a member suspect when
// this node has not heard from it itself for a while (Timing.SuspectAfter),
// which is the case of every member the host cannot reach; dead, left
// and never heard of are not alive. None once this node was removed: the
// roster is the one that removed it, and its members' relays refuse it.
// Pure.
func meetMembersOf(info cell.Info) []meetMember {
	if info.Removed {
		return nil
	}
	out := make([]meetMember, 0, len(info.Members))
	for _, m := range info.Members {
		if !m.Self {
			out = append(out, meetMember{id: m.Peer, alive: m.State == "alive" || m.State == "suspect"})
		}
	}
	return out
}

// meet is the node's part "meet": a member that gossip says is alive but
// that the host holds no connection to and held none to since the node
// started (firstMeets; it knows no address of it: two
// members behind NAT that joined through a third learn of each other
// from gossip only, and the DHT rendezvous meets them only at its next
// round, a minute later) is dialled through the cell's relays, at
// <relay's address>/p2p/<relay>/p2p-circuit, with back-off (planMeets).
// A relay of the cell is a member the host speaks the relay's hop
// protocol with, over a direct connection it holds now. Only alive
// roster members are dialled, so none after it fails, leaves or is
// removed. The relay admits the circuit (both ends members) if the
// member holds a slot on it; the connection then punches as any other.
// Its clock is the node's.
type meet struct {
	h       host.Host
	now     func() time.Time
	members func() []meetMember
	log     *slog.Logger

	// state and met are only used by sweep, from one goroutine.
	state map[peer.ID]meetState
	met   map[peer.ID]bool
}

func newMeet(h host.Host, now func() time.Time, members func() []meetMember, log *slog.Logger) *meet {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &meet{h: h, now: now, members: members, log: log, state: make(map[peer.ID]meetState), met: make(map[peer.ID]bool)}
}

// Run sweeps until ctx ends.
func (m *meet) Run(ctx context.Context) error {
	t := time.NewTicker(meetSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.sweep(ctx)
		}
	}
}

// sweep plans and makes this round's dials, waits for them, and returns
// the members it reached.
func (m *meet) sweep(ctx context.Context) []peer.ID {
	self := m.h.ID()
	var roster []peer.ID
	var views []meetView
	for _, mb := range m.members() {
		roster = append(roster, mb.id)
		views = append(views, meetView{meetMember: mb, connected: len(m.h.Network().ConnsToPeer(mb.id)) > 0})
	}
	var unreached []peer.ID
	m.met, unreached = firstMeets(self, m.met, views)
	relays := m.relays(roster)
	var due []peer.ID
	prev := m.state
	m.state, due = planMeets(self, m.state, unreached, len(relays) > 0, m.now())
	for id := range m.state {
		if _, ok := prev[id]; !ok {
			m.log.Debug("an alive member is not connected", "peer", id, "relays", len(relays))
		}
	}
	var (
		mu      sync.Mutex
		reached []peer.ID
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, meetParallel)
	for _, id := range due {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
			wg.Go(func() {
				defer func() { <-sem }()
				if m.dial(ctx, id, relays) {
					mu.Lock()
					reached = append(reached, id)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(reached)
	return reached
}

// relays returns, for each member of roster the host speaks the relay's
// hop protocol with over a direct connection, that connection's remote
// address followed by /p2p/<relay>/p2p-circuit.
func (m *meet) relays(roster []peer.ID) map[peer.ID]ma.Multiaddr {
	out := make(map[peer.ID]ma.Multiaddr)
	ps := m.h.Peerstore()
	for _, id := range roster {
		if hop, _ := ps.SupportsProtocols(id, proto.ProtoIDv2Hop); len(hop) == 0 {
			continue
		}
		for _, c := range m.h.Network().ConnsToPeer(id) {
			if isRelayed(c.RemoteMultiaddr()) {
				continue
			}
			circuit, err := ma.NewMultiaddr("/p2p/" + id.String() + "/p2p-circuit")
			if err != nil {
				continue
			}
			out[id] = c.RemoteMultiaddr().Encapsulate(circuit)
			break
		}
	}
	return out
}

// dial dials id through every relay but id itself, and reports whether
// the host is connected to it.
func (m *meet) dial(ctx context.Context, id peer.ID, relays map[peer.ID]ma.Multiaddr) bool {
	ai := peer.AddrInfo{ID: id}
	for r, a := range relays {
		if r != id {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	if len(ai.Addrs) == 0 {
		return false
	}
	// The swarm holds a failed address back for 5 s and more (its dial
	// back-off), which would fail the next dial at once: planMeets bounds
	// the dials instead.
	if sw, ok := m.h.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
		sw.Backoff().Clear(id)
	}
	ctx, cancel := context.WithTimeout(ctx, meetDialWait)
	defer cancel()
	if err := m.h.Connect(network.WithAllowLimitedConn(ctx, "meet a member"), ai); err != nil {
		m.log.Debug("dial of a member through the cell's relays failed", "peer", id, "err", err)
		return false
	}
	m.log.Info("met a member through the cell's relays", "peer", id)
	return true
}
