package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// newEpoch moves c's roster to version v and a new epoch e naming the
// same devices.
func newEpoch(t *testing.T, c *adminCell, v, e uint64) {
	t.Helper()
	sec, err := core.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := *c.r
	r.Version, r.Epoch = v, e
	c.keys.Add(e, sec)
	c.r = &r
}

// TestOwnListKeysPastEpoch: an exo.devices document written by another
// device of the cell (its keys are not signed) that names an epoch past
// the roster's, in order and so read as well formed, must not stop the
// admin recording when a list first carried the next epoch's key, nor
// set every earlier key's Until to its made-up time.
func TestOwnListKeysPastEpoch(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := &clock{t: t0}
	st := newIndexStore(t)
	s, c := newAdmin(t, st, now, func(c *adminCell) {
		keyed := contact.NewDeviceList(c.r.Cell, c.r.Version, []peer.ID{c.r.Members[0].Peer})
		sec, _ := c.keys.Secret(c.r.Epoch)
		keyed.Mailbox = sec.MailboxKey(c.r.Cell).PublicKey().Bytes()
		if err := keyed.Sign(c.key); err != nil {
			t.Fatal(err)
		}
		keys := `[{"epoch":1,"since":"2026-03-01T12:00:00Z"},{"epoch":1099511627776,"since":"2000-01-01T00:00:00Z"}]`
		doc, err := json.Marshal(devicesDoc{Cell: hex.EncodeToString(keyed.Cell), Version: keyed.Version,
			List: base64.StdEncoding.EncodeToString(keyed.Encode()), Keys: json.RawMessage(keys)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Put(ctx, devicesEntity(keyed.Cell), []store.Trait{{Type: DevicesType, Doc: doc}}); err != nil {
			t.Fatal(err)
		}
	})
	t2 := t0.Add(2 * time.Hour)
	now.set(t2)
	newEpoch(t, c, 2, 2)
	if l, err := s.DeviceList(ctx); err != nil || l.Version != 2 {
		t.Fatalf("DeviceList: %v, %v", l, err)
	}
	ks, err := s.MailboxKeys(ctx)
	if err != nil || len(ks) != 2 {
		t.Fatalf("MailboxKeys: %+v, %v", ks, err)
	}
	if !ks[1].Since.Equal(t2) {
		t.Errorf("epoch 2's key: since %v, want %v (its list went out then)", ks[1].Since, t2)
	}
	if !ks[0].Until.Equal(t2) {
		t.Errorf("epoch 1's key: until %v, want %v", ks[0].Until, t2)
	}
}

// failingGets is a Store whose reads fail while fail is set (no store
// member answers).
type failingGets struct {
	Store
	fail atomic.Bool
}

func (f *failingGets) Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error) {
	if f.fail.Load() {
		return store.Entity{}, errors.New("no store member answers")
	}
	return f.Store.Get(ctx, id, traits)
}

// TestOwnListKeysReadFailure: an admin that signs a list while its read
// of the list held fails (publish writes anyway) must not overwrite the
// record of when earlier lists carried each key: the epochs before lose
// their Since, and the current epoch's Since moves forward, so a reader
// following message/mailbox § Use stops polling keys a contact may still
// write with.
func TestOwnListKeysReadFailure(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := &clock{t: t0}
	st := &failingGets{Store: newIndexStore(t)}
	s, c := newAdmin(t, st, now, nil)
	if _, err := s.DeviceList(ctx); err != nil {
		t.Fatal(err)
	}
	t2 := t0.Add(2 * time.Hour)
	now.set(t2)
	newEpoch(t, c, 2, 2)
	if _, err := s.DeviceList(ctx); err != nil {
		t.Fatal(err)
	}
	// A member joins (same epoch) while no store member answers.
	now.set(t0.Add(3 * time.Hour))
	c.mu.Lock()
	r3 := *c.r
	r3.Version = 3
	c.r = &r3
	c.mu.Unlock()
	st.fail.Store(true)
	if l, err := s.DeviceList(ctx); err != nil || l.Version != 3 {
		t.Fatalf("DeviceList: %v, %v", l, err)
	}
	st.fail.Store(false)
	ks, err := s.MailboxKeys(ctx)
	if err != nil || len(ks) != 2 {
		t.Fatalf("MailboxKeys: %+v, %v", ks, err)
	}
	if k := ks[0]; !k.Since.Equal(t0) || !k.Until.Equal(t2) {
		t.Errorf("epoch 1's key: since %v until %v, want since %v until %v", k.Since, k.Until, t0, t2)
	}
	if k := ks[1]; !k.Since.Equal(t2) {
		t.Errorf("epoch 2's key: since %v, want %v", k.Since, t2)
	}
}

// TestOwnListUpgradeOverwritten: an admin signed the list with the
// mailbox key; another admin still on an older binary (or a write racing
// the upgrade) then stores the list of that version without it. The
// upkeep must sign it again with the key: every device that is not this
// admin hands out the list held (cards, envelopes), and without the key
// no contact that gets it can write to the pair's mailboxes.
func TestOwnListUpgradeOverwritten(t *testing.T) {
	ctx := t.Context()
	now := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := newIndexStore(t)
	s, c := newAdmin(t, st, now, nil)
	l, err := s.DeviceList(ctx)
	if err != nil || l.Mailbox == nil {
		t.Fatalf("DeviceList: %v, %v", l, err)
	}
	old := contact.NewDeviceList(c.r.Cell, c.r.Version, []peer.ID{c.r.Members[0].Peer})
	if err := old.Sign(c.key); err != nil {
		t.Fatal(err)
	}
	writeOwn(t, st, old)
	// The admin is asked for its list (a card, a message): the doc says
	// the held list without the key is signed again then. The upkeep
	// itself looks again only when the roster's version moves.
	if _, err := s.DeviceList(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := s.readHeldList(ctx, c.Roster())
	if err != nil || o.l == nil || o.l.Mailbox == nil {
		t.Fatalf("held after DeviceList: %v, %v; want the list with the key again", o.l, err)
	}
	writeOwn(t, st, old)
	if err := s.keepUp(ctx); err != nil {
		t.Fatal(err)
	}
	o, err = s.readHeldList(ctx, c.Roster())
	if err != nil || o.l == nil || o.l.Mailbox == nil {
		t.Fatalf("held after the upkeep: %v, %v; want the list with the key again", o.l, err)
	}
}

// TestMailboxKeysPastEpoch: until the admin next writes the document, a
// keys record naming an epoch past the roster's (written by any member:
// the record is not signed) must not end the current key's time: no list
// carried a newer key, so Until is zero and the reader keeps polling it.
func TestMailboxKeysPastEpoch(t *testing.T) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := newIndexStore(t)
	s, c := newAdmin(t, st, &clock{t: t0}, nil)
	l, err := s.DeviceList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A member writes the list held again with a made-up record.
	keys := `[{"epoch":1,"since":"2026-03-01T12:00:00Z"},{"epoch":7,"since":"2000-01-01T00:00:00Z"}]`
	doc, err := json.Marshal(devicesDoc{Cell: hex.EncodeToString(l.Cell), Version: l.Version,
		List: base64.StdEncoding.EncodeToString(l.Encode()), Keys: json.RawMessage(keys)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, devicesEntity(l.Cell), []store.Trait{{Type: DevicesType, Doc: doc}}); err != nil {
		t.Fatal(err)
	}
	ks, err := s.MailboxKeys(ctx)
	if err != nil || len(ks) != 1 || !ks[0].Current || c.Roster().Epoch != 1 {
		t.Fatalf("MailboxKeys: %+v, %v", ks, err)
	}
	if !ks[0].Since.Equal(t0) || !ks[0].Until.IsZero() {
		t.Errorf("the current key: since %v until %v; want since %v, no until", ks[0].Since, ks[0].Until, t0)
	}
}
