// Package nodetest runs real exopeer nodes on loopback for the tests of the
// packages above peer (the control API's server and client): no mDNS (the
// network rule for nodes a test starts on the host), one DHT table in
// server mode, free ports, on-disk leveldb in temporary dirs, and every
// node, server and dir closed by t.Cleanup.
package nodetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/api/server"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/discovery"
	"github.com/exopeer/exopeer/gossip"
	p "github.com/exopeer/exopeer/peer"
)

// FastCell probes every 200 ms, so that a test is quick and memberlist's
// last probe is over before the leak check.
var FastCell = cell.Config{Gossip: gossip.Timing{ProbeInterval: 200 * time.Millisecond}, MaintainInterval: 200 * time.Millisecond}

// Key returns the Ed25519 key of a seed byte: the same node each run.
func Key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// Options returns the Options of a node on loopback with the key of seed,
// dialling bootstrap, on a leveldb of its own.
func Options(t testing.TB, seed byte, bootstrap ...peer.AddrInfo) p.Options {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(Key(seed))
	if err != nil {
		t.Fatal(err)
	}
	store, err := leveldb.NewDatastore(filepath.Join(t.TempDir(), "ds"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	off := false
	dcfg := dht.DefaultConfig()
	dcfg.LAN, dcfg.Mode, dcfg.Bootstrap = false, dht.ModeServer, bootstrap
	disc := discovery.DefaultConfig()
	disc.Bootstrap = bootstrap
	disc.PingInterval = 200 * time.Millisecond
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return p.Options{
		Key:       priv,
		Datastore: store,
		Network:   p.RealNetwork(datadir.NetworkConfig{Port: -1, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, log),
		DHT:       dcfg,
		Discovery: disc,
		Logger:    log,
	}
}

// Start starts a node; t.Cleanup closes it.
func Start(t testing.TB, opts p.Options) *p.Node {
	t.Helper()
	n, err := p.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// Serve opens a data dir and runs a loopback node (seed 9, FastCell) with
// its control API on it, as `exopeer run` does; tweaks change the node's
// options. t.Cleanup closes the API, checks that it removed its address
// file, and closes the node and the dir.
func Serve(t testing.TB, tweak ...func(*p.Options)) (dir string, n *p.Node, api *server.Server) {
	t.Helper()
	dir = t.TempDir()
	d, err := datadir.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	opts := Options(t, 9)
	opts.Datastore, opts.Cell = d.Datastore, FastCell
	// As NodeOptions sets them: the index, the blob blocks in the data
	// dir's flatfs, uploads spooled in the data dir.
	opts.Store.Dir = filepath.Join(dir, p.StoreDir)
	opts.Blobs = d.Blobs
	opts.Files.Spool = filepath.Join(dir, p.SpoolDir)
	for _, f := range tweak {
		f(&opts)
	}
	n = Start(t, opts)
	api = server.New(n, d.Token, nil)
	if err := api.Start("127.0.0.1:0", filepath.Join(dir, datadir.APIFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := api.Close(ctx); err != nil {
			t.Errorf("api Close: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, datadir.APIFile)); !os.IsNotExist(err) {
			t.Errorf("api file left behind: %v", err)
		}
	})
	return dir, n, api
}

// AddrInfo returns the node's ID and addresses.
func AddrInfo(n *p.Node) peer.AddrInfo {
	return peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}
}

// P2pAddr returns the node's first full address, ending in /p2p/<ID>.
func P2pAddr(t testing.TB, n *p.Node) ma.Multiaddr {
	t.Helper()
	ai := AddrInfo(n)
	addrs, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil || len(addrs) == 0 {
		t.Fatalf("no address for %s: %v", ai.ID, err)
	}
	return addrs[0]
}

// Eventually polls cond every 20 ms until it holds, and fails the test if
// it does not within d (a bound on a real network's convergence, never a
// measure of speed).
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	const poll = 20 * time.Millisecond
	for waited := time.Duration(0); !cond(); waited += poll {
		if waited > d {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(poll)
	}
}

// CellNode starts a loopback node (seed, FastCell) with the store role on
// a dir of its own, tweaks applied to its options, and makes it create a
// cell ("test", member "n").
func CellNode(t testing.TB, seed byte, tweak ...func(*p.Options)) *p.Node {
	t.Helper()
	opts := Options(t, seed)
	opts.Cell = FastCell
	opts.Store.Dir = t.TempDir()
	for _, f := range tweak {
		f(&opts)
	}
	n := Start(t, opts)
	if _, err := n.Cell().Create(t.Context(), "test", "n"); err != nil {
		t.Fatal(err)
	}
	return n
}

// Join starts a loopback node (seed, FastCell, bootstrapping from admin)
// with a store dir of its own, tweaks applied, and joins it to admin's
// cell with roles (without cell.RoleStore it keeps no index and reads
// through a store member).
func Join(t testing.TB, admin *p.Node, seed byte, roles cell.Role, tweak ...func(*p.Options)) *p.Node {
	t.Helper()
	inv, _, err := admin.Cell().Invite(cell.InviteOptions{Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options(t, seed, AddrInfo(admin))
	opts.Cell, opts.Store.Dir = FastCell, t.TempDir()
	for _, f := range tweak {
		f(&opts)
	}
	n := Start(t, opts)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := n.Cell().Join(ctx, inv.String(), fmt.Sprintf("n%d", seed)); err != nil {
		t.Fatal(err)
	}
	return n
}
