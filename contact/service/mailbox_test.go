package service

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// adminCell is the cell of an admin device: the cell key, the roster and
// the epoch secrets, made and changed by cell/core's own operations.
type adminCell struct {
	mu   sync.Mutex
	r    *cell.Roster
	key  ed25519.PrivateKey
	keys *cell.Keys
}

func (c *adminCell) Roster() *cell.Roster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r
}

func (c *adminCell) WithCellKey(sign func(ed25519.PrivateKey, *cell.Roster) error) error {
	c.mu.Lock()
	key, r := slices.Clone(c.key), c.r
	c.mu.Unlock()
	return sign(key, r)
}

func (c *adminCell) Keys() *cell.Keys {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys.Clone()
}

// mailbox is the cell's mailbox public key of an epoch.
func (c *adminCell) mailbox(t *testing.T, epoch uint64) []byte {
	t.Helper()
	s, ok := c.Keys().Secret(epoch)
	if !ok {
		t.Fatalf("no secret of epoch %d", epoch)
	}
	return s.MailboxKey(c.r.Cell).PublicKey().Bytes()
}

func member(t *testing.T, id peer.ID) core.Member {
	t.Helper()
	box, err := core.NewBoxKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return core.Member{Peer: id, Name: "m", Roles: cell.RoleChain, BoxKey: box.Public()}
}

// clock is a test's clock, set by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newAdmin starts the Service of the admin device of a new cell, over a
// real index, and returns it with its cell.
func newAdmin(t *testing.T, st Store, now *clock, before func(*adminCell)) (*Service, *adminCell) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = 3, 0xad
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	h, err := mn.AddPeer(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	box, err := core.NewBoxKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, key, keys, err := core.NewCell("Alice", core.Founder{Peer: h.ID(), Name: "admin", BoxKey: box.Public()}, now.now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &adminCell{r: r, key: key, keys: keys}
	if before != nil {
		before(c)
	}
	s, err := New(Options{Host: h, Cell: c, Store: st, Config: Config{Now: now.now, Check: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

// TestOwnListMailboxKey: the list an admin signs carries the mailbox key
// of the roster's epoch; a new member (same epoch) keeps it; a removal
// (a new epoch) gives the next list the new epoch's key, and so does a
// new epoch whose roster names the same devices, at the roster's new
// version. MailboxKeys gives every epoch's key with when its lists
// carried it.
func TestOwnListMailboxKey(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := &clock{t: t0}
	s, c := newAdmin(t, newIndexStore(t), now, nil)
	l, err := s.DeviceList(ctx)
	if err != nil || l.Version != 1 || !bytes.Equal(l.Mailbox, c.mailbox(t, 1)) {
		t.Fatalf("first list: %v, %v; want version 1 with epoch 1's key", l, err)
	}
	// A member joins: same epoch, same key.
	other := testPeer(t, 9)
	now.set(t0.Add(time.Hour))
	c.mu.Lock()
	r2, err := c.r.WithMember(member(t, other), c.keys, c.key, now.now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.r = r2
	c.mu.Unlock()
	if l, err = s.DeviceList(ctx); err != nil || l.Version != 2 || !l.Has(other) || !bytes.Equal(l.Mailbox, c.mailbox(t, 1)) {
		t.Fatalf("list after a join: %v, %v", l, err)
	}
	// It is removed: epoch 2.
	t2 := t0.Add(2 * time.Hour)
	now.set(t2)
	c.mu.Lock()
	r3, err := c.r.Without(other, core.Cutoff{}, c.keys, c.key, now.now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.r = r3
	c.mu.Unlock()
	l, err = s.DeviceList(ctx)
	if err != nil || l.Version != 3 || l.Has(other) || !bytes.Equal(l.Mailbox, c.mailbox(t, 2)) || bytes.Equal(l.Mailbox, c.mailbox(t, 1)) {
		t.Fatalf("list after a removal: %v, %v; want version 3 with epoch 2's key", l, err)
	}
	ks, err := s.MailboxKeys(ctx)
	if err != nil || len(ks) != 2 {
		t.Fatalf("MailboxKeys: %v, %v", ks, err)
	}
	if k := ks[0]; k.Epoch != 1 || k.Current || !k.Since.Equal(t0) || !k.Until.Equal(t2) || !bytes.Equal(k.Private.PublicKey().Bytes(), c.mailbox(t, 1)) {
		t.Errorf("epoch 1's key: %+v; want since %v until %v", k, t0, t2)
	}
	if k := ks[1]; k.Epoch != 2 || !k.Current || !k.Since.Equal(t2) || !k.Until.IsZero() || !bytes.Equal(k.Private.PublicKey().Bytes(), l.Mailbox) {
		t.Errorf("epoch 2's key: %+v; want current since %v", k, t2)
	}
	// A new epoch on a roster naming the same devices: a new list at the
	// roster's version, with the new key.
	sec, err := core.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	r4 := *c.r
	r4.Version, r4.Epoch = 4, 3
	c.keys.Add(3, sec)
	c.r = &r4
	c.mu.Unlock()
	l4, err := s.DeviceList(ctx)
	if err != nil || l4.Version != 4 || !slices.Equal(l4.Devices, l.Devices) || !bytes.Equal(l4.Mailbox, c.mailbox(t, 3)) {
		t.Fatalf("list of a new epoch, devices unchanged: %v, %v; want version 4 with epoch 3's key", l4, err)
	}
	if up, err := contact.Newer(l, l4); err != nil || !up {
		t.Errorf("the contact's side takes it: %v, %v", up, err)
	}
}

// TestOwnListUpgrade: a list without a mailbox key (an older binary's,
// EXD1) is signed again at its version with the key by the admin's
// upkeep, stored, and replaces the older one on a contact's side
// (contact.Newer); MailboxKeys dates the key from then.
func TestOwnListUpgrade(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := &clock{t: t0}
	st := newIndexStore(t)
	var old *contact.DeviceList
	s, c := newAdmin(t, st, now, func(c *adminCell) {
		old = contact.NewDeviceList(c.r.Cell, c.r.Version, []peer.ID{c.r.Members[0].Peer})
		if err := old.Sign(c.key); err != nil {
			t.Fatal(err)
		}
		writeOwn(t, st, old)
	})
	if err := s.keepUp(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := s.readHeldList(ctx, c.Roster())
	if err != nil || o.l == nil {
		t.Fatalf("held: %v, %v", o.l, err)
	}
	if o.l.Version != old.Version || !bytes.Equal(o.l.Mailbox, c.mailbox(t, 1)) || !slices.Equal(o.l.Devices, old.Devices) {
		t.Fatalf("held after the upkeep: %v; want version %d with the key", o.l, old.Version)
	}
	if up, err := contact.Newer(old, o.l); err != nil || !up {
		t.Errorf("the upgrade replaces the older list on a contact's side: %v, %v", up, err)
	}
	if l, err := s.DeviceList(ctx); err != nil || !bytes.Equal(l.Encode(), o.l.Encode()) {
		t.Errorf("DeviceList: %v, %v", l, err)
	}
	ks, err := s.MailboxKeys(ctx)
	if err != nil || len(ks) != 1 || !ks[0].Current || !ks[0].Since.Equal(t0) {
		t.Errorf("MailboxKeys: %+v, %v", ks, err)
	}
}

// TestContactMailboxKey: a contact's list that gains the mailbox key at
// its version (as a message's envelope brings it: UpdateDevices) is
// stored, and the contact's key read back from a real index; the list
// without it is older from then on.
func TestContactMailboxKey(t *testing.T) {
	ctx := t.Context()
	s := newTestService(t, newIndexStore(t))
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xb0}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	devs := []peer.ID{testPeer(t, 20), testPeer(t, 21)}
	v1 := contact.NewDeviceList(pub, 5, devs)
	if err := v1.Sign(key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, (&contact.Card{Name: "Bob", Devices: v1}).Text(), ""); err != nil {
		t.Fatal(err)
	}
	c, err := s.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.MailboxKey(); !errors.Is(err, contact.ErrNoMailbox) {
		t.Fatalf("key of a version 1 list: %v, want ErrNoMailbox", err)
	}
	v2 := contact.NewDeviceList(pub, 5, devs)
	v2.Mailbox = bytes.Repeat([]byte{9}, contact.MailboxKeyLen)
	if err := v2.Sign(key); err != nil {
		t.Fatal(err)
	}
	if _, up, err := s.UpdateDevices(ctx, v2); err != nil || !up {
		t.Fatalf("UpdateDevices with the key: %v, %v", up, err)
	}
	c, err = s.Get(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := c.MailboxKey(); err != nil || !bytes.Equal(k.Bytes(), v2.Mailbox) {
		t.Fatalf("Bob's key: %v, %v", k, err)
	}
	if _, _, err := s.UpdateDevices(ctx, v1); !errors.Is(err, contact.ErrStale) {
		t.Errorf("the list without the key, again: %v, want ErrStale", err)
	}
}

// TestOwnListBadKeys: an exo.devices document whose keys are not what an
// admin writes (not a list, epochs out of order, too many) records no
// key's time, and its list stands.
func TestOwnListBadKeys(t *testing.T) {
	many := make([]publishedKey, maxPublishedKeys+1)
	for i := range many {
		many[i].Epoch, many[i].Since = uint64(i+1), time.Date(2026, 1, 1, i, 0, 0, 0, time.UTC)
	}
	manyJSON, err := json.Marshal(many)
	if err != nil {
		t.Fatal(err)
	}
	for name, keys := range map[string]string{
		"not a list":   `"x"`,
		"out of order": `[{"epoch":2,"since":"2026-01-01T00:00:00Z"},{"epoch":1,"since":"2026-01-02T00:00:00Z"}]`,
		"bad time":     `[{"epoch":1,"since":7}]`,
		"too many":     string(manyJSON),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st := newIndexStore(t)
			var keyed *contact.DeviceList
			s, c := newAdmin(t, st, &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, func(c *adminCell) {
				keyed = contact.NewDeviceList(c.r.Cell, c.r.Version, []peer.ID{c.r.Members[0].Peer})
				sec, _ := c.keys.Secret(c.r.Epoch)
				keyed.Mailbox = sec.MailboxKey(c.r.Cell).PublicKey().Bytes()
				if err := keyed.Sign(c.key); err != nil {
					t.Fatal(err)
				}
				doc, err := json.Marshal(devicesDoc{Cell: hex.EncodeToString(keyed.Cell), Version: keyed.Version,
					List: base64.StdEncoding.EncodeToString(keyed.Encode()), Keys: json.RawMessage(keys)})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.Put(ctx, devicesEntity(keyed.Cell), []store.Trait{{Type: DevicesType, Doc: doc}}); err != nil {
					t.Fatal(err)
				}
			})
			if l, err := s.DeviceList(ctx); err != nil || !bytes.Equal(l.Encode(), keyed.Encode()) {
				t.Fatalf("DeviceList: %v, %v; want the list stored", l, err)
			}
			ks, err := s.MailboxKeys(ctx)
			if err != nil || len(ks) != 1 || !ks[0].Since.IsZero() || !bytes.Equal(ks[0].Private.PublicKey().Bytes(), c.mailbox(t, 1)) {
				t.Fatalf("MailboxKeys: %+v, %v; want epoch 1's, no time", ks, err)
			}
		})
	}
}

// TestOwnListNoEpochSecret: an admin that lacks its epoch's secret signs
// nothing (it cannot give the list its key) and hands out the list held.
func TestOwnListNoEpochSecret(t *testing.T) {
	ctx := t.Context()
	st := newIndexStore(t)
	var old *contact.DeviceList
	s, _ := newAdmin(t, st, &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, func(c *adminCell) {
		old = contact.NewDeviceList(c.r.Cell, c.r.Version, []peer.ID{c.r.Members[0].Peer})
		if err := old.Sign(c.key); err != nil {
			t.Fatal(err)
		}
		writeOwn(t, st, old)
		c.keys = core.NewKeys(c.r.Cell)
	})
	if err := s.keepUp(ctx); !errors.Is(err, cell.ErrNoKey) {
		t.Errorf("upkeep: %v, want ErrNoKey", err)
	}
	if l, err := s.DeviceList(ctx); err != nil || !bytes.Equal(l.Encode(), old.Encode()) {
		t.Fatalf("DeviceList: %v, %v; want the list held", l, err)
	}
}
