package discovery

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// memberIDs returns n distinct peer IDs (not keys: ranking needs only IDs).
func memberIDs(n int) []peer.ID {
	ids := make([]peer.ID, n)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("member %d", i))
	}
	return ids
}

// advertisersOf returns the members of group that advertise in epoch
// when each is connected to every other member of group.
func advertisersOf(secret []byte, epoch uint64, group []peer.ID, k int) []peer.ID {
	var out []peer.ID
	for _, id := range group {
		others := slices.DeleteFunc(slices.Clone(group), func(o peer.ID) bool { return o == id })
		if advertises(secret, epoch, id, others, k) {
			out = append(out, id)
		}
	}
	return out
}

// TestAdvertiserChoice: in a cell whose members are all connected, exactly
// k advertise in each epoch, a different choice from epoch to epoch, each
// member in some; a member connected to no other always advertises; each
// group of a partition has its own k.
func TestAdvertiserChoice(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	ids := memberIDs(8)
	const epochs, k = 96, 2
	times := make(map[peer.ID]int)
	sets := make(map[string]bool)
	for e := uint64(1000); e < 1000+epochs; e++ {
		adv := advertisersOf(secret, e, ids, k)
		if len(adv) != k {
			t.Fatalf("epoch %d: %d advertisers %v, want %d", e, len(adv), adv, k)
		}
		for _, id := range adv {
			times[id]++
		}
		sets[fmt.Sprint(adv)] = true
		for _, id := range ids {
			if !advertises(secret, e, id, nil, k) {
				t.Errorf("epoch %d: %s alone does not advertise", e, id)
			}
		}
		left, right := ids[:3], ids[3:]
		if n := len(advertisersOf(secret, e, left, k)) + len(advertisersOf(secret, e, right, k)); n != 2*k {
			t.Errorf("epoch %d: %d advertisers in a partition of two groups, want %d", e, n, 2*k)
		}
	}
	for _, id := range ids {
		if times[id] == 0 {
			t.Errorf("%s never advertised in %d epochs", id, epochs)
		}
	}
	if len(sets) < epochs/4 {
		t.Errorf("only %d distinct advertiser sets in %d epochs", len(sets), epochs)
	}
	// Another secret (another cell, or the next key epoch) chooses
	// independently.
	other := bytes.Repeat([]byte{8}, 32)
	same := 0
	for e := uint64(0); e < epochs; e++ {
		if slices.Equal(advertisersOf(secret, e, ids, k), advertisersOf(other, e, ids, k)) {
			same++
		}
	}
	if same > epochs/4 {
		t.Errorf("two secrets chose the same advertisers in %d of %d epochs", same, epochs)
	}
}

// TestRendezvousMembersAdvertiseFew: of four members connected to each
// other, only the epoch's two chosen ones advertise and look up the cell's
// key; a fifth member, connected to none, advertises, looks up, and finds
// the cell.
func TestRendezvousMembersAdvertiseFew(t *testing.T) {
	verifyNoLeaks(t)
	dht := newFakeDHT()
	cfg := longEpochs()
	cfg.RendezvousAdvertisers = 2
	secret := bytes.Repeat([]byte{9}, 32)
	var nodes []*node
	members := make(map[peer.ID]bool)
	for range 5 {
		n := rendezvousNode(t, dht, cfg)
		nodes = append(nodes, n)
		members[n.h.ID()] = true
	}
	isMember := func(id peer.ID) bool { return members[id] }
	group, late := nodes[:4], nodes[4]
	for i, a := range group {
		for _, b := range group[i+1:] {
			if err := a.h.Connect(t.Context(), info(b.h)); err != nil {
				t.Fatal(err)
			}
		}
	}
	epoch := Epoch(time.Now(), cfg.RendezvousEpoch)
	key := RendezvousKey(secret, epoch)
	var ids []peer.ID
	for _, n := range group {
		ids = append(ids, n.h.ID())
		n.svc.RendezvousMembers(secret, isMember)
	}
	chosen := advertisersOf(secret, epoch, ids, 2)
	for _, id := range chosen {
		eventually(t, 10*time.Second, "the chosen members advertising", func() bool { return dht.provides(id, key) })
	}
	// A few more rounds of the chosen ones: nobody else joined them.
	n := dht.lookups(chosen[0])
	eventually(t, 10*time.Second, "a few more rounds", func() bool { return dht.lookups(chosen[0]) >= n+4 })
	for _, id := range ids {
		if slices.Contains(chosen, id) {
			continue
		}
		if dht.provides(id, key) || len(dht.calls(id)) != 0 {
			t.Errorf("%s, not chosen in epoch %d, advertised", id, epoch)
		}
		if got := dht.lookups(id); got != 0 {
			t.Errorf("%s, not chosen in epoch %d, looked the cell up %d times", id, epoch, got)
		}
	}

	late.svc.RendezvousMembers(secret, isMember)
	eventually(t, 10*time.Second, "the late member connected to the cell", func() bool {
		for _, id := range chosen {
			if late.h.Network().Connectedness(id) == network.Connected {
				return true
			}
		}
		return false
	})
	if !slices.ContainsFunc(dht.calls(late.h.ID()), func(c routerCall) bool { return c.Op == "provide" && c.Key.Equals(key) }) {
		t.Error("the late member, alone, did not advertise")
	}
}

// BenchmarkAdvertises: the choice a member makes every round, connected to
// the other members of a cell of 10, and of 1,024 (cell.MaxMembers).
func BenchmarkAdvertises(b *testing.B) {
	secret := bytes.Repeat([]byte{7}, 32)
	for _, n := range []int{10, 1024} {
		ids := memberIDs(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				advertises(secret, uint64(i), ids[0], ids[1:], 2)
			}
		})
	}
}
