package remote

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/store"
)

// fakeMember serves Protocol with handle, in place of a Server: a store
// member that misbehaves. It returns a client that knows it.
func fakeMember(t *testing.T, cfg ClientConfig, handle func(st network.Stream, br *bufio.Reader, done <-chan struct{})) (*Client, peer.ID) {
	t.Helper()
	m := newHost(t)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) }) // before the host closes
	m.SetStreamHandler(Protocol, func(st network.Stream) {
		defer st.Reset()
		br := bufio.NewReader(st)
		if _, err := readFrame(br, MaxRequest); err != nil {
			return
		}
		handle(st, br, done)
	})
	ch := newHost(t)
	introduce(ch, m)
	return NewClientConfig(ch, cfg), m.ID()
}

// hold keeps the stream until the test ends (the client's side closed
// for writing after its request: a read would return at once).
func hold(_ network.Stream, _ *bufio.Reader, done <-chan struct{}) { <-done }

func send(frames ...string) func(network.Stream, *bufio.Reader, <-chan struct{}) {
	return func(st network.Stream, br *bufio.Reader, done <-chan struct{}) {
		for _, f := range frames {
			if err := writeFrame(st, []byte(f)); err != nil {
				return
			}
		}
		hold(st, br, done)
	}
}

const pageOne = `{"v":1,"page":true,"hits":[{"entity":{"id":"010000000000000000000000000000ee","traits":[]}}]}`

func TestClientRefusesAMisbehavingMember(t *testing.T) {
	cfg := ClientConfig{Timeout: time.Second} // long enough for a loaded machine to deliver what was sent
	tests := []struct {
		name   string
		handle func(network.Stream, *bufio.Reader, <-chan struct{})
		want   error
	}{
		{"silent", hold, context.DeadlineExceeded},
		{"a length and nothing", func(st network.Stream, br *bufio.Reader, done <-chan struct{}) {
			_, _ = st.Write([]byte{0x80, 0x01})
			hold(st, br, done)
		}, context.DeadlineExceeded},
		{"keep-alives forever", func(st network.Stream, br *bufio.Reader, done <-chan struct{}) {
			for {
				if writeFrame(st, pingFrame) != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}, context.DeadlineExceeded},
		{"a length over the cap", func(st network.Stream, br *bufio.Reader, done <-chan struct{}) {
			_, _ = st.Write(binary.AppendUvarint(nil, MaxFrame+1))
			hold(st, br, done)
		}, ErrTooLarge},
		{"another version", send(`{"v":9,"ping":true}`), ErrProtocol},
		{"not JSON", send(`{"v":1,`), ErrProtocol},
		{"a page for a get", send(pageOne), ErrProtocol},
		{"an unknown error code", send(`{"v":1,"err":{"code":"weird","msg":"the member's words"}}`), ErrRemote},
		{"the stream ends", func(st network.Stream, br *bufio.Reader, done <-chan struct{}) {
			_ = st.CloseWrite()
			hold(st, br, done)
		}, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := fakeMember(t, cfg, tt.handle)
			_, err := c.Get(t.Context(), p, id(1), nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Get: %v, want %v", err, tt.want)
			}
			if tt.want == ErrRemote && err.Error() != "the member's words" {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestClientWatchRefusesAMisbehavingMember(t *testing.T) {
	cfg := ClientConfig{Timeout: time.Second, WatchIdle: time.Second}
	t.Run("first event not a page", func(t *testing.T) {
		c, p := fakeMember(t, cfg, send(`{"v":1,"changes":[{"kind":"removed","hit":{"entity":{"id":"010000000000000000000000000000ee","traits":[]}}}]}`))
		if _, err := c.Watch(t.Context(), p, store.Query{}); !errors.Is(err, ErrProtocol) {
			t.Fatalf("Watch: %v, want ErrProtocol", err)
		}
	})
	t.Run("silent after the page", func(t *testing.T) {
		c, p := fakeMember(t, cfg, send(pageOne))
		w, err := c.Subscribe(t.Context(), p, store.Query{})
		if err != nil {
			t.Fatal(err)
		}
		next(t, w)
		for range w.Events() {
		}
		var to interface{ Timeout() bool }
		if err := w.Err(); !errors.As(err, &to) || !to.Timeout() || errors.Is(err, ErrClosed) {
			t.Fatalf("Err = %v, want a timeout", err)
		}
	})
	t.Run("a page of more than MaxLimit hits in changes", func(t *testing.T) {
		c, p := fakeMember(t, cfg, func(st network.Stream, br *bufio.Reader, done <-chan struct{}) {
			_ = writeFrame(st, []byte(`{"v":1,"page":true}`))
			for i := range store.MaxLimit + 1 {
				e := store.EntityID{byte(i), byte(i >> 8), 1}
				if writeFrame(st, []byte(`{"v":1,"changes":[{"kind":"added","hit":{"entity":{"id":"`+e.String()+`","traits":[]}}}]}`)) != nil {
					return
				}
			}
			hold(st, br, done)
		})
		w, err := c.Subscribe(t.Context(), p, store.Query{})
		if err != nil {
			t.Fatal(err)
		}
		// Not reading: the client coalesces all the additions, up to
		// the cap.
		time.Sleep(50 * time.Millisecond)
		for range w.Events() {
		}
		if !errors.Is(w.Err(), ErrProtocol) {
			t.Fatalf("Err = %v, want ErrProtocol", w.Err())
		}
	})
}

// TestKeepAlivesKeepAnIdleWatch: a watch with nothing to say outlives the
// client's WatchIdle many times over, on the server's keep-alives.
func TestKeepAlivesKeepAnIdleWatch(t *testing.T) {
	// Keep-alives every 10 ms, a client that gives up after 1.5 s of
	// silence, and a 3 s wait: only the keep-alives keep the watch, and a
	// neighbour's load must stall the process 150 pings long to break it
	// (a 200 ms idle limit failed once in ten runs on a loaded machine).
	r := newRig(t, Config{Ping: 10 * time.Millisecond}, nil)
	r.c = NewClientConfig(r.ch, ClientConfig{WatchIdle: 1500 * time.Millisecond})
	w, err := r.c.Subscribe(t.Context(), r.member.ID(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	next(t, w)
	time.Sleep(3 * time.Second)
	r.b.put(id(1), "exo.note", "late")
	if ev := next(t, w); len(ev.Changes) != 1 || ev.Changes[0].Kind != store.Added {
		t.Fatalf("event %+v", ev)
	}
}

func TestCancelEndsAGetInProgress(t *testing.T) {
	bb := &blockingBackend{stateBackend: newStateBackend(), release: make(chan struct{})}
	r := newRig(t, Config{}, bb)
	defer close(bb.release)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := r.c.Get(ctx, r.member.ID(), id(1), nil)
		done <- err
	}()
	waitBounds(t, r.srv, 1, 0)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get after cancel: %v", err)
	}
}

func TestCloseEndsAGetInProgress(t *testing.T) {
	bb := &blockingBackend{stateBackend: newStateBackend(), release: make(chan struct{})}
	r := newRig(t, Config{}, bb)
	done := make(chan error)
	go func() {
		_, err := r.c.Get(t.Context(), r.member.ID(), id(1), nil)
		done <- err
	}()
	waitBounds(t, r.srv, 1, 0)
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Get during Close: %v, want ErrClosed", err)
	}
}
