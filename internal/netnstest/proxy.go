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

// DialIn connects to addr (TCP) from inside the network namespace ns; the
// connection stays in ns. It blocks until connected or ctx ends.
func DialIn(ctx context.Context, ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	return c, err
}

// Do runs f on an OS thread switched into the network namespace ns, so that
// the sockets f makes (listeners, connections) belong to ns, and they stay
// there. The thread returns to its own namespace before any other goroutine
// may run on it (should that fail, the runtime retires the thread). f must
// not start goroutines that make sockets: they would run elsewhere. Do
// blocks until f returns.
func Do(ns string, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := doIn(ns, f)
		if restored {
			runtime.UnlockOSThread()
		} // else this goroutine ends locked, and its thread with it
		ch <- err
	}()
	return <-ch
}

// doIn runs on a locked thread: it enters ns, runs f, and returns to the
// thread's own namespace; restored says the thread is back where it was.
func doIn(ns string, f func() error) (restored bool, err error) {
	home, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return true, fmt.Errorf("netnstest: open this thread's network namespace: %w", err)
	}
	defer home.Close()
	target, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return true, fmt.Errorf("netnstest: open network namespace: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("netnstest: enter network namespace %s: %w", ns, err)
	}
	err = f()
	return unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil, err
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
