package mailbox

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/message"
)

// cell is one side of a pair: its Ed25519 cell key and mailbox key.
type cell struct {
	pub ed25519.PublicKey
	box *ecdh.PrivateKey
}

// newCell makes a cell whose keys are filled with b.
func newCell(t testing.TB, b byte) cell {
	t.Helper()
	box, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{b ^ 0xa5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return cell{pub: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)).Public().(ed25519.PublicKey), box: box}
}

// pair computes a's side of the pair a, b.
func pair(t testing.TB, a, b cell) Pair {
	t.Helper()
	p, err := PairSecret(a.box, a.pub, b.pub, b.box.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func slot(t testing.TB, p Pair, from, to cell, epoch uint64, index int) Slot {
	t.Helper()
	s, err := NewSlot(p, from.pub, to.pub, epoch, index)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seeded returns a deterministic random stream; the seed is printed on
// failure.
func seeded(t testing.TB) *rand.ChaCha8 {
	t.Helper()
	var seed [32]byte
	seed[0] = 14
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %x", seed)
		}
	})
	return rand.NewChaCha8(seed)
}

// device returns the peer ID of the Ed25519 key whose seed is filled
// with b.
func device(b byte) peer.ID {
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		panic(err)
	}
	return id
}

// devA and devB are the sealing and target devices of test entries.
var devA, devB = device(0xda), device(0xdb)

// header is the length of a test frame entry without its frame.
var header = 1 + message.IDSize + 1 + len(devA) + 1 + len(devB) + 2

// entries returns n frame entries from devA to devB with frames of size
// bytes each.
func entries(n, size int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Frame(message.ID{byte(i), byte(i >> 8), 1}, devA, devB, bytes.Repeat([]byte{byte(i + 1)}, size))
	}
	return es
}

// deviceKey returns the Ed25519 key whose seed is filled with b (device
// gives its peer ID).
func deviceKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32))
}

// cellKey returns the Ed25519 cell key of newCell(b).
func cellKey(b byte) ed25519.PublicKey { return deviceKey(b).Public().(ed25519.PublicKey) }

// ackBy is the device of cell 2 (newCell(2)) that signs test acks of
// messages from cell 1.
var ackBy = deviceKey(0xdc)

// mustAck returns the ack of id signed by ackBy.
func mustAck(id message.ID) Entry {
	e, err := Ack(ackBy, cellKey(2), cellKey(1), id)
	if err != nil {
		panic(err)
	}
	return e
}

// acks returns n ack entries.
func acks(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = mustAck(message.ID{byte(i), byte(i >> 8), 2})
	}
	return es
}
