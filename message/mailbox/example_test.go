package mailbox_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
)

// Alice's cell leaves a frame for Bob's cell in today's first slot; Bob's
// cell, computing the same slot from its side, opens it.
func Example() {
	key := func(b byte) (ed25519.PublicKey, *ecdh.PrivateKey) { // a cell key, a mailbox key
		box, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{b + 1}, 32))
		return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)).Public().(ed25519.PublicKey), box
	}
	device := func(b byte) peer.ID { // a device's peer ID
		k, _ := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)))
		id, _ := peer.IDFromPrivateKey(k)
		return id
	}
	alicePhone, bobPhone := device(3), device(4)
	alice, aliceBox := key(1)
	bob, bobBox := key(2)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	pa, _ := mailbox.PairSecret(aliceBox, alice, bob, bobBox.PublicKey())
	out, _ := mailbox.NewSlot(pa, alice, bob, mailbox.Epoch(now), 0)
	value, _ := out.Seal([]mailbox.Entry{mailbox.Frame(message.ID{7}, alicePhone, bobPhone, []byte("a ratchet frame"))}, 1, rand.NewChaCha8([32]byte{}))
	// The shell signs value with out.Owner() (dht.SealRecord) and puts it
	// under out.RecordKey().

	pb, _ := mailbox.PairSecret(bobBox, bob, alice, aliceBox.PublicKey())
	in, _ := mailbox.NewSlot(pb, alice, bob, mailbox.Epoch(now), 0)
	entries, err := in.Open(value, 1)
	fmt.Println(in.RecordKey() == out.RecordKey(), len(value), err)
	fmt.Printf("%s %v %v %q\n", entries[0].ID, entries[0].From == alicePhone, entries[0].To == bobPhone, entries[0].Frame)
	// Output:
	// true 1024 <nil>
	// 07000000000000000000000000000000 true true "a ratchet frame"
}
