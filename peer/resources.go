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
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	"github.com/exopeer/exopeer/gossip"
)

// ResourceConfig is the libp2p resource manager's limits: what peers may
// hold of this node at once. Streams over a limit are refused (reset) when
// they open; a stream's buffers (yamux windows) grow only while its
// protocol, its peer and the node have memory left.
type ResourceConfig struct {
	// MemoryMiB is the memory the whole libp2p stack may hold, in MiB;
	// the other defaults of libp2p (connections, file descriptors) scale
	// with it. 0 means one eighth of the machine's memory, at least 128.
	MemoryMiB int `toml:"memory_mib"`
	// PeerStreams bounds the inbound streams one peer may have open at
	// once, all protocols together. 0 means 128.
	PeerStreams int `toml:"peer_streams"`
	// ProtocolStreams bounds the inbound streams open at once on one
	// exopeer protocol, all peers together. 0 means 256.
	ProtocolStreams int `toml:"protocol_streams"`
	// ProtocolPeerStreams bounds the inbound streams one peer may have
	// open at once on one exopeer protocol (the join protocol: 2 at most).
	// 0 means 16.
	ProtocolPeerStreams int `toml:"protocol_peer_streams"`
	// ProtocolMemoryMiB bounds the buffer memory of one exopeer protocol's
	// streams, all peers together, in MiB; one peer gets a quarter of it,
	// one stream an eighth. 0 means 64.
	ProtocolMemoryMiB int `toml:"protocol_memory_mib"`
}

// ExopeerProtocols are the protocols the resource manager limits one by
// one: every protocol exopeer registers on the host.
var ExopeerProtocols = []protocol.ID{
	cell.ProtocolJoin, cell.ProtocolRoster, replica.ProtocolSync,
	gossip.ProtocolPacket, gossip.ProtocolStream, discovery.ProtocolPing,
	dht.ProtocolID, dht.LANProtocolID, blocks.ProtocolID,
}

// joinPeerStreams bounds the join streams of one peer: a joiner runs one
// join at a time.
const joinPeerStreams = 2

func (c ResourceConfig) withDefaults() ResourceConfig {
	if c.PeerStreams == 0 {
		c.PeerStreams = 128
	}
	if c.ProtocolStreams == 0 {
		c.ProtocolStreams = 256
	}
	if c.ProtocolPeerStreams == 0 {
		c.ProtocolPeerStreams = 16
	}
	if c.ProtocolMemoryMiB == 0 {
		c.ProtocolMemoryMiB = 64
	}
	return c
}

func (c ResourceConfig) validate() []error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{
		{"memory_mib", c.MemoryMiB}, {"peer_streams", c.PeerStreams}, {"protocol_streams", c.ProtocolStreams},
		{"protocol_peer_streams", c.ProtocolPeerStreams}, {"protocol_memory_mib", c.ProtocolMemoryMiB},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("network.resources.%s %d is negative", f.name, f.v))
		}
	}
	if c.MemoryMiB > 0 && c.MemoryMiB < 32 {
		errs = append(errs, fmt.Errorf("network.resources.memory_mib %d is too small to run a node (at least 32)", c.MemoryMiB))
	}
	return errs
}

// limits returns the concrete limits c describes, scaled for fds file
// descriptors (0: libp2p's base limit).
func (c ResourceConfig) limits(fds int) rcmgr.ConcreteLimitConfig {
	c = c.withDefaults()
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
func resourceManager(c ResourceConfig, fds int) (network.ResourceManager, error) {
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(c.limits(fds)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}
