package message

import (
	"crypto/ed25519"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
)

// seeded returns 32 bytes made from b, for deterministic keys.
func seeded(b byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b
	}
	return s
}

// deviceID returns the peer ID of the Ed25519 key seeded by b.
func deviceID(t testing.TB, b byte) peer.ID {
	t.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seeded(b)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// cellKey returns the cell key seeded by b.
func cellKey(b byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seeded(b)) }

// signedList returns the device list of the cell seeded by c, version v,
// of the devices seeded by ds.
func signedList(t testing.TB, c byte, v uint64, ds ...byte) *contact.DeviceList {
	t.Helper()
	ids := make([]peer.ID, len(ds))
	for i, d := range ds {
		ids[i] = deviceID(t, d)
	}
	key := cellKey(c)
	l := contact.NewDeviceList(key.Public().(ed25519.PublicKey), v, ids)
	if err := l.Sign(key); err != nil {
		t.Fatal(err)
	}
	return l
}

// sample returns an envelope of the cell seeded by 1, from its device 10.
func sample(t testing.TB, withList bool) *Envelope {
	t.Helper()
	e := &Envelope{
		ID:     ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Cell:   cellKey(1).Public().(ed25519.PublicKey),
		To:     cellKey(2).Public().(ed25519.PublicKey),
		Device: deviceID(t, 10),
		Sent:   1_790_000_000_123,
		Seq:    7,
		Text:   "hello, Bob ✓",
	}
	if withList {
		e.Devices = signedList(t, 1, 3, 10, 11)
	}
	return e
}
