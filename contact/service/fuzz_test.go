package service

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// testList is a signed device list of one device, version v.
func testList(t testing.TB, v uint64) *contact.DeviceList {
	t.Helper()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	nk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 1)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(nk)
	if err != nil {
		t.Fatal(err)
	}
	l := contact.NewDeviceList(key.Public().(ed25519.PublicKey), v, []peer.ID{id})
	if err := l.Sign(key); err != nil {
		t.Fatal(err)
	}
	return l
}

// FuzzDecodeContact: a stored exo.contact document (another device of
// the cell wrote it) is a contact or skipped, never a panic; one that
// decodes names a verified list of the entity's cell.
func FuzzDecodeContact(f *testing.F) {
	l := testList(f, 3)
	good, err := json.Marshal(contactDoc{
		Name: "Bob", Cell: hex.EncodeToString(l.Cell), Version: 3,
		Devices: base64.StdEncoding.EncodeToString(l.Encode()), Added: time.Unix(1, 0).UTC(),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, true)
	f.Add([]byte(`{"name":"Bob","devices":"AAAA"}`), true)
	f.Fuzz(func(t *testing.T, doc []byte, derived bool) {
		id := store.EntityID{1}
		if derived {
			id = contactEntity(l.Cell)
		}
		c, ok := decodeContact(store.Entity{ID: id, Traits: []store.Trait{{Type: ContactType, ID: ContactType, Doc: doc}}})
		if !ok {
			return
		}
		if err := c.Devices.Verify(); err != nil || contactEntity(c.Cell()) != id || !contact.ValidName(c.Name) {
			t.Fatalf("decoded a contact that does not hold: %+v, %v", c, err)
		}
	})
}

func TestDecodeContactRefuses(t *testing.T) {
	l := testList(t, 3)
	doc := func(name string, devices []byte) []byte {
		b, _ := json.Marshal(contactDoc{Name: name, Devices: base64.StdEncoding.EncodeToString(devices)})
		return b
	}
	bad := l.Encode()
	bad[len(bad)-1] ^= 1
	for name, tt := range map[string]struct {
		id  store.EntityID
		doc []byte
	}{
		"entity of another cell": {store.EntityID{1}, doc("Bob", l.Encode())},
		"bad signature":          {contactEntity(l.Cell), doc("Bob", bad)},
		"bad name":               {contactEntity(l.Cell), doc("", l.Encode())},
		"not JSON":               {contactEntity(l.Cell), []byte("{")},
	} {
		if _, ok := decodeContact(store.Entity{ID: tt.id, Traits: []store.Trait{{Type: ContactType, Doc: tt.doc}}}); ok {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, ok := decodeContact(store.Entity{ID: contactEntity(l.Cell), Traits: []store.Trait{{Type: ContactType, Doc: doc("Bob", l.Encode())}}}); !ok {
		t.Error("a good document was refused")
	}
}

// FuzzReadKeys: any bytes in an exo.devices document's keys read as
// nothing or as what addKey writes (epochs growing, at most
// maxPublishedKeys), never a panic; what addKey writes reads back.
func FuzzReadKeys(f *testing.F) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	good, err := json.Marshal(addKey(addKey(nil, 1, t0), 3, t0.Add(time.Hour)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`[{"epoch":2,"since":"2026-01-01T00:00:00Z"},{"epoch":1,"since":"2026-01-02T00:00:00Z"}]`))
	f.Add([]byte(`"x"`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks := readKeys(b)
		if len(ks) > maxPublishedKeys {
			t.Fatalf("%d keys read", len(ks))
		}
		for i := 1; i < len(ks); i++ {
			if ks[i].Epoch <= ks[i-1].Epoch {
				t.Fatalf("epochs out of order: %v", ks)
			}
		}
		if again := addKey(ks, 1<<63, t0); len(again) > maxPublishedKeys || again[len(again)-1].Epoch != 1<<63 {
			t.Fatalf("addKey after %v: %v", ks, again)
		}
	})
}
