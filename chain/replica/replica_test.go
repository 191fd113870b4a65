package replica_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/internal/leaktest"
	exopeer "github.com/exopeer/exopeer/peer"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func logCIDs(t *testing.T, n *exopeer.Node) []cid.Cid {
	t.Helper()
	es, err := n.Chain().Log(t.Context(), chain.Pos{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]cid.Cid, len(es))
	for i, e := range es {
		out[i] = e.CID
	}
	return out
}

// TestTwoNodesConverge: real libp2p on loopback, real leveldb. Both nodes
// append, both end with the same chain in the same order, the payloads
// decrypt, and a restart reloads it.
func TestTwoNodesConverge(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	fast := replica.Config{SyncInterval: 500 * time.Millisecond, AnnounceDelay: 20 * time.Millisecond}
	a := realNode(t, 1, dirA, fast)
	b := realNode(t, 2, dirB, fast)
	if _, err := a.Chain().Append(t.Context(), []byte("before the cell")); !errors.Is(err, replica.ErrNoCell) {
		t.Fatalf("append in no cell: err = %v, want ErrNoCell", err)
	}
	makeCell(t, a, b)
	ctx := t.Context()
	for i := range 20 {
		if _, err := a.Chain().Append(ctx, fmt.Appendf(nil, "a%d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Chain().AppendMany(ctx, [][]byte{fmt.Appendf(nil, "b%d", i), fmt.Appendf(nil, "b%d'", i)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "both nodes hold 60 entries", func() bool {
		return len(logCIDs(t, a)) == 60 && len(logCIDs(t, b)) == 60
	})
	if la, lb := logCIDs(t, a), logCIDs(t, b); !slices.EqualFunc(la, lb, cid.Cid.Equals) {
		t.Fatalf("orders differ:\n%v\n%v", la, lb)
	}
	es, err := b.Chain().Log(ctx, chain.Pos{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range es {
		seen[string(e.Payload)] = true
		if i > 0 && es[i-1].Pos.Compare(e.Pos) >= 0 {
			t.Fatalf("log not in order at %d", i)
		}
	}
	for _, want := range []string{"a0", "a19", "b0'", "b19"} {
		if !seen[want] {
			t.Errorf("payload %q not read back", want)
		}
	}
	st, err := a.Chain().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != 60 || len(st.Authors) != 2 || len(st.Heads) == 0 {
		t.Fatalf("status = %+v", st)
	}
	for _, m := range st.Members {
		if !m.Self && m.Peer == b.ID() {
			eventually(t, 10*time.Second, "a hears b is in sync", func() bool {
				st, _ := a.Chain().Status(ctx)
				for _, m := range st.Members {
					if m.Peer == b.ID() && m.Known && m.Behind == 0 && !m.Ahead {
						return true
					}
				}
				return false
			})
		}
	}
}

// TestRestartKeepsChain: a node reloads its chain from disk, and its
// sequence numbers go on.
func TestRestartKeepsChain(t *testing.T) {
	dir := t.TempDir()
	func() {
		n := realNodeNoCleanup(t, 3, dir)
		defer n.close()
		makeCell(t, n.Node)
		if _, err := n.Chain().AppendMany(t.Context(), [][]byte{[]byte("x"), []byte("y")}); err != nil {
			t.Fatal(err)
		}
	}()
	n := realNodeNoCleanup(t, 3, dir)
	defer n.close()
	e, err := n.Chain().Append(t.Context(), []byte("z"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 3 || e.Index != 2 {
		t.Fatalf("after restart: seq %d index %d, want 3 and 2", e.Seq, e.Index)
	}
	es, err := n.Chain().Log(t.Context(), chain.Pos{}, 10)
	if err != nil || len(es) != 3 || string(es[0].Payload) != "x" || string(es[2].Payload) != "z" {
		t.Fatalf("log after restart = %v, %v", es, err)
	}
}

// TestMalformedPeerIsCutOff: a member whose sync answers are garbage or
// oversized is cut off; the node goes on and syncs with others.
func TestMalformedPeerIsCutOff(t *testing.T) {
	fast := replica.Config{SyncInterval: time.Hour, AnnounceDelay: 10 * time.Millisecond, BanTime: time.Hour}
	a := realNode(t, 4, t.TempDir(), fast)
	bad := realNode(t, 5, t.TempDir(), fast)
	good := realNode(t, 6, t.TempDir(), fast)
	makeCell(t, a, bad, good)
	ctx := t.Context()
	if _, err := good.Chain().Append(ctx, []byte("from good")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		answer func(w *bufio.Writer)
	}{
		{"garbage", func(w *bufio.Writer) { w.WriteString("this is not a frame") }},
		{"oversized frame", func(w *bufio.Writer) {
			w.WriteByte(chain.FrameEntries)
			w.Write(binary.AppendUvarint(nil, chain.MaxFrame+1))
		}},
		{"bad entry", func(w *bufio.Writer) {
			w.Write(chain.AppendFrame(nil, chain.FrameEntries, chain.EntriesBody([][]byte{[]byte("not dag-cbor")})))
		}},
	}
	for i, tc := range cases {
		bad.Host().SetStreamHandler(replica.ProtocolSync, func(s network.Stream) {
			defer s.Close()
			w := bufio.NewWriter(s)
			tc.answer(w)
			w.Flush()
		})
		err := a.Chain().Pull(ctx, bad.ID())
		if err == nil {
			t.Fatalf("%s: Pull succeeded", tc.name)
		}
		st, _ := a.Chain().Status(ctx)
		if st.Sync.Banned != uint64(i+1) || st.Sync.LastBanned != bad.ID() {
			t.Fatalf("%s: sync stats %+v, want %d bans of %s", tc.name, st.Sync, i+1, bad.ID())
		}
		if err := a.Chain().Pull(ctx, bad.ID()); err == nil {
			t.Fatalf("%s: a banned member was pulled from", tc.name)
		}
		// Lift the ban for the next case: a restart of the test's
		// node is not needed, only time; use a fresh pull of the good one.
		if err := a.Chain().Pull(ctx, good.ID()); err != nil {
			t.Fatalf("%s: pull from a good member after the ban: %v", tc.name, err)
		}
		a.Chain().Unban(bad.ID())
	}
	if got := logCIDs(t, a); len(got) != 1 {
		t.Fatalf("a holds %d entries, want the good member's 1", len(got))
	}
}
