package replica_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
)

// TestForkFloodRefusedNotBanned: a member sends many entries of one
// author with one sequence number. The node keeps two, reports the fork
// once, counts the others as refused forks, and does not cut the member
// off (it may only be relaying them).
func TestForkFloodRefusedNotBanned(t *testing.T) {
	fast := replica.Config{SyncInterval: time.Hour, AnnounceDelay: 10 * time.Millisecond, BanTime: time.Hour}
	a := realNode(t, 7, t.TempDir(), fast)
	relay := realNode(t, 8, t.TempDir(), fast)
	makeCell(t, a, relay)
	ctx := t.Context()
	ro, keys := relay.Cell().Roster(), relay.Cell().Keys()
	secret, ok := keys.Secret(ro.Epoch)
	if !ok {
		t.Fatal("no secret for the roster's epoch")
	}
	// The relay's own key writes ten first entries: nine forks.
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	var raw [][]byte
	for i := range 10 {
		e, err := chain.Write(chain.Draft{Cell: ro.Cell, Seq: 1, Clock: 1, Epoch: ro.Epoch}, key, secret[:], fmt.Appendf(nil, "fork %d", i), newRand(uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, e.Bytes())
	}
	relay.Host().SetStreamHandler(replica.ProtocolSync, func(s network.Stream) {
		defer s.Close()
		w := bufio.NewWriter(s)
		w.Write(chain.AppendFrame(nil, chain.FrameEntries, chain.EntriesBody(raw)))
		w.Write(chain.AppendFrame(nil, chain.FrameDone, chain.DoneBody(10)))
		w.Flush()
	})
	for range 2 {
		if err := a.Chain().Pull(ctx, relay.ID()); err != nil {
			t.Fatalf("Pull: %v", err)
		}
	}
	st, err := a.Chain().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != chain.MaxForkWidth || len(st.Forks) != 1 || len(st.Forks[0].CIDs) != chain.MaxForkWidth {
		t.Fatalf("length %d, forks %+v: want the two entries kept as evidence", st.Length, st.Forks)
	}
	if st.Sync.Banned != 0 || st.Sync.Rejected != 0 || st.Sync.ForkRefused != 2*(10-chain.MaxForkWidth) {
		t.Fatalf("sync stats %+v: want no ban, no invalid entry, %d refused forks", st.Sync, 2*(10-chain.MaxForkWidth))
	}
}

// TestWaitingBudgetCounted: a member sends entries whose parents never
// come; the node keeps them up to its waiting budget, per author and
// overall, and counts what it dropped, with the reason.
func TestWaitingBudgetCounted(t *testing.T) {
	const size = 8 << 10
	fast := replica.Config{SyncInterval: time.Hour, AnnounceDelay: 10 * time.Millisecond, BanTime: time.Hour,
		Waiting: chain.Limits{WaitingBytes: 6 * size, AuthorBytes: 3 * size}}
	a := realNode(t, 9, t.TempDir(), fast)
	relay := realNode(t, 10, t.TempDir(), fast)
	makeCell(t, a, relay)
	ctx := t.Context()
	ro, keys := relay.Cell().Roster(), relay.Cell().Keys()
	secret, _ := keys.Secret(ro.Epoch)
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{10}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	// The relay's second, third, ... entries, without its first: each
	// waits for the one before.
	var first *chain.Entry
	var raw [][]byte
	prev := chain.Draft{Cell: ro.Cell, Seq: 1, Clock: 1, Epoch: ro.Epoch}
	for i := range 6 {
		e, err := chain.Write(prev, key, secret[:], make([]byte, size), newRand(uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = e
		} else {
			raw = append(raw, e.Bytes())
		}
		prev = chain.Draft{Cell: ro.Cell, Seq: e.Seq + 1, Clock: e.Clock + 1, Parents: []cid.Cid{e.CID()}, Epoch: ro.Epoch}
	}
	serve := func(raw [][]byte) {
		relay.Host().SetStreamHandler(replica.ProtocolSync, func(s network.Stream) {
			defer s.Close()
			w := bufio.NewWriter(s)
			w.Write(chain.AppendFrame(nil, chain.FrameEntries, chain.EntriesBody(raw)))
			w.Write(chain.AppendFrame(nil, chain.FrameDone, chain.DoneBody(6)))
			w.Flush()
		})
	}
	serve(raw)
	if err := a.Chain().Pull(ctx, relay.ID()); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	st, err := a.Chain().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Waiting != 2 || st.WaitingBytes <= 2*size || st.WaitingBytes > 3*size || st.Sync.WaitingDropped != 3 || st.Sync.WaitingDroppedAuthor != 3 || st.Sync.Banned != 0 {
		t.Fatalf("waiting %d (%d bytes), sync stats %+v: want 2 waiting, 3 dropped for the author's share", st.Waiting, st.WaitingBytes, st.Sync)
	}
	// Once the first entry comes, the next pull brings the rest.
	serve(append([][]byte{first.Bytes()}, raw...))
	if err := a.Chain().Pull(ctx, relay.ID()); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if st, _ = a.Chain().Status(ctx); st.Length != 6 || st.Waiting != 0 || st.WaitingBytes != 0 {
		t.Fatalf("length %d, waiting %d (%d bytes): want 6, 0, 0", st.Length, st.Waiting, st.WaitingBytes)
	}
}

// TestForkFloodNotVerified: entries that could only widen a fork past the
// two kept are refused before their signatures are checked (a flood costs
// a decode each, not a verification): even badly signed ones are counted
// as refused forks, and their sender is not cut off.
func TestForkFloodNotVerified(t *testing.T) {
	fast := replica.Config{SyncInterval: time.Hour, AnnounceDelay: 10 * time.Millisecond, BanTime: time.Hour}
	a := realNode(t, 11, t.TempDir(), fast)
	relay := realNode(t, 12, t.TempDir(), fast)
	makeCell(t, a, relay)
	ctx := t.Context()
	ro, keys := relay.Cell().Roster(), relay.Cell().Keys()
	secret, _ := keys.Secret(ro.Epoch)
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{12}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	var raw [][]byte
	for i := range 10 {
		e, err := chain.Write(chain.Draft{Cell: ro.Cell, Seq: 1, Clock: 1, Epoch: ro.Epoch}, key, secret[:], fmt.Appendf(nil, "fork %d", i), newRand(uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		b := bytes.Clone(e.Bytes())
		if i >= chain.MaxForkWidth {
			b[bytes.Index(b, e.Sig)] ^= 1 // still canonical, no longer signed
		}
		raw = append(raw, b)
	}
	relay.Host().SetStreamHandler(replica.ProtocolSync, func(s network.Stream) {
		defer s.Close()
		w := bufio.NewWriter(s)
		w.Write(chain.AppendFrame(nil, chain.FrameEntries, chain.EntriesBody(raw)))
		w.Write(chain.AppendFrame(nil, chain.FrameDone, chain.DoneBody(10)))
		w.Flush()
	})
	if err := a.Chain().Pull(ctx, relay.ID()); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	st, err := a.Chain().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != chain.MaxForkWidth || st.Sync.Banned != 0 || st.Sync.Rejected != 0 || st.Sync.ForkRefused != 10-chain.MaxForkWidth {
		t.Fatalf("length %d, sync stats %+v: want the two kept, %d refused forks, no ban", st.Length, st.Sync, 10-chain.MaxForkWidth)
	}
}
