package simnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blocks"
)

// Link shape of the blob scenario, as `exopeer-sim blob` sets it.
const (
	// BlobBandwidth is 100 Mbit/s, in bytes per second.
	BlobBandwidth = 100e6 / 8
	// BlobLatency is the one-way latency of every link (40 ms round
	// trips).
	BlobLatency = 20 * time.Millisecond
)

// BlobOptions shapes the blob scenario. Zero fields take defaults.
type BlobOptions struct {
	// Size is the blob's plaintext size in bytes. Default 256 MiB.
	Size int64
	// Seeders is how many seeders the many-seeder fetch has. Default 3.
	Seeders int
	// Deadline bounds each fetch, in virtual time. Default 30 min.
	Deadline time.Duration
}

func (o BlobOptions) withDefaults() BlobOptions {
	if o.Size <= 0 {
		o.Size = 256 << 20
	}
	if o.Seeders <= 0 {
		o.Seeders = 3
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Minute
	}
	return o
}

// BlobReport is what the blob scenario measured.
type BlobReport struct {
	Size      int64   `json:"sizeBytes"`      // plaintext
	Bytes     int64   `json:"blockBytes"`     // of all the DAG's blocks
	Blocks    int     `json:"blocks"`         // of the DAG
	Bandwidth float64 `json:"bandwidthBytes"` // of each link, per second; 0: unlimited
	// One is the fetch from one seeder, Many the fetch from Seeders.
	One  BlobFetch `json:"one"`
	Many BlobFetch `json:"many"`
	// Ratio is One's virtual time over Many's.
	Ratio float64 `json:"ratio"`
}

// BlobFetch is one fetch of the whole blob.
type BlobFetch struct {
	Seeders int `json:"seeders"`
	// VirtualS is how long it took, in virtual seconds.
	VirtualS float64 `json:"virtualS"`
	// MiBps is the DAG's bytes over that time.
	MiBps float64 `json:"mibps"`
	// OfCapacity is MiBps over the capacity of the fetcher's links to
	// its seeders (Seeders × the bandwidth); 0 if unlimited.
	OfCapacity float64 `json:"ofCapacity"`
	// PerSeeder is the share of the blocks each seeder delivered, in
	// the order of the seeders.
	PerSeeder []float64 `json:"perSeeder"`
}

// ScenarioBlob measures a blob fetch over the network's links: one blob
// of Size bytes (random from the seed, encrypted, a 1 MiB-leaf DAG) is
// imported on 1 + Seeders seeders; a fetcher connected to one seeder
// only, then another connected to the Seeders others, fetch the whole DAG
// (blob.Walk over a blocks.Session, as the blob service's fetch does).
// Each group is on its own, so that neither fetch can use the other's
// seeders. The report gives each fetch's virtual time, its throughput
// against the capacity of its links, and the ratio of the two times.
//
// mocknet's bandwidth limiter lets a link that was idle send one second's
// worth at once (see Config.Bandwidth). So that this burst does not
// flatter the measure, each fetcher first fetches, from each of its
// seeders, one second's worth of other blocks, and the measured fetch
// starts at once on links whose buckets are empty. It must run inside a
// synctest bubble.
func ScenarioBlob(ctx context.Context, n *Net, o BlobOptions) (Report, error) {
	o = o.withDefaults()
	began := time.Now()
	br := &BlobReport{Size: o.Size, Bandwidth: n.cfg.Bandwidth}
	rep := Report{Scenario: "blob", Seed: n.Seed(), Nodes: o.Seeders + 3, Blob: br}

	var seeders []*Node
	for range o.Seeders + 1 {
		s, err := n.AddNode(ctx, NodeConfig{})
		if err != nil {
			return rep, err
		}
		seeders = append(seeders, s)
	}
	key := blob.Key(seedOf(n, "blob key")) // a simulation's key, fixed by the seed
	put := &fanOut{to: seeders, cids: make(map[cid.Cid]bool)}
	data := rand.NewChaCha8(seedOf(n, "blob data"))
	imp, err := blob.Import(ctx, io.LimitReader(data, o.Size), put, blob.ImportOptions{Key: &key, Workers: 2})
	if err != nil {
		return rep, fmt.Errorf("simnet: import: %w", err)
	}
	br.Blocks, br.Bytes = imp.Blocks, imp.Bytes
	sum := sha256.Sum256([]byte(imp.Cap.String()))
	rep.Workload = fmt.Sprintf("blob %s, %d bytes, %d blocks", hex.EncodeToString(sum[:8]), imp.Size, imp.Blocks)
	for _, s := range seeders {
		serveBlocks(s, put.cids)
	}

	for i, group := range [][]*Node{seeders[:1], seeders[1:]} {
		f, err := fetchFrom(ctx, n, imp.Cap.Root, group, o.Deadline, fmt.Sprint("blob warm-up ", i))
		if err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			rep.Operations++
			continue
		}
		rep.Operations++
		rep.Succeeded++
		f.MiBps = float64(imp.Bytes) / (1 << 20) / f.VirtualS
		if n.cfg.Bandwidth > 0 {
			f.OfCapacity = f.MiBps * (1 << 20) / (float64(len(group)) * n.cfg.Bandwidth)
		}
		if i == 0 {
			br.One = f
		} else {
			br.Many = f
		}
	}
	if br.Many.VirtualS > 0 {
		br.Ratio = br.One.VirtualS / br.Many.VirtualS
	}
	if rep.Operations > 0 {
		rep.SuccessRate = float64(rep.Succeeded) / float64(rep.Operations)
	}
	rep.VirtualTime = time.Since(began).Seconds()
	return rep, nil
}

// fetchFrom adds a fetcher connected to group, drains the buckets of its
// links with a second's worth of warm-up blocks from each seeder, then
// fetches the DAG under root and times it.
func fetchFrom(ctx context.Context, n *Net, root cid.Cid, group []*Node, deadline time.Duration, purpose string) (BlobFetch, error) {
	f := BlobFetch{Seeders: len(group)}
	fetcher, err := n.AddNode(ctx, NodeConfig{Bootstrap: group})
	if err != nil {
		return f, err
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if bw := n.cfg.Bandwidth; bw > 0 {
		// Each seeder's warm-up blocks, fetched from all seeders at once
		// (one session each), so that the links end their warm-up
		// together.
		r := n.Rand(purpose)
		warm := make([][]cid.Cid, len(group))
		for i, s := range group {
			var blks []blockformat.Block
			for left := int(bw); left > 0; left -= 1 << 20 {
				data := make([]byte, min(left, 1<<20))
				for i := range data {
					data[i] = byte(r.Uint32())
				}
				blks = append(blks, blocks.NewBlock(data))
			}
			set := make(map[cid.Cid]bool, len(blks))
			for _, b := range blks {
				set[b.Cid()] = true
				warm[i] = append(warm[i], b.Cid())
			}
			if err := s.Peer().Blocks().PutMany(ctx, blks); err != nil {
				return f, err
			}
			serveBlocks(s, set)
		}
		errs := make([]error, len(group))
		var wg sync.WaitGroup
		for i := range group {
			wg.Go(func() {
				// The blocks are public: any peer may be asked for them.
				sess := fetcher.Peer().Exchange().NewSession(ctx, blocks.SessionOptions{Public: true})
				defer sess.Close()
				_, errs[i] = sess.GetBlocks(ctx, warm[i])
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return f, fmt.Errorf("simnet: warm-up fetch from %d seeders: %w", len(group), err)
		}
	}

	sess := fetcher.Peer().Exchange().NewSession(ctx, blocks.SessionOptions{Public: true})
	defer sess.Close()
	start := time.Now()
	if err := blob.Walk(ctx, sess, root, func(blockformat.Block) error { return nil }); err != nil {
		return f, fmt.Errorf("simnet: fetch from %d seeders: %w", len(group), err)
	}
	f.VirtualS = time.Since(start).Seconds()
	st := sess.Stats()
	for _, s := range group {
		f.PerSeeder = append(f.PerSeeder, float64(st.Peers[s.ID].Blocks)/float64(max(st.Blocks, 1)))
	}
	return f, nil
}

// seedOf is a ChaCha8 seed for purpose, fixed by the network's seed.
func seedOf(n *Net, purpose string) [32]byte {
	var s [32]byte
	r := n.Rand(purpose)
	for i := 0; i < len(s); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			s[i+j] = byte(v >> (8 * j))
		}
	}
	return s
}

// serveBlocks lets every peer read the blocks in set from nd (as a public
// blob's are served); set must not change afterwards.
func serveBlocks(nd *Node, set map[cid.Cid]bool) {
	nd.Peer().Exchange().Gate().Register(blocks.OwnerFunc(func(_ peer.ID, c cid.Cid) bool { return set[c] }))
}

// fanOut puts every block into each of its nodes' stores (blocks whose
// CIDs the import computed) and records their CIDs.
type fanOut struct {
	to   []*Node
	mu   sync.Mutex
	cids map[cid.Cid]bool
}

func (f *fanOut) PutMany(ctx context.Context, bs []blockformat.Block) error {
	for _, nd := range f.to {
		if err := nd.Peer().Blocks().PutMany(ctx, bs); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range bs {
		f.cids[b.Cid()] = true
	}
	return nil
}
