package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/ambient"
)

// ProtocolPing is exopeer's ping protocol; speaking it is what makes a peer
// an exopeer peer. See the package documentation for the wire format.
const ProtocolPing protocol.ID = "/exopeer/ping/1.0.0"

const (
	// PingSize is the size of one ping frame, in bytes.
	PingSize = 32
	// PingIdle is how long the listener waits for the next frame.
	PingIdle = 30 * time.Second
	// MaxPingsPerStream bounds the frames answered on one stream.
	MaxPingsPerStream = 64
)

// ErrPingMismatch means a peer echoed other bytes than it was sent.
var ErrPingMismatch = errors.New("discovery: ping echo does not match")

// servePing answers ping frames on s. It never reads more than
// MaxPingsPerStream frames and resets the stream on any error.
func servePing(s network.Stream) {
	defer s.Close()
	buf := make([]byte, PingSize)
	for range MaxPingsPerStream {
		_ = s.SetReadDeadline(ambient.Deadline(PingIdle))
		if _, err := io.ReadFull(s, buf); err != nil {
			if !errors.Is(err, io.EOF) {
				_ = s.Reset()
			}
			return
		}
		_ = s.SetWriteDeadline(ambient.Deadline(PingIdle))
		if _, err := s.Write(buf); err != nil {
			_ = s.Reset()
			return
		}
	}
}

// Ping measures one round trip to p over ProtocolPing, with a payload from
// the system's random source, on the real clock (a Service pings with its
// Config's). It blocks until the echo arrives or ctx ends, and is safe for
// concurrent use.
func Ping(ctx context.Context, h host.Host, p peer.ID) (time.Duration, error) {
	return ping(ctx, h, p, ambient.Rand, ambient.Now)
}

// ping is Ping with a random source and a clock.
func ping(ctx context.Context, h host.Host, p peer.ID, rnd io.Reader, now func() time.Time) (time.Duration, error) {
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "exopeer ping"), p, ProtocolPing)
	if err != nil {
		return 0, fmt.Errorf("discovery: ping %s: %w", p, err)
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()

	out := make([]byte, PingSize)
	if _, err := io.ReadFull(rnd, out); err != nil {
		return 0, fmt.Errorf("discovery: ping %s: payload: %w", p, err)
	}
	start := now()
	if _, err := s.Write(out); err != nil {
		return 0, fmt.Errorf("discovery: ping %s: %w", p, err)
	}
	in := make([]byte, PingSize)
	if _, err := io.ReadFull(s, in); err != nil {
		return 0, fmt.Errorf("discovery: ping %s: %w", p, err)
	}
	rtt := now().Sub(start)
	if !bytes.Equal(in, out) {
		_ = s.Reset()
		return 0, fmt.Errorf("%w (peer %s)", ErrPingMismatch, p)
	}
	h.Peerstore().RecordLatency(p, rtt)
	return rtt, nil
}
