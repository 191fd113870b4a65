package gossip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// transportRig is a transport on host 0 of a mocknet, and raw hosts 1
// (allowed) and 2 (not allowed) that talk to it by hand. Build it inside a
// bubble; it closes itself at cleanup.
type transportRig struct {
	tr                 *transport
	stats              *counters
	h                  []host.Host
	allowed, forbidden peer.ID
}

func newTransportRig(t *testing.T, seed uint64, timing Timing) *transportRig {
	t.Helper()
	mn := mocknet.New()
	var hs []host.Host
	for i := range 3 {
		h, err := mn.AddPeer(testKey(seed, i), ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	r := newRoster(hs[0].ID(), hs[1].ID())
	stats := new(counters)
	tr := newTransport(hs[0], testTag(seed), r.allow, timing.withDefaults(), slog.New(slog.DiscardHandler), stats)
	tr.start()
	t.Cleanup(func() {
		tr.Shutdown()
		mn.Close()
		time.Sleep(time.Minute)
	})
	return &transportRig{tr: tr, stats: stats, h: hs, allowed: hs[1].ID(), forbidden: hs[2].ID()}
}

// send opens a raw stream from host i to the transport and writes b.
func (r *transportRig) send(t *testing.T, i int, proto protocol.ID, b []byte) network.Stream {
	t.Helper()
	s, err := r.h[i].NewStream(t.Context(), r.h[0].ID(), proto)
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	if _, err := s.Write(b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return s
}

// readErr reads s until an error, as a remote sees a reset or a close.
func readErr(s network.Stream) error {
	_, err := io.Copy(io.Discard, s)
	if err == nil {
		return io.EOF
	}
	return err
}

func TestTransportInbound(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 31)
		r := newTransportRig(t, seed, Timing{})
		tag := testTag(seed)
		lenOnly := binary.BigEndian.AppendUint32(appendHeader(nil, tag), MaxPacketSize+1)
		for _, tt := range []struct {
			name     string
			from     int
			proto    protocol.ID
			b        []byte
			rejected bool
		}{
			{"packet from an allowed peer", 1, ProtocolPacket, appendPacket(nil, tag, []byte("ping")), false},
			{"packet from a peer not allowed", 2, ProtocolPacket, appendPacket(nil, tag, []byte("ping")), true},
			{"packet of another cell", 1, ProtocolPacket, appendPacket(nil, testTag(seed+1), []byte("ping")), true},
			{"packet of another version", 1, ProtocolPacket, append([]byte{0x01}, appendPacket(nil, tag, []byte("ping"))[1:]...), true},
			{"packet too large", 1, ProtocolPacket, lenOnly, true},
			{"stream from a peer not allowed", 2, ProtocolStream, appendHeader(nil, tag), true},
			{"stream of another cell", 1, ProtocolStream, appendHeader(nil, testTag(seed+1)), true},
		} {
			before := r.stats.rejectedInbound.Load()
			s := r.send(t, tt.from, tt.proto, tt.b)
			s.CloseWrite()
			err := readErr(s)
			gotRejected := r.stats.rejectedInbound.Load() > before
			if gotRejected != tt.rejected {
				t.Errorf("%s: rejected = %v, want %v", tt.name, gotRejected, tt.rejected)
			}
			if tt.rejected && !errors.Is(err, network.ErrReset) {
				t.Errorf("%s: remote read %v, want a reset", tt.name, err)
			}
			s.Close()
		}
		// The one good packet arrived, from host 1's fake address. The
		// receiver closes the stream before it hands the packet on, so
		// the sender can see the close first: wait for it.
		select {
		case p := <-r.tr.PacketCh():
			if string(p.Buf) != "ping" || p.From.String() != netip.AddrPortFrom(FakeIP(r.allowed), FakePort).String() {
				t.Errorf("packet %q from %v", p.Buf, p.From)
			}
		case <-time.After(10 * time.Second):
			t.Error("the good packet did not arrive")
		}
		if _, ok := r.tr.lastHeard(r.allowed); !ok {
			t.Error("no LastHeard for the allowed peer")
		}
		if _, ok := r.tr.lastHeard(r.forbidden); ok {
			t.Error("LastHeard recorded for a peer not allowed")
		}
	})
}

// TestTransportHeaderTimeout: a peer that opens a stream and sends nothing
// is reset after StreamTimeout, although mocknet ignores deadlines.
func TestTransportHeaderTimeout(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 32)
		r := newTransportRig(t, seed, Timing{StreamTimeout: 3 * time.Second})
		start := time.Now()
		s := r.send(t, 1, ProtocolStream, []byte{headerVersion})
		err := readErr(s)
		if waited := time.Since(start); !errors.Is(err, network.ErrReset) || waited < 3*time.Second || waited > 4*time.Second {
			t.Errorf("silent stream: read %v after %v, want a reset after 3 s", err, waited)
		}
	})
}

func TestTransportOutbound(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 33)
		r := newTransportRig(t, seed, Timing{MaxPacketsInFlight: 1})
		got := make(chan []byte, 1)
		r.h[1].SetStreamHandler(ProtocolPacket, func(s network.Stream) {
			p, err := readPacket(s, testTag(seed))
			if err == nil {
				got <- p
			}
			s.Close()
		})
		to := func(id peer.ID) memberlist.Address { return memberlist.Address{Name: id.String()} }
		if _, err := r.tr.WriteToAddress([]byte("hi"), to(r.allowed)); err != nil {
			t.Fatalf("WriteToAddress: %v", err)
		}
		if p := recv(t, got); string(p) != "hi" {
			t.Errorf("received %q", p)
		}
		// Not allowed: silently dropped, counted.
		if _, err := r.tr.WriteToAddress([]byte("hi"), to(r.forbidden)); err != nil {
			t.Errorf("WriteToAddress to a peer not allowed: %v, want a silent drop", err)
		}
		if _, err := r.tr.DialAddressTimeout(to(r.forbidden), time.Second); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("DialAddressTimeout to a peer not allowed: %v, want ErrNotAllowed", err)
		}
		if n := r.stats.refusedOutbound.Load(); n != 2 {
			t.Errorf("%d refused sends counted, want 2", n)
		}
		// The one slot in flight is taken: the next packet is dropped.
		r.tr.sem <- struct{}{}
		if _, err := r.tr.WriteToAddress([]byte("hi"), to(r.allowed)); err != nil {
			t.Errorf("WriteToAddress beyond the limit: %v, want a silent drop", err)
		}
		<-r.tr.sem
		if n := r.stats.packetsDropped.Load(); n != 1 {
			t.Errorf("%d dropped packets counted, want 1", n)
		}
		// By fake address, once the peer is known; too large; unknown.
		addr := netip.AddrPortFrom(FakeIP(r.allowed), FakePort).String()
		if _, err := r.tr.WriteTo([]byte("x"), addr); err == nil || !strings.Contains(err.Error(), "no peer") {
			t.Errorf("WriteTo an address never learnt: %v", err)
		}
		r.tr.learn(r.allowed) // as NotifyAlive does
		if _, err := r.tr.WriteTo([]byte("again"), addr); err != nil {
			t.Errorf("WriteTo(%s): %v", addr, err)
		}
		if p := recv(t, got); string(p) != "again" {
			t.Errorf("received %q", p)
		}
		if _, err := r.tr.WriteTo(make([]byte, MaxPacketSize+1), addr); !errors.Is(err, ErrPacketTooLarge) {
			t.Errorf("WriteTo of a huge packet: %v, want ErrPacketTooLarge", err)
		}
		// After Shutdown nothing goes out.
		r.tr.Shutdown()
		if _, err := r.tr.WriteToAddress([]byte("late"), to(r.allowed)); err == nil {
			t.Error("WriteToAddress after Shutdown succeeded")
		}
	})
}

// recv waits a virtual minute at most for a packet.
func recv(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(time.Minute):
		t.Fatal("no packet received")
		return nil
	}
}

func TestJoinAddress(t *testing.T) {
	id := mustID(t, testKey(1, 0))
	a := JoinAddress(id)
	name, hostPort, ok := strings.Cut(a, "/")
	if !ok || name != id.String() {
		t.Fatalf("JoinAddress = %q", a)
	}
	ap, err := netip.ParseAddrPort(hostPort)
	if err != nil || ap.Addr() != FakeIP(id) || ap.Port() != FakePort || !ap.Addr().Is6() || ap.Addr().As16()[0] != 0xfd {
		t.Errorf("JoinAddress = %q: address %v, %v", a, ap, err)
	}
	if FakeIP(id) == FakeIP(mustID(t, testKey(1, 1))) {
		t.Error("two peers share a fake address")
	}
	if !bytes.Equal(FakeIP(id).AsSlice(), FakeIP(id).AsSlice()) {
		t.Error("FakeIP is not stable")
	}
}

// TestTransportStreamCap: memberlist reads at most MaxStreamSize bytes of
// an incoming stream; then the stream is reset.
func TestTransportStreamCap(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 33)
		r := newTransportRig(t, seed, Timing{})
		s := r.send(t, 1, ProtocolStream, appendHeader(nil, testTag(seed)))
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(make([]byte, MaxStreamSize+1))
			s.CloseWrite()
			done <- err
		}()
		c := <-r.tr.StreamCh()
		n, err := io.Copy(io.Discard, c)
		if !errors.Is(err, ErrStreamTooLarge) || n != MaxStreamSize {
			t.Errorf("read %d bytes, %v; want %d, ErrStreamTooLarge", n, err, MaxStreamSize)
		}
		<-done
		if err := readErr(s); !errors.Is(err, network.ErrReset) {
			t.Errorf("remote read %v, want a reset", err)
		}
		s.Close()
	})
}
