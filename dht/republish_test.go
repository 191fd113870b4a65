package dht

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// bubble runs f in a synctest bubble. Under the race detector it runs on
// one P: with two, about one run in fifteen of TestRepublish crashed inside
// ThreadSanitizer (a SIGSEGV in SlotLock under timer.maybeRunChan, or
// "CHECK failed: tsan_rtl.cpp:346"), which looks like golang/go#78156
// (Go 1.26: the bubble's timers share one race context that two threads
// can use at once). With one P: no crash in 60 runs.
func bubble(t *testing.T, f func(*testing.T)) {
	if raceEnabled {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	synctest.Test(t, f)
}

// simNet is n DHT nodes on a fully linked mocknet, each bootstrapped from
// the first. It must be built and closed inside one synctest bubble.
type simNet struct {
	mn    mocknet.Mocknet
	ids   []peer.ID
	nodes []*DHT
}

func newSimNet(t *testing.T, n int, cfg Config, log *slog.Logger) *simNet {
	t.Helper()
	return newSimNetWrapped(t, n, cfg, log, nil)
}

// newSimNetWrapped is newSimNet with node i's DHT on wrap(i, its host)
// (nil wrap: on the host).
func newSimNetWrapped(t *testing.T, n int, cfg Config, log *slog.Logger, wrap func(int, host.Host) host.Host) *simNet {
	t.Helper()
	s := &simNet{mn: mocknet.New()}
	for i := range n {
		priv, id := newKey(t)
		addr := ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i+1))
		var h host.Host
		h, err := s.mn.AddPeer(priv, addr)
		if err != nil {
			t.Fatal(err)
		}
		if wrap != nil {
			h = wrap(i, h)
		}
		c := cfg
		if i > 0 {
			c.Bootstrap = []peer.AddrInfo{{ID: s.ids[0], Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/4001")}}}
		}
		d, err := New(h, priv, nil, c, log)
		if err != nil {
			t.Fatal(err)
		}
		s.ids, s.nodes = append(s.ids, id), append(s.nodes, d)
	}
	if err := s.mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	for _, d := range s.nodes {
		if err := d.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// waitTables sleeps in virtual time until every routing table has min peers.
func (s *simNet) waitTables(t *testing.T, min int) {
	t.Helper()
	for range 120 {
		ok := true
		for _, d := range s.nodes {
			ok = ok && d.RoutingTableSize() >= min
		}
		if ok {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatal("routing tables did not fill in 2 virtual minutes")
}

// close stops every node and the network, then lets stragglers' timers
// fire so that no goroutine is left blocked in the bubble.
func (s *simNet) close(t *testing.T) {
	for _, d := range s.nodes {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	}
	s.mn.Close()
	time.Sleep(time.Minute)
}

func TestRepublish(t *testing.T) {
	bubble(t, func(t *testing.T) {
		cfg := Config{
			Mode:              ModeServer,
			RecordTTL:         10 * time.Minute,
			RepublishInterval: 3 * time.Minute,
			OpTimeout:         30 * time.Second,
		}
		logs := &countHandler{n: map[string]int{}}
		s := newSimNet(t, 6, cfg, slog.New(logs))
		defer s.close(t)
		s.waitTables(t, 2)

		owner, reader := s.nodes[1], s.nodes[4]
		key := RecordKey(s.ids[1], "prekeys")
		stored := func() *envelope { // the best version the network holds
			t.Helper()
			b, err := reader.Routing().GetValue(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			e, err := openEnvelope(key, b, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return e
		}

		start := time.Now()
		if err := owner.PutRecord(t.Context(), "prekeys", []byte("bundle")); err != nil {
			t.Fatal(err)
		}
		first := stored()
		if got, want := time.Unix(0, first.Expiry), start.Add(cfg.RecordTTL); got.Before(want) {
			t.Fatalf("expiry %v, want at least %v", got, want)
		}

		time.Sleep(cfg.RepublishInterval + time.Minute)
		second := stored()
		if second.Seq != first.Seq || second.Expiry <= first.Expiry {
			t.Fatalf("after one interval: seq %d expiry %d, want seq %d and an expiry after %d",
				second.Seq, second.Expiry, first.Seq, first.Expiry)
		}

		// Past the first version's expiry the record is still there.
		time.Sleep(cfg.RecordTTL)
		if time.Now().UnixNano() <= first.Expiry {
			t.Fatal("test did not outlive the first expiry")
		}
		got, err := s.nodes[5].GetRecord(t.Context(), s.ids[1], "prekeys")
		if err != nil || string(got) != "bundle" {
			t.Fatalf("GetRecord after the first expiry = %q, %v", got, err)
		}

		// Provider records are re-announced every interval, and stay
		// findable.
		rv := rendezvous(t, "invite-code|epoch-1")
		if err := s.nodes[2].Provide(t.Context(), rv); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2*cfg.RepublishInterval + 30*time.Second)
		var found []peer.ID
		for ai := range s.nodes[3].FindProviders(t.Context(), rv, 1) {
			found = append(found, ai.ID)
		}
		if len(found) != 1 || found[0] != s.ids[2] {
			t.Fatalf("FindProviders = %v, want [%s]", found, s.ids[2])
		}
		if n := logs.count("key reprovided"); n != 2 {
			t.Fatalf("reprovided %d times in two intervals, want 2", n)
		}
		s.nodes[2].Unprovide(rv)
		time.Sleep(2 * cfg.RepublishInterval)
		if n := logs.count("key reprovided"); n != 2 {
			t.Fatalf("reprovided %d times in total, want 2: Unprovide did not stop it", n)
		}
	})
}

func TestModes(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []TableMode
	}{
		{"single server", Config{Mode: ModeServer}, []TableMode{{Table: "main", Protocol: ProtocolID, Mode: ModeServer}}},
		{"single auto is a client without reachability", Config{}, []TableMode{{Table: "main", Protocol: ProtocolID, Mode: ModeClient}}},
		{"dual auto", Config{LAN: true}, []TableMode{
			{Table: "wan", Protocol: ProtocolID, Mode: ModeClient},
			{Table: "lan", Protocol: LANProtocolID, Mode: ModeServer},
		}},
		{"dual server", Config{LAN: true, Mode: ModeServer}, []TableMode{
			{Table: "wan", Protocol: ProtocolID, Mode: ModeServer},
			{Table: "lan", Protocol: LANProtocolID, Mode: ModeServer},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				s := newSimNet(t, 1, tt.cfg, nil)
				defer s.close(t)
				got := s.nodes[0].Mode()
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("Mode() = %+v, want %+v", got, tt.want)
				}
			})
		})
	}
}

// countHandler is a slog.Handler that counts messages.
type countHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countHandler) WithGroup(string) slog.Handler            { return h }

func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Message]++
	return nil
}

func (h *countHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[msg]
}
