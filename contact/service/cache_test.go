package service

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// countingStore counts a Store's reads and can tell a version of its
// own: fixed (a store whose version does not move, as when a write's
// index update failed), or none (a node without the store role).
type countingStore struct {
	Store
	queries, gets atomic.Int64
	fixed, none   bool
}

func (c *countingStore) Query(ctx context.Context, q store.Query) (store.Page, error) {
	c.queries.Add(1)
	return c.Store.Query(ctx, q)
}

func (c *countingStore) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, id, traits)
}

func (c *countingStore) TypesVersion(ctx context.Context, types ...string) (uint64, bool) {
	switch {
	case c.none:
		return 0, false
	case c.fixed:
		return 1, true
	}
	return c.Store.TypesVersion(ctx, types...)
}

// newTestService starts a Service of a cell (not admin) over st.
func newTestService(t testing.TB, st Store) *Service {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = 1, 0xca
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	h, err := mn.AddPeer(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	cellKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xa1))
	r := &cell.Roster{Cell: cellKey.Public().(ed25519.PublicKey), Name: "Alice", Version: 1, Members: []cell.Member{{Peer: h.ID()}}}
	s, err := New(Options{Host: h, Cell: memberCell{r}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// card returns the card of contact i (cell key from seed i), listing
// devices testPeer(2i) and testPeer(2i+1) at version v.
func card(t testing.TB, i int, v uint64, ds ...peer.ID) string {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1], seed[2] = byte(i), byte(i>>8), 0xc0
	key := ed25519.NewKeyFromSeed(seed)
	l := contact.NewDeviceList(key.Public().(ed25519.PublicKey), v, ds)
	if err := l.Sign(key); err != nil {
		t.Fatal(err)
	}
	return (&contact.Card{Name: fmt.Sprintf("c%03d", i), Devices: l}).Text()
}

// TestContactsKept: the contacts are read once while the version of
// their types stays, read again when it moves, and every time on a node
// that cannot tell; the service's own writes are seen at once even when
// the version does not move; what a caller is given is its own.
func TestContactsKept(t *testing.T) {
	ctx := t.Context()
	st := &countingStore{Store: &view{s: &chainStore{}, at: -1}}
	s := newTestService(t, st)
	d1, d2, d3 := testPeer(t, 1), testPeer(t, 2), testPeer(t, 3)
	if _, err := s.Add(ctx, card(t, 1, 1, d1, d2), ""); err != nil {
		t.Fatal(err)
	}
	reads := func(what string, want int64, read func() error) {
		t.Helper()
		q0 := st.queries.Load()
		if err := read(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := st.queries.Load() - q0; got != want {
			t.Errorf("%s: %d queries, want %d", what, got, want)
		}
	}
	list := func() error { _, err := s.List(ctx); return err }
	reads("List", 1, list)
	reads("List again", 0, list)
	reads("Get", 0, func() error { _, err := s.Get(ctx, "c001"); return err })
	reads("ByDevice", 0, func() error { _, err := s.ByDevice(ctx, d2); return err })

	cs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs[0].Name = "mine"
	if c, err := s.Get(ctx, "c001"); err != nil || c.Name != "c001" {
		t.Errorf("after a caller changed its copy: %q, %v", c.Name, err)
	}

	// The version does not move: the service's own writes still show.
	st.fixed = true
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, card(t, 2, 1, d3), ""); err != nil {
		t.Fatal(err)
	}
	if cs, err := s.ByDevice(ctx, d3); err != nil || len(cs) != 1 || cs[0].Name != "c002" {
		t.Errorf("ByDevice after Add: %v, %v", cs, err)
	}
	c1, err := s.Get(ctx, "c001")
	if err != nil {
		t.Fatal(err)
	}
	l2 := contact.NewDeviceList(c1.Cell(), 2, []peer.ID{d1})
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[2] = 1, 0xc0
	if err := l2.Sign(ed25519.NewKeyFromSeed(seed)); err != nil {
		t.Fatal(err)
	}
	if _, up, err := s.UpdateDevices(ctx, l2); err != nil || !up {
		t.Fatalf("UpdateDevices: %v, %v", up, err)
	}
	if cs, err := s.ByDevice(ctx, d2); err != nil || cs != nil {
		t.Errorf("ByDevice of a device dropped by UpdateDevices: %v, %v", cs, err)
	}
	if _, err := s.Remove(ctx, "c002"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "c002"); err == nil {
		t.Error("Get after Remove found the contact")
	}

	st.fixed, st.none = false, true
	reads("List that cannot be kept", 1, list)
	reads("and again", 1, list)
	var got []string
	cs, _ = s.List(ctx)
	for _, c := range cs {
		got = append(got, c.Name)
	}
	if !slices.Equal(got, []string{"c001"}) {
		t.Errorf("contacts %v, want [c001]", got)
	}
}

// TestOwnListKept: the cell's device list is read once while the
// version of its type stays.
func TestOwnListKept(t *testing.T) {
	ctx := t.Context()
	st := &countingStore{Store: &view{s: &chainStore{}, at: -1}}
	s := newTestService(t, st)
	r := s.cell.Roster()
	key := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xa1))
	l := contact.NewDeviceList(r.Cell, 1, []peer.ID{s.self})
	if err := l.Sign(key); err != nil {
		t.Fatal(err)
	}
	writeOwn(t, st, l)
	for i := range 3 {
		got, err := s.DeviceList(ctx)
		if err != nil || got.Version != 1 {
			t.Fatalf("DeviceList %d: %v, %v", i, got, err)
		}
	}
	if n := st.gets.Load(); n != 1 {
		t.Errorf("3 DeviceList read the store %d times, want 1", n)
	}
	l2 := contact.NewDeviceList(r.Cell, 2, []peer.ID{s.self})
	if err := l2.Sign(key); err != nil {
		t.Fatal(err)
	}
	writeOwn(t, st, l2) // as another device's write would come
	if got, err := s.DeviceList(ctx); err != nil || got.Version != 2 {
		t.Errorf("DeviceList after a newer one was written: %v, %v", got, err)
	}
}

func writeOwn(t *testing.T, st Store, l *contact.DeviceList) {
	t.Helper()
	doc, err := json.Marshal(devicesDoc{Cell: hex.EncodeToString(l.Cell), Version: l.Version, List: base64.StdEncoding.EncodeToString(l.Encode())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(t.Context(), devicesEntity(l.Cell), []store.Trait{{Type: DevicesType, Doc: doc}}); err != nil {
		t.Fatal(err)
	}
}
