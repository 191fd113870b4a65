package service_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/internal/nodetest"
	"github.com/exopeer/exopeer/store"
)

// TestRemovedDeviceBySync: TestRemovedDeviceAtOnce on the path a chain
// sync takes. A contact's newer device list written by another device of
// the cell reaches this node's index through the chain's sync and the
// store's follower, not through a write of this node; once it is in the
// index, ByDevice of the device it dropped names no contact, though this
// node kept the contacts in memory before.
func TestRemovedDeviceBySync(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 81)
	b := nodetest.Join(t, a, 82, cell.RoleChain|cell.RoleStore)
	bobKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xb8))
	bob := bobKey.Public().(ed25519.PublicKey)
	b0, bx := devicePeer(t, 4), devicePeer(t, 5)
	list := func(v uint64, ds ...peer.ID) *contact.DeviceList {
		l := contact.NewDeviceList(bob, v, ds)
		if err := l.Sign(bobKey); err != nil {
			t.Fatal(err)
		}
		return l
	}
	added, err := a.Contacts().Add(ctx, (&contact.Card{Name: "Bob", Devices: list(1, b0, bx)}).Text(), "")
	if err != nil {
		t.Fatal(err)
	}
	named := func(id peer.ID) int {
		t.Helper()
		cs, err := b.Contacts().ByDevice(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	// b gets the contact by sync, and keeps it in memory.
	nodetest.Eventually(t, 30*time.Second, "the contact on b", func() bool { return named(bx) == 1 })
	if _, ok := b.Store().TypesVersion(ctx, "exo.contact"); !ok {
		t.Fatal("b's store cannot tell a version: the contacts are not kept, the test tests nothing")
	}

	v2 := list(2, b0)
	doc, err := json.Marshal(map[string]any{"cell": hex.EncodeToString(bob), "version": 2, "list": base64.StdEncoding.EncodeToString(v2.Encode())})
	if err != nil {
		t.Fatal(err)
	}
	trait := store.Trait{Type: "exo.contact.devices", ID: store.TraitID(fmt.Sprintf("devices.%020d", 2)), Doc: doc}
	if _, err := a.Store().Put(ctx, added.Contact.ID, []store.Trait{trait}); err != nil {
		t.Fatal(err)
	}
	// Wait for the list in b's index (read from the store, not through
	// the contact service), then ask b's contacts.
	nodetest.Eventually(t, 30*time.Second, "the newer list in b's index", func() bool {
		e, err := b.Store().Get(ctx, added.Contact.ID, []string{"exo.contact.devices"})
		if err != nil {
			return false
		}
		for _, tr := range e.Traits {
			if tr.ID == trait.ID {
				return true
			}
		}
		return false
	})
	if n := named(bx); n != 0 {
		t.Errorf("ByDevice on b of the device the synced list dropped: %d contacts, want none", n)
	}
	if n := named(b0); n != 1 {
		t.Errorf("ByDevice on b of the device kept: %d contacts, want 1", n)
	}
}
