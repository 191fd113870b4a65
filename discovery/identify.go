package discovery

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
)

// waitIdentified waits until identify has run on every connection to id, so
// that the peerstore knows its protocols. A connection opened by another
// part of the node may still be in identify when we look at it.
func (s *Service) waitIdentified(ctx context.Context, id peer.ID) {
	ids, ok := s.h.(interface{ IDService() identify.IDService })
	if !ok {
		return
	}
	for _, c := range s.h.Network().ConnsToPeer(id) {
		select {
		case <-ids.IDService().IdentifyWait(c):
		case <-ctx.Done():
			return
		}
	}
}

// awaitExopeer reports whether id speaks exopeer, waiting up to
// IdentifyGrace (or until ctx ends) for an identify push that adds our
// protocol: a peer that has just started may have answered identify before
// registering its handlers.
func (s *Service) awaitExopeer(ctx context.Context, id peer.ID) bool {
	if s.speaksExopeer(id) || s.probe(ctx, id) {
		return true
	}
	sub, err := s.h.EventBus().Subscribe(new(event.EvtPeerProtocolsUpdated))
	if err != nil {
		return false
	}
	defer sub.Close()
	grace := time.NewTimer(s.cfg.IdentifyGrace)
	defer grace.Stop()
	for !s.speaksExopeer(id) { // checked again: the push may have come before we subscribed
		select {
		case <-ctx.Done():
			return false
		case <-grace.C:
			return s.probe(ctx, id)
		case <-sub.Out():
		}
	}
	return true
}

// probe asks id itself whether it speaks exopeer: a ping over a connection
// already open. Identify alone can tell a stale story: a peer that has just
// registered its handlers pushes its new protocol list, and the answer to
// our identify request, taken from its list of before, may arrive after the
// push and overwrite it (seen under load). A ping that is answered proves
// the protocol, and the peerstore is told so.
func (s *Service) probe(ctx context.Context, id peer.ID) bool {
	if s.h.Network().Connectedness(id) != network.Connected {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	if _, err := ping(network.WithNoDial(ctx, "exopeer probe"), s.h, id, s.rand, s.now); err != nil {
		return false
	}
	_ = s.h.Peerstore().AddProtocols(id, ProtocolPing)
	return true
}

func (s *Service) speaksExopeer(id peer.ID) bool {
	ok, err := s.h.Peerstore().SupportsProtocols(id, ProtocolPing)
	return err == nil && len(ok) > 0
}
