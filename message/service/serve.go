package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/message"
)

// MaxFramesInPerDevice bounds the frames of one remote device read and
// not answered yet, across all its streams: with message.Window per
// stream and 16 streams per peer (the resource manager's default), a
// peer could otherwise make this device hold 16 × 32 frames of up to
// message.MaxFrameBody (8 MiB); with it, at most 128 × 16 KiB = 2 MiB.
// It is MaxDeliveriesPerDevice, so that one sending device's full load
// is not held back.
const MaxFramesInPerDevice = MaxDeliveriesPerDevice

// inFrame is a frame of an inbound stream being handled: its answer,
// once done is closed.
type inFrame struct {
	done  chan struct{}
	ans   message.Frame
	fatal bool // unanswered within Config.Timeout: the stream is reset
}

// serve is the receiving side of a stream of Protocol: a peer on no
// contact's current list gets a refusal and the stream's end before
// anything is read; a contact's device gets its frames read ahead up to
// message.Window (and the device's MaxFramesInPerDevice), each handled
// in a goroutine of its own, and answered in the order they came.
func (s *Service) serve(st network.Stream) {
	if s.enter() != nil {
		_ = st.Reset()
		return
	}
	defer s.wg.Done()
	stop := context.AfterFunc(s.ctx, func() { _ = st.Reset() })
	defer stop()
	from := st.Conn().RemotePeer()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	_, err := s.contactsOf(ctx, from)
	cancel()
	if err != nil {
		s.log.Info("message refused", "peer", from, "err", err)
		b, _ := message.Refusal().Encode()
		_ = st.SetWriteDeadline(ambient.Deadline(s.cfg.Timeout))
		if _, err := st.Write(b); err != nil {
			_ = st.Reset()
			return
		}
		_ = st.Close()
		return
	}
	e := s.cache.acquire(from)
	defer s.cache.release(e)
	s.pipeline(st, e, from)
}

// pipeline reads st's frames and answers them in order until the peer
// closes its side, no frame comes for twice Config.IdleTimeout, a frame
// breaks the protocol or is unanswered within Config.Timeout (the
// stream is reset), or the service closes. It returns once every frame
// it read is handled.
func (s *Service) pipeline(st network.Stream, e *peerEntry, from peer.ID) {
	window := make(chan struct{}, message.Window)
	queue := make(chan *inFrame, message.Window) // never full: an item holds a window token
	answered := make(chan bool, 1)
	go func() { answered <- s.answer(st, queue, window, e) }()
	r := bufio.NewReader(st)
	clean := true
	// gone is set once a frame finds the peer on no contact's current
	// list (its cell removed it while the stream was open): the stream
	// is read no further, its frames read are answered, then it ends.
	var gone atomic.Bool
	for {
		if !take(s.ctx, window) {
			clean = false
			break
		}
		if !take(s.ctx, e.in) {
			<-window
			clean = false
			break
		}
		f, end, err := s.readIn(st, r, &gone)
		if end || err != nil {
			<-e.in
			<-window
			if err != nil {
				// A frame that breaks the protocol: the stream is reset,
				// its unanswered frames are not acknowledged.
				s.log.Info("message stream broken", "peer", from, "err", err)
				_ = st.Reset()
				clean = false
			}
			break
		}
		s.framesIn.Add(1)
		in := &inFrame{done: make(chan struct{})}
		queue <- in
		go func() {
			defer close(in.done)
			var removed bool
			in.ans, in.fatal, removed = s.handle(from, f)
			if removed && gone.CompareAndSwap(false, true) {
				_ = st.CloseRead() // before its refusal goes
			}
		}()
	}
	close(queue)
	if ok := <-answered; ok && clean {
		_ = st.Close()
	} else {
		_ = st.Reset()
	}
}

// take puts a value in sem, or returns false when ctx ends first.
func take(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// readIn reads st's next frame under the receiver's idle timeout (twice
// Config.IdleTimeout, from the time it is ready for one to the frame's
// last byte): end is the stream's orderly end (the peer closed its side,
// no byte of a frame came in time, or gone is set: the peer is on no
// contact's list any more); err, a frame that breaks the protocol or was
// cut short.
func (s *Service) readIn(st network.Stream, r *bufio.Reader, gone *atomic.Bool) (f message.Frame, end bool, err error) {
	if gone.Load() {
		return message.Frame{}, true, nil
	}
	var idle atomic.Bool
	t := time.AfterFunc(2*s.cfg.IdleTimeout, func() {
		idle.Store(true)
		_ = st.CloseRead()
	})
	defer t.Stop()
	if _, err := r.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || idle.Load() || gone.Load() {
			return message.Frame{}, true, nil
		}
		return message.Frame{}, false, err
	}
	f, err = readFrame(r)
	if gone.Load() {
		return message.Frame{}, true, nil
	}
	if err != nil {
		return message.Frame{}, false, err
	}
	if f.Kind != message.KindInitial && f.Kind != message.KindSession {
		return message.Frame{}, false, fmt.Errorf("%w: kind %d from a sender", message.ErrBadFrame, f.Kind)
	}
	return f, false, nil
}

// handle opens f from the device from and records its message (receive),
// each under Config.Timeout: the acknowledgement, a refusal, or fatal
// when the time ran out (or the service closed); removed when from is on
// no contact's current list any more (refused: the stream is to end).
func (s *Service) handle(from peer.ID, f message.Frame) (ans message.Frame, fatal, removed bool) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	cs, err := s.contactsOf(ctx, from)
	if err == nil {
		var id message.ID
		if id, err = s.receive(ctx, from, cs, f); err == nil {
			return message.Ack(id), false, false
		}
	}
	if ctx.Err() != nil {
		return message.Frame{}, true, false
	}
	s.log.Info("message refused", "peer", from, "err", err)
	return message.Refusal(), false, errors.Is(err, errNotContact)
}

// answer writes the answers of the frames queued, in their order, each
// once it is handled, and frees their window and device tokens; after a
// fatal frame or a failed write it resets st and only waits for the
// others. It returns whether every answer was written.
func (s *Service) answer(st network.Stream, queue <-chan *inFrame, window chan struct{}, e *peerEntry) bool {
	ok := true
	for in := range queue {
		<-in.done
		if ok && in.fatal {
			ok = false
			_ = st.Reset()
		}
		if ok {
			b, err := in.ans.Encode()
			if err == nil {
				_ = st.SetWriteDeadline(ambient.Deadline(s.cfg.Timeout))
				_, err = st.Write(b)
			}
			if err != nil {
				ok = false
				_ = st.Reset()
			}
		}
		s.framesIn.Add(-1)
		<-e.in
		<-window
	}
	return ok
}
