package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peer"
)

// delegate is memberlist's Delegate, EventDelegate, AliveDelegate and
// MergeDelegate for a Membership (a type of its own, so that these methods
// stay off the Membership's API). memberlist calls the event, alive and
// merge methods with its node lock held: they must not call memberlist.
type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
	_ memberlist.AliveDelegate = delegate{}
	_ memberlist.MergeDelegate = delegate{}
)

// NodeMeta returns this node's signed metadata (at most maxMetaSize bytes,
// below memberlist's limit).
func (d delegate) NodeMeta(int) []byte { return *d.m.meta.Load() }

func (d delegate) NotifyMsg(b []byte) { d.m.receiveBroadcast(b) }

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.bq.GetBroadcasts(overhead, limit)
}

// LocalState and MergeRemoteState carry the topics' push/pull states.
func (d delegate) LocalState(bool) []byte { return d.m.topics.localState() }

func (d delegate) MergeRemoteState(buf []byte, _ bool) { d.m.topics.mergeState(buf) }

// NotifyAlive admits a node only if check passes.
func (d delegate) NotifyAlive(n *memberlist.Node) error { return d.m.check(n) }

// NotifyMerge refuses a join whose state holds a live or suspect node that
// check refuses. Dead and left nodes are not checked: memberlist only
// suspects such nodes, and only those it already knows, so they admit
// nobody; and a member removed from the roster stays dead in the others'
// tables for a while, which must not stop the next node from joining.
func (d delegate) NotifyMerge(nodes []*memberlist.Node) error {
	for _, n := range nodes {
		if n.State == memberlist.StateDead || n.State == memberlist.StateLeft {
			continue
		}
		// A member's view of a third node may lag behind ours: that
		// node's alive message alone is then refused (NotifyAlive).
		if err := d.m.check(n); err != nil && !errors.Is(err, errStaleMeta) {
			return fmt.Errorf("gossip: merge refused: %w", err)
		}
	}
	return nil
}

func (d delegate) NotifyJoin(n *memberlist.Node)   { d.m.onJoin(n) }
func (d delegate) NotifyLeave(n *memberlist.Node)  { d.m.onLeave(n) }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.m.onUpdate(n) }

// Reasons why check refuses a node.
var (
	errBadName = errors.New("gossip: node name is not a peer ID")
	errBadAddr = errors.New("gossip: node address is not its fake address")
)

// check decides whether node n may be a member: its name is a peer ID in
// canonical form, Allow accepts it, its address is its fake address, its
// metadata carries a valid signature of that peer, CheckMeta accepts it,
// and it is not older than metadata of that node already seen. This node
// itself always passes. A refusal is counted and logged once; stale
// metadata is counted apart and logged at debug level, since late gossip
// carries some without any attack.
func (m *Membership) check(n *memberlist.Node) error {
	if n.Name == m.selfName {
		m.noteOwn(n.Meta)
		return nil
	}
	err := m.checkRemote(n)
	switch {
	case err == nil:
	case errors.Is(err, errStaleMeta):
		m.staleMeta.Add(1)
		m.log.Debug("gossip stale metadata refused", "node", n.Name, "err", err)
	default:
		m.stats.rejectedNodes.Add(1)
		m.logOnce(n.Name, err)
	}
	return err
}

func (m *Membership) checkRemote(n *memberlist.Node) error {
	id, err := peer.Decode(n.Name)
	if err != nil || id.String() != n.Name {
		return fmt.Errorf("%w: %q", errBadName, n.Name)
	}
	if !m.cfg.Allow(id) {
		return fmt.Errorf("%w: %s", ErrNotAllowed, id)
	}
	if ip, ok := netip.AddrFromSlice(n.Addr); !ok || ip != FakeIP(id) || n.Port != FakePort {
		return fmt.Errorf("%w: %s", errBadAddr, id)
	}
	nm, err := verifyMeta(m.cfg.Tag, id, n.Meta)
	if err != nil {
		return fmt.Errorf("node %s: %w", id, err)
	}
	if f := m.cfg.CheckMeta; f != nil {
		if err := f(id, nm.App); err != nil {
			return fmt.Errorf("gossip: node %s: metadata refused: %w", id, err)
		}
	}
	if err := m.seqs.admit(id, nm.Seq); err != nil {
		return fmt.Errorf("node %s: %w", id, err)
	}
	m.tr.learn(id)
	return nil
}

// noteOwn looks at metadata of this node that gossip brought back. If this
// node signed it, in an earlier run, with a sequence number above its
// current one (it restarted with its clock behind before the others
// noticed), the others refuse its current metadata as stale: it signs
// again above that number and gossips the result (at most one such update
// at a time).
func (m *Membership) noteOwn(b []byte) {
	nm, err := verifyMeta(m.cfg.Tag, m.self, b)
	if err != nil {
		return
	}
	m.metaMu.Lock()
	behind := nm.Seq > m.metaSeq
	if behind {
		m.metaSeq = nm.Seq // the next signature goes above it
	}
	m.metaMu.Unlock()
	if !behind || !m.resigning.CompareAndSwap(false, true) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.left {
		m.resigning.Store(false)
		return
	}
	m.log.Info("gossip metadata signed again above an earlier run's", "seq", nm.Seq)
	m.wg.Go(func() {
		defer m.resigning.Store(false)
		for range maxResign {
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timing.StreamTimeout)
			err := m.UpdateMeta(ctx)
			cancel()
			if err == nil {
				return
			}
			m.log.Debug("gossip metadata update", "err", err)
			if _, err := m.running(); err != nil {
				return
			}
		}
	})
}

// maxResign bounds noteOwn's attempts to gossip its new metadata. The
// earlier run's metadata that makes this node sign again also makes
// memberlist refute it, concurrently, with a new incarnation carrying the
// metadata the others refuse; when that refutation takes its incarnation
// number after UpdateNode took its own, memberlist drops the update as
// older (nothing sends it: UpdateNode times out) and gossip brings the
// earlier run's metadata no more often than before, with a sequence
// number now below this node's, so noteOwn would not try again. A second
// attempt takes a fresh incarnation above the refutation's.
const maxResign = 3

// maxLogged bounds the set of refusals already logged.
const maxLogged = 1024

// logOnce logs a refusal the first time it happens (since the last
// Refresh), not at every gossip round that repeats it.
func (m *Membership) logOnce(name string, err error) {
	key := name + "\x00" + err.Error()
	m.mu.Lock()
	_, seen := m.logged[key]
	if !seen {
		if len(m.logged) >= maxLogged {
			clear(m.logged)
		}
		m.logged[key] = struct{}{}
	}
	m.mu.Unlock()
	if !seen {
		m.log.Warn("gossip node refused", "node", name, "err", err)
	}
}

// memberOf returns the peer ID and decoded metadata of a node that passed
// check (or is this node).
func memberOf(n *memberlist.Node) (peer.ID, nodeMeta, bool) {
	id, err := peer.Decode(n.Name)
	if err != nil {
		return "", nodeMeta{}, false
	}
	nm, _ := decodeMeta(n.Meta) // checked by NotifyAlive
	return id, nm, true
}

func (m *Membership) onJoin(n *memberlist.Node) {
	id, nm, ok := memberOf(n)
	if !ok {
		return
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	typ := EventJoined
	st := m.members[id]
	switch {
	case st == nil:
		st = &memberState{}
		m.members[id] = st
		m.alive.Add(1)
	case st.state == StateDead:
		typ = EventRecovered
		m.alive.Add(1)
	case st.state == StateLeft:
		m.alive.Add(1)
	}
	*st = memberState{state: StateAlive, since: now, seen: now, meta: slices.Clone(nm.App)}
	if id != m.self {
		m.protectLocked(id)
	}
	m.emitLocked(Event{Type: typ, Member: st.member(id)})
}

// onLeave records a member's departure (and forgets the sequence number
// of its metadata). memberlist v0.7.0 passes a Node
// whose State is always StateAlive here (hashicorp/memberlist#293), so a
// departure on purpose is recognised by the leaving flag in the member's
// signed metadata, which Leave gossips before it leaves; a later
// memberlist that fills in State is honoured too.
func (m *Membership) onLeave(n *memberlist.Node) {
	id, nm, ok := memberOf(n)
	if !ok {
		return
	}
	// Gone, it signs nothing newer: forget its sequence number, so that
	// it is admitted again after a restart with its clock behind.
	m.seqs.forget(id)
	m.incs.forget(id)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.members[id]
	if m.closed || st == nil || st.state != StateAlive {
		return
	}
	m.alive.Add(-1)
	typ, state := EventFailed, StateDead
	if nm.leaving() || n.State == memberlist.StateLeft {
		typ, state = EventLeft, StateLeft
	}
	st.state, st.since = state, now
	m.emitLocked(Event{Type: typ, Member: st.member(id)})
}

func (m *Membership) onUpdate(n *memberlist.Node) {
	id, nm, ok := memberOf(n)
	if !ok {
		return
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.members[id]
	if m.closed || st == nil {
		return
	}
	st.seen, st.meta = now, slices.Clone(nm.App)
	m.emitLocked(Event{Type: EventUpdated, Member: st.member(id)})
}

// logBridge turns memberlist's log lines ("[LEVEL] memberlist: text")
// into debug records.
type logBridge struct{ log *slog.Logger }

func (b logBridge) Write(p []byte) (int, error) {
	if !b.log.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	line := strings.TrimSpace(string(p))
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	b.log.Debug("memberlist", "memberlistLevel", level, "line", strings.TrimPrefix(line, "memberlist: "))
	return len(p), nil
}
