package ratchet_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"

	"github.com/exopeer/exopeer/ratchet"
)

// A PQXDH handshake as the shells make it: Bob publishes a bundle, Alice
// verifies it, encapsulates to its ML-KEM key with crypto/mlkem and sends
// the initial header; Bob answers it and stores his changed prekeys.
func Example_handshake() {
	const now = 1_790_000_000
	rng := rand.NewChaCha8([32]byte{1}) // a shell passes crypto/rand.Reader
	aliceKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	bobKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))

	alice, _ := ratchet.NewPrekeys(rng, now)
	bob, _ := ratchet.NewPrekeys(rng, now)
	bob.Replenish(rng, 10)
	published, _ := bob.Bundle(bobKey, 1)
	record, _ := published.MarshalBinary() // the DHT record

	bundle, err := ratchet.VerifyBundle(record)
	if err != nil {
		panic(err)
	}
	ek, _ := bundle.KEM.EncapsulationKey()
	ss, ct := ek.Encapsulate()
	secretA, adA, header, _ := ratchet.InitiateSecret(&ratchet.Exopeer, rng, aliceKey, alice, bundle,
		&ratchet.Encapsulation{SharedKey: ss, Ciphertext: ct})
	wire, _ := header.MarshalBinary()

	received, first, err := ratchet.ParseInitialHeader(append(wire, "first message"...))
	if err != nil {
		panic(err)
	}
	secretB, adB, _, err := ratchet.RespondSecret(&ratchet.Exopeer, bobKey.Public().(ed25519.PublicKey), bob, received, now+60)
	fmt.Println(err, secretA == secretB, bytes.Equal(adA, adB), string(first), bob.OneTimeCount())
	_, _, _, err = ratchet.RespondSecret(&ratchet.Exopeer, bobKey.Public().(ed25519.PublicKey), bob, received, now+61)
	fmt.Println("again:", err)
	// Output:
	// <nil> true true first message 9
	// again: ratchet: message refused
}
