package dht

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"go.uber.org/goleak"
)

// rendezvous returns the CID of a rendezvous key (raw codec, sha2-256).
func rendezvous(t testing.TB, s string) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte(s), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// loopbackHost is a real libp2p host on 127.0.0.1 only: TCP, no NAT port
// mapping, no relay, no metrics.
func loopbackHost(t *testing.T) (host.Host, crypto.PrivKey) {
	t.Helper()
	priv, _ := newKey(t)
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		t.Fatal(err)
	}
	return h, priv
}

// waitFor polls cond every 50ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLoopbackNetwork(t *testing.T) {
	defer goleak.VerifyNone(t)
	const n = 6
	var (
		hosts []host.Host
		nodes []*DHT
	)
	defer func() {
		for _, d := range nodes {
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		}
		for _, h := range hosts {
			h.Close()
		}
	}()
	for i := range n {
		h, priv := loopbackHost(t)
		hosts = append(hosts, h)
		cfg := Config{Mode: ModeServer}
		if i > 0 { // as the config file would give them
			var boot []string
			for _, a := range hosts[0].Addrs() {
				boot = append(boot, a.String()+"/p2p/"+hosts[0].ID().String())
			}
			var err error
			if cfg.Bootstrap, err = ParseBootstrap(boot); err != nil {
				t.Fatal(err)
			}
		}
		d, err := New(h, priv, nil, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, d)
		if err := d.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "routing tables", func() bool {
		for _, d := range nodes {
			if d.RoutingTableSize() < 2 {
				return false
			}
		}
		return true
	})
	for _, d := range nodes {
		if m := d.Mode(); len(m) != 1 || m[0].Mode != ModeServer || m[0].Protocol != ProtocolID {
			t.Fatalf("Mode() = %+v, want one server table on %s", m, ProtocolID)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("put and get a record", func(t *testing.T) {
		if err := nodes[1].PutRecord(ctx, "prekeys", []byte("bundle v1")); err != nil {
			t.Fatal(err)
		}
		got, err := nodes[5].GetRecord(ctx, hosts[1].ID(), "prekeys")
		if err != nil || string(got) != "bundle v1" {
			t.Fatalf("GetRecord = %q, %v", got, err)
		}
		if err := nodes[1].PutRecord(ctx, "prekeys", []byte("bundle v2")); err != nil {
			t.Fatal(err)
		}
		got, err = nodes[4].GetRecord(ctx, hosts[1].ID(), "prekeys")
		if err != nil || string(got) != "bundle v2" {
			t.Fatalf("GetRecord after update = %q, %v", got, err)
		}
		_, err = nodes[3].GetRecord(ctx, hosts[2].ID(), "prekeys")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetRecord of an unpublished record: %v, want ErrNotFound", err)
		}
	})

	t.Run("providers", func(t *testing.T) {
		key := rendezvous(t, "cell-secret|epoch-42")
		for _, d := range nodes[2:4] {
			if err := d.Provide(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		found := map[peer.ID]bool{}
		for ai := range nodes[4].FindProviders(ctx, key, 0) {
			found[ai.ID] = true
		}
		if !found[hosts[2].ID()] || !found[hosts[3].ID()] || len(found) != 2 {
			t.Fatalf("FindProviders found %v, want %s and %s", found, hosts[2].ID(), hosts[3].ID())
		}
	})

	t.Run("find peer", func(t *testing.T) {
		ai, err := nodes[5].FindPeer(ctx, hosts[3].ID())
		if err != nil || len(ai.Addrs) == 0 {
			t.Fatalf("FindPeer = %v, %v", ai, err)
		}
	})
}

func TestLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	h, priv := loopbackHost(t)
	defer h.Close()
	other, _ := newKey(t)

	if _, err := New(h, other, nil, Config{}, nil); err == nil {
		t.Fatal("New accepted a key that is not the host's")
	}
	if _, err := New(h, priv, nil, Config{RepublishInterval: 48 * time.Hour}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with a bad config: %v", err)
	}
	d, err := New(h, priv, nil, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutRecord(t.Context(), "n", nil); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("PutRecord before Start: %v", err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err == nil {
		t.Fatal("second Start succeeded")
	}
	// Alone: the record is kept for the republisher, the error says why.
	if err := d.PutRecord(t.Context(), "n", []byte("v")); !errors.Is(err, ErrNoPeers) {
		t.Fatalf("PutRecord without peers: %v", err)
	}
	if err := d.PutRecord(t.Context(), "n", make([]byte, MaxValueSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PutRecord oversize: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := d.GetRecord(t.Context(), h.ID(), "n"); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetRecord after Close: %v", err)
	}
	if d.RoutingTableSize() != 0 || d.Mode() != nil || d.Routing() != nil {
		t.Fatal("a closed DHT reports a table")
	}
	for range d.FindProviders(t.Context(), rendezvous(t, "x"), 1) {
		t.Fatal("a closed DHT found a provider")
	}
}
