package peer

import (
	"context"
	"encoding/binary"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	"github.com/exopeer/exopeer/gossip"
)

// TestResourceLimitsPerProtocol checks the limits the resource manager is
// built with: each exopeer protocol is limited per peer and in all, and a
// stream's memory is bounded.
func TestResourceLimitsPerProtocol(t *testing.T) {
	c := datadir.ResourceConfig{MemoryMiB: 256, ProtocolPeerStreams: 5, ProtocolStreams: 70, ProtocolMemoryMiB: 32}
	l := limits(c, 1024).ToPartialLimitConfig()
	for _, p := range ExopeerProtocols {
		want := 5
		if p == cell.ProtocolJoin {
			want = joinPeerStreams
		}
		if got := l.ProtocolPeer[p].StreamsInbound; int(got) != want {
			t.Errorf("%s: %v inbound streams per peer, want %d", p, got, want)
		}
		if got := l.Protocol[p].StreamsInbound; got != 70 {
			t.Errorf("%s: %v inbound streams in all, want 70", p, got)
		}
		if got := l.Protocol[p].Memory; got != 32<<20 {
			t.Errorf("%s: memory %v, want 32 MiB", p, got)
		}
	}
	if got := l.Stream.Memory; got != 4<<20 {
		t.Errorf("stream memory %v, want 4 MiB", got)
	}
	if got := l.PeerDefault.StreamsInbound; got != 128 {
		t.Errorf("inbound streams per peer %v, want the default 128", got)
	}
}

// TestLengthPrefixFlood: 50 peers that are no members of the cell open
// 1,000 streams to a member on exopeer's protocols and send on each only a
// length prefix announcing the largest message. The member's heap stays
// within 64 MiB of what it was, and the cell goes on: an entry appended by
// the other member still replicates. (Real hosts on loopback, not mocknet:
// the resource manager and yamux's buffers are part of what is measured.)
func TestLengthPrefixFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("50 hosts on loopback")
	}
	ctx := t.Context()
	aopts := loopbackOptions(t, 21)
	aopts.Cell = fastCell
	a := startNode(t, aopts)
	bopts := loopbackOptions(t, 22, addrInfo(a))
	bopts.Cell = fastCell
	b := startNode(t, bopts)
	if _, err := a.Cell().Create(ctx, "home", "a"); err != nil {
		t.Fatal(err)
	}
	code, _, err := a.Cell().Invite(cell.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := b.Cell().Join(jctx, code.String(), "b"); err != nil {
		t.Fatalf("Join: %v", err)
	}

	// The attackers: plain libp2p hosts on loopback, connected first so
	// that their own set-up is not counted.
	const peers, perPeer = 50, 20
	var attackers []host.Host
	for i := range peers {
		priv, err := crypto.UnmarshalEd25519PrivateKey(testKey(byte(100 + i)))
		if err != nil {
			t.Fatal(err)
		}
		h, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Connect(ctx, addrInfo(a)); err != nil {
			t.Fatal(err)
		}
		attackers = append(attackers, h)
	}
	// What each protocol is sent: the length prefix of its largest
	// message, or for gossip a header and a packet length.
	uv := func(n int) []byte { return binary.AppendUvarint(nil, uint64(n)) }
	floods := []struct {
		proto  protocol.ID
		prefix []byte
	}{
		{cell.ProtocolJoin, uv(cell.MaxRosterLen)},
		{cell.ProtocolRoster, uv(cell.MaxRosterLen)},
		{replica.ProtocolSync, uv(chain.MaxRequest)},
		{gossip.ProtocolPacket, binary.BigEndian.AppendUint32(append([]byte{0xE1}, make([]byte, 8)...), gossip.MaxPacketSize)},
		{gossip.ProtocolStream, []byte{0xE1, 0, 0, 0}},
		{discovery.ProtocolPing, []byte{1, 2, 3}},
		{dht.ProtocolID, uv(network.MessageSizeMax)},
		{blocks.ProtocolID, uv(network.MessageSizeMax)},
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	start := heap()

	var (
		mu      sync.Mutex
		opened  = map[protocol.ID]int{}
		refused = map[protocol.ID]int{}
		streams []network.Stream
		wg      sync.WaitGroup
	)
	for i, h := range attackers {
		wg.Go(func() {
			for j := range perPeer {
				f := floods[(i+j)%len(floods)]
				s, err := h.NewStream(ctx, a.ID(), f.proto)
				if err == nil {
					_, err = s.Write(f.prefix)
				}
				mu.Lock()
				if err != nil {
					refused[f.proto]++
				} else {
					opened[f.proto]++
					streams = append(streams, s)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range streams {
			s.Reset()
		}
	})
	// Let the member's handlers read what arrived, then take the largest
	// heap of a few looks.
	peak := uint64(0)
	for range 5 {
		time.Sleep(300 * time.Millisecond)
		peak = max(peak, heap())
	}
	grown := int64(peak) - int64(start)
	t.Logf("heap %d MiB before, %d MiB with the streams open (grown %d MiB); opened %v, refused %v",
		start>>20, peak>>20, grown>>20, opened, refused)
	if grown > 64<<20 {
		t.Errorf("heap grew by %d MiB under %d length prefixes, more than 64 MiB", grown>>20, peers*perPeer)
	}
	if total := len(streams) + sum(refused); total != peers*perPeer {
		t.Errorf("%d streams tried, want %d", total, peers*perPeer)
	}

	// The cell still works: b appends, a gets the entry.
	if _, err := b.Chain().Append(ctx, []byte("after the flood")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	eventually(t, 30*time.Second, "the entry replicating to a", func() bool {
		st, err := a.Chain().Status(ctx)
		return err == nil && st.Length == 1
	})
}

func sum(m map[protocol.ID]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestProtocolPeerStreamLimit: one peer opens 40 roster streams and sends
// a length prefix on each; the node keeps 16 (the default
// protocol_peer_streams) and resets the other 24.
func TestProtocolPeerStreamLimit(t *testing.T) {
	ctx := t.Context()
	a := startNode(t, loopbackOptions(t, 23))
	priv, err := crypto.UnmarshalEd25519PrivateKey(testKey(99))
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Connect(ctx, addrInfo(a)); err != nil {
		t.Fatal(err)
	}
	const tries, limit = 40, 16
	var resets atomic.Int32
	var streams []network.Stream
	for range tries {
		s, err := h.NewStream(ctx, a.ID(), cell.ProtocolRoster)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(binary.AppendUvarint(nil, cell.MaxRosterLen)); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		for _, s := range streams {
			s.Reset()
		}
	}()
	for _, s := range streams {
		wg.Go(func() {
			if _, err := s.Read(make([]byte, 1)); err != nil {
				resets.Add(1)
			}
		})
	}
	eventually(t, 20*time.Second, "24 of the 40 streams reset", func() bool { return resets.Load() >= tries-limit })
	var open int
	_ = a.Host().Network().ResourceManager().ViewProtocol(cell.ProtocolRoster, func(s network.ProtocolScope) error {
		open = s.Stat().NumStreamsInbound
		return nil
	})
	if open != limit || resets.Load() != tries-limit {
		t.Errorf("%d roster streams open and %d reset, want %d and %d", open, resets.Load(), limit, tries-limit)
	}
}

// TestEveryExopeerProtocolLimited: every /exopeer protocol a started node
// handles is in ExopeerProtocols, so that the resource manager limits it
// one by one (a protocol missing there has only the system's limits).
func TestEveryExopeerProtocolLimited(t *testing.T) {
	n := startNode(t, loopbackOptions(t, 4))
	var seen int
	for _, p := range n.Host().Mux().Protocols() {
		if !strings.HasPrefix(string(p), "/exopeer/") {
			continue
		}
		seen++
		if !slices.Contains(ExopeerProtocols, p) {
			t.Errorf("%s is handled but not in ExopeerProtocols", p)
		}
	}
	if seen == 0 {
		t.Fatal("the node handles no /exopeer protocol")
	}
}
