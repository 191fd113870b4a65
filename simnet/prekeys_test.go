package simnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/prekey"
	"github.com/exopeer/exopeer/ratchet"
)

// bundleBytes is b's encoding.
func bundleBytes(b *ratchet.Bundle) []byte {
	enc, _ := b.MarshalBinary()
	return enc
}

// dhtBundle is the bundle of nd on the DHT, as from reads it (verified),
// or nil.
func dhtBundle(from, nd *Node) *ratchet.Bundle {
	v, err := from.Peer().DHT().GetRecord(context.Background(), nd.ID, prekey.RecordName)
	if err != nil {
		return nil
	}
	b, err := ratchet.VerifyBundle(v)
	if err != nil {
		return nil
	}
	return b
}

// consume answers n initial messages to nd's current bundle through its
// prekeys, as the messaging service will, each from a new initiator; it
// returns the one-time prekey ids used.
func consume(t *testing.T, nd *Node, n int) []uint32 {
	t.Helper()
	svc := nd.Peer().Prekeys()
	self := ed25519.PublicKey(svc.Bundle().SigningKey[:])
	var used []uint32
	for i := range n {
		seed := sha256.Sum256(fmt.Appendf(nil, "initiator %d of node %d", i, nd.Index))
		r := rand.NewChaCha8(seed)
		ours, err := ratchet.NewPrekeys(r, time.Now().Unix())
		if err != nil {
			t.Fatal(err)
		}
		_, _, h, err := ratchet.InitiateSecret(&ratchet.Exopeer, r, ed25519.NewKeyFromSeed(seed[:]), ours, svc.Bundle(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Accept(context.Background(), func(k *ratchet.Prekeys, now int64) error {
			_, _, _, err := ratchet.RespondSecret(&ratchet.Exopeer, self, k, h, now)
			return err
		}); err != nil {
			t.Fatalf("initial message %d: %v", i, err)
		}
		used = append(used, h.PrekeyID)
	}
	return used
}

// awaitPublished waits until every node of nodes has stored its bundle
// on the DHT.
func awaitPublished(t *testing.T, nodes []*Node) {
	t.Helper()
	if took, ok := waitUntil(5*time.Minute, time.Second, func() bool {
		for _, nd := range nodes {
			if nd.Peer().Prekeys().Stats().Published == 0 {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("seed %d: not every bundle published after %v", nodes[0].net.Seed(), took)
	}
}

// TestPrekeys: six full nodes on a DHT. Each publishes its bundle; a node
// fetches another's directly while connected and through the DHT once it
// is down; a bystander that serves another node's bundle as its own is
// refused (and its own record taken); a silent asker is cut off; the
// state survives a restart; consuming one-time prekeys below the
// low-water mark leads to replenishment and a republished bundle.
func TestPrekeys(t *testing.T) {
	const seed = 37
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes, err := addTree(ctx, n, 6)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		awaitPublished(t, nodes)
		first := make([]*ratchet.Bundle, len(nodes))
		for i, nd := range nodes {
			first[i] = nd.Peer().Prekeys().Bundle()
			if got := dhtBundle(nodes[(i+1)%len(nodes)], nd); got == nil || !bytes.Equal(bundleBytes(got), bundleBytes(first[i])) {
				t.Fatalf("seed %d: node %d's bundle is not on the DHT", seed, i)
			}
		}

		// Directly, while connected.
		a, b := nodes[0], nodes[1]
		if err := connectByHand(ctx, b, a.AddrInfo()); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		got, err := b.Peer().Prekeys().Fetch(ctx, a.ID)
		if err != nil {
			t.Fatalf("seed %d: fetch 1 → 0: %v", seed, err)
		}
		if st := b.Peer().Prekeys().Stats(); st.Direct != 1 || st.FromDHT != 0 || !bytes.Equal(bundleBytes(got), bundleBytes(first[0])) {
			t.Fatalf("seed %d: fetch 1 → 0 while connected: %+v", seed, st)
		}

		// Through the DHT, once the node is down; its state survives the
		// restart.
		c, d := nodes[2], nodes[3]
		if err := n.Crash(c); err != nil {
			t.Fatal(err)
		}
		if connectedness(d, c) == network.Connected {
			t.Fatalf("seed %d: connected to a crashed node", seed)
		}
		got, err = d.Peer().Prekeys().Fetch(ctx, c.ID)
		if err != nil {
			t.Fatalf("seed %d: fetch 3 → 2 (down): %v", seed, err)
		}
		if st := d.Peer().Prekeys().Stats(); st.FromDHT != 1 || st.Direct != 0 || !bytes.Equal(bundleBytes(got), bundleBytes(first[2])) {
			t.Fatalf("seed %d: fetch 3 → 2 through the DHT: %+v", seed, st)
		}
		if err := n.Restart(ctx, c); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bundleBytes(c.Peer().Prekeys().Bundle()), bundleBytes(first[2])) {
			t.Fatalf("seed %d: node 2's bundle changed across a restart", seed)
		}

		// A bystander serving node 5's bundle as its own.
		by, other := nodes[4], nodes[5]
		theirs := bundleBytes(other.Peer().Prekeys().Bundle())
		by.Peer().Host().SetStreamHandler(prekey.Protocol, func(st network.Stream) {
			_, _ = io.ReadAll(st)
			_, _ = st.Write(append([]byte{1, byte(len(theirs) >> 8), byte(len(theirs))}, theirs...))
			_ = st.Close()
		})
		if err := connectByHand(ctx, d, by.AddrInfo()); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		before := d.Peer().Prekeys().Stats()
		got, err = d.Peer().Prekeys().Fetch(ctx, by.ID)
		if err != nil {
			t.Fatalf("seed %d: fetch 3 → 4 (bystander): %v", seed, err)
		}
		after := d.Peer().Prekeys().Stats()
		if after.Refused != before.Refused+1 || after.Direct != before.Direct || after.FromDHT != before.FromDHT+1 {
			t.Fatalf("seed %d: the bystander's answer was not refused: %+v then %+v", seed, before, after)
		}
		if !bytes.Equal(bundleBytes(got), bundleBytes(first[4])) {
			t.Fatalf("seed %d: fetch 3 → 4 took another bundle than node 4's own", seed)
		}

		// A silent asker: the stream is reset at the server's timeout.
		st, err := d.Peer().Host().NewStream(ctx, a.ID, prekey.Protocol)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if _, err := io.ReadAll(st); err == nil {
			t.Fatalf("seed %d: a silent asker's stream ended cleanly", seed)
		}
		_ = st.Close()

		// Replenishment: 26 of 100 used leaves 74, under the low-water mark
		// of 75.
		used := consume(t, a, prekey.DefaultOneTime-prekey.DefaultOneTime*3/4+1)
		var rep *ratchet.Bundle
		if took, ok := waitUntil(5*time.Minute, time.Second, func() bool {
			rep = dhtBundle(b, a)
			return rep != nil && len(rep.OneTime) == prekey.DefaultOneTime && rep.Sequence > first[0].Sequence+uint64(len(used))
		}); !ok {
			t.Fatalf("seed %d: no replenished bundle on the DHT after %v", seed, took)
		}
		for _, id := range used {
			for _, o := range rep.OneTime {
				if o.ID == id {
					t.Fatalf("seed %d: used one-time prekey %d published again", seed, id)
				}
			}
		}
	})
}

// TestPrekeysRotate: after 7 virtual days each node has rotated its
// signed prekey, stored it and republished its bundle with a new signed
// prekey and a higher sequence number, which the other reads on the DHT.
// Two nodes only: 7 virtual days of every part's timers cost wall time.
func TestPrekeysRotate(t *testing.T) {
	const seed = 41
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes, err := addTree(ctx, n, 2)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		awaitPublished(t, nodes)
		first := []*ratchet.Bundle{nodes[0].Peer().Prekeys().Bundle(), nodes[1].Peer().Prekeys().Bundle()}
		due := time.Unix(min(first[0].Signed.Created, first[1].Signed.Created)+ratchet.RotationPeriod, 0)
		time.Sleep(time.Until(due) - time.Minute)
		for i, nd := range nodes {
			if got := nd.Peer().Prekeys().Bundle(); got.Signed.ID != first[i].Signed.ID {
				t.Fatalf("seed %d: node %d rotated before 7 days", seed, i)
			}
		}
		time.Sleep(2 * time.Minute) // both due now
		for i, nd := range nodes {
			if took, ok := waitUntil(5*time.Minute, time.Second, func() bool {
				got := dhtBundle(nodes[1-i], nd)
				return got != nil && got.Signed.ID == first[i].Signed.ID+1 && got.Signed.Key != first[i].Signed.Key &&
					got.Sequence > first[i].Sequence
			}); !ok {
				t.Fatalf("seed %d: node %d's rotated bundle not on the DHT after 7 days and %v", seed, i, took)
			}
			if got := nd.Peer().Prekeys().Bundle(); got.Signed.Created < first[i].Signed.Created+ratchet.RotationPeriod {
				t.Fatalf("seed %d: node %d's new signed prekey made at %d, before its rotation was due", seed, i, got.Signed.Created)
			}
		}
	})
}
