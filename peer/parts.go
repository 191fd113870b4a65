package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
)

// part is a long-lived part of the node with a Start/Close lifecycle. Its
// constructor starts nothing; Start starts it (ctx bounds the start, not
// its life); Close stops it and waits for its goroutines, and is safe
// after a Start that failed (which may have started some of them).
type part interface {
	Start(ctx context.Context) error
	Close() error
}

// runner is a long-lived part that lives in one call: Run returns when
// ctx ends (or it fails). The registry runs it in a goroutine of its own.
type runner interface {
	Run(ctx context.Context) error
}

// errPartsClosed is start's error after close.
var errPartsClosed = errors.New("peer: parts closed")

// parts is the registry of the node's long-lived parts: the one place that
// knows their order. Parts are registered (add, addRun) in start order;
// start starts those registered since its previous call, in order; close
// stops every part started, in reverse order, and waits for them. Adding a
// part to the node is one registration.
//
// It is not safe for concurrent use: the Node serialises its calls.
type parts struct {
	log     *slog.Logger
	list    []*partEntry
	started int // list[:started] were started (their Start called)
	closed  bool
}

// partEntry is one registered part: p, or r run in a goroutine.
type partEntry struct {
	name string
	p    part
	r    runner

	cancel context.CancelFunc // ends r's context
	ctx    context.Context    // r's context
	done   chan struct{}      // closed when r.Run has returned
	err    error              // what r.Run returned; read after done
	early  bool               // r.Run returned before its context ended; read after done
}

func newParts(log *slog.Logger) *parts {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &parts{log: log}
}

// add registers p under name, after the parts registered so far. It panics
// on a name already taken or after close: both are wiring mistakes.
func (ps *parts) add(name string, p part) { ps.register(&partEntry{name: name, p: p}) }

// addRun registers r under name, after the parts registered so far. Its
// Start runs r.Run in a goroutine the registry owns; its Close cancels
// r.Run's context and waits for it to return.
func (ps *parts) addRun(name string, r runner) { ps.register(&partEntry{name: name, r: r}) }

func (ps *parts) register(e *partEntry) {
	if ps.closed {
		panic(fmt.Sprintf("peer: part %q registered after close", e.name))
	}
	for _, o := range ps.list {
		if o.name == e.name {
			panic(fmt.Sprintf("peer: part %q registered twice", e.name))
		}
	}
	ps.list = append(ps.list, e)
}

// start starts, in registration order, every part registered since the
// previous call. If one fails, it closes that part (its Start may have
// started something) and every part started before it, in reverse order,
// and returns an error naming the part that failed ("peer: start dht:
// ..."), joined with any error of those closes. The registry is then
// closed.
func (ps *parts) start(ctx context.Context) error {
	if ps.closed {
		return errPartsClosed
	}
	for ps.started < len(ps.list) {
		e := ps.list[ps.started]
		ps.started++
		if err := e.start(ctx, ps.log); err != nil {
			return errors.Join(fmt.Errorf("peer: start %s: %w", e.name, err), ps.close())
		}
	}
	return nil
}

// close stops every part started, in reverse order, waiting for each before
// the next, and returns their errors joined, each naming its part ("peer:
// close dht: ..."). A Run part's error is reported here too, unless it is
// the context's cancellation that close asked for. Parts registered but
// never started are not touched. Idempotent: a second call returns nil.
func (ps *parts) close() error {
	if ps.closed {
		return nil
	}
	ps.closed = true
	var errs []error
	for i := ps.started - 1; i >= 0; i-- {
		e := ps.list[i]
		if err := e.stop(); err != nil {
			errs = append(errs, fmt.Errorf("peer: close %s: %w", e.name, err))
		}
	}
	return errors.Join(errs...)
}

func (e *partEntry) start(ctx context.Context, log *slog.Logger) error {
	if e.p != nil {
		return e.p.Start(ctx)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		e.err = e.r.Run(e.ctx)
		if e.early = e.ctx.Err() == nil; e.early {
			// It stopped on its own, before the node: say so now, not
			// only when the node closes.
			log.Error("part stopped before the node", "part", e.name, "err", e.err)
		}
	}()
	return nil
}

func (e *partEntry) stop() error {
	if e.p != nil {
		return e.p.Close()
	}
	if e.done == nil {
		return nil // its start failed before Run was called
	}
	e.cancel()
	<-e.done
	if !e.early && errors.Is(e.err, context.Canceled) {
		return nil // the cancellation asked for
	}
	return e.err
}

// hostPart adapts the libp2p host, which listens from the moment it is
// built, to the part lifecycle: Start builds it, Close closes it.
type hostPart struct {
	newHost func(crypto.PrivKey) (host.Host, error)
	key     crypto.PrivKey
	h       host.Host // nil until Start succeeded
}

func (p *hostPart) Start(context.Context) error {
	h, err := p.newHost(p.key)
	if err != nil {
		return err
	}
	p.h = h
	return nil
}

func (p *hostPart) Close() error {
	if p.h == nil {
		return nil
	}
	return p.h.Close()
}
