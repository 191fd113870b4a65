package service_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/internal/nodetest"
	"github.com/exopeer/exopeer/store"
)

// TestRemovedDeviceAtOnce: a contact's device that a newer device list
// drops gets nothing more as soon as that list is in this node's index,
// though the contacts are kept in memory: the list is written as a chain
// sync from another device of the cell would bring it (through the
// store, not through the contact service), and ByDevice of the dropped
// device names no contact right after the write returns. So does a
// contact deleted through the store.
func TestRemovedDeviceAtOnce(t *testing.T) {
	ctx := t.Context()
	n := nodetest.CellNode(t, 71)
	cons, st := n.Contacts(), n.Store()
	bobKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xb7))
	bob := bobKey.Public().(ed25519.PublicKey)
	b0, bx := devicePeer(t, 1), devicePeer(t, 2)
	list := func(v uint64, ds ...peer.ID) *contact.DeviceList {
		l := contact.NewDeviceList(bob, v, ds)
		if err := l.Sign(bobKey); err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, err := cons.Add(ctx, (&contact.Card{Name: "Bob", Devices: list(1, b0, bx)}).Text(), "")
	if err != nil {
		t.Fatal(err)
	}
	names := func(id peer.ID) []string {
		t.Helper()
		cs, err := cons.ByDevice(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, fmt.Sprintf("%s v%d", c.Name, c.Devices.Version))
		}
		return out
	}
	if got := names(bx); len(got) != 1 || got[0] != "Bob v1" {
		t.Fatalf("ByDevice of a device on the list: %v", got)
	}
	if got := names(devicePeer(t, 3)); got != nil {
		t.Fatalf("ByDevice of a device on no list: %v", got)
	}

	v2 := list(2, b0)
	doc, err := json.Marshal(map[string]any{"cell": hex.EncodeToString(bob), "version": 2, "list": base64.StdEncoding.EncodeToString(v2.Encode())})
	if err != nil {
		t.Fatal(err)
	}
	trait := store.Trait{Type: "exo.contact.devices", ID: store.TraitID(fmt.Sprintf("devices.%020d", 2)), Doc: doc}
	if _, err := st.Put(ctx, a.Contact.ID, []store.Trait{trait}); err != nil {
		t.Fatal(err)
	}
	if got := names(bx); got != nil {
		t.Errorf("ByDevice of the dropped device right after the newer list's write: %v, want none", got)
	}
	if got := names(b0); len(got) != 1 || got[0] != "Bob v2" {
		t.Errorf("ByDevice of the device kept: %v, want Bob v2", got)
	}
	if c, err := cons.Get(ctx, "Bob"); err != nil {
		t.Errorf("Get after the newer list: %v", err)
	} else if c.Devices.Version != 2 {
		t.Errorf("Get after the newer list: version %d, want 2", c.Devices.Version)
	}

	if _, err := st.Delete(ctx, a.Contact.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := names(b0); got != nil {
		t.Errorf("ByDevice right after the contact's delete: %v, want none", got)
	}
	if cs, err := cons.List(ctx); err != nil || len(cs) != 0 {
		t.Errorf("List after the contact's delete: %d, %v", len(cs), err)
	}
}

// devicePeer is the peer ID of an Ed25519 key from seed byte b.
func devicePeer(t *testing.T, b byte) peer.ID {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = b, 0xd7
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
