package blocks_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blocks"
)

var (
	fetchSize  = flag.Int64("fetch.size", 1024, "MiB of blob fetched by BenchmarkFetchLoopback")
	fetchStore = flag.String("fetch.store", "map", "BenchmarkFetchLoopback's datastores: map (go-datastore's, in memory), leveldb (in memory) or leveldb-disk")
)

// BenchmarkFetchLoopback fetches a blob (encrypted, 1 MiB leaves) between
// two libp2p hosts on 127.0.0.1 in this process, each with its exchange on
// a datastore of its own (-fetch.store: go-datastore's map by default, to
// measure the exchange and the network; go-ds-leveldb, in memory or on
// disk, spends most of the CPU compacting 1 MiB values): the fetcher walks the DAG over a Session, as the
// blob service does. "exopeer" is that; "boxo" is the anchor, plain boxo
// bitswap (its defaults, a session's GetBlocks of the same blocks, stored
// with PutMany as boxo's blockservice does). Both report MiB/s and the CPU
// both ends spent (getrusage: user + system) per GiB fetched.
//
//	go test ./blocks -run '^$' -bench FetchLoopback -benchtime 1x -cpu 2 [-fetch.size 1024]
func BenchmarkFetchLoopback(b *testing.B) {
	for _, transport := range []string{"tcp", "quic-v1"} {
		b.Run("exopeer/"+transport, func(b *testing.B) { benchExopeer(b, transport) })
		b.Run("boxo/"+transport, func(b *testing.B) { benchBoxo(b, transport) })
	}
}

// loopHost is a libp2p host on loopback TCP and QUIC, closed at the end.
func loopHost(b *testing.B) host.Host {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

func benchStore(b *testing.B) ds.Batching {
	path := ""
	switch *fetchStore {
	case "map":
		return dssync.MutexWrap(ds.NewMapDatastore())
	case "leveldb":
	case "leveldb-disk":
		path = b.TempDir()
	default:
		b.Fatalf("-fetch.store %q: want map, leveldb or leveldb-disk", *fetchStore)
	}
	d, err := leveldb.NewDatastore(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

func dial(b *testing.B, from, to host.Host, transport string) {
	info := peer.AddrInfo{ID: to.ID()}
	for _, a := range to.Addrs() {
		for _, p := range a.Protocols() {
			if p.Name == transport {
				info.Addrs = append(info.Addrs, a)
			}
		}
	}
	if err := from.Connect(b.Context(), info); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stallLimit is how long a benchmark's fetch may go without a block
// arriving before it fails: a fetch that stops (a want that never leaves,
// a lost message) fails with a message instead of hanging until go test's
// timeout.
const stallLimit = 60 * time.Second

// errStalled is the cause of a stall guard's context.
var errStalled = errors.New("no block arrived for " + stallLimit.String())

// stallGuard returns a context that ends with errStalled once stallLimit
// passes without a call of progress, and ends with the benchmark.
func stallGuard(b *testing.B, what string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(b.Context())
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if time.Since(time.Unix(0, last.Load())) > stallLimit {
					cancel(fmt.Errorf("%s fetch: %w", what, errStalled))
					return
				}
			}
		}
	}()
	b.Cleanup(func() {
		close(done)
		<-stopped
		cancel(nil)
	})
	return ctx, func() { last.Store(time.Now().UnixNano()) }
}

// stalled returns err, with the stall guard's cause if ctx ended by it.
func stalled(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}

func report(b *testing.B, bytes int64, wall, cpu time.Duration) {
	gib := float64(bytes) / (1 << 30)
	b.ReportMetric(float64(bytes)/(1<<20)/wall.Seconds(), "MiB/s")
	b.ReportMetric(cpu.Seconds()/gib, "CPU-s/GiB")
	b.ReportMetric(0, "ns/op")
}

// bsPutter imports into a blockstore.
type bsPutter struct{ bs blockstore.Blockstore }

func (p bsPutter) PutMany(ctx context.Context, bs []blockformat.Block) error {
	return p.bs.PutMany(ctx, bs)
}

// seedBlob imports the benchmark's blob into dst and returns it.
func seedBlob(b *testing.B, dst blob.BlockPutter) blob.Imported {
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), *fetchSize<<20)
	imp, err := blob.Import(b.Context(), src, dst, blob.ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return imp
}

func benchExopeer(b *testing.B, transport string) {
	for range b.N {
		b.StopTimer()
		seeder, fetcher := loopHost(b), loopHost(b)
		ss, fs := blocks.NewStore(benchStore(b)), blocks.NewStore(benchStore(b))
		se, err := blocks.NewExchange(seeder, ss, blocks.Config{})
		if err != nil {
			b.Fatal(err)
		}
		fe, err := blocks.NewExchange(fetcher, fs, blocks.Config{})
		if err != nil {
			b.Fatal(err)
		}
		// The seeder serves anyone, and the fetcher asks anyone: with no
		// asker on the fetcher its wants never leave (the Gate asks nobody).
		se.Gate().Register(blocks.OwnerFunc(func(peer.ID, cid.Cid) bool { return true }))
		fe.Gate().RegisterAsker(blocks.AskerFunc(func(peer.ID, cid.Cid) bool { return true }))
		for _, e := range []*blocks.Exchange{se, fe} {
			if err := e.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { e.Close() })
		}
		imp := seedBlob(b, se)
		dial(b, fetcher, seeder, transport)
		b.StartTimer()

		cpu0, t0 := cpuTime(b), time.Now()
		ctx, progress := stallGuard(b, "exopeer")
		sess := fe.NewSession(ctx, blocks.SessionOptions{OnBlock: func(peer.ID, cid.Cid, int) { progress() }})
		if err := blob.Walk(ctx, sess, imp.Cap.Root, func(blockformat.Block) error { return nil }); err != nil {
			b.Fatal(stalled(ctx, err))
		}
		sess.Close()
		wall, cpu := time.Since(t0), cpuTime(b)-cpu0
		if st := sess.Stats(); st.Bytes != imp.Bytes {
			b.Fatalf("fetched %d bytes, the blob has %d", st.Bytes, imp.Bytes)
		}
		report(b, imp.Bytes, wall, cpu)
	}
}

func benchBoxo(b *testing.B, transport string) {
	for range b.N {
		b.StopTimer()
		seeder, fetcher := loopHost(b), loopHost(b)
		sbs := blockstore.NewBlockstore(benchStore(b))
		fbs := blockstore.NewBlockstore(benchStore(b))
		sb := bitswap.New(b.Context(), bsnet.NewFromIpfsHost(seeder), nil, sbs)
		fb := bitswap.New(b.Context(), bsnet.NewFromIpfsHost(fetcher), nil, fbs)
		b.Cleanup(func() { sb.Close(); fb.Close() })
		imp := seedBlob(b, bsPutter{sbs})
		dial(b, fetcher, seeder, transport)
		b.StartTimer()

		cpu0, t0 := cpuTime(b), time.Now()
		// The DAG's CIDs, level by level as Walk gives them, fetched in one
		// boxo session per level batch and stored as boxo's blockservice
		// stores them.
		ctx, progress := stallGuard(b, "boxo")
		sess := fb.NewSession(ctx)
		var bytes int64
		err := blob.Walk(ctx, boxoGetter{sess, fbs, progress}, imp.Cap.Root, func(blk blockformat.Block) error {
			bytes += int64(len(blk.RawData()))
			return nil
		})
		if err != nil {
			b.Fatal(stalled(ctx, err))
		}
		wall, cpu := time.Since(t0), cpuTime(b)-cpu0
		if bytes != imp.Bytes {
			b.Fatalf("fetched %d bytes, the blob has %d", bytes, imp.Bytes)
		}
		report(b, imp.Bytes, wall, cpu)
	}
}

// boxoGetter is a blob.BlockGetter on a plain boxo session.
type boxoGetter struct {
	sess interface {
		GetBlocks(context.Context, []cid.Cid) (<-chan blockformat.Block, error)
	}
	bs       blockstore.Blockstore
	progress func()
}

func (g boxoGetter) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	ch, err := g.sess.GetBlocks(ctx, cs)
	if err != nil {
		return nil, err
	}
	got := make(map[cid.Cid]blockformat.Block, len(cs))
	for blk := range ch {
		got[blk.Cid()] = blk
		g.progress()
		if err := g.bs.Put(ctx, blk); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]blockformat.Block, len(cs))
	for i, c := range cs {
		out[i] = got[c]
	}
	return out, nil
}
