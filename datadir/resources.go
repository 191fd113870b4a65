package datadir

import "fmt"

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

// WithDefaults fills in the zero fields with the defaults.
func (c ResourceConfig) WithDefaults() ResourceConfig {
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
