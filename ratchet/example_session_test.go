package ratchet_test

import (
	"crypto/ecdh"
	"fmt"
	"math/rand/v2"

	"github.com/exopeer/exopeer/ratchet"
)

// Two sides of a conversation after a handshake: the initiator sends
// first, the responder answers, and a stored session goes on.
func ExampleSession() {
	// A shell passes crypto/rand.Reader; a test passes a seeded reader.
	rng := rand.NewChaCha8([32]byte{1})
	// What a handshake (X3DH or PQXDH) leaves both sides with: the Secret,
	// the associated data, and the responder's signed prekey pair.
	var secret ratchet.Secret
	rng.Read(secret.Root[:])
	rng.Read(secret.HeaderA[:])
	rng.Read(secret.HeaderB[:])
	ad := []byte("exopeer-ad-v1 and both identity keys")
	var seed [32]byte
	rng.Read(seed[:])
	prekey, _ := ecdh.X25519().NewPrivateKey(seed[:])

	alice, err := ratchet.NewInitiator(&ratchet.Exopeer, rng, secret, ad, prekey.PublicKey())
	if err != nil {
		panic(err)
	}
	bob, err := ratchet.NewResponder(&ratchet.Exopeer, secret, ad, prekey)
	if err != nil {
		panic(err)
	}

	m1, _ := alice.Encrypt(rng, []byte("hello bob"))
	p1, _ := bob.Decrypt(m1)
	fmt.Printf("bob reads %q (%d bytes on the wire)\n", p1, len(m1))

	m2, _ := bob.Encrypt(rng, []byte("hello alice"))
	stored, _ := alice.MarshalBinary() // alice's device restarts
	var restored ratchet.Session
	if err := restored.UnmarshalBinary(stored); err != nil {
		panic(err)
	}
	p2, _ := restored.Decrypt(m2)
	fmt.Printf("alice reads %q\n", p2)

	_, err = bob.Decrypt(m1) // a replay
	fmt.Println(err)
	// Output:
	// bob reads "hello bob" (94 bytes on the wire)
	// alice reads "hello alice"
	// ratchet: message refused
}
