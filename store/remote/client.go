package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/store"
)

// ClientConfig tunes a Client. The zero value of a field means its
// default.
type ClientConfig struct {
	// Timeout bounds a Get or a Query, and the wait for a watch's first
	// event, when ctx has no earlier deadline. Default 30 s.
	Timeout time.Duration
	// WatchIdle ends a watch whose store member has sent no frame (not
	// even a keep-alive, which a Server sends every Config.Ping) for that
	// long. Default 60 s.
	WatchIdle time.Duration
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.WatchIdle <= 0 {
		c.WatchIdle = 60 * time.Second
	}
	return c
}

// Client sends Get, Query and Watch to store members. It is safe for
// concurrent use; each request is a stream of its own.
type Client struct {
	h   host.Host
	cfg ClientConfig
}

// NewClient returns a client on h with the default ClientConfig.
func NewClient(h host.Host) *Client { return NewClientConfig(h, ClientConfig{}) }

// NewClientConfig returns a client on h with cfg.
func NewClientConfig(h host.Host, cfg ClientConfig) *Client {
	return &Client{h: h, cfg: cfg.withDefaults()}
}

// Get asks p for entity id, as store's Get: traits is the projection (nil
// every trait, empty none). The errors of p's backend come back wrapping
// the same sentinels (store.ErrNotFound, store.ErrQuery) with the same
// message; see Error. It blocks until the answer, ctx's end or the
// Timeout.
func (c *Client) Get(ctx context.Context, p peer.ID, id store.EntityID, traits []string) (store.Entity, error) {
	m, err := c.call(ctx, p, request{Op: OpGet, ID: id, Traits: traits})
	if err != nil {
		return store.Entity{}, err
	}
	if m.Entity == nil {
		return store.Entity{}, fmt.Errorf("remote: get: answered with no entity: %w", ErrProtocol)
	}
	return *m.Entity, nil
}

// Query asks p for a page of q's hits; answers and errors as Get's.
func (c *Client) Query(ctx context.Context, p peer.ID, q store.Query) (store.Page, error) {
	m, err := c.call(ctx, p, request{Op: OpQuery, Query: q})
	if err != nil {
		return store.Page{}, err
	}
	if !m.Page {
		return store.Page{}, fmt.Errorf("remote: query: answered with no page: %w", ErrProtocol)
	}
	return store.Page{Hits: m.Hits, Next: m.Next}, nil
}

// call sends a Get or a Query and reads its answer.
func (c *Client) call(ctx context.Context, p peer.ID, r request) (frame, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	st, br, err := c.open(ctx, p, r)
	if err != nil {
		return frame{}, err
	}
	defer context.AfterFunc(ctx, func() { _ = st.Reset() })()
	deadline, _ := ctx.Deadline()
	m, err := readMessage(br, func() { _ = st.SetReadDeadline(deadline) })
	if err != nil {
		_ = st.Reset()
		return frame{}, c.fail(ctx, r.Op, p, err)
	}
	_ = st.Close() // the answer is whole: the server waits for this
	if m.Err != nil {
		return frame{}, m.Err
	}
	return m, nil
}

// open encodes r, opens a stream to p and sends r on it; for a Get or a
// Query it closes the client's side.
func (c *Client) open(ctx context.Context, p peer.ID, r request) (network.Stream, *bufio.Reader, error) {
	body, err := encodeRequest(r)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.h.NewStream(network.WithAllowLimitedConn(ctx, "store reads"), p, Protocol)
	if err != nil {
		return nil, nil, c.fail(ctx, r.Op, p, err)
	}
	// A write to a member that takes nothing (a black hole) blocks until
	// the write deadline: ctx's end resets the stream, so that a caller
	// that gives up (a node closing) does not wait for it.
	defer context.AfterFunc(ctx, func() { _ = st.Reset() })()
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetWriteDeadline(d)
	} else {
		_ = st.SetWriteDeadline(ambient.Deadline(c.cfg.Timeout))
	}
	if err = writeFrame(st, body); err == nil && r.Op != OpWatch {
		// The request is out whole. The member may already have answered
		// and closed the stream, which on QUIC cancels this side's
		// sending (STOP_SENDING), and CloseWrite then fails: the answer is
		// still there to read, so that failure is not the request's.
		_ = st.CloseWrite()
	}
	if err != nil {
		_ = st.Reset()
		return nil, nil, c.fail(ctx, r.Op, p, err)
	}
	return st, bufio.NewReaderSize(st, 4<<10), nil
}

// fail is the error of a request that failed on the way: ctx's, if it
// ended, else err, naming the op and the peer. The stream's deadlines are
// ctx's: a stream that timed out is ctx's deadline passing (the stream's
// timer may fire a moment before ctx's).
func (c *Client) fail(ctx context.Context, op Op, p peer.ID, err error) error {
	var to interface{ Timeout() bool }
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.As(err, &to) && to.Timeout():
		err = context.DeadlineExceeded
	}
	return fmt.Errorf("remote: %s from %s: %w", op, p, err)
}

// readMessage reads the frames of one message: keep-alives are skipped,
// then frames up to the first without More, all of one kind, which it
// returns joined (hits and changes in order; an error frame as is).
// setDeadline is called before each frame. It refuses a message over
// MaxMessage bytes, store.MaxLimit hits or MaxChanges changes.
func readMessage(br *bufio.Reader, setDeadline func()) (frame, error) {
	return readMessageCaps(br, setDeadline, MaxFrame, MaxMessage)
}

// readMessageCaps is readMessage with caps of its own (tests).
func readMessageCaps(br *bufio.Reader, setDeadline func(), maxFrame, maxMessage int) (frame, error) {
	var m frame
	size, parts := 0, 0
	for {
		setDeadline()
		b, err := readFrame(br, maxFrame)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if parts == 0 {
					return frame{}, fmt.Errorf("stream ended before an answer: %w", ErrProtocol)
				}
				return frame{}, fmt.Errorf("stream ended in the middle of an answer: %w", ErrProtocol)
			}
			return frame{}, err
		}
		size += len(b)
		if size > maxMessage {
			return frame{}, fmt.Errorf("answer of more than %d bytes: %w", maxMessage, ErrTooLarge)
		}
		f, err := decodeFrame(b)
		if err != nil {
			return frame{}, err
		}
		if f.Ping {
			if parts > 0 {
				return frame{}, fmt.Errorf("keep-alive inside an answer: %w", ErrProtocol)
			}
			continue
		}
		if parts == 0 {
			m = f
		} else {
			if f.Page != m.Page || (f.Changes == nil) != (m.Changes == nil) {
				return frame{}, fmt.Errorf("answer of frames of different kinds: %w", ErrProtocol)
			}
			m.Hits = append(m.Hits, f.Hits...)
			m.Changes = append(m.Changes, f.Changes...)
			m.Next, m.More = f.Next, f.More
		}
		parts++
		if len(m.Hits) > store.MaxLimit || len(m.Changes) > MaxChanges {
			return frame{}, fmt.Errorf("answer of %d hits, %d changes: %w", len(m.Hits), len(m.Changes), ErrTooLarge)
		}
		if !m.More {
			return m, nil
		}
	}
}

// Watch is a watched query on a store member (Client.Subscribe).
type Watch struct {
	events chan store.WatchEvent
	mu     sync.Mutex
	err    error
}

// Events returns the watch's events: the first page, then changes, as
// store.WatchEvent describes (a consumer that reads slowly gets them
// coalesced). The channel closes when the watch ends; Err then says why.
func (w *Watch) Events() <-chan store.WatchEvent { return w.events }

// Err returns why the watch ended, once Events is closed (nil before): the
// ctx's error when it ended, an error wrapping ErrClosed when the store
// member ended the watch (its index or itself closing), ErrProtocol or
// ErrTooLarge for a member that broke the protocol, or the stream's
// error (the member went away, or was silent for WatchIdle). Whatever the
// reason, a caller that wants to go on watches again, on this member or
// another.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Watch asks p to watch q and returns its events, as store's Watch: an
// error (store.ErrQuery, ...) if p refuses the query, else a channel that
// closes when ctx ends or the watch does. Subscribe tells why it ended.
func (c *Client) Watch(ctx context.Context, p peer.ID, q store.Query) (<-chan store.WatchEvent, error) {
	w, err := c.Subscribe(ctx, p, q)
	if err != nil {
		return nil, err
	}
	return w.Events(), nil
}

// Subscribe is Watch, returning the Watch. It blocks until p answers with
// its first event or an error. The watch's goroutines end when ctx ends or
// the stream does (cancel ctx to stop watching: a consumer that stops
// reading Events without cancelling ctx holds them).
func (c *Client) Subscribe(ctx context.Context, p peer.ID, q store.Query) (*Watch, error) {
	first, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	st, br, err := c.open(first, p, request{Op: OpWatch, Query: q})
	if err != nil {
		return nil, err
	}
	deadline, _ := first.Deadline()
	stop := context.AfterFunc(first, func() { _ = st.Reset() })
	m, err := readMessage(br, func() { _ = st.SetReadDeadline(deadline) })
	if !stop() {
		err = first.Err() // the stream was reset: say why
	}
	if err != nil {
		_ = st.Reset()
		return nil, c.fail(ctx, OpWatch, p, err)
	}
	if m.Err != nil {
		_ = st.Close()
		return nil, m.Err
	}
	if !m.Page {
		_ = st.Reset()
		return nil, fmt.Errorf("remote: watch: first event is not a page: %w", ErrProtocol)
	}
	w := &Watch{events: make(chan store.WatchEvent)}
	msgs := make(chan store.WatchEvent)
	var readErr error
	go func() { // read the stream as fast as it comes
		defer close(msgs)
		stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
		defer stop()
		idle := func() { _ = st.SetReadDeadline(ambient.Deadline(c.cfg.WatchIdle)) }
		for {
			m, err := readMessage(br, idle)
			switch {
			case err != nil:
				readErr = fmt.Errorf("remote: watch from %s: %w", p, err)
			case m.Err != nil:
				readErr = m.Err
			case m.Page:
				ev := store.WatchEvent{Page: &store.Page{Hits: m.Hits, Next: m.Next}}
				select {
				case msgs <- ev:
					continue
				case <-ctx.Done():
				}
			default:
				select {
				case msgs <- store.WatchEvent{Changes: m.Changes}:
					continue
				case <-ctx.Done():
				}
			}
			break
		}
		if readErr != nil && !errors.As(readErr, new(*Error)) {
			_ = st.Reset()
		} else {
			_ = st.Close()
		}
	}()
	go func() { // hand events over, coalescing for a slow consumer
		defer close(w.events)
		co := newCoalescer()
		_ = co.push(store.WatchEvent{Page: &store.Page{Hits: m.Hits, Next: m.Next}})
		in := msgs
		var err error
	loop:
		for {
			ev, ok := co.next()
			if !ok && in == nil {
				break // the stream ended and everything is handed over
			}
			var out chan store.WatchEvent
			if ok {
				out = w.events
			}
			select {
			case out <- ev:
				co.pop()
			case got, open := <-in:
				if !open {
					in = nil
					continue
				}
				if err = co.push(got); err != nil {
					_ = st.Reset()
					break loop
				}
			case <-ctx.Done():
				break loop
			}
		}
		if in != nil {
			for range in { // the reader ends: its stream is reset or ctx ended
			}
		}
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case err == nil:
			err = readErr // msgs is closed: the reader is done with it
		}
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}()
	return w, nil
}
