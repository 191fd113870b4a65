package remote

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/store"
)

// blockingBackend is a stateBackend whose Get waits until release is
// closed (or its ctx ends).
type blockingBackend struct {
	*stateBackend
	release chan struct{}
}

func (b *blockingBackend) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return store.Entity{}, ctx.Err()
	}
	return b.stateBackend.Get(ctx, id, traits)
}

func TestStreamsPerPeerAndInAll(t *testing.T) {
	bb := &blockingBackend{stateBackend: newStateBackend(), release: make(chan struct{})}
	bb.put(id(1), "exo.note", "one")
	cfg := Config{StreamsPerPeer: 3, Streams: 4}
	r := newRig(t, cfg, bb)
	c2, _ := r.otherClient(t)
	p := r.member.ID()
	ctx := t.Context()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	get := func(c *Client) {
		wg.Go(func() {
			_, err := c.Get(ctx, p, id(1), nil)
			errs <- err
		})
	}
	for range cfg.StreamsPerPeer {
		get(r.c)
	}
	waitBounds(t, r.srv, 3, 0)
	// The peer is at its share; another peer is not, until the total.
	if _, err := r.c.Get(ctx, p, id(1), nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a 4th Get of one peer: %v, want ErrBusy", err)
	}
	if _, err := r.c.Query(ctx, p, store.Query{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a Query beyond the peer's share: %v, want ErrBusy", err)
	}
	get(c2)
	waitBounds(t, r.srv, 4, 0)
	if _, err := c2.Get(ctx, p, id(1), nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a Get beyond the total: %v, want ErrBusy", err)
	}
	close(bb.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a Get within the bounds: %v", err)
		}
	}
	waitBounds(t, r.srv, 0, 0)
	if _, err := r.c.Get(ctx, p, id(1), nil); err != nil {
		t.Fatalf("a Get once the streams are done: %v", err)
	}
}

func TestWatchesPerPeerAndInAll(t *testing.T) {
	cfg := Config{WatchesPerPeer: 3, Watches: 4}
	r := newRig(t, cfg, nil)
	c2, _ := r.otherClient(t)
	p := r.member.ID()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var ws []*Watch
	sub := func(c *Client) {
		t.Helper()
		w, err := c.Subscribe(ctx, p, store.Query{})
		if err != nil {
			t.Fatalf("a watch within the bounds: %v", err)
		}
		ws = append(ws, w)
	}
	for range cfg.WatchesPerPeer {
		sub(r.c)
	}
	if _, err := r.c.Watch(ctx, p, store.Query{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a 4th watch of one peer: %v, want ErrBusy", err)
	}
	// Watches do not take a peer's stream share: Get still works.
	r.b.put(id(1), "exo.note", "one")
	if _, err := r.c.Get(ctx, p, id(1), nil); err != nil {
		t.Fatalf("Get beside 3 watches: %v", err)
	}
	sub(c2)
	if _, err := c2.Watch(ctx, p, store.Query{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a watch beyond the total: %v, want ErrBusy", err)
	}
	waitBounds(t, r.srv, 0, 4)
	cancel()
	for _, w := range ws {
		for range w.Events() {
		}
	}
	waitBounds(t, r.srv, 0, 0)
	if _, err := c2.Watch(t.Context(), p, store.Query{}); err != nil {
		t.Fatalf("a watch once the others ended: %v", err)
	}
}

// rawStream opens a stream on the protocol without a Client.
func rawStream(t *testing.T, r *rig) network.Stream {
	t.Helper()
	st, err := r.ch.NewStream(t.Context(), r.member.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Reset() })
	return st
}

// expectEnd reads st to its end, closes it and returns the error frame
// the server sent, if any.
func expectEnd(t *testing.T, st network.Stream) *Error {
	t.Helper()
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(st)
	var got *Error
	for {
		b, err := readFrame(br, MaxFrame)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, network.ErrReset) || errors.Is(err, ErrProtocol) {
				return got
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept the stream open")
			}
			return got
		}
		f, err := decodeFrame(b)
		if err != nil || f.Err == nil {
			t.Fatalf("frame %q: %v", b, err)
		}
		got = f.Err
	}
}

func TestRequestsThatLie(t *testing.T) {
	r := newRig(t, Config{ReadTimeout: time.Second}, nil) // long enough for a loaded machine to deliver what was sent
	over := binary.AppendUvarint(nil, MaxRequest+1)
	tests := []struct {
		name     string
		send     []byte
		wantCode string // "" when the server resets without a word
	}{
		{"nothing", nil, ""},
		{"a length and nothing else", binary.AppendUvarint(nil, 1000), ""},
		{"a length and half the body", append(binary.AppendUvarint(nil, 100), make([]byte, 50)...), ""},
		{"a length over the cap", over, codeTooLarge},
		{"a length prefix of 5 bytes", []byte{0x80, 0x80, 0x80, 0x80, 0x01}, codeTooLarge},
		{"a zero length", []byte{0}, codeTooLarge},
		{"not JSON", append(binary.AppendUvarint(nil, 3), "abc"...), codeProtocol},
		{"another version", frameOf(`{"v":2,"op":"query","query":{}}`), codeProtocol},
		{"an unknown op", frameOf(`{"v":1,"op":"put","query":{}}`), codeProtocol},
		{"a get without an id", frameOf(`{"v":1,"op":"get"}`), codeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := rawStream(t, r)
			if tt.send != nil {
				if _, err := st.Write(tt.send); err != nil {
					t.Fatal(err)
				}
			}
			e := expectEnd(t, st)
			switch {
			case tt.wantCode == "" && e != nil:
				t.Fatalf("got %+v, want a reset", e)
			case tt.wantCode != "" && (e == nil || e.Code != tt.wantCode):
				t.Fatalf("got %+v, want code %s", e, tt.wantCode)
			}
			waitBounds(t, r.srv, 0, 0)
		})
	}
}

func frameOf(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
