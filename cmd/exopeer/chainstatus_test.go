package main

import (
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/chain/replica"
)

// TestChainStatusBounds: status shows the fork evidence, the bytes of the
// entries waiting for their parents, and what the bounds refused or
// dropped.
func TestChainStatusBounds(t *testing.T) {
	c1, _ := cid.Decode("bafyreiaium5w7nbkfbmwas23c6huh45z5m7zb4xidncqzntypcxk2akzzy")
	c2, _ := cid.Decode("bafyreib4ql74yf3z3d3erg5iwrsnzut6x3dnxou6aczzsbz55fs5ik3n4a")
	st := replica.Status{
		Cell: "cell", Length: 3, Waiting: 2, WaitingBytes: 3 << 20,
		Forks: []replica.ForkStatus{{Author: "forker", Seq: 2, CIDs: []cid.Cid{c1, c2}}},
		Sync:  replica.Stats{ForkRefused: 7, WaitingDropped: 5, WaitingDroppedAuthor: 4},
	}
	var b strings.Builder
	if err := printChainStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"2 waiting for their parents (3.0 MiB)",
		"forked: " + peer.ID("forker").String() + " wrote two entries with seq 2: " + c1.String(),
		"7 entries refused as forks past the two kept",
		"5 entries dropped while waiting for their parents (4 over their author's share)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}
