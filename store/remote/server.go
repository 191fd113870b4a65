package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/store"
)

// Backend answers the requests a Server receives: the node's store, in
// practice (package store/service over store/index). Its methods are
// called concurrently, from the goroutines of the streams, with a context
// that ends when the server closes (and, for Watch, when the client goes);
// their answers and errors
// go to the peer as they are (errors by store.ErrQuery, store.ErrNotFound
// or otherwise, with their message). Watch's channel must close when its
// ctx ends.
type Backend interface {
	Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error)
	Query(ctx context.Context, q store.Query) (store.Page, error)
	Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error)
}

// Config tunes a Server. The zero value of a field means its default.
type Config struct {
	// ReadTimeout bounds the wait for a request once a stream is open.
	// Default 10 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds the write of each frame: a client that does not
	// read for that long loses its stream. Default 30 s.
	WriteTimeout time.Duration
	// Ping is how often a watch with nothing to send sends a keep-alive
	// frame, so that its client can tell an idle watch from a dead store
	// member. It must be well under the clients' ClientConfig.WatchIdle
	// (whose default is 3 times Ping's). Default 20 s.
	Ping time.Duration
	// StreamsPerPeer bounds one peer's Get and Query streams in progress
	// (watches are counted apart). Default 8.
	StreamsPerPeer int
	// Streams bounds the Get and Query streams in progress of all peers.
	// Default 64.
	Streams int
	// WatchesPerPeer bounds one peer's open watches. Default 16.
	WatchesPerPeer int
	// Watches bounds the open watches of all peers. Default 256.
	Watches int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, Ping: 20 * time.Second,
		StreamsPerPeer: 8, Streams: 64, WatchesPerPeer: 16, Watches: 256,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, f := range []struct{ v, d *time.Duration }{{&c.ReadTimeout, &d.ReadTimeout}, {&c.WriteTimeout, &d.WriteTimeout}, {&c.Ping, &d.Ping}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *int }{{&c.StreamsPerPeer, &d.StreamsPerPeer}, {&c.Streams, &d.Streams}, {&c.WatchesPerPeer, &d.WatchesPerPeer}, {&c.Watches, &d.Watches}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	return c
}

// ErrConfig is a Config that makes no sense.
var ErrConfig = errors.New("remote: bad config")

func (c Config) validate() error {
	if c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.Ping < 0 {
		return fmt.Errorf("negative timeout: %w", ErrConfig)
	}
	if c.StreamsPerPeer < 0 || c.Streams < 0 || c.WatchesPerPeer < 0 || c.Watches < 0 {
		return fmt.Errorf("negative bound: %w", ErrConfig)
	}
	return nil
}

// Server answers the Get, Query and Watch requests of the members of its
// node's cell, on Protocol, from a Backend.
type Server struct {
	h     host.Host
	b     Backend
	allow func(peer.ID) bool
	log   *slog.Logger
	cfg   Config

	mu       sync.Mutex
	started  bool
	closed   bool
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	streams  map[peer.ID]int // Get and Query streams in progress, by peer
	nstreams int
	watches  map[peer.ID]int // open watches, by peer
	nwatches int

	// msgCap bounds the hits or changes of one message, in bytes:
	// MaxMessage less a frame's worth (a smaller one in tests).
	msgCap int
}

// NewServer returns a server of b's answers on h, for the peers allow
// accepts (asked again at each stream: a roster changes), with the
// default Config. allow is called concurrently. log nil discards. Start
// serves.
func NewServer(h host.Host, b Backend, allow func(peer.ID) bool, log *slog.Logger) *Server {
	s, err := NewServerConfig(h, b, allow, log, Config{})
	if err != nil {
		panic(err) // the zero Config is valid
	}
	return s
}

// NewServerConfig is NewServer with cfg (zero fields take their default).
func NewServerConfig(h host.Host, b Backend, allow func(peer.ID) bool, log *slog.Logger, cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		h: h, b: b, allow: allow, log: log.With("part", "store/remote"), cfg: cfg.withDefaults(),
		streams: make(map[peer.ID]int), watches: make(map[peer.ID]int), msgCap: MaxMessage - MaxFrame,
	}, nil
}

// Start serves Protocol on the host until Close. ctx gives the values of
// the contexts the Backend is called with; its end does not stop the
// server (Close does).
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("remote: Start called twice or after Close")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.h.SetStreamHandler(Protocol, s.handle)
	return nil
}

// Close stops serving: it ends every watch (their clients learn ErrClosed)
// and waits for every stream's goroutine. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	s.h.RemoveStreamHandler(Protocol)
	s.cancel()
	s.wg.Wait()
	return nil
}

// Bounds says how many streams and watches are open: for tests and
// status.
func (s *Server) Bounds() (streams, watches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nstreams, s.nwatches
}

func (s *Server) handle(st network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = st.Reset()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	p := st.Conn().RemotePeer()
	if !s.allow(p) {
		s.log.Debug("store query refused", "peer", p, "why", "not a member")
		s.finish(st, &Error{Code: codeNotMember, Msg: ErrNotMember.Error()})
		return
	}
	if !s.acquire(p, false) {
		s.log.Debug("store query refused", "peer", p, "why", "busy")
		s.finish(st, &Error{Code: codeBusy, Msg: fmt.Sprintf("%s: %d streams at once per peer, %d in all", ErrBusy, s.cfg.StreamsPerPeer, s.cfg.Streams)})
		return
	}
	watching := false
	defer func() {
		if !watching {
			s.release(p, false)
		}
	}()

	// Close ends every stream soon: a request still awaited is not
	// waited for, and an answer in progress gets closeGrace to go out
	// (s.write), so that a silent or slow peer does not hold Close for
	// ReadTimeout or WriteTimeout.
	defer context.AfterFunc(s.ctx, func() {
		_ = st.SetReadDeadline(ambient.Deadline(0))
		_ = st.SetWriteDeadline(ambient.Deadline(closeGrace))
	})()
	_ = st.SetReadDeadline(ambient.Deadline(s.cfg.ReadTimeout))
	if s.ctx.Err() != nil { // closed meanwhile: after the AfterFunc, maybe
		_ = st.SetReadDeadline(ambient.Deadline(0))
	}
	br := bufio.NewReaderSize(st, 512)
	r, err := readRequest(br)
	if err != nil {
		s.log.Debug("store query request refused", "peer", p, "err", err)
		if errors.Is(err, ErrProtocol) || errors.Is(err, ErrTooLarge) {
			s.finish(st, errorOf(err))
			return
		}
		_ = st.Reset() // the stream failed or timed out: nobody to answer
		return
	}
	switch r.Op {
	case OpGet:
		e, err := s.b.Get(s.ctx, r.ID, r.Traits)
		if err != nil {
			s.fail(st, p, r.Op, err)
			return
		}
		s.answer(st, frame{Entity: &e})
	case OpQuery:
		pg, err := s.b.Query(s.ctx, r.Query)
		if err != nil {
			s.fail(st, p, r.Op, err)
			return
		}
		bodies, err := pageFrames(true, pg.Hits, nil, pg.Next, MaxFrame, s.msgCap)
		// A page over the cap is asked again, shorter, as the control
		// API cuts its own: the order is total, so the shorter page is
		// the first hits of the longer one, and its cursor reads on.
		var over *overMessage
		if errors.As(err, &over) && over.fit > 0 {
			q := r.Query
			q.Limit = over.fit
			if pg, err = s.b.Query(s.ctx, q); err != nil {
				s.fail(st, p, r.Op, err)
				return
			}
			bodies, err = pageFrames(true, pg.Hits, nil, pg.Next, MaxFrame, s.msgCap)
		}
		if err != nil {
			s.finish(st, errorOf(err))
			return
		}
		s.answerPage(st, bodies)
	case OpWatch:
		// A watch leaves the peer's stream share for its watch share.
		s.release(p, false)
		watching = true
		if !s.acquire(p, true) {
			s.finish(st, &Error{Code: codeBusy, Msg: fmt.Sprintf("%s: %d watches per peer, %d in all", ErrBusy, s.cfg.WatchesPerPeer, s.cfg.Watches)})
			return
		}
		defer s.release(p, true)
		s.watch(st, br, r.Query)
	}
}

func readRequest(br *bufio.Reader) (request, error) {
	b, err := readFrame(br, MaxRequest)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("stream ended before a request: %w", ErrProtocol)
		}
		return request{}, err
	}
	return decodeRequest(b)
}

// acquire counts a stream (watch false) or a watch of p in, if the bounds
// allow it.
func (s *Server) acquire(p peer.ID, watch bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	per, total, m, n := s.cfg.StreamsPerPeer, s.cfg.Streams, s.streams, &s.nstreams
	if watch {
		per, total, m, n = s.cfg.WatchesPerPeer, s.cfg.Watches, s.watches, &s.nwatches
	}
	if m[p] >= per || *n >= total {
		return false
	}
	m[p]++
	*n++
	return true
}

func (s *Server) release(p peer.ID, watch bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, n := s.streams, &s.nstreams
	if watch {
		m, n = s.watches, &s.nwatches
	}
	if m[p]--; m[p] <= 0 {
		delete(m, p) // the maps hold only peers with something open
	}
	*n--
}

// fail answers a request the backend failed: with its error, or closed
// when the server is closing (which is why the backend failed).
func (s *Server) fail(st network.Stream, p peer.ID, op Op, err error) {
	e := errorOf(err)
	switch {
	case s.ctx.Err() != nil:
		e = &Error{Code: codeClosed, Msg: ErrClosed.Error()}
	case e.Code == codeInternal:
		s.log.Warn("store query failed", "peer", p, "op", op, "err", err)
	}
	s.finish(st, e)
}

// errorOf is the error frame of err.
func errorOf(err error) *Error {
	return &Error{Code: codeOf(err), Msg: truncateMsg(err.Error())}
}

// write writes one frame body, within WriteTimeout, or closeGrace once
// the server is closing.
func (s *Server) write(st network.Stream, body []byte) error {
	_ = st.SetWriteDeadline(ambient.Deadline(s.cfg.WriteTimeout))
	if s.ctx.Err() != nil { // closing: after the AfterFunc of handle, maybe
		_ = st.SetWriteDeadline(ambient.Deadline(closeGrace))
	}
	return writeFrame(st, body)
}

// closeGrace is how long a closing server gives a frame (a watch's
// "closed", an answer in progress) to go out.
const closeGrace = time.Second

// answer sends f as the stream's last message.
func (s *Server) answer(st network.Stream, f frame) {
	body, err := encodeFrame(f)
	if err != nil {
		s.finish(st, errorOf(fmt.Errorf("remote: entity does not fit in a frame (project fewer traits): %w", err)))
		return
	}
	if err := s.write(st, body); err != nil {
		_ = st.Reset()
		return
	}
	s.close(st)
}

// answerPage sends a page's frames as the stream's last message.
func (s *Server) answerPage(st network.Stream, bodies [][]byte) {
	for _, b := range bodies {
		if err := s.write(st, b); err != nil {
			_ = st.Reset()
			return
		}
	}
	s.close(st)
}

// finish sends e as the stream's last message.
func (s *Server) finish(st network.Stream, e *Error) {
	body, err := encodeFrame(frame{Err: e})
	if err == nil {
		err = s.write(st, body)
	}
	if err != nil {
		_ = st.Reset()
		return
	}
	s.close(st)
}

// close ends a stream whose last frame is written: Close sends the end
// of the stream after the frames (a reset would drop them) and stops
// reading locally, without waiting for the client.
func (s *Server) close(st network.Stream) {
	if err := st.Close(); err != nil {
		_ = st.Reset()
	}
}

// watch serves a watch until the client goes, the backend's channel
// closes, a write fails or the server closes.
func (s *Server) watch(st network.Stream, br *bufio.Reader, q store.Query) {
	p := st.Conn().RemotePeer()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// The backend's watch: set up again, shorter, when its first page is
	// over the cap (stop ends the one before).
	stop := func() {}
	defer func() { stop() }()
	start := func(q store.Query) (<-chan store.WatchEvent, error) {
		stop()
		bctx, bcancel := context.WithCancel(ctx)
		stop = bcancel
		return s.b.Watch(bctx, q)
	}
	events, err := start(q)
	if err != nil {
		s.fail(st, p, OpWatch, err)
		return
	}
	first := true
	// The client sends nothing after its request: a read that returns
	// (EOF, a reset, bytes) means it is gone.
	_ = st.SetReadDeadline(time.Time{})
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = br.ReadByte()
		cancel()
	}()
	defer func() { <-gone }()
	// end sends e as the last frame and closes the stream, which ends
	// the reader above.
	end := func(e *Error) { s.finish(st, e) }
	ping := time.NewTicker(s.cfg.Ping)
	defer ping.Stop()
	for {
		var bodies [][]byte
		select {
		case ev, ok := <-events:
			if !ok {
				if s.ctx.Err() == nil && ctx.Err() != nil {
					_ = st.Reset() // the client went
					return
				}
				end(&Error{Code: codeClosed, Msg: ErrClosed.Error()})
				return
			}
			if ev.Page != nil {
				bodies, err = pageFrames(true, ev.Page.Hits, nil, ev.Page.Next, MaxFrame, s.msgCap)
				var over *overMessage
				if first && errors.As(err, &over) && over.fit > 0 {
					// As a query's page: watched again, shorter.
					q.Limit = over.fit
					if events, err = start(q); err != nil {
						s.fail(st, p, OpWatch, err)
						return
					}
					continue
				}
			} else {
				bodies, err = pageFrames(false, nil, ev.Changes, "", MaxFrame, s.msgCap)
			}
			if err != nil {
				end(errorOf(err))
				return
			}
			first = false
			ping.Reset(s.cfg.Ping)
		case <-ping.C:
			bodies = [][]byte{pingFrame}
		case <-ctx.Done():
			if s.ctx.Err() != nil {
				end(&Error{Code: codeClosed, Msg: ErrClosed.Error()})
				return
			}
			_ = st.Reset() // the client went
			return
		}
		// A roster changes while a watch lasts: a peer removed from the
		// cell gets nothing more (nothing written after its removal),
		// and its watch ends, at the next event or keep-alive.
		if !s.allow(p) {
			s.log.Debug("store watch ended", "peer", p, "why", "not a member any more")
			end(&Error{Code: codeNotMember, Msg: ErrNotMember.Error()})
			return
		}
		for _, b := range bodies {
			if err := s.write(st, b); err != nil {
				s.log.Debug("store watch write failed", "peer", p, "err", err)
				_ = st.Reset()
				return
			}
		}
	}
}

var pingFrame = []byte(`{"v":1,"ping":true}`)

// pageFrames returns the frames of one message: a page (page true: hits
// and next) or a watch's changes, split so that each frame is at most
// frameCap (MaxFrame) bytes, their hits or changes at most msgCap bytes in
// all (MaxMessage less a frame's worth for the frames' own bytes, so that
// the client's cap holds). A hit that does not fit in a frame alone, or a
// message over msgCap, is an error wrapping ErrTooLarge.
func pageFrames(page bool, hits []store.Hit, changes []store.Change, next string, frameCap, msgCap int) ([][]byte, error) {
	head := `{"v":1,"changes":[`
	if page {
		head = `{"v":1,"page":true,"hits":[`
	}
	var last string
	if next != "" {
		n, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("remote: encode cursor: %w", err)
		}
		last = `],"next":` + string(n) + `}`
	} else {
		last = `]}`
	}
	const more = `],"more":true}`
	room := frameCap - len(head) - max(len(last), len(more))
	var out [][]byte
	cur := []byte(head)
	items, total := len(hits)+len(changes), 0
	for i := range items {
		var v any
		var id store.EntityID
		if page {
			v, id = toWireHit(hits[i]), hits[i].Entity.ID
		} else {
			c := changes[i]
			v, id = wireChange{Kind: c.Kind, Hit: toWireHit(c.Hit)}, c.Hit.Entity.ID
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("remote: encode hit %s: %w", id, err)
		}
		if len(b) > room {
			return nil, fmt.Errorf("remote: entity %s is %d bytes, which do not fit in a frame of %d (project fewer traits): %w", id, len(b), frameCap, ErrTooLarge)
		}
		if total += len(b) + 1; total > msgCap {
			return nil, &overMessage{fit: i, cap: msgCap}
		}
		if len(cur)-len(head)+len(b)+1 > room {
			out = append(out, append(cur, more...))
			cur = []byte(head)
		}
		if len(cur) > len(head) {
			cur = append(cur, ',')
		}
		cur = append(cur, b...)
	}
	return append(out, append(cur, last...)), nil
}

// overMessage is a message over its cap, of which the first fit hits or
// changes fit. It wraps ErrTooLarge.
type overMessage struct{ fit, cap int }

func (e *overMessage) Error() string {
	return fmt.Sprintf("remote: answer of more than %d bytes (project fewer traits, or ask for fewer hits): %v", e.cap, ErrTooLarge)
}

func (e *overMessage) Unwrap() error { return ErrTooLarge }
