package main

import (
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
)

// TestChainStatusBounds: status shows the fork evidence, the bytes of the
// entries waiting for their parents, and what the bounds refused or
// dropped.
func TestChainStatusBounds(t *testing.T) {
	c1 := api.Link{CID: "bafyreiaium5w7nbkfbmwas23c6huh45z5m7zb4xidncqzntypcxk2akzzy"}
	c2 := api.Link{CID: "bafyreib4ql74yf3z3d3erg5iwrsnzut6x3dnxou6aczzsbz55fs5ik3n4a"}
	forker := "12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh"
	st := api.ChainStatus{
		Cell: "cell", Length: 3, Waiting: 2, WaitingBytes: 3 << 20,
		Forks: []api.ChainForkStatus{{Author: forker, Seq: 2, CIDs: []api.Link{c1, c2}}},
		Sync:  api.ChainSyncStats{ForkRefused: 7, WaitingDropped: 5, WaitingDroppedAuthor: 4},
	}
	var b strings.Builder
	if err := printChainStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"2 waiting for their parents (3.0 MiB)",
		"forked: " + forker + " wrote two entries with seq 2: " + c1.String(),
		"7 entries refused as forks past the two kept",
		"5 entries dropped while waiting for their parents (4 over their author's share)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}
