package service

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
	storeservice "github.com/exopeer/exopeer/store/service"
)

// chainStore is a cell's store as its chain orders it: a log of writes,
// applied in log order, the latest write of a trait winning. Each device
// reads it through a view, which may lag (see view.freeze).
type chainStore struct {
	mu  sync.Mutex
	log []storeOp
}

// storeOp is one write: traits put, or traits deleted (del nil with
// deleted true: the whole entity), by device by.
type storeOp struct {
	by      int
	id      store.EntityID
	put     []store.Trait
	del     []store.TraitID
	deleted bool
}

// view is device by's reading of the store: every write up to at (all,
// when at < 0) and its own.
type view struct {
	s  *chainStore
	by int
	at int
}

// freeze makes the view see no write of another device from now on, as
// a device whose chain lags does; thaw lets it see them all.
func (v *view) freeze() {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.at = len(v.s.log)
}

func (v *view) thaw() {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.at = -1
}

// state applies the writes the view sees.
func (v *view) state() map[store.EntityID]map[store.TraitID]store.Trait {
	st := map[store.EntityID]map[store.TraitID]store.Trait{}
	for i, o := range v.s.log {
		if v.at >= 0 && i >= v.at && o.by != v.by {
			continue
		}
		switch {
		case o.deleted:
			delete(st, o.id)
		case o.del != nil:
			for _, t := range o.del {
				delete(st[o.id], t)
			}
		default:
			if st[o.id] == nil {
				st[o.id] = map[store.TraitID]store.Trait{}
			}
			for _, t := range o.put {
				st[o.id][t.ID] = t
			}
		}
	}
	return st
}

func entityOfTraits(id store.EntityID, ts map[store.TraitID]store.Trait, types []string) store.Entity {
	e := store.Entity{ID: id}
	for _, t := range ts {
		if types == nil || slices.Contains(types, t.Type) {
			e.Traits = append(e.Traits, t)
		}
	}
	slices.SortFunc(e.Traits, func(a, b store.Trait) int { return cmp.Compare(a.ID, b.ID) })
	return e
}

func (v *view) Get(_ context.Context, id store.EntityID, types []string) (store.Entity, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	ts := v.state()[id]
	if len(ts) == 0 {
		return store.Entity{}, store.ErrNotFound
	}
	return entityOfTraits(id, ts, types), nil
}

func (v *view) Put(_ context.Context, id store.EntityID, traits []store.Trait) (storeservice.Written, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	ts := slices.Clone(traits)
	for i := range ts {
		if err := store.NewRegistry().Validate(ts[i].Type, ts[i].Doc); err != nil {
			return storeservice.Written{}, err
		}
		if ts[i].ID == "" {
			ts[i].ID = store.TraitID(ts[i].Type)
		}
	}
	v.s.log = append(v.s.log, storeOp{by: v.by, id: id, put: ts})
	return storeservice.Written{Entity: id}, nil
}

func (v *view) Delete(_ context.Context, id store.EntityID, traits []store.TraitID) (storeservice.Written, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.s.log = append(v.s.log, storeOp{by: v.by, id: id, del: slices.Clone(traits), deleted: traits == nil})
	return storeservice.Written{Entity: id}, nil
}

// TypesVersion moves whenever what the view sees may have changed (a
// write, a freeze, a thaw): the service keeps its contacts in memory
// between, as on a store node.
func (v *view) TypesVersion(context.Context, ...string) (uint64, bool) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return uint64(len(v.s.log))<<32 | uint64(v.at+1), true
}

// Query answers entities with a trait of q.Type, in one page.
func (v *view) Query(_ context.Context, q store.Query) (store.Page, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	var pg store.Page
	for id, ts := range v.state() {
		if slices.ContainsFunc(slices.Collect(mapValues(ts)), func(t store.Trait) bool { return t.Type == q.Type }) {
			pg.Hits = append(pg.Hits, store.Hit{Entity: entityOfTraits(id, ts, q.Traits)})
		}
	}
	slices.SortFunc(pg.Hits, func(a, b store.Hit) int { return strings.Compare(a.Entity.ID.String(), b.Entity.ID.String()) })
	return pg, nil
}

func mapValues(m map[store.TraitID]store.Trait) func(func(store.Trait) bool) {
	return func(yield func(store.Trait) bool) {
		for _, t := range m {
			if !yield(t) {
				return
			}
		}
	}
}

// memberCell is a cell this node is a member of and holds no key of.
type memberCell struct{ r *cell.Roster }

func (c memberCell) Roster() *cell.Roster { return c.r }

func (memberCell) WithCellKey(func(ed25519.PrivateKey, *cell.Roster) error) error {
	return cell.ErrNotAdmin
}

func (memberCell) Keys() *cell.Keys { return nil }

// testPeer is the peer ID of an Ed25519 key from seed byte b.
func testPeer(t *testing.T, b byte) peer.ID {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = b, 0x5e
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

// TestDeviceListNeverGoesBack: two devices of a cell write a contact at
// once, one of them from a store that lags: an older device list, a
// rename and a verification written after a newer list in chain order
// leave the newer list in force on both devices, and a list whose
// signature does not verify is skipped whatever its version.
func TestDeviceListNeverGoesBack(t *testing.T) {
	ctx := t.Context()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	aliceKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xa1))
	bobKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xb0))
	bob := bobKey.Public().(ed25519.PublicKey)
	b0, bx, by := testPeer(t, 1), testPeer(t, 2), testPeer(t, 3)
	list := func(v uint64, ds ...peer.ID) *contact.DeviceList {
		l := contact.NewDeviceList(bob, v, ds)
		if err := l.Sign(bobKey); err != nil {
			t.Fatal(err)
		}
		return l
	}
	v1, v2, v3 := list(1, b0, bx), list(2, b0, bx, by), list(3, b0, by) // v3 drops bx

	cs := &chainStore{}
	var devs []*Service
	var views []*view
	var members []cell.Member
	var hosts []host.Host
	for i := range 2 {
		seed := make([]byte, ed25519.SeedSize)
		seed[0], seed[1] = byte(i+1), 0xa0
		k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, cell.Member{Peer: h.ID()})
		views = append(views, &view{s: cs, by: i, at: -1})
		hosts = append(hosts, h)
	}
	slices.SortFunc(members, func(a, b cell.Member) int { return strings.Compare(string(a.Peer), string(b.Peer)) })
	r := &cell.Roster{Cell: aliceKey.Public().(ed25519.PublicKey), Name: "Alice", Version: 2, Members: members}
	for i, h := range hosts {
		s, err := New(Options{Host: h, Cell: memberCell{r}, Store: views[i]})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		devs = append(devs, s)
	}
	d0, d1 := devs[0], devs[1]

	if _, err := d0.Add(ctx, (&contact.Card{Name: "Bob", Devices: v1}).Text(), ""); err != nil {
		t.Fatalf("d0 adds Bob: %v", err)
	}
	// d1 holds v1 and sees nothing more of d0 for a while: d0 takes v3,
	// then d1 takes v2, is given Bob's card of v1 under a new name and
	// verifies him, each written after v3 in chain order.
	views[1].freeze()
	if _, up, err := d0.UpdateDevices(ctx, v3); err != nil || !up {
		t.Fatalf("d0 takes v3: %v, %v", up, err)
	}
	if _, up, err := d1.UpdateDevices(ctx, v2); err != nil || !up {
		t.Fatalf("d1 takes v2: %v, %v", up, err)
	}
	if _, err := d1.Add(ctx, (&contact.Card{Name: "Bob", Devices: v2}).Text(), "Robert"); err != nil {
		t.Fatalf("d1 renames Bob: %v", err)
	}
	if _, _, err := d1.Verify(ctx, "Robert", true); err != nil {
		t.Fatalf("d1 verifies Robert: %v", err)
	}
	// A forged list of a higher version (its signature broken) is
	// written too: it is skipped.
	forged := list(9, b0, bx)
	forged.Sig[0] ^= 1
	doc, err := json.Marshal(listDoc{Cell: hex.EncodeToString(bob), Version: 9, List: base64.StdEncoding.EncodeToString(forged.Encode())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := views[1].Put(ctx, contactEntity(bob), []store.Trait{{Type: DeviceListType, ID: listTrait(9), Doc: doc}}); err != nil {
		t.Fatal(err)
	}
	views[1].thaw()

	for i, d := range devs {
		c, err := d.Get(ctx, "Robert")
		if err != nil {
			t.Fatalf("device %d: Get: %v", i, err)
		}
		if c.Devices.Version != 3 || c.Devices.Has(bx) || !c.Devices.Has(by) || !c.Verified {
			t.Errorf("device %d holds version %d, devices %v, verified %v; want version 3 without the dropped device, verified", i, c.Devices.Version, c.Devices.Devices, c.Verified)
		}
		// An older list is refused, on either device.
		if _, _, err := d.UpdateDevices(ctx, v2); !errors.Is(err, contact.ErrStale) {
			t.Errorf("device %d takes v2 after v3: %v", i, err)
		}
		if _, err := d.Add(ctx, (&contact.Card{Name: "Bob", Devices: v1}).Text(), ""); !errors.Is(err, contact.ErrStale) {
			t.Errorf("device %d adds Bob's card of v1: %v", i, err)
		}
	}
	// A newer list on d0 deletes the older versions it read.
	v4 := list(4, b0)
	if _, up, err := d0.UpdateDevices(ctx, v4); err != nil || !up {
		t.Fatalf("d0 takes v4: %v, %v", up, err)
	}
	e, err := views[1].Get(ctx, contactEntity(bob), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []store.TraitID
	for _, tr := range e.Traits {
		ids = append(ids, tr.ID)
	}
	if want := []store.TraitID{listTrait(4), listTrait(9), ContactType}; !slices.Equal(ids, want) {
		t.Errorf("traits after v4: %v, want %v (the forged list is no version held: left)", ids, want)
	}
	if t.Failed() {
		var lines []string
		for i, o := range cs.log {
			var ids []store.TraitID
			for _, t := range o.put {
				ids = append(ids, t.ID)
			}
			lines = append(lines, fmt.Sprintf("%d: device %d puts %v, deletes %v", i, o.by, ids, o.del))
		}
		t.Logf("store log:\n%s", strings.Join(lines, "\n"))
	}
}

// TestBestList: of the lists an entity holds the newest valid one is
// taken; two different lists of one version (the cell key signed both)
// give the same choice whichever trait holds which; a list under another
// version's trait ID, or of another cell, is skipped.
func TestBestList(t *testing.T) {
	bobKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xb0))
	otherKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xc0))
	b0, bx := testPeer(t, 1), testPeer(t, 2)
	sign := func(key ed25519.PrivateKey, v uint64, ds ...peer.ID) *contact.DeviceList {
		l := contact.NewDeviceList(key.Public().(ed25519.PublicKey), v, ds)
		if err := l.Sign(key); err != nil {
			t.Fatal(err)
		}
		return l
	}
	trait := func(id store.TraitID, l *contact.DeviceList) store.Trait {
		doc, err := json.Marshal(listDoc{Cell: hex.EncodeToString(l.Cell), Version: l.Version, List: base64.StdEncoding.EncodeToString(l.Encode())})
		if err != nil {
			t.Fatal(err)
		}
		return store.Trait{Type: DeviceListType, ID: id, Doc: doc}
	}
	enc := func(l *contact.DeviceList) string { return base64.StdEncoding.EncodeToString(l.Encode()) }
	id := contactEntity(bobKey.Public().(ed25519.PublicKey))
	v1, v2a, v2b := sign(bobKey, 1, b0), sign(bobKey, 2, b0), sign(bobKey, 2, b0, bx)
	first := v2a
	if strings.Compare(string(v2b.Encode()), string(v2a.Encode())) < 0 {
		first = v2b
	}
	for name, tt := range map[string]struct {
		inContact *contact.DeviceList
		traits    []store.Trait
		want      *contact.DeviceList
	}{
		"the contact's own":        {v1, nil, v1},
		"a newer trait":            {v1, []store.Trait{trait(listTrait(2), v2a)}, v2a},
		"same version, one way":    {v2a, []store.Trait{trait(listTrait(2), v2b)}, first},
		"same version, other way":  {v2b, []store.Trait{trait(listTrait(2), v2a)}, first},
		"under another version ID": {v1, []store.Trait{trait(listTrait(7), v2a)}, v1},
		"another cell's":           {v1, []store.Trait{trait(listTrait(5), sign(otherKey, 5, b0))}, v1},
	} {
		got, _ := bestList(store.Entity{ID: id, Traits: tt.traits}, enc(tt.inContact))
		if got == nil || string(got.Encode()) != string(tt.want.Encode()) {
			t.Errorf("%s: got %+v, want version %d with %v", name, got, tt.want.Version, tt.want.Devices)
		}
	}
}

// TestBestListKeepsMailboxKey: a version 1 list and the version 2 list
// with the same version and devices (the cell added its mailbox key,
// contact.Newer's upgrade) are both held, one in the contact's document
// and one in a trait, or the other way round: the version 2 list is the
// best, as Newer says, whatever the order of their encodings ("EXD1"
// sorts first, so the byte order alone drops the mailbox key on every
// reload).
func TestBestListKeepsMailboxKey(t *testing.T) {
	bobKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xb0))
	b0 := testPeer(t, 1)
	sign := func(box []byte) *contact.DeviceList {
		l := contact.NewDeviceList(bobKey.Public().(ed25519.PublicKey), 3, []peer.ID{b0})
		l.Mailbox = box
		if err := l.Sign(bobKey); err != nil {
			t.Fatal(err)
		}
		return l
	}
	trait := func(l *contact.DeviceList) store.Trait {
		doc, err := json.Marshal(listDoc{Cell: hex.EncodeToString(l.Cell), Version: l.Version, List: base64.StdEncoding.EncodeToString(l.Encode())})
		if err != nil {
			t.Fatal(err)
		}
		return store.Trait{Type: DeviceListType, ID: listTrait(l.Version), Doc: doc}
	}
	enc := func(l *contact.DeviceList) string { return base64.StdEncoding.EncodeToString(l.Encode()) }
	v1, v2 := sign(nil), sign(bytes.Repeat([]byte{9}, contact.MailboxKeyLen))
	if up, err := contact.Newer(v1, v2); err != nil || !up {
		t.Fatalf("Newer(v1, v2) = %v, %v: not the upgrade", up, err)
	}
	id := contactEntity(bobKey.Public().(ed25519.PublicKey))
	for name, tt := range map[string]struct {
		inContact, inTrait *contact.DeviceList
	}{
		"v1 in the contact, v2 in a trait": {v1, v2},
		"v2 in the contact, v1 in a trait": {v2, v1},
	} {
		got, _ := bestList(store.Entity{ID: id, Traits: []store.Trait{trait(tt.inTrait)}}, enc(tt.inContact))
		if got == nil || got.Mailbox == nil {
			t.Errorf("%s: got %+v, want the list with the mailbox key", name, got)
		}
	}
}
