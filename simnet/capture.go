package simnet

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// CaptureFunc sees the bytes of one write on a simulated stream, from the
// node that writes to the node at the other end, with the stream's
// protocol. b is the caller's. It is called on the writer's goroutine,
// concurrently from many: it must be safe for that, and not block.
type CaptureFunc func(from, to peer.ID, p protocol.ID, b []byte)

// Capture makes f see every byte written on the network's streams from
// now until the returned function is called, as an observer of the links
// would (mocknet's links carry no transport encryption: what f sees is
// what the protocols above libp2p's Noise would expose to it). One
// capture at a time: a second replaces the first. Streams the libp2p
// host opens by itself (identify, ping) are not seen.
func (n *Net) Capture(f CaptureFunc) (stop func()) {
	n.capture.Store(&f)
	return func() { n.capture.CompareAndSwap(&f, nil) }
}
