package discovery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/goleak"
)

// errLAN is a LAN whose Start or Close fails.
type errLAN struct {
	fakeLAN
	startErr, closeErr error
}

func (l *errLAN) Start(h host.Host, found func(peer.AddrInfo)) error {
	if l.startErr != nil {
		return l.startErr
	}
	return l.fakeLAN.Start(h, found)
}

func (l *errLAN) Close() error {
	_ = l.fakeLAN.Close()
	return l.closeErr
}

func TestCloseIsIdempotent(t *testing.T) {
	verifyNoLeaks(t)
	lan := &fakeLAN{}
	n := newNode(t, testConfig(), lan, newFakeDHT().router(newHost(t)))
	for i := range 3 {
		if err := n.svc.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if _, closes := lan.counts(); closes != 1 {
		t.Errorf("LAN closed %d times, want 1", closes)
	}
}

func TestCloseWithoutStart(t *testing.T) {
	verifyNoLeaks(t)
	lan := &fakeLAN{}
	s, err := New(newHost(t), testConfig(), lan, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if starts, closes := lan.counts(); starts != 0 || closes != 0 {
		t.Errorf("LAN started %d and closed %d times, want neither", starts, closes)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestStartTwiceAndAfterClose(t *testing.T) {
	verifyNoLeaks(t)
	n := newNode(t, testConfig(), nil, nil)
	if err := n.svc.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	if err := n.svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := n.svc.Start(t.Context()); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestStartContextBoundsOnlyTheStart(t *testing.T) {
	verifyNoLeaks(t)
	h := newHost(t)
	svc, err := New(h, testConfig(), nil, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	cancel()
	// The service keeps working after its start context ends.
	b := newNode(t, testConfig(), nil, nil)
	svc.Found(SourceDHT, info(b.h))
	listedWith(t, svc, b.h.ID(), SourceDHT)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLANStartFailureIsAWarning(t *testing.T) {
	verifyNoLeaks(t)
	lan := &errLAN{startErr: errors.New("no multicast here")}
	var logs syncBuffer
	h := newHost(t)
	s, err := New(h, testConfig(), lan, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start = %v, want LAN trouble to be only a warning", err)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "no multicast here") {
		t.Errorf("log = %q, want a warning with the LAN's error", got)
	}
	// The other sources still work.
	b := newNode(t, testConfig(), nil, nil)
	s.Found(SourceDHT, info(b.h))
	listedWith(t, s, b.h.ID(), SourceDHT)
	// A LAN that never started is not closed.
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, closes := lan.counts(); closes != 0 {
		t.Errorf("the LAN that failed to start was closed %d times, want 0", closes)
	}
}

func TestLANCloseError(t *testing.T) {
	verifyNoLeaks(t)
	closeErr := errors.New("close failed")
	lan := &errLAN{closeErr: closeErr}
	n := newNode(t, testConfig(), lan, nil)
	if err := n.svc.Close(); !errors.Is(err, closeErr) {
		t.Errorf("Close = %v, want %v", err, closeErr)
	}
	if err := n.svc.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestAfterClose(t *testing.T) {
	verifyNoLeaks(t)
	b := newNode(t, testConfig(), nil, nil)
	inbound := countInbound(t, b.h)
	a := newNode(t, testConfig(), nil, newFakeDHT().router(newHost(t)))
	if err := a.svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	a.svc.Found(SourceDHT, info(b.h))
	if _, ok := entryOf(a.svc, b.h.ID()); ok {
		t.Error("Found after Close recorded the peer")
	}
	if err := a.svc.Connect(t.Context(), info(b.h)); !errors.Is(err, ErrClosed) {
		t.Errorf("Connect after Close = %v, want %v", err, ErrClosed)
	}
	a.svc.Rendezvous([]byte("s"))     // must not block
	a.svc.StopRendezvous([]byte("s")) // must not block
	if got := a.svc.Peers(); len(got) != 0 {
		t.Errorf("Peers() after Close = %v, want none", got)
	}
	if n := inbound.inbound.Load(); n != 0 {
		t.Errorf("b accepted %d connections, want none", n)
	}
	// Close removes the ping handler: a closed service no longer answers.
	if err := b.h.Connect(t.Context(), info(a.h)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := Ping(t.Context(), b.h, a.h.ID()); err == nil {
		t.Error("a closed service still answers pings")
	}
}

// TestCloseWaitsForGoroutines checks that once Close returns, every
// goroutine the service started is gone, while the host stays up: loops,
// dials in flight, rendezvous rounds and a ping that never gets an answer.
func TestCloseWaitsForGoroutines(t *testing.T) {
	verifyNoLeaks(t)
	cfg := testConfig()
	cfg.DialTimeout = time.Minute // longer than the test may take
	h := newHost(t)
	// A peer that claims ProtocolPing but never answers a ping, so the
	// service's first ping blocks until Close cancels it.
	mute := newHost(t)
	mute.SetStreamHandler(ProtocolPing, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		_ = s.Reset()
	})
	if err := h.Connect(t.Context(), info(mute)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	// Everything running now belongs to the hosts and their connection.
	hostOnly := goleak.IgnoreCurrent()

	svc, err := New(h, cfg, &fakeLAN{}, newFakeDHT().router(h), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	svc.Rendezvous([]byte("secret"))
	svc.Found(SourceDHT, deadAddrInfo(t))
	// The connection to mute predates Start: Start books it and pings it.
	eventually(t, 10*time.Second, "a ping in flight", func() bool {
		return len(mute.Network().ConnsToPeer(h.ID())) > 0 && streamsTo(mute, h.ID(), ProtocolPing) > 0
	})

	start := time.Now()
	if err := svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v, want it to cancel the blocked ping (DialTimeout %v)", d, cfg.DialTimeout)
	}
	goleak.VerifyNone(t, hostOnly)
}

// streamsTo counts h's open streams to p for protocol proto.
func streamsTo(h host.Host, p peer.ID, proto protocol.ID) int {
	n := 0
	for _, c := range h.Network().ConnsToPeer(p) {
		for _, s := range c.GetStreams() {
			if s.Protocol() == proto {
				n++
			}
		}
	}
	return n
}
