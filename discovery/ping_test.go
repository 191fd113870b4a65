package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// pingPair returns a client host connected to a server host on which
// handler serves ProtocolPing (none if nil).
func pingPair(t *testing.T, handler network.StreamHandler) (client, server host.Host) {
	t.Helper()
	client, server = newHost(t), newHost(t)
	if handler != nil {
		server.SetStreamHandler(ProtocolPing, handler)
	}
	if err := client.Connect(t.Context(), info(server)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return client, server
}

func TestPing(t *testing.T) {
	verifyNoLeaks(t)
	client, server := pingPair(t, servePing)
	for i := range 3 {
		rtt, err := Ping(t.Context(), client, server.ID())
		if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if rtt <= 0 || rtt > 10*time.Second {
			t.Errorf("ping %d: rtt = %v, want a positive loopback round trip", i, rtt)
		}
	}
	if l := client.Peerstore().LatencyEWMA(server.ID()); l <= 0 {
		t.Errorf("peerstore latency = %v, want the pings recorded", l)
	}
}

func TestPingFails(t *testing.T) {
	verifyNoLeaks(t)
	tests := []struct {
		name     string
		handler  network.StreamHandler // nil: the protocol is not served
		mismatch bool                  // the error must wrap ErrPingMismatch
	}{
		{
			name: "echo of other bytes",
			handler: func(s network.Stream) {
				defer s.Close()
				buf := make([]byte, PingSize)
				if _, err := io.ReadFull(s, buf); err != nil {
					return
				}
				for i := range buf {
					buf[i] ^= 0xff
				}
				_, _ = s.Write(buf)
			},
			mismatch: true,
		},
		{
			name: "echo one byte short",
			handler: func(s network.Stream) {
				defer s.Close()
				buf := make([]byte, PingSize)
				if _, err := io.ReadFull(s, buf); err != nil {
					return
				}
				_, _ = s.Write(buf[:PingSize-1])
			},
		},
		{
			name:    "stream reset",
			handler: func(s network.Stream) { _ = s.Reset() },
		},
		{
			name: "no answer before the deadline",
			handler: func(s network.Stream) {
				// Hold the stream until the client gives up and resets it.
				_, _ = io.Copy(io.Discard, s)
				_ = s.Reset()
			},
		},
		{name: "protocol not served"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := pingPair(t, tt.handler)
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			rtt, err := Ping(ctx, client, server.ID())
			if err == nil {
				t.Fatalf("Ping = %v, nil; want an error", rtt)
			}
			if rtt != 0 {
				t.Errorf("rtt = %v on error, want 0", rtt)
			}
			if got := errors.Is(err, ErrPingMismatch); got != tt.mismatch {
				t.Errorf("Ping error %q: errors.Is(ErrPingMismatch) = %v, want %v", err, got, tt.mismatch)
			}
		})
	}
}

// rawPingStream opens a ProtocolPing stream to a server running servePing.
func rawPingStream(t *testing.T) network.Stream {
	t.Helper()
	client, server := pingPair(t, servePing)
	s, err := client.NewStream(t.Context(), server.ID(), ProtocolPing)
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	t.Cleanup(func() { _ = s.Reset() })
	if err := s.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("SetDeadline: %v", err)
	}
	return s
}

func TestServePingEchoesEveryFrameUntilClosed(t *testing.T) {
	verifyNoLeaks(t)
	s := rawPingStream(t)
	frames := make([]byte, 5*PingSize)
	_, _ = rand.Read(frames)
	// Written in odd-sized pieces: framing is by byte count only.
	for rest := frames; len(rest) > 0; {
		n := min(len(rest), 13)
		if _, err := s.Write(rest[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got, frames) {
		t.Errorf("echo of %d bytes differs from the %d sent", len(got), len(frames))
	}
}

func TestServePingStopsAfterMaxFrames(t *testing.T) {
	verifyNoLeaks(t)
	s := rawPingStream(t)
	frames := make([]byte, (MaxPingsPerStream+3)*PingSize)
	_, _ = rand.Read(frames)
	if _, err := s.Write(frames); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// The listener answers MaxPingsPerStream frames, then closes its side:
	// the rest is never echoed.
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	want := frames[:MaxPingsPerStream*PingSize]
	if !bytes.Equal(got, want) {
		t.Errorf("echoed %d bytes, want the first %d (%d frames)", len(got), len(want), MaxPingsPerStream)
	}
}

func TestServePingResetsOnPartialFrame(t *testing.T) {
	verifyNoLeaks(t)
	s := rawPingStream(t)
	if _, err := s.Write(make([]byte, PingSize+PingSize/2)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	// The listener resets the stream on the half frame. (A reset may
	// overtake the echo of the whole frame before it, so that is not
	// checked.)
	if got, err := io.ReadAll(s); !errors.Is(err, network.ErrReset) {
		t.Errorf("after a half frame, read %d bytes and error %v, want %v", len(got), err, network.ErrReset)
	}
}
