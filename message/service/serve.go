package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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

// MaxFramesIn bounds the frames being read or handled across every
// device: a contact's cell may list contact.MaxDevices devices, each
// with MaxFramesInPerDevice, and a node has many contacts; with it, the
// frames held are at most 1,024 × 16 KiB = 16 MiB. A stream waits for
// room once its next frame's header arrived, before it reads the body,
// so an idle stream holds no room; the room is shared fairly among
// contacts (fairSlots). A frame leaves the bound once
// handled (its answer, at most 16 bytes, waits for its turn holding only
// its stream's and its device's tokens) and while the quotas slow it
// (it holds one of the slowed frames' places instead: quotain.go,
// MaxSlowedPerContact), so that one contact's slowed frames, and the
// frames answered behind them, do not keep every other contact's frames
// from being read.
const MaxFramesIn = 1024

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
	cs, err := s.contactsOf(ctx, from)
	cancel()
	if err != nil {
		if errors.Is(err, errNotContact) {
			s.quota.notContact.Add(1)
		}
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
	s.pipeline(st, e, from, slotKey(cs))
}

// inStream is an inbound stream's state shared by its reader
// (pipeline), its frames' handlers and its answerer.
type inStream struct {
	st network.Stream
	r  *bufio.Reader
	// window holds a value per frame read and not answered, and one for
	// the frame being read: at most message.Window.
	window chan struct{}
	// stopped is set once this side stopped reading (st.CloseRead): the
	// stream is idle, or its peer is on no contact's current list any
	// more (a frame found it so: its refusal goes, then the end). The
	// reader takes the read's failure as the stream's orderly end.
	stopped atomic.Bool
	// last is when the last answer went, or the stream came (Unix ns):
	// the receiver's idle time counts from it.
	last atomic.Int64
}

// stop stops the reading of in: the reader ends, the frames read are
// answered, then the stream ends.
func (in *inStream) stop() {
	if in.stopped.CompareAndSwap(false, true) {
		_ = in.st.CloseRead()
	}
}

// pipeline reads st's frames and answers them in order until the peer
// closes its side, the stream is idle (no frame and no answer for twice
// Config.IdleTimeout), a frame finds the peer on no contact's list (it
// is refused, then the stream ends), a frame breaks the protocol or is
// unanswered within Config.Timeout (the stream is reset), a frame's
// body does not follow its header within Config.IdleTimeout (reset), or
// the service closes. Each frame takes the device's token and a node
// slot under key (slotKey) once its header is in hand. It returns once
// every frame it read is handled.
func (s *Service) pipeline(st network.Stream, e *peerEntry, from peer.ID, key string) {
	in := &inStream{st: st, r: bufio.NewReader(st), window: make(chan struct{}, message.Window)}
	defer e.trackInbound(in)()
	in.last.Store(ambient.Deadline(0).UnixNano())
	queue := make(chan *inFrame, message.Window) // never full: an item holds a window token
	answered := make(chan bool, 1)
	go func() { answered <- s.answer(in, queue, e) }()
	clean := true
	for {
		if !take(s.ctx, in.window) {
			clean = false
			break
		}
		// The device's and the node's tokens are taken once the frame's
		// header is in hand: an idle stream, or one that sends nothing
		// more, holds none (only its window's).
		end, err := s.readHeader(in)
		var f message.Frame
		if !end && err == nil {
			if !take(s.ctx, e.in) {
				<-in.window
				clean = false
				break
			}
			if !s.slots.take(s.ctx, key) {
				<-e.in
				<-in.window
				clean = false
				break
			}
			if f, end, err = s.readBody(in); end || err != nil {
				s.slots.give(key)
				<-e.in
			}
		}
		if end || err != nil {
			<-in.window
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
		fr := &inFrame{done: make(chan struct{})}
		queue <- fr
		go func() {
			defer close(fr.done)
			// The frame's node-wide token goes once it is handled, or
			// when the quotas slow it (it holds a slowed place then,
			// until handled).
			free := sync.OnceFunc(func() { s.slots.give(key) })
			var slowed func()
			var removed bool
			fr.ans, fr.fatal, removed = s.handle(from, f, func(release func()) {
				free()
				slowed = release
			})
			free()
			if slowed != nil {
				slowed()
			}
			if removed {
				in.stop() // before its refusal goes
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

// readHeader waits for in's next frame's header under the receiver's
// idle timeout: the stream is idle once, with no frame unanswered,
// twice Config.IdleTimeout passed since the last answer and since this
// wait began without the header's last byte (a header cut short ends
// the stream, reset). end is the stream's orderly end (the peer closed
// its side, or this side stopped reading: idle, or the peer removed);
// err, a header cut short.
func (s *Service) readHeader(in *inStream) (end bool, err error) {
	if in.stopped.Load() {
		return true, nil
	}
	wait := 2 * s.cfg.IdleTimeout
	began := ambient.Deadline(0) // the runtime's clock, as the timer's
	var fired atomic.Bool        // this wait's timer stopped the reading
	stopTimer := afterFunc(wait, func(t *time.Timer) {
		if len(in.window) > 1 { // frames unanswered: not idle
			t.Reset(wait)
			return
		}
		since := time.Unix(0, max(in.last.Load(), began.UnixNano()))
		if d := wait + ambient.Until(since); d > 0 {
			t.Reset(d)
			return
		}
		fired.Store(true)
		in.stop()
	})
	defer stopTimer()
	if _, err := in.r.Peek(message.FrameHeader); err != nil {
		if in.r.Buffered() == 0 && (errors.Is(err, io.EOF) || in.stopped.Load()) {
			return true, nil
		}
		if in.stopped.Load() && !fired.Load() {
			return true, nil // the peer removed
		}
		return false, fmt.Errorf("message: read frame header: %w", err)
	}
	return false, nil
}

// readBody reads the frame whose header readHeader found, its body
// within Config.IdleTimeout (a frame that stops midway holds a frame
// slot: past it the stream ends, reset). end is the stream's end with
// the peer removed meanwhile; err, a frame that breaks the protocol or
// was cut short.
func (s *Service) readBody(in *inStream) (f message.Frame, end bool, err error) {
	var fired atomic.Bool
	stopTimer := afterFunc(s.cfg.IdleTimeout, func(*time.Timer) {
		fired.Store(true)
		in.stop()
	})
	defer stopTimer()
	f, err = readFrame(in.r)
	if err != nil {
		if in.stopped.Load() && !fired.Load() {
			return message.Frame{}, true, nil // the peer removed
		}
		return message.Frame{}, false, err // cut short, or stopped midway past its time
	}
	if f.Kind != message.KindInitial && f.Kind != message.KindSession {
		return message.Frame{}, false, fmt.Errorf("%w: kind %d from a sender", message.ErrBadFrame, f.Kind)
	}
	return f, false, nil
}

// afterFunc calls fn once d passed, under a lock it shares with the
// returned stop, which stops it for good: fn may Reset its timer.
func afterFunc(d time.Duration, fn func(t *time.Timer)) (stop func()) {
	var mu sync.Mutex
	var t *time.Timer
	done := false
	mu.Lock()
	t = time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			fn(t)
		}
	})
	mu.Unlock()
	return func() {
		mu.Lock()
		done = true
		t.Stop()
		mu.Unlock()
	}
}

// handle opens f from the device from and records its message (receive),
// each under Config.Timeout: the acknowledgement, busy (the quotas
// turned it away), a refusal, or fatal
// when the time ran out (or the service closed); removed when from is on
// no contact's current list any more (refused: the stream is to end).
// slowing is called when the quotas slow f, with the release of its
// slowed place, for the caller to call once f is handled.
func (s *Service) handle(from peer.ID, f message.Frame, slowing func(release func())) (ans message.Frame, fatal, removed bool) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	cs, err := s.contactsOf(ctx, from)
	if err == nil {
		var id message.ID
		if id, err = s.receive(ctx, from, cs, f, slowing); err == nil {
			return message.Ack(id), false, false
		}
	}
	if ctx.Err() != nil {
		return message.Frame{}, true, false
	}
	if errors.Is(err, errQuota) {
		// Turned away by the quotas before it was opened: nothing is
		// recorded and the session is good, which a refusal would not
		// tell the sender (it would make a new one).
		s.log.Debug("message busy", "peer", from, "err", err)
		return message.Busy(), false, false
	}
	removed = errors.Is(err, errNotContact)
	if removed {
		s.quota.notContact.Add(1)
	}
	s.log.Info("message refused", "peer", from, "err", err)
	return message.Refusal(), false, removed
}

// answer writes the answers of the frames queued, in their order, each
// once it is handled, and frees their window and device tokens (the
// node-wide one went when the frame was handled); after a
// fatal frame or a failed write it resets in.st and only waits for the
// others. It returns whether every answer was written.
func (s *Service) answer(in *inStream, queue <-chan *inFrame, e *peerEntry) bool {
	st := in.st
	ok := true
	for fr := range queue {
		<-fr.done
		if ok && fr.fatal {
			ok = false
			_ = st.Reset()
		}
		if ok {
			b, err := fr.ans.Encode()
			if err == nil {
				_ = st.SetWriteDeadline(ambient.Deadline(s.cfg.Timeout))
				_, err = st.Write(b)
			}
			if err != nil {
				ok = false
				_ = st.Reset()
			}
		}
		in.last.Store(ambient.Deadline(0).UnixNano())
		s.framesIn.Add(-1)
		<-e.in
		<-in.window
	}
	return ok
}
