package dht_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/exopeer/exopeer/dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

func ExampleParseBootstrap() {
	_, err := dht.ParseBootstrap([]string{
		"/ip4/198.51.100.7/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
		"/ip4/198.51.100.8/tcp/4001",
	})
	fmt.Println(err)
	// Output: dht: bootstrap entry 1 "/ip4/198.51.100.8/tcp/4001": needs a /p2p/<peer ID> part: dht: bad bootstrap address
}

// A node publishes its prekey bundle and reads a contact's.
func Example() {
	var (
		ctx     context.Context
		h       host.Host      // the node's libp2p host
		priv    crypto.PrivKey // its Ed25519 key
		contact peer.ID
		boot    []string // from the config file
		log     *slog.Logger
	)
	cfg := dht.DefaultConfig()
	var err error
	if cfg.Bootstrap, err = dht.ParseBootstrap(boot); err != nil {
		return // names the bad entry
	}
	d, err := dht.New(h, priv, nil, cfg, log) // nil: in-memory datastore
	if err != nil {
		return
	}
	defer d.Close()
	if err := d.Start(ctx); err != nil {
		return
	}
	_ = d.PutRecord(ctx, "prekeys", []byte("my bundle")) // republished until Close
	bundle, err := d.GetRecord(ctx, contact, "prekeys")
	fmt.Println(len(bundle), err)
}
