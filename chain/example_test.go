package chain_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"

	"github.com/exopeer/exopeer/chain"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// members is a Roster: its members may write in every epoch.
type members map[peer.ID]bool

func (m members) CanAuthor(id peer.ID, epoch uint64) bool { return m[id] }

// Cutoff: nobody was removed.
func (m members) Cutoff(peer.ID) (uint64, []cid.Cid, bool) { return 0, nil, false }

// A member writes two entries; another node decodes and verifies them,
// adds them to its chain, and reads the chain in order.
func Example() {
	// The cell's key and its secret of epoch 1; a member node's key.
	cell, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	secrets := func(epoch uint64) ([]byte, bool) { return secret, epoch == 1 }
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	author, err := peer.IDFromPrivateKey(key)
	if err != nil {
		log.Fatal(err)
	}
	roster := members{author: true}

	// The author writes on its own State.
	mine := chain.NewState(cell)
	var blocks [][]byte
	for _, text := range []string{"hello", "world"} {
		e, err := chain.Write(mine.Next(author, cell, 1), key, secret, []byte(text), rand.Reader)
		if err != nil {
			log.Fatal(err)
		}
		mine.Add([]*chain.Entry{e})
		blocks = append(blocks, e.Bytes())
	}

	// Another member receives the blocks, newest first.
	theirs := chain.NewState(cell)
	store := make(map[cid.Cid]*chain.Entry)
	for i := len(blocks) - 1; i >= 0; i-- {
		e, err := chain.Decode(blocks[i])
		if err != nil {
			log.Fatal(err)
		}
		if _, err := chain.Verify(e, cell, roster, secrets); err != nil {
			log.Fatal(err)
		}
		rd := theirs.Add([]*chain.Entry{e})
		fmt.Printf("accepted %d, waiting %d\n", len(rd.Accepted), rd.Waiting)
		for _, a := range rd.Accepted {
			store[a.CID()] = a
		}
	}

	// The chain, in order.
	for _, c := range theirs.Log(chain.Pos{}, 10) {
		e := store[c]
		text, err := chain.Open(e, secrets)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("seq %d clock %d: %s\n", e.Seq, e.Clock, text)
	}
	// Output:
	// accepted 0, waiting 1
	// accepted 2, waiting 0
	// seq 1 clock 1: hello
	// seq 2 clock 2: world
}
