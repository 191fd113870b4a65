package service

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/ratchet"
	"github.com/exopeer/exopeer/store"
	storeservice "github.com/exopeer/exopeer/store/service"
)

// countingDS counts the writes of a datastore: each Put of go-ds-leveldb
// is a synced write (one fsync), as is each Sync the service asks for
// after one.
type countingDS struct {
	ds.Datastore
	puts atomic.Int64
}

func (c *countingDS) Put(ctx context.Context, k ds.Key, v []byte) error {
	c.puts.Add(1)
	return c.Datastore.Put(ctx, k, v)
}

// syncedStore is the fake store whose every write is also a synced
// leveldb write into the device's datastore (as a chain entry is, in the
// node, into the same leveldb as the sessions).
type syncedStore struct {
	*fakeStore
	ds ds.Datastore
	n  atomic.Int64
}

func (s *syncedStore) Put(ctx context.Context, id store.EntityID, traits []store.Trait) (storeservice.Written, error) {
	w, err := s.fakeStore.Put(ctx, id, traits)
	if err != nil {
		return w, err
	}
	return w, s.ds.Put(ctx, ds.NewKey(fmt.Sprintf("/bench/chain/%d", s.n.Add(1))), traits[0].Doc)
}

// benchDevice is one device of a one-device cell on a real libp2p host
// (TCP on loopback), its datastore leveldb in a temporary directory.
type benchDevice struct {
	svc  *Service
	ds   *countingDS
	cons *fakeContacts
	list *contact.DeviceList
}

func newBenchDevices(b *testing.B) (a, c *benchDevice) {
	b.Helper()
	dir := map[peer.ID]*fakePrekeys{}
	var devs []*benchDevice
	for i := range 2 {
		seed := make([]byte, 32)
		seed[0], seed[1] = byte(i+1), 0xbe
		edk := ed25519.NewKeyFromSeed(seed)
		key, err := crypto.UnmarshalEd25519PrivateKey(edk)
		if err != nil {
			b.Fatal(err)
		}
		h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Close() })
		seed[1] = 0xbf
		cellKey := ed25519.NewKeyFromSeed(seed)
		list := contact.NewDeviceList(cellKey.Public().(ed25519.PublicKey), 1, []peer.ID{h.ID()})
		if err := list.Sign(cellKey); err != nil {
			b.Fatal(err)
		}
		r := rand.NewChaCha8([32]byte{byte(i), 3})
		keys, err := ratchet.NewPrekeys(r, 1_790_000_000)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := keys.Replenish(r, 10); err != nil {
			b.Fatal(err)
		}
		lds, err := leveldb.NewDatastore(filepath.Join(b.TempDir(), "ds"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = lds.Close() })
		cds := &countingDS{Datastore: lds}
		prek := &fakePrekeys{keys: keys, signer: edk, dir: dir}
		dir[h.ID()] = prek
		cons := &fakeContacts{own: list}
		svc, err := New(Options{
			Host: h, Key: key, Datastore: cds, Cell: fakeCell{key: cellKey.Public().(ed25519.PublicKey)},
			Contacts: cons, Prekeys: prek, Store: &syncedStore{fakeStore: newFakeStore(), ds: lds},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = svc.Close() })
		devs = append(devs, &benchDevice{svc: svc, ds: cds, cons: cons, list: list})
	}
	a, c = devs[0], devs[1]
	a.cons.add("C", c.list)
	c.cons.add("A", a.list)
	if err := a.svc.h.Connect(b.Context(), peer.AddrInfo{ID: c.svc.self, Addrs: c.svc.h.Addrs()}); err != nil {
		b.Fatal(err)
	}
	return a, c
}

// BenchmarkSend: 100-byte messages from one device to another over real
// libp2p hosts on loopback, leveldb datastores (each write synced), the
// store, contacts and prekeys faked (so the figures are the service's
// own cost: ratchet, frames, streams and its datastore writes; each
// store write is one synced leveldb write, as a chain entry is), from 1,
// from 16 and from 64 senders at once. It reports messages/s and the service's
// synced datastore writes per message on each side (the store's not
// counted: two on the sender, one on the receiver).
func BenchmarkSend(b *testing.B) {
	for _, senders := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			a, c := newBenchDevices(b)
			ctx := b.Context()
			text := string(make([]byte, 100))
			if _, err := a.svc.Send(ctx, "C", text); err != nil { // the handshake
				b.Fatal(err)
			}
			aw, cw := a.ds.puts.Load(), c.ds.puts.Load()
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, senders)
			b.ResetTimer()
			start := time.Now()
			for range senders {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := a.svc.Send(ctx, "C", text); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(a.ds.puts.Load()-aw)/float64(b.N), "sender-syncs/msg")
			b.ReportMetric(float64(c.ds.puts.Load()-cw)/float64(b.N), "receiver-syncs/msg")
		})
	}
}
