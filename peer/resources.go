package peer

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/pbnjay/memory"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain/replica"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	"github.com/exopeer/exopeer/gossip"
	messageservice "github.com/exopeer/exopeer/message/service"
	"github.com/exopeer/exopeer/prekey"
	"github.com/exopeer/exopeer/store/remote"
)

// ExopeerProtocols are the protocols the resource manager limits one by
// one: every protocol exopeer registers on the host.
var ExopeerProtocols = []protocol.ID{
	cell.ProtocolJoin, cell.ProtocolRoster, replica.ProtocolSync,
	gossip.ProtocolPacket, gossip.ProtocolStream, discovery.ProtocolPing,
	dht.ProtocolID, dht.LANProtocolID, blocks.ProtocolID, remote.Protocol,
	contactservice.ProtocolInvite, messageservice.Protocol,
	prekey.Protocol, ProtocolTime,
}

// joinPeerStreams bounds the join streams of one peer: a joiner runs one
// join at a time.
const joinPeerStreams = 2

// limits returns the concrete limits c describes, scaled for fds file
// descriptors (0: libp2p's base limit).
func limits(c datadir.ResourceConfig, fds int) rcmgr.ConcreteLimitConfig {
	c = c.WithDefaults()
	mem := int64(c.MemoryMiB) << 20
	if mem == 0 {
		mem = max(int64(memory.TotalMemory()/8), 128<<20)
	}
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	scaling.PeerBaseLimit.StreamsInbound = c.PeerStreams
	scaling.PeerLimitIncrease.StreamsInbound = 0
	protoMem := int64(c.ProtocolMemoryMiB) << 20
	scaling.StreamBaseLimit.Memory = protoMem / 8
	scaling.StreamLimitIncrease.Memory = 0
	for _, p := range ExopeerProtocols {
		perPeer := c.ProtocolPeerStreams
		if p == cell.ProtocolJoin {
			perPeer = min(perPeer, joinPeerStreams)
		}
		scaling.AddProtocolLimit(p, rcmgr.BaseLimit{
			StreamsInbound: c.ProtocolStreams, StreamsOutbound: 4 * c.ProtocolStreams,
			Streams: 5 * c.ProtocolStreams, Memory: protoMem,
		}, rcmgr.BaseLimitIncrease{})
		scaling.AddProtocolPeerLimit(p, rcmgr.BaseLimit{
			StreamsInbound: perPeer, StreamsOutbound: 4 * c.ProtocolPeerStreams,
			Streams: perPeer + 4*c.ProtocolPeerStreams, Memory: protoMem / 4,
		}, rcmgr.BaseLimitIncrease{})
	}
	return scaling.Scale(mem, fds)
}

// resourceManager builds the host's resource manager from c.
func resourceManager(c datadir.ResourceConfig, fds int) (network.ResourceManager, error) {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits(c, fds)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}
