package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/message"
)

// MaxStreamsPerDevice bounds the streams of Protocol this device keeps
// open to one remote device, each carrying up to message.Window frames
// in flight (streamPool). A node accepts 16 inbound streams of one
// protocol from one peer by default (datadir.ResourceConfig.
// ProtocolPeerStreams) and resets the others.
const MaxStreamsPerDevice = 4

// errBroken is a delivery whose stream broke (reset, closed, timed out,
// or a protocol error) before its answer came: the device may or may
// not have recorded the message; Send tries once more on another
// stream (the receiver records a message once, by its entity ID).
var errBroken = errors.New("message: delivery stream broke before the answer")

// errIdle ends a stream the pool closed, idle or evicted.
var errIdle = errors.New("message: delivery stream closed")

// streamPool is a remote device's outbound streams of Protocol: at most
// MaxStreamsPerDevice live ones, each with at most message.Window
// deliveries that chose it and have no answer yet. The deliveries
// under way to the device hold one of its MaxDeliveriesPerDevice slots
// (= MaxStreamsPerDevice × message.Window) before they choose a stream,
// so a delivery holding a slot always finds room. A stream that breaks
// leaves the pool at once; one with nothing in flight for
// Config.IdleTimeout is closed, as are all of them when the device's
// cache entry is evicted or the service closes.
type streamPool struct {
	mu      sync.Mutex
	streams []*outStream // live; under mu
	// shut: the device's sessions were dropped (shut); no stream is
	// opened or written to any more. Under mu.
	shut bool
}

// outStream is one stream of the pool. The deliveries write their
// frames whole, one at a time (wmu), and queue themselves (waiting) in
// the order of their writes; its reader goroutine hands each answer to
// the first waiting delivery.
type outStream struct {
	p     *streamPool
	ready chan struct{} // closed once st is open, or err set by the opener

	// Under p.mu:
	st      network.Stream
	err     error       // why it ended; then it is out of the pool
	n       int         // deliveries that chose it and are not done
	waiting []*pipeCall // written, answer not read, in write order
	gen     uint64      // counts the times n fell to 0 or rose from it
	idle    *time.Timer
	stop    func() bool // stops the reset at the service's Close
	// gaveUp: it did not open because its opener's ctx ended (not the
	// device's failure): the deliveries waiting for it pick again.
	gaveUp bool

	// wmu holds a value while a writer writes a whole frame and queues
	// it, so that frames are written and queued in one order; a channel,
	// not a mutex, so that a writer waiting for it gives up when its ctx
	// ends (and, under synctest, is durably blocked: a flow-controlled
	// receiver holding several writers back does not stop virtual time).
	wmu chan struct{}
}

// pipeCall is one frame written on an outStream, waiting for its answer.
type pipeCall struct {
	done chan struct{} // closed once ans or err is set
	ans  message.Frame
	err  error
}

// spreadAt is the load of the least loaded stream from which a new one
// is opened, while the pool has fewer than MaxStreamsPerDevice: the
// answers of a stream come in order, so a frame whose record is slow
// (the next group commit) holds back those after it; spread over up to
// four streams, 16 concurrent senders deliver some 30% more messages/s
// than on one (BenchmarkSend).
const spreadAt = 4

// pick reserves room for one delivery on the least loaded live stream,
// or on a new one (fresh: the caller opens it) if each has spreadAt or
// more in flight and the pool has room for one, or if each is full
// (message.Window). The caller holds a delivery slot, so there is always
// room; it calls done when the delivery ends. A pool shut (its device's
// sessions dropped) reserves nothing: errRemoved.
func (p *streamPool) pick() (o *outStream, fresh bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return nil, false, errRemoved
	}
	for _, c := range p.streams {
		if c.n < message.Window && (o == nil || c.n < o.n) {
			o = c
		}
	}
	if o == nil || (o.n >= spreadAt && len(p.streams) < MaxStreamsPerDevice) {
		if len(p.streams) >= MaxStreamsPerDevice {
			panic("message: a delivery holds a slot and every stream is full")
		}
		o = &outStream{p: p, ready: make(chan struct{}), wmu: make(chan struct{}, 1)}
		p.streams = append(p.streams, o)
		fresh = true
	}
	if o.n == 0 {
		o.gen++
		if o.idle != nil {
			o.idle.Stop()
		}
	}
	o.n++
	return o, fresh, nil
}

// done ends a delivery's reservation on o: a live stream left with
// nothing in flight is closed after idle unless a delivery picks it
// first.
func (s *Service) done(o *outStream) {
	p := o.p
	p.mu.Lock()
	defer p.mu.Unlock()
	o.n--
	if o.n > 0 || o.err != nil || o.st == nil {
		return
	}
	o.gen++
	g := o.gen
	o.idle = time.AfterFunc(s.cfg.IdleTimeout, func() { o.end(errIdle, g) })
}

// end takes o out of its pool with err and fails the deliveries waiting
// on it; the stream is reset, or closed if err is errIdle. With gen not
// 0, it does so only if o is still idle since that count (the idle
// timer's call). It is a no-op on an ended stream.
func (o *outStream) end(err error, gen uint64) {
	p := o.p
	p.mu.Lock()
	if o.err != nil || (gen != 0 && (o.gen != gen || o.n > 0)) {
		p.mu.Unlock()
		return
	}
	o.err = err
	if i := slices.Index(p.streams, o); i >= 0 {
		p.streams = slices.Delete(p.streams, i, i+1)
	}
	calls := o.waiting
	o.waiting = nil
	st, stop, idle := o.st, o.stop, o.idle
	p.mu.Unlock()
	if idle != nil {
		idle.Stop()
	}
	if stop != nil {
		stop()
	}
	for _, c := range calls {
		c.err = fmt.Errorf("%w: %w", errBroken, err)
		close(c.done)
	}
	if st == nil {
		return
	}
	if errors.Is(err, errIdle) {
		_ = st.Close()
	} else {
		_ = st.Reset()
	}
}

// closeAll ends every stream of p (its device's entry evicted).
func (p *streamPool) closeAll() { p.end(false) }

// shutAll ends every stream of p for good (its device's sessions
// dropped): a delivery that checked its entry before the drop picks no
// stream and writes on none after it (errRemoved), so nothing it sealed
// before is sent to the device after.
func (p *streamPool) shutAll() { p.end(true) }

func (p *streamPool) end(shut bool) {
	p.mu.Lock()
	p.shut = p.shut || shut
	live := slices.Clone(p.streams)
	p.mu.Unlock()
	for _, o := range live {
		o.end(errIdle, 0)
	}
}

// exchange sends frame to dev on a stream of e's pool and waits for its
// answer, an acknowledgement of want or a refusal. The caller holds one
// of e's delivery slots, which release frees. If ctx ends first, the
// stream is not reset for it (the other frames on it go on): the frame
// keeps its place on the stream and the slot until its answer comes, or
// until Config.Timeout after it was written, when the stream is reset as
// unanswered (abandon); kept then says that release is exchange's to
// call. An acknowledgement of another message ends the stream: its
// answers no longer match its frames.
func (s *Service) exchange(ctx context.Context, e *peerEntry, dev peer.ID, frame message.Frame, want message.ID, release func()) (ans message.Frame, kept bool, err error) {
	b, err := frame.Encode()
	if err != nil {
		return message.Frame{}, false, err
	}
	o, err := s.ready(ctx, e, dev)
	if err != nil {
		return message.Frame{}, false, err
	}
	c := &pipeCall{done: make(chan struct{})}
	if err := o.write(ctx, c, b); err != nil {
		s.done(o)
		return message.Frame{}, false, err
	}
	answerBy := ambient.Deadline(s.cfg.Timeout)
	select {
	case <-c.done:
	case <-ctx.Done():
		s.abandon(o, c, answerBy, release)
		return message.Frame{}, true, ctx.Err()
	}
	s.done(o)
	if c.err != nil {
		return message.Frame{}, false, c.err
	}
	if id, ok := c.ans.AckID(); c.ans.Kind == message.KindAck && (!ok || id != want) {
		err := fmt.Errorf("%w: the answer names another message", message.ErrBadFrame)
		o.end(err, 0)
		return message.Frame{}, false, err
	}
	return c.ans, false, nil
}

// abandon leaves c, a frame written on o whose delivery gave up, to wait
// for its answer without it: its place on o and its delivery slot
// (release) are freed once the answer comes, or once the stream ends;
// if none came by answerBy (Config.Timeout after the write), the stream
// is reset (the frames after c fail and are tried again).
func (s *Service) abandon(o *outStream, c *pipeCall, answerBy time.Time, release func()) {
	if s.enter() != nil { // closing: Close ends the streams
		o.end(ErrClosed, 0)
		s.done(o)
		release()
		return
	}
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(ambient.Until(answerBy))
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			o.end(fmt.Errorf("message: no answer within %v", s.cfg.Timeout), 0)
			<-c.done
		}
		s.done(o)
		release()
	}()
}

// ready reserves room on a stream of e's pool, opening a new one if
// need be, and waits until it is open: the stream, which the caller
// ends its reservation on with done, or the error of its opening. A
// stream another delivery was opening that did not open because that
// delivery's ctx ended is not this delivery's failure: it picks again,
// and opens one itself if need be, under its own ctx (a device that
// cannot be reached fails the deliveries waiting for the stream at once).
func (s *Service) ready(ctx context.Context, e *peerEntry, dev peer.ID) (*outStream, error) {
	for {
		o, fresh, err := e.pool.pick()
		if err != nil {
			return nil, err
		}
		if fresh {
			s.open(ctx, o, dev)
		}
		select {
		case <-o.ready:
		case <-ctx.Done():
			s.done(o)
			return nil, ctx.Err()
		}
		o.p.mu.Lock()
		failed, err, gaveUp := o.st == nil, o.err, o.gaveUp
		o.p.mu.Unlock()
		if !failed {
			return o, nil
		}
		s.done(o)
		if fresh || !gaveUp || ctx.Err() != nil {
			return nil, err
		}
	}
}

// open opens o's stream to dev (finding and connecting to dev first if
// this host knows no address of it) and starts its reader; it closes
// o.ready either way, o.err set on failure.
func (s *Service) open(ctx context.Context, o *outStream, dev peer.ID) {
	defer close(o.ready)
	st, err := s.newStream(ctx, dev)
	if err != nil {
		if ctx.Err() != nil {
			o.p.mu.Lock()
			o.gaveUp = true
			o.p.mu.Unlock()
		}
		o.end(err, 0)
		return
	}
	if err := s.enter(); err != nil {
		_ = st.Reset()
		o.end(err, 0)
		return
	}
	o.p.mu.Lock()
	if o.err != nil {
		o.p.mu.Unlock()
		_ = st.Reset()
		s.wg.Done()
		return
	}
	o.st = st
	o.stop = context.AfterFunc(s.ctx, func() { o.end(ErrClosed, 0) })
	o.p.mu.Unlock()
	go s.readAnswers(o)
}

// newStream opens a stream of Protocol to dev.
func (s *Service) newStream(ctx context.Context, dev peer.ID) (network.Stream, error) {
	if s.h.Network().Connectedness(dev) != network.Connected && len(s.h.Peerstore().Addrs(dev)) == 0 && s.finder != nil {
		ai, err := s.finder.FindPeer(ctx, dev)
		if err != nil {
			return nil, fmt.Errorf("message: find %s: %w", dev, err)
		}
		if err := s.h.Connect(ctx, ai); err != nil {
			return nil, fmt.Errorf("message: connect %s: %w", dev, err)
		}
	}
	st, err := s.h.NewStream(network.WithAllowLimitedConn(ctx, "messages"), dev, Protocol)
	if err != nil {
		return nil, fmt.Errorf("message: open stream: %w", err)
	}
	return st, nil
}

// write queues c on o and writes its frame b whole; a failed write ends
// the stream (and fails c).
func (o *outStream) write(ctx context.Context, c *pipeCall, b []byte) error {
	select {
	case o.wmu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-o.wmu }()
	p := o.p
	p.mu.Lock()
	if p.shut { // o ended with the others
		p.mu.Unlock()
		return errRemoved
	}
	if o.err != nil {
		err, opened := o.err, o.st != nil
		p.mu.Unlock()
		if !opened {
			return err // it did not open: not a stream that broke
		}
		return fmt.Errorf("%w: %w", errBroken, err)
	}
	o.waiting = append(o.waiting, c)
	st := o.st
	p.mu.Unlock()
	deadline, has := ctx.Deadline()
	if !has {
		deadline = ambient.Deadline(time.Minute)
	}
	_ = st.SetWriteDeadline(deadline)
	if _, err := st.Write(b); err != nil {
		o.end(fmt.Errorf("message: send: %w", err), 0)
	}
	return nil
}

// readAnswers reads o's answers and hands each to the first waiting
// delivery, until the stream ends; an answer that is not an
// acknowledgement, a refusal or busy, or that no frame waits for, ends it.
func (s *Service) readAnswers(o *outStream) {
	defer s.wg.Done()
	r := bufio.NewReaderSize(o.st, 512)
	for {
		f, err := readFrame(r)
		if err == nil && f.Kind != message.KindAck && f.Kind != message.KindRefusal && f.Kind != message.KindBusy {
			err = fmt.Errorf("%w: answer of kind %d", message.ErrBadFrame, f.Kind)
		}
		o.p.mu.Lock()
		if err == nil && len(o.waiting) == 0 {
			err = fmt.Errorf("%w: an answer to no frame", message.ErrBadFrame)
		}
		if err != nil {
			o.p.mu.Unlock()
			o.end(err, 0)
			return
		}
		c := o.waiting[0]
		o.waiting[0] = nil
		o.waiting = o.waiting[1:]
		o.p.mu.Unlock()
		c.ans = f
		close(c.done)
	}
}
