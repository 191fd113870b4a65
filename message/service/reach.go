package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// errNoAddress is a device this host knows no address of, with no Finder
// to look it up.
var errNoAddress = errors.New("message: no address of the device")

// reach connects this host to dev if it is not connected: through the
// peerstore's addresses, else (none, or none answered) those the Finder
// finds. The handshake calls it first, so that the device is asked for
// its prekey bundle directly (prekey.Service.Fetch asks a connected
// device) and answers even before its bundle is on the DHT; the frame
// then goes on the same connection. It blocks until connected, failed,
// or ctx ends.
func (s *Service) reach(ctx context.Context, dev peer.ID) error {
	if s.h.Network().Connectedness(dev) == network.Connected {
		return nil
	}
	var errs []error
	if len(s.h.Peerstore().Addrs(dev)) > 0 {
		err := s.h.Connect(ctx, peer.AddrInfo{ID: dev})
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if s.finder == nil || ctx.Err() != nil {
		if len(errs) == 0 {
			return errNoAddress
		}
		return fmt.Errorf("message: connect %s: %w", dev, errors.Join(errs...))
	}
	ai, err := s.finder.FindPeer(ctx, dev)
	if err != nil {
		return fmt.Errorf("message: find %s: %w", dev, errors.Join(append(errs, err)...))
	}
	if err := s.h.Connect(ctx, ai); err != nil {
		return fmt.Errorf("message: connect %s: %w", dev, errors.Join(append(errs, err)...))
	}
	return nil
}
