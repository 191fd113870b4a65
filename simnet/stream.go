package simnet

import (
	"bytes"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// simStream is a mocknet stream as the node sees it: with deadlines that
// fire in virtual time, and subject to the network's one-way cuts and
// stream faults (faults.go, streamfaults.go).
//
// mocknet's SetDeadline does nothing, so without this no stream deadline
// ever fires in the simulator. Here:
//
//   - A Read blocked past its read deadline returns os.ErrDeadlineExceeded
//     (a net.Error whose Timeout() is true) and the stream stays usable:
//     the read goes on in the background and whatever it gets is the next
//     Read's, so no byte is lost or reordered. A Read called after the
//     deadline returns the error at once, as net.Conn's does.
//   - A Write, CloseWrite or Close blocked past its write deadline resets
//     the stream and returns os.ErrDeadlineExceeded: mocknet cannot take
//     back bytes handed to it, so the only consistent end is a reset (the
//     remote sees one, as it would when a real peer gives up). A Write
//     called after the deadline fails at once; a Close or CloseWrite is
//     never refused, and once the deadline has passed it is not bounded.
//   - A deadline set while a Read or Write waits applies to that wait.
//
// Its methods may be called concurrently as a network.Stream's may: one
// reader and one writer at a time.
type simStream struct {
	network.Stream
	host   *simHost
	remote peer.ID
	opener bool // this side opened the stream

	mu       sync.Mutex
	rdl, wdl time.Time
	kick     chan struct{} // closed and replaced when a deadline changes or the stream ends
	ended    bool          // Close or Reset called here
	fault    *streamFault  // the stream fault that holds this stream, if any
	reading  chan struct{} // closed when the background read ends; nil: none runs
	rbuf     []byte        // the background read's buffer
	left     []byte        // what the background read got and no Read took yet
	leftErr  error         // and the error it ended with
	writeErr error         // set once a write deadline reset the stream
}

func newSimStream(h *simHost, s network.Stream, opener bool) *simStream {
	return &simStream{Stream: s, host: h, remote: s.Conn().RemotePeer(), opener: opener, kick: make(chan struct{})}
}

// kickLocked wakes every wait of the stream so that it looks again.
func (s *simStream) kickLocked() {
	close(s.kick)
	s.kick = make(chan struct{})
}

func (s *simStream) SetDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdl, s.wdl = t, t
	s.kickLocked()
	return nil
}

func (s *simStream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdl = t
	s.kickLocked()
	return nil
}

func (s *simStream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wdl = t
	s.kickLocked()
	return nil
}

// passed reports whether deadline d is set and has passed.
func passed(d time.Time) bool { return !d.IsZero() && !time.Now().Before(d) }

// timerFor returns a channel that fires at d, and its stop function; a
// nil channel when d is zero.
func timerFor(d time.Time) (<-chan time.Time, func() bool) {
	if d.IsZero() {
		return nil, func() bool { return true }
	}
	t := time.NewTimer(time.Until(d))
	return t.C, t.Stop
}

// stalled reports whether this side's reads (write false) or writes
// (write true) are held back by a fault now.
func (s *simStream) stalled(write bool) bool {
	s.mu.Lock()
	f, ended := s.fault, s.ended
	s.mu.Unlock()
	if ended || s.Conn().IsClosed() {
		return false // let the stream's own error through
	}
	if f != nil && f.holds() {
		return true
	}
	return write && s.host.net.cutOneWay(s.host.ID(), s.remote)
}

// awaitFlow waits while a fault holds this side's reads or writes back.
// It returns os.ErrDeadlineExceeded if the deadline passes first.
func (s *simStream) awaitFlow(write bool) error {
	for {
		changed := s.host.net.faultsChanged()
		if !s.stalled(write) {
			return nil
		}
		s.mu.Lock()
		dl, kick := s.rdl, s.kick
		if write {
			dl = s.wdl
		}
		s.mu.Unlock()
		if passed(dl) {
			return os.ErrDeadlineExceeded
		}
		fire, stop := timerFor(dl)
		select {
		case <-changed:
		case <-kick:
		case <-fire:
		}
		stop()
	}
}

func (s *simStream) Read(p []byte) (int, error) {
	if err := s.awaitFlow(false); err != nil {
		return 0, err
	}
	for {
		s.mu.Lock()
		if len(s.left) > 0 || s.leftErr != nil {
			n := copy(p, s.left)
			s.left = s.left[n:]
			var err error
			if len(s.left) == 0 {
				err, s.leftErr = s.leftErr, nil
				s.left = nil
			}
			s.mu.Unlock()
			return n, err
		}
		dl, kick, reading := s.rdl, s.kick, s.reading
		if reading == nil && dl.IsZero() {
			s.mu.Unlock()
			return s.Stream.Read(p) // the common case: no deadline, no goroutine
		}
		if passed(dl) {
			s.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		if reading == nil {
			reading = make(chan struct{})
			s.reading = reading
			// left is empty: its buffer is free again.
			size := max(len(p), 1)
			if cap(s.rbuf) < size {
				s.rbuf = make([]byte, max(size, 512))
			}
			go s.readBehind(s.rbuf[:size], reading)
		}
		s.mu.Unlock()
		fire, stop := timerFor(dl)
		select {
		case <-reading:
		case <-kick:
		case <-fire:
		}
		stop()
	}
}

// readBehind reads into buf for a Read that may time out, and keeps what
// it got for the next Read.
func (s *simStream) readBehind(buf []byte, done chan struct{}) {
	n, err := s.Stream.Read(buf)
	s.mu.Lock()
	s.left, s.leftErr, s.reading = buf[:n], err, nil
	s.mu.Unlock()
	close(done)
}

// guardWrite runs op, one of the stream's writing calls, under the write
// deadline: if op still blocks when the deadline passes, the stream is
// reset, which ends op, and the error is os.ErrDeadlineExceeded.
// Unless op ends the stream (end), it waits first while a fault holds
// writes back.
func (s *simStream) guardWrite(end bool, op func() error) error {
	if !end {
		if err := s.awaitFlow(true); err != nil {
			s.resetOnDeadline()
			return err
		}
	}
	s.mu.Lock()
	dl, werr := s.wdl, s.writeErr
	s.mu.Unlock()
	switch {
	case end && passed(dl):
		return op() // a close is never refused, and a deadline gone is no bound
	case werr != nil:
		return werr
	case dl.IsZero():
		return op()
	case passed(dl):
		return os.ErrDeadlineExceeded
	}
	t := time.AfterFunc(time.Until(dl), s.resetOnDeadline)
	err := op()
	if !t.Stop() {
		return os.ErrDeadlineExceeded
	}
	return err
}

// resetOnDeadline resets the stream because a write deadline passed.
func (s *simStream) resetOnDeadline() {
	s.mu.Lock()
	s.writeErr = os.ErrDeadlineExceeded
	s.mu.Unlock()
	_ = s.Reset()
}

func (s *simStream) Write(p []byte) (int, error) {
	if c := s.host.net.capture.Load(); c != nil && len(p) > 0 {
		from, to := s.host.ID(), s.remote
		(*c)(from, to, s.Protocol(), bytes.Clone(p))
	}
	var n int
	err := s.guardWrite(false, func() (err error) {
		n, err = s.Stream.Write(p)
		return err
	})
	if err != nil && n == len(p) {
		n = 0 // not known to have arrived
	}
	return n, err
}

// CloseWrite ends this side's writing. The end of a stream passes one-way
// cuts and stalls; mocknet's CloseWrite waits until the remote has read
// what was written, so the write deadline bounds it.
func (s *simStream) CloseWrite() error {
	return s.guardWrite(true, s.Stream.CloseWrite)
}

func (s *simStream) Close() error {
	err := s.guardWrite(true, s.Stream.Close)
	s.end()
	return err
}

func (s *simStream) Reset() error {
	err := s.Stream.Reset()
	s.end()
	return err
}

func (s *simStream) ResetWithError(code network.StreamErrorCode) error {
	err := s.Stream.ResetWithError(code)
	s.end()
	return err
}

// end marks the stream closed here and forgets it.
func (s *simStream) end() {
	s.mu.Lock()
	if !s.ended {
		s.ended = true
		s.kickLocked()
	}
	s.mu.Unlock()
	s.host.forget(s)
}
