package blocks_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/exopeer/exopeer/blocks"
	"github.com/ipfs/go-cid"
	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

func ExampleStore() {
	d, err := leveldb.NewDatastore("", nil) // "" keeps the database in memory
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	ctx := context.Background()
	s := blocks.NewStore(d)
	b := blocks.NewBlock([]byte("hello"))
	if err := s.Put(ctx, b); err != nil {
		log.Fatal(err)
	}
	got, err := s.Get(ctx, b.Cid())
	if err != nil {
		log.Fatal(err)
	}
	n, err := s.Count(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Cid(), string(got.RawData()), n)
	// Output: bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq hello 1
}

// peerNode is a loopback host with a started exchange on an in-memory store.
func peerNode() (host.Host, *blocks.Exchange, func()) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		log.Fatal(err)
	}
	d, err := leveldb.NewDatastore("", nil)
	if err != nil {
		log.Fatal(err)
	}
	ex, err := blocks.NewExchange(h, blocks.NewStore(d), blocks.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	// Start before connecting: bitswap learns peers from connection events.
	if err := ex.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	return h, ex, func() { ex.Close(); d.Close(); h.Close() }
}

func ExampleExchange() {
	hostA, exA, closeA := peerNode()
	defer closeA()
	hostB, exB, closeB := peerNode()
	defer closeB()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hostB.Connect(ctx, peer.AddrInfo{ID: hostA.ID(), Addrs: hostA.Addrs()}); err != nil {
		log.Fatal(err)
	}

	b := blocks.NewBlock([]byte("only A has this"))
	if err := exA.Put(ctx, b); err != nil {
		log.Fatal(err)
	}
	// A serves a block only to the peers its gate lets read it. Here B
	// may read b; any other peer asking A for b gets no answer at all.
	exA.Gate().Register(blocks.OwnerFunc(func(p peer.ID, c cid.Cid) bool {
		return p == hostB.ID() && c == b.Cid()
	}))
	// B sends its wants only to the peers its gate lets it ask: here A.
	exB.Gate().RegisterAsker(blocks.AskerFunc(func(p peer.ID, c cid.Cid) bool {
		return p == hostA.ID() && c == b.Cid()
	}))
	got, err := exB.Get(ctx, b.Cid()) // fetched from A, verified, stored in B
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(got.RawData()))
	// Output: only A has this
}
