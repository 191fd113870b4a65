package netnstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DialIn connects to addr (TCP) from inside the network namespace ns: the
// socket is made on an OS thread switched into ns, and stays in ns; the
// thread is switched back before any other goroutine may run on it (if it
// cannot be, its goroutine ends locked to it and the runtime retires it).
// It blocks until connected or ctx ends.
func DialIn(ctx context.Context, ns, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, restored, err := dialIn(ctx, ns, addr)
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// dialIn runs on a locked thread: it enters ns, dials, and returns to the
// thread's own namespace; restored says the thread is back where it was.
func dialIn(ctx context.Context, ns, addr string) (c net.Conn, restored bool, err error) {
	home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, true, fmt.Errorf("netnstest: open this thread's network namespace: %w", err)
	}
	defer home.Close()
	f, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return nil, true, fmt.Errorf("netnstest: open network namespace: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("netnstest: enter network namespace %s: %w", ns, err)
	}
	var d net.Dialer
	c, err = d.DialContext(ctx, "tcp4", addr)
	restored = unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil
	return c, restored, err
}

// dialTimeout bounds the proxy's connection to a node's API, which is on
// the loopback of the node's namespace: it connects or is refused at once.
const dialTimeout = 10 * time.Second

// apiProxy makes a node's control API, which listens on 127.0.0.1:port in
// the node's namespace, reachable at the same address in the test's own
// namespace: the data dir's api file then holds an address that works from
// both, and the node's client is the ordinary one (peer.Dial(dir)).
type apiProxy struct {
	ns     string
	ln     net.Listener
	ctx    context.Context // ends with Close
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// listenProxy listens on a free loopback port of the test's namespace; the
// node is then told to listen on the same port in its own.
func listenProxy(ns string) (*apiProxy, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netnstest: api proxy: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &apiProxy{ns: ns, ln: ln, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the loopback IP:port of the proxy, and of the node's API.
func (p *apiProxy) Addr() string { return p.ln.Addr().String() }

func (p *apiProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.pipe(c)
		}()
	}
}

// pipe connects c to the node's API in its namespace, and copies both ways
// until either side closes.
func (p *apiProxy) pipe(c net.Conn) {
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	defer cancel()
	up, err := DialIn(ctx, p.ns, p.Addr())
	if err != nil {
		return // the client sees its connection closed, as if refused
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{})
	go func() {
		copyHalf(up, c)
		close(done)
	}()
	copyHalf(c, up)
	<-done
}

// copyHalf copies src to dst, then closes dst for writing (or entirely).
func copyHalf(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	dst.Close()
}

func (p *apiProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *apiProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Close stops listening, cuts every connection and waits for the proxy's
// goroutines.
func (p *apiProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	err := p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
