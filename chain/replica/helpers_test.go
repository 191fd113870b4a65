package replica_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	"github.com/exopeer/exopeer/gossip"
	exopeer "github.com/exopeer/exopeer/peer"
)

// seededRand is a deterministic io.Reader for nonces.
type seededRand struct{ r *rand.ChaCha8 }

func (s seededRand) Read(p []byte) (int, error) { return s.r.Read(p) }

func newRand(seed uint64) seededRand {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return seededRand{rand.NewChaCha8(s)}
}

// realNode starts a node on loopback (no mDNS, no public bootstrap) with an
// on-disk leveldb in dir, fast gossip, and the chain config cc. It stops at
// the end of the test.
func realNode(tb testing.TB, seed byte, dir string, cc replica.Config) *exopeer.Node {
	tb.Helper()
	return startReal(tb, seed, dir, cc).Node
}

// realNodeNoCleanup is realNode for a test that stops and restarts a node:
// close stops it (it is idempotent, and runs at the end of the test too).
func realNodeNoCleanup(tb testing.TB, seed byte, dir string) *handle {
	tb.Helper()
	return startReal(tb, seed, dir, replica.Config{})
}

type handle struct {
	*exopeer.Node
	close func()
}

func startReal(tb testing.TB, seed byte, dir string, cc replica.Config) *handle {
	tb.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	store, err := leveldb.NewDatastore(filepath.Join(dir, "ds"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	off := false
	dcfg := dht.DefaultConfig()
	dcfg.LAN, dcfg.Mode = false, dht.ModeServer
	var log *slog.Logger
	if testing.Verbose() && os.Getenv("EXOPEER_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cc.Rand == nil {
		cc.Rand = newRand(uint64(seed))
	}
	n, err := exopeer.New(exopeer.Options{
		Key:       priv,
		Datastore: store,
		Network:   exopeer.RealNetwork(datadir.NetworkConfig{Port: -1, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, log),
		DHT:       dcfg,
		Discovery: discovery.DefaultConfig(),
		Cell:      cell.Config{Name: fmt.Sprintf("node%d", seed), MaintainInterval: 200 * time.Millisecond, Gossip: gossip.Timing{ProbeInterval: 200 * time.Millisecond}},
		Chain:     cc,
		Logger:    log,
	})
	if err != nil {
		store.Close()
		tb.Fatal(err)
	}
	if err := n.Start(tb.Context()); err != nil {
		store.Close()
		tb.Fatal(err)
	}
	var once sync.Once
	h := &handle{Node: n, close: func() {
		once.Do(func() {
			if err := n.Close(); err != nil {
				tb.Errorf("close: %v", err)
			}
			store.Close()
		})
	}}
	tb.Cleanup(h.close)
	return h
}

// makeCell makes a cell of nodes: the first creates it, the others join
// with an invite, connected directly.
func makeCell(tb testing.TB, nodes ...*exopeer.Node) {
	tb.Helper()
	ctx := tb.Context()
	if _, err := nodes[0].Cell().Create(ctx, "test", ""); err != nil {
		tb.Fatal(err)
	}
	for _, n := range nodes[1:] {
		code, _, err := nodes[0].Cell().Invite(cell.InviteOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		if err := n.Host().Connect(ctx, peer.AddrInfo{ID: nodes[0].ID(), Addrs: nodes[0].Host().Addrs()}); err != nil {
			tb.Fatal(err)
		}
		if _, err := n.Cell().Join(ctx, code.String(), ""); err != nil {
			tb.Fatal(err)
		}
	}
}

func eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
