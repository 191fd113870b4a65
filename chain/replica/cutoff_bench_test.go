package replica

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/gossip"
)

// benchCell is a Cell of a fixed roster and keys.
type benchCell struct {
	r    *cell.Roster
	keys *cell.Keys
}

func (c *benchCell) Roster() *cell.Roster           { return c.r }
func (c *benchCell) Keys() *cell.Keys               { return c.keys }
func (c *benchCell) Broadcast(string, []byte) error { return nil }
func (c *benchCell) Gossip() *gossip.Membership     { return nil }

func benchKey(b *testing.B, seed byte) (crypto.PrivKey, peer.ID) {
	seedBytes := make([]byte, ed25519.SeedSize)
	seedBytes[0] = seed
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seedBytes))
	if err != nil {
		b.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		b.Fatal(err)
	}
	return k, id
}

// BenchmarkCut measures applying a removal's cut-off on a node's stored
// chain (leveldb on disk): total entries, two authors taking turns, the
// removed one cut off so that the last past−1 entries go (the first of the
// last past is this node's, on a kept parent), about half of them its own
// and half this node's, which it writes again.
func BenchmarkCut(b *testing.B) {
	for _, tc := range []struct{ total, past int }{{10_000, 1_000}, {10_000, 10}} {
		b.Run(fmt.Sprintf("entries=%d/past=%d", tc.total, tc.past), func(b *testing.B) {
			ctx := b.Context()
			selfKey, self := benchKey(b, 1)
			goneKey, gone := benchKey(b, 2)
			now := time.Unix(1_700_000_000, 0)
			box, err := core.NewBoxKey(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			r, cellKey, keys, err := core.NewCell("bench", core.Founder{Peer: self, Name: "self", BoxKey: box.Public()}, now, rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			if r, err = r.WithMember(core.Member{Peer: gone, Name: "gone", Roles: core.RoleChain, BoxKey: box.Public()}, keys, cellKey, now, rand.Reader); err != nil {
				b.Fatal(err)
			}
			secret, _ := keys.Secret(1)
			// Write the chain once; each run copies nothing but rebuilds
			// the store from these entries.
			st := chain.NewState(r.Cell)
			var entries []*chain.Entry
			var cut cell.Cutoff
			payload := make([]byte, 100)
			for i := range tc.total {
				k, id := selfKey, self
				if i%2 == 1 {
					k, id = goneKey, gone
				}
				e, err := chain.Write(st.Next(id, r.Cell, 1), k, secret[:], payload, fixedRand{})
				if err != nil {
					b.Fatal(err)
				}
				st.Add([]*chain.Entry{e})
				entries = append(entries, e)
				if id == gone && i < tc.total-tc.past {
					cut = cell.Cutoff{Seq: e.Seq, Last: []cid.Cid{e.CID()}}
				}
			}
			removed, err := r.Without(gone, cut, keys, cellKey, now.Add(time.Hour), rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				d, err := leveldb.NewDatastore(filepath.Join(b.TempDir(), "ds"), nil)
				if err != nil {
					b.Fatal(err)
				}
				rep := &Replica{self: self, key: selfKey, blocks: blocks.NewStore(d), d: d,
					cell: &benchCell{r: removed, keys: keys}, cfg: Config{}.withDefaults(),
					log: slog.New(slog.DiscardHandler)}
				s := chain.NewState(r.Cell)
				s.Add(entries)
				if err := persist(ctx, rep.blocks, s, r, entries, false); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				dropped, again, err := rep.cut(ctx, removed)
				b.StopTimer()
				if err != nil || dropped != tc.past-1 || again != tc.past/2-1 {
					b.Fatalf("cut: %d dropped, %d written again, %v; want %d, %d", dropped, again, err, tc.past-1, tc.past/2-1)
				}
				d.Close()
				b.StartTimer()
			}
		})
	}
}

// fixedRand is a nonce source for benchmarks: all zeros (each entry has
// its own key-independent AD, and nothing here is secret).
type fixedRand struct{}

func (fixedRand) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
