package simnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// FuzzStreamReadDeadlines: whatever the sizes of the writes, the pauses
// between them, the sizes of the reads and the read deadlines (many of
// which fire while a read waits), the reader gets every byte once, in
// order, then the end of the stream: a read timeout loses nothing.
//
// plan drives both sides, a byte per step: for the writer, the low 4 bits
// are a pause in ms and the rest a write size; for the reader, the low 2
// bits pick a deadline (none, 1 ms, 3 ms, already passed every other
// read) and the rest a read size.
func FuzzStreamReadDeadlines(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{0x00})
	f.Add(bytes.Repeat([]byte("abcdefgh"), 512), []byte{0x15, 0xf1, 0x22, 0x07, 0x93})
	f.Add(make([]byte, 1), []byte{0x03, 0x02, 0x01})
	f.Fuzz(func(t *testing.T, data, plan []byte) {
		if len(data) > 64<<10 || len(plan) == 0 || len(plan) > 256 {
			return
		}
		synctest.Test(t, func(t *testing.T) {
			a, b, done := hostPair(t)
			defer done()
			got := make(chan []byte, 1)
			b.SetStreamHandler(protoSink, func(s network.Stream) {
				defer s.Close()
				got <- readPlanned(t, s, plan)
			})
			s, err := a.NewStream(context.Background(), b.ID(), protoSink)
			if err != nil {
				t.Fatal(err)
			}
			rest := data
			for i := 0; len(rest) > 0; i++ {
				step := plan[i%len(plan)]
				size := min(len(rest), 1+int(step>>4)*97)
				if _, err := s.Write(rest[:size]); err != nil {
					t.Fatalf("write: %v", err)
				}
				rest = rest[size:]
				time.Sleep(time.Duration(step&15) * time.Millisecond)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if out := <-got; !bytes.Equal(out, data) {
				t.Fatalf("read %d bytes, want the %d written (equal prefix: %d)", len(out), len(data), commonBytes(out, data))
			}
		})
	})
}

// readPlanned reads s to its end as plan says, ignoring read timeouts.
func readPlanned(t *testing.T, s network.Stream, plan []byte) []byte {
	var out []byte
	for i := 0; ; i++ {
		step := plan[i%len(plan)]
		switch step & 3 {
		case 0:
			_ = s.SetReadDeadline(time.Time{})
		case 1:
			_ = s.SetReadDeadline(time.Now().Add(time.Millisecond))
		case 2:
			_ = s.SetReadDeadline(time.Now().Add(3 * time.Millisecond))
		case 3: // every other time, so that the reader makes progress
			if i%2 == 1 {
				_ = s.SetReadDeadline(time.Now().Add(-time.Millisecond))
			} else {
				_ = s.SetReadDeadline(time.Time{})
			}
		}
		buf := make([]byte, 1+int(step>>2)*13)
		n, err := s.Read(buf)
		out = append(out, buf[:n]...)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return out
		case errors.Is(err, os.ErrDeadlineExceeded):
			if n != 0 {
				t.Errorf("a read that timed out returned %d bytes", n)
			}
		default:
			t.Errorf("read: %v", err)
			return out
		}
	}
}

func commonBytes(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// hostPair makes two bare mocknet hosts as simHosts, linked with 1 ms of
// latency and connected; done closes them.
func hostPair(t *testing.T) (*simHost, *simHost, func()) {
	t.Helper()
	mn := mocknet.New()
	n := New(Config{})
	var hosts [2]*simHost
	for i := range hosts {
		h, err := mn.AddPeer(nodeKey(1, i), ma.StringCast(fmt.Sprintf("/ip4/10.9.0.%d/tcp/4777", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = &simHost{BasicHost: h.(*bhost.BasicHost), net: n, streams: make(map[*simStream]struct{})}
	}
	l, err := mn.LinkPeers(hosts[0].ID(), hosts[1].ID())
	if err != nil {
		t.Fatal(err)
	}
	l.SetOptions(mocknet.LinkOptions{Latency: time.Millisecond})
	if err := hosts[0].BasicHost.Connect(context.Background(), hosts[1].Peerstore().PeerInfo(hosts[1].ID())); err != nil {
		t.Fatal(err)
	}
	return hosts[0], hosts[1], func() {
		_ = mn.Close()
		time.Sleep(time.Minute)
	}
}
