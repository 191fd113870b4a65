package gossip

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/internal/ambient"
)

// streamConn is a libp2p stream as the net.Conn memberlist wants. Its
// addresses are the two nodes' fake addresses.
//
// Deadlines are passed to the stream and also enforced here: when the
// earlier of the read and write deadlines passes, the stream is reset. Some
// streams ignore deadlines (mocknet's do), and memberlist counts on them to
// never wait forever. memberlist never uses a connection after a timeout,
// so a reset loses nothing.
type streamConn struct {
	s             network.Stream
	local, remote net.Addr
	onClose       func(network.Stream) // called once, by Close, after the stream's Close
	// readLeft is what may still be read when the reads are limited
	// (limitReads); the stream is reset past it.
	readLeft atomic.Int64
	limited  atomic.Bool
	// rtee and wtee, if set, read the first message of each direction
	// (incarnations.go); set before the conn is handed to memberlist.
	rtee, wtee *tee

	mu     sync.Mutex
	rd, wd time.Time
	timer  *time.Timer
	gen    uint64 // bumped whenever timer is re-armed
	closed bool
}

func newStreamConn(s network.Stream, local, remote net.Addr, onClose func(network.Stream)) *streamConn {
	return &streamConn{s: s, local: local, remote: remote, onClose: onClose}
}

// Read reads from the stream. Past the limit set by limitReads it resets
// the stream and returns ErrStreamTooLarge.
func (c *streamConn) Read(b []byte) (int, error) {
	if !c.limited.Load() {
		n, err := c.s.Read(b)
		c.rtee.add(b[:n])
		return n, err
	}
	left := c.readLeft.Load()
	if left <= 0 {
		c.reset()
		return 0, ErrStreamTooLarge
	}
	if int64(len(b)) > left {
		b = b[:left]
	}
	n, err := c.s.Read(b)
	c.readLeft.Add(int64(-n))
	c.rtee.add(b[:n])
	return n, err
}

// teeFirst reads the first message of each direction from now on with
// done (see tee), sent telling the direction: true for what this node
// wrote.
func (c *streamConn) teeFirst(done func(msg []byte, sent bool)) {
	if done != nil {
		c.rtee = newTee(func(b []byte) { done(b, false) })
		c.wtee = newTee(func(b []byte) { done(b, true) })
	}
}

// limitReads lets at most n more bytes be read from the conn.
func (c *streamConn) limitReads(n int64) {
	c.readLeft.Store(n)
	c.limited.Store(true)
}

func (c *streamConn) Write(b []byte) (int, error) {
	n, err := c.s.Write(b)
	c.wtee.add(b[:n])
	return n, err
}
func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

// Close closes the stream and stops its deadline timer. Idempotent.
func (c *streamConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.stopLocked()
	c.mu.Unlock()
	// Untracked only once closed: closing a stream whose protocol was
	// negotiated lazily waits for the other side's handshake, which a dead
	// peer never sends, and the transport's Shutdown resets the streams it
	// tracks, ending that wait.
	err := c.s.Close()
	if c.onClose != nil {
		c.onClose(c.s)
	}
	return err
}

// reset resets the stream and closes the conn.
func (c *streamConn) reset() {
	c.s.Reset()
	c.Close()
}

func (c *streamConn) SetDeadline(t time.Time) error {
	_ = c.s.SetDeadline(t) // enforced below even where unsupported
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd, c.wd = t, t
	c.armLocked()
	return nil
}

func (c *streamConn) SetReadDeadline(t time.Time) error {
	_ = c.s.SetReadDeadline(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd = t
	c.armLocked()
	return nil
}

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	_ = c.s.SetWriteDeadline(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wd = t
	c.armLocked()
	return nil
}

func (c *streamConn) stopLocked() {
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// armLocked sets the timer for the earlier of the deadlines.
func (c *streamConn) armLocked() {
	c.stopLocked()
	if c.closed {
		return
	}
	d := c.rd
	if d.IsZero() || (!c.wd.IsZero() && c.wd.Before(d)) {
		d = c.wd
	}
	if d.IsZero() {
		return
	}
	gen := c.gen
	c.timer = time.AfterFunc(ambient.Until(d), func() {
		c.mu.Lock()
		expired := c.gen == gen && !c.closed
		c.mu.Unlock()
		if expired {
			c.s.Reset()
		}
	})
}

var _ net.Conn = (*streamConn)(nil)
