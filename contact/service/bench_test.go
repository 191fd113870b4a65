package service

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
	storeservice "github.com/exopeer/exopeer/store/service"
)

// indexStore is a store node's store without its chain: writes are
// applied to a real index at once, reads are the index's.
type indexStore struct {
	ix    *index.Index
	mu    sync.Mutex
	next  uint64
	clock uint64
}

func newIndexStore(t testing.TB) *indexStore {
	t.Helper()
	ix, err := index.Open(t.TempDir(), store.NewRegistry(), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ix.Close() })
	return &indexStore{ix: ix}
}

func (s *indexStore) apply(ctx context.Context, ops []store.Op) error {
	p, err := store.Encode(store.Transaction{Ops: ops})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock++
	a := index.Arrival{Index: s.next, CID: []byte(fmt.Sprint("cid", s.next)), Pos: store.Pos{Clock: s.clock, Key: "k"}, Payload: p}
	if _, err := s.ix.Apply(ctx, []index.Arrival{a}); err != nil {
		return err
	}
	s.next++
	return nil
}

func (s *indexStore) Put(ctx context.Context, e store.EntityID, traits []store.Trait) (storeservice.Written, error) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ops []store.Op
	for _, t := range traits {
		if t.ID == "" {
			t.ID = store.TraitID(t.Type)
		}
		t.Created, t.Modified = now, now
		ops = append(ops, store.PutTrait(e, t))
	}
	return storeservice.Written{Entity: e}, s.apply(ctx, ops)
}

func (s *indexStore) Delete(ctx context.Context, e store.EntityID, traits []store.TraitID) (storeservice.Written, error) {
	ops := []store.Op{store.DeleteEntity(e)}
	if traits != nil {
		ops = ops[:0]
		for _, t := range traits {
			ops = append(ops, store.DeleteTrait(e, t))
		}
	}
	return storeservice.Written{Entity: e}, s.apply(ctx, ops)
}

func (s *indexStore) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	return s.ix.Get(ctx, id, traits)
}

func (s *indexStore) Query(ctx context.Context, q store.Query) (store.Page, error) {
	return s.ix.Query(ctx, q)
}

func (s *indexStore) TypesVersion(_ context.Context, types ...string) (uint64, bool) {
	return s.ix.TypesVersion(types...), true
}

// benchContacts returns a service over a real index holding n contacts
// of two devices each, and a device of the last one; with query, the
// service cannot keep them (TypesVersion false: every call queries, as
// before they were kept).
func benchContacts(b *testing.B, n int, query bool) (*Service, peer.ID) {
	st := &countingStore{Store: newIndexStore(b), none: query}
	s := newTestService(b, st)
	var dev peer.ID
	for i := range n {
		d0, d1 := devPeer(b, 2*i), devPeer(b, 2*i+1)
		if _, err := s.Add(b.Context(), card(b, i+1, 1, d0, d1), ""); err != nil {
			b.Fatal(err)
		}
		dev = d1
	}
	return s, dev
}

// BenchmarkList: List of 1 and 200 contacts, queried each time (query:
// the path before they were kept, and a node without the store role's)
// and kept.
func BenchmarkList(b *testing.B) {
	for _, n := range []int{1, 200} {
		for _, query := range []bool{true, false} {
			b.Run(fmt.Sprintf("contacts=%d/query=%v", n, query), func(b *testing.B) {
				s, _ := benchContacts(b, n, query)
				b.ReportAllocs()
				for b.Loop() {
					if cs, err := s.List(b.Context()); err != nil || len(cs) != n {
						b.Fatal(len(cs), err)
					}
				}
			})
		}
	}
}

// BenchmarkByDevice: the contacts of a device (a message's receipt),
// among 1 and 200 contacts, as BenchmarkList.
func BenchmarkByDevice(b *testing.B) {
	for _, n := range []int{1, 200} {
		for _, query := range []bool{true, false} {
			b.Run(fmt.Sprintf("contacts=%d/query=%v", n, query), func(b *testing.B) {
				s, dev := benchContacts(b, n, query)
				b.ReportAllocs()
				for b.Loop() {
					if cs, err := s.ByDevice(b.Context(), dev); err != nil || len(cs) != 1 {
						b.Fatal(len(cs), err)
					}
				}
			})
		}
	}
}

// devPeer is the peer ID of an Ed25519 key from seed i.
func devPeer(t testing.TB, i int) peer.ID {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1], seed[2] = byte(i), byte(i>>8), 0xde
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
