package gossip

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the run if any goroutine outlives the tests: a closed
// Membership must stop everything it started, and memberlist's own
// goroutines must be gone once their last probe round is over (leaktest
// waits a little over a second; the real-host tests probe every 200 ms).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

var seedFlag = flag.Uint64("seed", 0, "seed of the tests' random choices (0: each test's own)")

// testSeed returns the seed of a test, def unless -seed is given, and
// prints it if the test fails.
func testSeed(t testing.TB, def uint64) uint64 {
	t.Helper()
	seed := def
	if *seedFlag != 0 {
		seed = *seedFlag
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (rerun with -seed=%d)", seed, seed)
		}
	})
	return seed
}

// newRand returns a random source for purpose, fixed by seed.
func newRand(seed uint64, purpose string) *rand.Rand {
	h := sha256.Sum256(fmt.Appendf(nil, "gossip test %d %s", seed, purpose))
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))
}

// testKey returns node i's Ed25519 key, fixed by seed.
func testKey(seed uint64, i int) crypto.PrivKey {
	h := sha256.Sum256(fmt.Appendf(nil, "gossip test key %d %d", seed, i))
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(h[:]))
	if err != nil {
		panic(err) // a 64-byte Ed25519 key always unmarshals
	}
	return k
}

// testTag and gossipKey derive a cell's tag and its gossip key of an epoch
// from seed.
func testTag(seed uint64) [8]byte {
	h := sha256.Sum256(fmt.Appendf(nil, "gossip test tag %d", seed))
	return [8]byte(h[:8])
}

func gossipKey(seed uint64, epoch int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "gossip test gossip key %d %d", seed, epoch))
	return h[:]
}

// fastTiming suits real hosts on loopback: probes every 200 ms, a
// push/pull every second.
func fastTiming() Timing {
	return Timing{
		ProbeInterval:    200 * time.Millisecond,
		ProbeTimeout:     100 * time.Millisecond,
		GossipInterval:   50 * time.Millisecond,
		GossipToTheDead:  5 * time.Second,
		PushPullInterval: time.Second,
		StreamTimeout:    2 * time.Second,
		PacketTimeout:    time.Second,
		KeyGrace:         time.Second,
		LeaveTimeout:     time.Second,
	}
}

// roster is a test's Allow set, changeable while the cell runs.
type roster struct {
	mu  sync.RWMutex
	ids map[peer.ID]bool
}

func newRoster(ids ...peer.ID) *roster {
	r := &roster{ids: make(map[peer.ID]bool)}
	for _, id := range ids {
		r.ids[id] = true
	}
	return r
}

func (r *roster) allow(id peer.ID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ids[id]
}

func (r *roster) remove(id peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ids, id)
}

// testTopic is the topic the tests broadcast on.
const testTopic = "test"

// testConfig is a Config for node key in the cell of seed, allowing r,
// with testTopic registered (its messages are dropped).
func testConfig(seed uint64, key crypto.PrivKey, r *roster, timing Timing) Config {
	topics := NewTopics()
	if err := topics.Register(testTopic, HandlerFunc(func([]byte) {}), 0); err != nil {
		panic(err)
	}
	return Config{
		Topics:    topics,
		Tag:       testTag(seed),
		Key:       key,
		Allow:     r.allow,
		AppMeta:   func() []byte { return []byte("roster v1") },
		GossipKey: gossipKey(seed, 0),
		Timing:    timing,
	}
}

// testLogger returns nil (discard), or, with GOSSIP_TEST_LOG=1 in the
// environment, a debug logger to stderr naming the node by the end of its
// peer ID.
func testLogger(id peer.ID) *slog.Logger {
	if os.Getenv("GOSSIP_TEST_LOG") != "1" {
		return nil
	}
	s := id.String()
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).
		With("self", s[max(0, len(s)-6):])
}

// newRealHost returns a libp2p host with key listening on loopback TCP
// only (no relay, no mDNS, no port mapping), closed at cleanup.
func newRealHost(t testing.TB, key crypto.PrivKey) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("closing host: %v", err)
		}
	})
	return h
}

// startMembership creates and starts a Membership on h, closed at cleanup
// (before the host, which was created earlier).
func startMembership(t testing.TB, h host.Host, cfg Config) *Membership {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(h.ID())
	}
	m, err := New(h, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := m.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return m
}

// introduce puts b's addresses into a's peerstore.
func introduce(a, b host.Host) {
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), time.Hour)
}

// stateOf returns how m sees id, and whether it has seen it at all.
func stateOf(m *Membership, id peer.ID) (State, bool) {
	for _, mb := range m.Members() {
		if mb.ID == id {
			return mb.State, true
		}
	}
	return 0, false
}

// sees reports whether m sees exactly the given nodes alive.
func sees(m *Membership, ids ...peer.ID) bool {
	alive := 0
	for _, mb := range m.Members() {
		if mb.State == StateAlive {
			alive++
		}
	}
	for _, id := range ids {
		if st, ok := stateOf(m, id); !ok || st != StateAlive {
			return false
		}
	}
	return alive == len(ids)
}

// waitUntil checks cond every step until it holds or limit has passed, in
// real or, inside a bubble, virtual time. It returns the time waited and
// whether cond held.
func waitUntil(limit, step time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) >= limit {
			return time.Since(start), false
		}
		time.Sleep(step)
	}
}

// bubble runs f in a synctest bubble. Under the race detector it runs on
// one P, as dht's tests do: with more, ThreadSanitizer crashed now and then
// inside the bubble's timers (golang/go#78156).
func bubble(t *testing.T, f func(*testing.T)) {
	t.Helper()
	if raceEnabled {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	synctest.Test(t, f)
}
