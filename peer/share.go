package peer

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// shareContacts gives the blob service the devices of the cell's
// contacts (blobservice.Contacts), read from the contacts part, which
// is built after the blobs part.
type shareContacts struct{ n *Node }

// ShareDevices returns the devices on each contact's current list, by
// cell key.
func (s shareContacts) ShareDevices(ctx context.Context) (map[string][]peer.ID, error) {
	cons := s.n.cons
	if cons == nil {
		return nil, errors.New("peer: no contacts part")
	}
	cs, err := cons.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]peer.ID, len(cs))
	for _, c := range cs {
		if c.Devices == nil {
			continue
		}
		out[hex.EncodeToString(c.Cell())] = slices.Clone(c.Devices.Devices)
	}
	return out, nil
}
