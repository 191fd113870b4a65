package dht

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
)

type sweepConn struct {
	network.Conn
	closed bool
}

func (c *sweepConn) IsClosed() bool { return c.closed }

type sweepStream struct {
	network.Stream
	c *sweepConn
}

func (s *sweepStream) Conn() network.Conn { return s.c }
func (s *sweepStream) Reset() error       { return nil }

// TestTrackForgetsClosedConns: streams whose connection closed without a
// Close or Reset from kad-dht are forgotten, so the map stays within
// twice the live streams (plus minSweep), not every stream ever opened.
func TestTrackForgetsClosedConns(t *testing.T) {
	h := newTrackHost(nil)
	live := &sweepConn{}
	for range 10 {
		if h.track(&sweepStream{c: live}) == nil {
			t.Fatal("track refused a stream before resetAll")
		}
	}
	for range 10_000 {
		h.track(&sweepStream{c: &sweepConn{closed: true}})
	}
	h.mu.Lock()
	n := len(h.streams)
	h.mu.Unlock()
	if n > 2*10+minSweep+1 {
		t.Errorf("%d streams tracked with 10 live, want at most %d", n, 2*10+minSweep+1)
	}
	h.resetAll()
	if h.track(&sweepStream{c: live}) != nil {
		t.Error("track took a stream after resetAll")
	}
}
