package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/ambient"
)

// The reach check: before this node suspects a member it lost its last
// connection to, it asks a few other members whether they reach it, as
// memberlist's indirect probes would, and suspects it only if one of them
// does not and none does (see the package documentation, "Liveness", and
// "Wire format" for the request).

// ProtocolReach is the libp2p protocol of the reach check.
const ProtocolReach protocol.ID = "/exopeer/gossip/reach/1.0.0"

// The reach request's format version, and the answers.
const (
	reachVersion     byte = 1
	reachUnreachable byte = 0 // the helper cannot reach the member
	reachReachable   byte = 1 // the helper reached it
	reachCannotSay   byte = 2 // the helper does not check: busy, not a member alive here
)

// maxReachIDLen bounds the target's peer ID in a reach request (an
// Ed25519 peer ID has 38 bytes).
const maxReachIDLen = 64

// maxReachChecks bounds the reach checks this node runs for others at
// once; a request beyond it is answered reachCannotSay.
const maxReachChecks = 16

// errBadReach is the error of a malformed reach request.
var errBadReach = errors.New("gossip: bad reach request")

// appendReachRequest appends a whole reach request stream (header,
// version, the target's peer ID) to b.
func appendReachRequest(b []byte, tag [8]byte, target peer.ID) []byte {
	b = appendHeader(b, tag)
	b = append(b, reachVersion, byte(len(target)))
	return append(b, target...)
}

// readReachRequest reads what follows a reach request's header: the
// version, the length of the target's peer ID and the ID itself, which
// must be a valid peer ID of at most maxReachIDLen bytes. It reads nothing
// past it.
func readReachRequest(r io.Reader) (peer.ID, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", fmt.Errorf("gossip: read reach request: %w", err)
	}
	if h[0] != reachVersion {
		return "", fmt.Errorf("%w: version %d", errBadReach, h[0])
	}
	n := int(h[1])
	if n == 0 || n > maxReachIDLen {
		return "", fmt.Errorf("%w: peer ID of %d bytes", errBadReach, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("gossip: read reach request: %w", err)
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadReach, err)
	}
	return id, nil
}

// handleReach answers one reach request from an allowed peer: at most
// maxReachChecks at once, the request read within ProbeTimeout, the check
// bounded by the transport's onReach.
func (t *transport) handleReach(s network.Stream) {
	if !t.enter() {
		s.Reset()
		return
	}
	defer t.wg.Done()
	c := t.admit(s)
	if c == nil {
		return
	}
	asker := s.Conn().RemotePeer()
	_ = c.SetReadDeadline(ambient.Deadline(t.timing.ProbeTimeout))
	target, err := readReachRequest(c)
	if err != nil {
		t.stats.rejectedInbound.Add(1)
		t.log.Debug("gossip reach request rejected", "peer", asker, "err", err)
		c.reset()
		return
	}
	answer := reachCannotSay
	select {
	case t.reachSem <- struct{}{}:
		if t.onReach != nil {
			answer = t.onReach(t.ctx, asker, target)
		}
		<-t.reachSem
	default:
		t.stats.reachBusy.Add(1)
	}
	_ = c.SetWriteDeadline(ambient.Deadline(t.timing.ProbeTimeout))
	if _, err := c.Write([]byte{answer}); err != nil {
		c.reset()
		return
	}
	_ = c.Close()
}

// checkReach is a helper's check, for asker, of target: whether this node
// reaches it now. It answers reachCannotSay for a target that is not a
// member alive in this node's view (or is the asker or this node);
// otherwise, if no connection to it is open and a dial within
// ProbeTimeout fails, reachUnreachable; else it pings it as memberlist
// does (over a relayed connection too), reachReachable on an ack within
// ProbeTimeout, reachUnreachable without.
func (m *Membership) checkReach(ctx context.Context, asker, target peer.ID) byte {
	if target == asker || target == m.self || !m.cfg.Allow(target) {
		return reachCannotSay
	}
	m.mu.Lock()
	st := m.members[target]
	ml := m.ml
	alive := st != nil && st.state == StateAlive && m.started && !m.closed && !m.left
	m.mu.Unlock()
	if !alive {
		return reachCannotSay
	}
	if m.h.Network().Connectedness(target) == network.NotConnected {
		dctx, cancel := context.WithTimeout(ctx, m.cfg.Timing.ProbeTimeout)
		err := m.h.Connect(allowLimited(dctx), peer.AddrInfo{ID: target})
		cancel()
		if err != nil {
			return reachUnreachable
		}
	}
	addr := &net.UDPAddr{IP: FakeIP(target).AsSlice(), Port: FakePort}
	if _, err := ml.Ping(target.String(), addr); err != nil {
		return reachUnreachable
	}
	return reachReachable
}

// reachVerdict sums up the answers of the helpers asked about a member.
type reachVerdict struct {
	asked, reachable, unreachable int
}

// suspect reports whether the answers allow a suspicion: at least one
// helper could not reach the member, and none could.
func (v reachVerdict) suspect() bool { return v.unreachable > 0 && v.reachable == 0 }

// askReach asks up to IndirectChecks members, chosen at random among those
// alive in this node's view and connected to it (id excluded), whether
// they reach id. It returns once all have answered or ctx is done: a
// helper that does not answer in time counts for nothing.
func (m *Membership) askReach(ctx context.Context, id peer.ID) reachVerdict {
	helpers := m.pickHelpers(id, m.cfg.Timing.IndirectChecks)
	answers := make(chan byte, len(helpers))
	var wg sync.WaitGroup
	defer wg.Wait() // the requests end with ctx, cancelled below
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, h := range helpers {
		wg.Go(func() { answers <- m.requestReach(ctx, h, id) })
	}
	v := reachVerdict{asked: len(helpers)}
	for range helpers {
		var a byte
		select {
		case a = <-answers:
		case <-ctx.Done():
			return v
		}
		switch a {
		case reachReachable:
			v.reachable++
			return v // a member that someone reaches is not suspected
		case reachUnreachable:
			v.unreachable++
		}
	}
	return v
}

// requestReach asks helper whether it reaches target; reachCannotSay if
// it does not answer within ctx or answers anything else.
func (m *Membership) requestReach(ctx context.Context, helper, target peer.ID) byte {
	s, err := m.h.NewStream(allowLimited(ctx), helper, ProtocolReach)
	if err != nil {
		return reachCannotSay
	}
	defer s.Reset() // after the answer (or none), nothing more is read
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() }) // streams that ignore deadlines
	defer stop()
	if _, err := s.Write(appendReachRequest(nil, m.cfg.Tag, target)); err != nil {
		return reachCannotSay
	}
	var a [1]byte
	if _, err := io.ReadFull(s, a[:]); err != nil || a[0] > reachCannotSay {
		return reachCannotSay
	}
	return a[0]
}

// pickHelpers returns up to k members, at random, that are allowed, alive
// in this node's view and connected to it (a relayed connection counts), other
// than this node and target.
func (m *Membership) pickHelpers(target peer.ID, k int) []peer.ID {
	m.mu.Lock()
	var cands []peer.ID
	for id, st := range m.members {
		if id != m.self && id != target && st.state == StateAlive && m.cfg.Allow(id) {
			cands = append(cands, id)
		}
	}
	m.mu.Unlock()
	slices.Sort(cands) // the seed, not the map's order, decides
	net := m.h.Network()
	var out []peer.ID
	for _, i := range m.perm(len(cands)) {
		if len(out) == k {
			break
		}
		if id := cands[i]; net.Connectedness(id) != network.NotConnected {
			out = append(out, id)
		}
	}
	return out
}

// perm returns a random permutation of [0, n), drawn from Config.Rand
// (if it fails, a fixed one: any helpers serve).
func (m *Membership) perm(n int) []int {
	var seed [32]byte
	_, _ = io.ReadFull(m.rand, seed[:])
	return rand.New(rand.NewChaCha8(seed)).Perm(n)
}
