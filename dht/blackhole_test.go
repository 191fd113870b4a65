package dht

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// holdHost is a host whose writes a switch holds back: while held, a
// Write on any of its streams blocks until the stream is closed or reset
// here, as a write to a peer that stopped reading does once the window is
// full (kad-dht sets no write deadline).
type holdHost struct {
	host.Host
	held    atomic.Bool
	waiting atomic.Int32 // writes held back now
}

func (h *holdHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return &heldStream{Stream: s, h: h, ended: make(chan struct{})}, nil
}

type heldStream struct {
	network.Stream
	h     *holdHost
	once  sync.Once
	ended chan struct{}
}

func (s *heldStream) Write(p []byte) (int, error) {
	if s.h.held.Load() {
		s.h.waiting.Add(1)
		defer s.h.waiting.Add(-1)
		<-s.ended
		return 0, network.ErrReset
	}
	return s.Stream.Write(p)
}

func (s *heldStream) end() { s.once.Do(func() { close(s.ended) }) }

func (s *heldStream) Close() error {
	s.end()
	return s.Stream.Close()
}

func (s *heldStream) Reset() error {
	s.end()
	return s.Stream.Reset()
}

func (s *heldStream) ResetWithError(code network.StreamErrorCode) error {
	s.end()
	return s.Stream.ResetWithError(code)
}

// TestBlackholedCalls: with every write of a node held back (connections
// up, nothing passes), each DHT call that writes to peers returns when its
// ctx ends, and Close returns, ending a call whose ctx never ends, and
// leaves no goroutine (the bubble checks).
func TestBlackholedCalls(t *testing.T) {
	const timeout = 10 * time.Second
	tests := []struct {
		name string
		call func(ctx context.Context, d *DHT, s *simNet) error
	}{
		{"PutRecord", func(ctx context.Context, d *DHT, _ *simNet) error {
			return d.PutRecord(ctx, "prekeys", []byte("bundle"))
		}},
		{"Provide", func(ctx context.Context, d *DHT, _ *simNet) error {
			return d.Provide(ctx, rendezvous(t, "invite"))
		}},
		{"GetRecord", func(ctx context.Context, d *DHT, s *simNet) error {
			_, err := d.GetRecord(ctx, s.ids[1], "prekeys")
			return err
		}},
		{"FindPeer", func(ctx context.Context, d *DHT, _ *simNet) error {
			_, id := newKey(t)
			_, err := d.FindPeer(ctx, id)
			return err
		}},
		{"FindProviders", func(ctx context.Context, d *DHT, _ *simNet) error {
			for range d.FindProviders(ctx, rendezvous(t, "invite"), 0) {
			}
			return ctx.Err()
		}},
	}
	for _, tt := range tests {
		for _, atClose := range []bool{false, true} {
			name := tt.name + "/ctx"
			if atClose {
				name = tt.name + "/Close"
			}
			t.Run(name, func(t *testing.T) {
				bubble(t, func(t *testing.T) {
					var hh *holdHost
					s := newSimNetWrapped(t, 4, Config{Mode: ModeServer}, nil, func(i int, h host.Host) host.Host {
						if i != 0 {
							return h
						}
						hh = &holdHost{Host: h}
						return hh
					})
					closed := false
					defer func() {
						if !closed {
							s.close(t)
						}
					}()
					s.waitTables(t, 1) // every node has node 0, the bootstrap peer
					d := s.nodes[0]
					hh.held.Store(true)

					ctx := context.Background()
					if !atClose {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, timeout)
						defer cancel()
					}
					done := make(chan error, 1)
					go func() { done <- tt.call(ctx, d, s) }()
					time.Sleep(time.Second)
					if hh.waiting.Load() == 0 {
						t.Fatal("no write held back: the test does not reproduce a black hole")
					}
					if atClose {
						closing := make(chan error, 1)
						go func() { closing <- d.Close() }()
						select {
						case err := <-closing:
							if err != nil {
								t.Errorf("Close: %v", err)
							}
						case <-time.After(time.Minute):
							t.Fatal("Close did not return while a call was held in a write")
						}
					}
					select {
					case err := <-done:
						want := context.DeadlineExceeded
						if atClose {
							want = ErrClosed
						}
						if tt.name == "FindProviders" && atClose {
							want = nil // the channel closes; ctx never ends
						}
						if !errors.Is(err, want) {
							t.Errorf("err = %v, want %v", err, want)
						}
					case <-time.After(timeout):
						t.Fatal("the call did not return when its ctx ended")
					}
					if atClose {
						time.Sleep(time.Second) // the reset writers run
						if n := hh.waiting.Load(); n != 0 {
							t.Errorf("%d writes still held back after Close", n)
						}
					}
					s.close(t)
					closed = true
					if n := hh.waiting.Load(); n != 0 {
						t.Errorf("%d writes still held back after Close", n)
					}
				})
			})
		}
	}
}
