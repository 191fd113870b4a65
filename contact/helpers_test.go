package contact

import (
	"crypto/ed25519"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// cellKey returns a cell key made from seed byte b.
func cellKey(b byte) ed25519.PrivateKey {
	var seed [ed25519.SeedSize]byte
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed[:])
}

// device returns the peer ID of a node key made from seed byte b.
func device(t testing.TB, b byte) peer.ID {
	t.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(cellKey(b))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// signedList returns cell key b's list of version v over devices ds.
func signedList(t testing.TB, b byte, v uint64, ds ...byte) *DeviceList {
	t.Helper()
	key := cellKey(b)
	var ids []peer.ID
	for _, d := range ds {
		ids = append(ids, device(t, d))
	}
	l := NewDeviceList(key.Public().(ed25519.PublicKey), v, ids)
	if err := l.Sign(key); err != nil {
		t.Fatal(err)
	}
	return l
}
