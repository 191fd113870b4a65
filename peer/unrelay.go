package peer

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// unrelayGrace is how long a peer's direct connection must have been open
// before the node closes its relayed connections to the peer: a punched
// connection that fails at once leaves the relayed one in place.
const unrelayGrace = 30 * time.Second

// connView is a connection to one peer as unrelayable sees it.
type connView struct {
	relayed bool
	opened  time.Time
}

// unrelayable returns the indexes of the relayed connections to close
// among one peer's: all of them when a direct connection has been open
// for grace at now, none otherwise. Pure.
func unrelayable(conns []connView, now time.Time, grace time.Duration) []int {
	settled := false
	for _, c := range conns {
		if !c.relayed && !now.Before(c.opened.Add(grace)) {
			settled = true
			break
		}
	}
	if !settled {
		return nil
	}
	var out []int
	for i, c := range conns {
		if c.relayed {
			out = append(out, i)
		}
	}
	return out
}

// unrelay is the node's part "unrelay": once a peer is reached over a
// direct connection (a punched one, or a dial to an address it learnt),
// the peer's relayed connections are closed, after unrelayGrace, so that
// the streams open on them (which go-libp2p leaves there: only new
// streams prefer the direct connection) are opened again on the direct
// path and the relay carries nothing for the pair. The peer stays
// Connected throughout: the host sends no connectedness change, and
// bitswap ignores a connection's close while another remains. It sweeps
// the host's connections every grace/2; it keeps no state per peer.
type unrelay struct {
	net   network.Network
	now   func() time.Time
	grace time.Duration
	log   *slog.Logger
}

func newUnrelay(n network.Network, now func() time.Time, log *slog.Logger) *unrelay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &unrelay{net: n, now: now, grace: unrelayGrace, log: log}
}

// Run sweeps until ctx ends.
func (u *unrelay) Run(ctx context.Context) error {
	t := time.NewTicker(u.grace / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			u.sweep()
		}
	}
}

// sweep closes the relayed connections of every peer reached directly for
// grace, and returns how many it closed.
func (u *unrelay) sweep() int {
	now := u.now()
	byPeer := make(map[peer.ID][]network.Conn)
	for _, c := range u.net.Conns() {
		byPeer[c.RemotePeer()] = append(byPeer[c.RemotePeer()], c)
	}
	closed := 0
	for id, conns := range byPeer {
		views := make([]connView, len(conns))
		for i, c := range conns {
			_, relayed := circuitRelay(c.RemoteMultiaddr())
			views[i] = connView{relayed: relayed, opened: c.Stat().Opened}
		}
		for _, i := range unrelayable(views, now, u.grace) {
			if err := conns[i].Close(); err != nil {
				u.log.Debug("closing a relayed connection", "peer", id, "addr", conns[i].RemoteMultiaddr(), "err", err)
				continue
			}
			closed++
			u.log.Debug("relayed connection closed: the peer is reached directly", "peer", id, "addr", conns[i].RemoteMultiaddr())
		}
	}
	return closed
}

// Path returns how the node reaches id now, computed from the host's
// connections at the call, with the last hole punch with it.
func (n *Node) Path(id peer.ID) Path {
	p := connsPath(n.host.Network().ConnsToPeer(id))
	p.Punch = n.lastPunch(id)
	return p
}

// lastPunch is the last hole punch with id (nil: none seen, or a network
// without the tracer).
func (n *Node) lastPunch(id peer.ID) *PunchResult {
	if r := n.opts.Network.Relays; r != nil {
		if res, ok := r.punches.result(id); ok {
			return &res
		}
	}
	return nil
}
