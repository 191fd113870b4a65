package simnet

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain/replica"
)

// The timeout paths of chain sync, roster sync and the join, each made to
// fire by a one-way cut, a stalled stream or a peer that says nothing; then
// the fault ends and the cell converges. Each fires after exactly its
// timeout of virtual time.

// debugRecord is one log line of a node.
type debugRecord struct {
	node int
	msg  string
	err  string
	peer string
	at   time.Time
}

// logBook is a slog.Handler that keeps every record, for tests that look
// for a node's log line.
type logBook struct {
	mu    *sync.Mutex
	recs  *[]debugRecord
	attrs []slog.Attr
}

func newLogBook() *logBook { return &logBook{mu: new(sync.Mutex), recs: new([]debugRecord)} }

func (b *logBook) Enabled(context.Context, slog.Level) bool { return true }

func (b *logBook) WithAttrs(as []slog.Attr) slog.Handler {
	return &logBook{mu: b.mu, recs: b.recs, attrs: append(append([]slog.Attr(nil), b.attrs...), as...)}
}

func (b *logBook) WithGroup(string) slog.Handler { return b }

func (b *logBook) Handle(_ context.Context, r slog.Record) error {
	rec := debugRecord{node: -1, msg: r.Message, at: r.Time}
	take := func(a slog.Attr) bool {
		switch a.Key {
		case "node": // simnet's node index; parts log other "node"s
			if a.Value.Kind() == slog.KindInt64 {
				rec.node = int(a.Value.Int64())
			}
		case "err":
			rec.err = a.Value.String()
		case "peer":
			rec.peer = a.Value.String()
		}
		return true
	}
	r.Attrs(take)
	for _, a := range b.attrs { // last: the index simnet gave the logger wins
		take(a)
	}
	b.mu.Lock()
	*b.recs = append(*b.recs, rec)
	b.mu.Unlock()
	return nil
}

// find returns the first record of node with message msg, after since,
// whose error says a deadline passed.
func (b *logBook) find(node int, msg string, since time.Time) (debugRecord, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range *b.recs {
		if r.node == node && r.msg == msg && !r.at.Before(since) && strings.Contains(r.err, os.ErrDeadlineExceeded.Error()) {
			return r, true
		}
	}
	return debugRecord{}, false
}

// awaitEnd waits up to limit for the first record of node with message
// msg about peer p, after since, whose error ends a stalled stream: its
// deadline passed, or the exchange's context reset it.
func (b *logBook) awaitEnd(node int, msg string, p peer.ID, since time.Time, limit time.Duration) (debugRecord, bool) {
	var rec debugRecord
	_, ok := waitUntil(limit, 100*time.Millisecond, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, r := range *b.recs {
			if r.node == node && r.msg == msg && r.peer == p.String() && !r.at.Before(since) &&
				(strings.Contains(r.err, os.ErrDeadlineExceeded.Error()) || strings.Contains(r.err, "stream reset")) {
				rec = r
				return true
			}
		}
		return false
	})
	return rec, ok
}

// awaitLog waits up to limit for find to succeed.
func (b *logBook) await(node int, msg string, since time.Time, limit time.Duration) (debugRecord, bool) {
	var rec debugRecord
	_, ok := waitUntil(limit, 100*time.Millisecond, func() bool {
		var found bool
		rec, found = b.find(node, msg, since)
		return found
	})
	return rec, ok
}

// checkTook fails the test unless took is timeout, to within a second
// (the latency of a link or two, and where the test starts its clock).
func checkTook(t *testing.T, seed uint64, what string, took, timeout time.Duration) {
	t.Helper()
	if took < timeout-time.Second || took > timeout+time.Second {
		t.Errorf("seed %d: %s after %v of virtual time, want its timeout, %v", seed, what, took, timeout)
	}
}

// silentStream opens a stream of protocol p from a to b, writes prefix
// and then nothing, and returns how long after that b took to reset it
// (its read timeout). It fails the test if b has not given up after
// limit.
func silentStream(t *testing.T, seed uint64, a, b *Node, p protocol.ID, prefix []byte, limit time.Duration) time.Duration {
	t.Helper()
	s, err := a.Peer().Host().NewStream(t.Context(), b.ID, p)
	if err != nil {
		t.Fatalf("seed %d: stream %s to node %d: %v", seed, p, b.Index, err)
	}
	defer s.Close()
	if _, err := s.Write(prefix); err != nil {
		t.Fatalf("seed %d: write to node %d: %v", seed, b.Index, err)
	}
	start := time.Now()
	_ = s.SetReadDeadline(start.Add(limit))
	_, err = io.Copy(io.Discard, s)
	took := time.Since(start)
	if !errors.Is(err, network.ErrReset) {
		t.Errorf("seed %d: node %d's %s server, sent %d bytes then nothing: %v after %v; want a reset at its timeout",
			seed, b.Index, p, len(prefix), err, took)
	}
	return took
}

// TestTimeoutsChainSync: a pull whose request cannot go out (a stalled
// stream) and a pull whose answer does not come back (a one-way cut) fail
// after IdleTimeout; the server whose answer is held back gives up after
// IdleTimeout too; a member that sends half a request is reset after
// IdleTimeout and not cut off. After each fault the nodes converge.
func TestTimeoutsChainSync(t *testing.T) {
	const seed = 61
	idle := 30 * time.Second
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		book := newLogBook()
		n := New(Config{Seed: seed, Logger: slog.New(book)})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 2)
		waitAlive(t, nodes, time.Minute)
		a, b := nodes[0], nodes[1]
		total := 0
		converge := func(what string) {
			t.Helper()
			appendN(t, a, what+" a", 3, 10*time.Millisecond)
			appendN(t, b, what+" b", 3, 10*time.Millisecond)
			total += 6
			took := awaitLength(t, nodes, total, 2*time.Minute)
			t.Logf("seed %d: %s: converged %v after the last append", seed, what, took)
		}
		converge("before")
		// A pull that no deadline ends would block until this context
		// does.
		pctx, cancel := context.WithTimeout(ctx, 10*idle)
		defer cancel()

		// The request of A's pulls from B stalls: the write times out.
		lift := n.StallStreams(StreamMatch{From: a, To: b, Protocol: replica.ProtocolSync})
		start := time.Now()
		err := a.Peer().Chain().Pull(pctx, b.ID)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "send sync request") {
			t.Errorf("seed %d: pull with a stalled request: %v, want a write timeout", seed, err)
		}
		checkTook(t, seed, "the stalled request timed out", time.Since(start), idle)
		lift()
		converge("stalled request")

		// B's answers to A are held back: A's read times out, and so
		// does B's write.
		n.OneWay([]*Node{b}, []*Node{a})
		start = time.Now()
		err = a.Peer().Chain().Pull(pctx, b.ID)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "read sync answer") {
			t.Errorf("seed %d: pull with the answer cut: %v, want a read timeout", seed, err)
		}
		checkTook(t, seed, "the cut answer timed out", time.Since(start), idle)
		if rec, ok := book.await(b.Index, "chain sync answer failed", start, 2*idle); !ok {
			t.Errorf("seed %d: node %d never gave up writing its held answer", seed, b.Index)
		} else {
			checkTook(t, seed, "the held answer's write timed out", rec.at.Sub(start), idle)
		}
		n.Heal()
		converge("one-way cut")

		// A member that sends half a request and stops is reset after
		// IdleTimeout; it is not cut off (a stall is no misbehaviour).
		half := append(binary.AppendUvarint(nil, 100), make([]byte, 10)...)
		checkTook(t, seed, "the server reset a half request", silentStream(t, seed, a, b, replica.ProtocolSync, half, 2*idle), idle)
		if st := chainStatus(t, b).Sync; st.Banned != 0 {
			t.Errorf("seed %d: node %d cut node %d off for a stalled request: %s", seed, b.Index, a.Index, st.LastBannedBecause)
		}
		converge("half request")
	})
}

// TestTimeoutsRosterSync: a roster push whose answer is held back (a
// one-way cut) fails after the stream timeout, while the member adopts the
// roster; a peer that opens a roster stream and says nothing is reset after
// it. After the heal every member holds the same roster and sees every
// other alive.
func TestTimeoutsRosterSync(t *testing.T) {
	const seed = 62
	timeout := 30 * time.Second // cell's streamTimeout
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		book := newLogBook()
		n := New(Config{Seed: seed, Logger: slog.New(book)})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		admin, cut := nodes[0], nodes[2]

		// cut's answers to the admin are held back; a new member joins,
		// and the admin pushes the new roster to the others.
		n.OneWay([]*Node{cut}, []*Node{admin})
		late := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatalf("seed %d: Invite: %v", seed, err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		r, err := late.Peer().Cell().Join(jctx, code.String(), "late")
		cancel()
		if err != nil {
			t.Fatalf("seed %d: Join: %v", seed, err)
		}
		pushed := time.Now()
		rec, ok := book.await(admin.Index, "roster push failed", pushed.Add(-time.Second), 2*timeout)
		if !ok {
			t.Errorf("seed %d: the admin's push to node %d, whose answer is cut, never timed out", seed, cut.Index)
		} else {
			checkTook(t, seed, "the push timed out", rec.at.Sub(pushed), timeout)
		}
		if got := cut.Peer().Cell().Roster().Version; got != r.Version {
			t.Errorf("seed %d: node %d holds roster version %d, want the pushed %d", seed, cut.Index, got, r.Version)
		}

		// A peer that says nothing on a roster stream.
		checkTook(t, seed, "the roster server reset a silent stream", silentStream(t, seed, nodes[1], cut, cell.ProtocolRoster, nil, 2*timeout), timeout)

		n.Heal()
		all := append(nodes, late)
		waitAlive(t, all, 2*time.Minute)
		for _, nd := range all {
			if got := nd.Peer().Cell().Roster().Version; got != r.Version {
				t.Errorf("seed %d: node %d holds roster version %d after the heal, want %d", seed, nd.Index, got, r.Version)
			}
		}
	})
}

// TestTimeoutsJoin: an inviter whose joiner says nothing resets the stream
// after the stream timeout; a join attempt whose stream stalls fails after
// the timeout, and the next attempt joins; a join whose inviter's answers
// are held back (a one-way cut) fails its attempt after the timeout, and
// the joiner tries again until, after the heal, it joins.
func TestTimeoutsJoin(t *testing.T) {
	const seed = 63
	timeout := 30 * time.Second // cell's streamTimeout
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		book := newLogBook()
		n := New(Config{Seed: seed, Logger: slog.New(book)})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		joiner := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		if _, err := admin.Peer().Cell().Create(ctx, "home", "admin"); err != nil {
			t.Fatalf("seed %d: Create: %v", seed, err)
		}

		// A joiner that says nothing.
		checkTook(t, seed, "the inviter reset a silent join stream", silentStream(t, seed, joiner, admin, cell.ProtocolJoin, nil, 2*timeout), timeout)

		// The joiner's first join stream stalls: its hello cannot go
		// out, the attempt ends at the stream timeout, and the next
		// attempt, on a new stream, joins.
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatalf("seed %d: Invite: %v", seed, err)
		}
		lift := n.StallStreams(StreamMatch{From: joiner, To: admin, Protocol: cell.ProtocolJoin, Nth: 1})
		start := time.Now()
		jctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		if _, err := joiner.Peer().Cell().Join(jctx, code.String(), "joiner"); err != nil {
			t.Fatalf("seed %d: Join with its first stream stalled: %v", seed, err)
		}
		lift()
		if rec, ok := book.find(joiner.Index, "join attempt failed", start); !ok {
			t.Errorf("seed %d: the join attempt on a stalled stream did not fail", seed)
		} else {
			checkTook(t, seed, "the stalled join attempt failed", rec.at.Sub(start), timeout)
		}
		t.Logf("seed %d: joined %v after the start, with the first stream stalled", seed, time.Since(start))

		// A second joiner, whose inviter's answers are cut.
		joiner = addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		code, _, err = admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatalf("seed %d: Invite: %v", seed, err)
		}
		n.OneWay([]*Node{admin}, []*Node{joiner})
		start = time.Now()
		// Heal once the joiner's attempt has timed out.
		healed := make(chan time.Time, 1)
		go func() {
			rec, ok := book.await(joiner.Index, "join attempt failed", start, 2*timeout)
			if !ok {
				t.Errorf("seed %d: the join attempt with its answers cut never timed out", seed)
			} else {
				checkTook(t, seed, "the join attempt timed out", rec.at.Sub(start), timeout)
			}
			time.Sleep(5 * time.Second)
			n.Heal()
			healed <- time.Now()
		}()
		jctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		r, err := joiner.Peer().Cell().Join(jctx, code.String(), "joiner 2")
		if err != nil {
			t.Fatalf("seed %d: Join across the cut and the heal: %v", seed, err)
		}
		at := <-healed
		t.Logf("seed %d: joined %v after the start, %v after the heal", seed, time.Since(start), time.Since(at))
		if !r.Has(joiner.ID) || time.Now().Before(at) {
			t.Errorf("seed %d: roster version %d has the joiner %v; joined before the heal: %v", seed, r.Version, r.Has(joiner.ID), time.Now().Before(at))
		}
		waitAlive(t, n.Nodes(), time.Minute)
	})
}

// TestCloseWhileRosterPushStalls: a node that closes while its roster push
// waits for an answer that a one-way cut holds back stops at once: the
// push ends with the service, it does not wait out its 30 s timeout.
func TestCloseWhileRosterPushStalls(t *testing.T) {
	const seed = 66
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 2)
		waitAlive(t, nodes, time.Minute)
		admin, cut := nodes[0], nodes[1]
		n.OneWay([]*Node{cut}, []*Node{admin})
		late := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatalf("seed %d: Invite: %v", seed, err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = late.Peer().Cell().Join(jctx, code.String(), "late")
		cancel()
		if err != nil {
			t.Fatalf("seed %d: Join: %v", seed, err)
		}
		time.Sleep(time.Second) // the push to cut is out; its answer is held
		start := time.Now()
		if err := admin.Peer().Close(); err != nil {
			t.Errorf("seed %d: Close: %v", seed, err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("seed %d: the admin took %v of virtual time to close, want < 2 s", seed, took)
		}
	})
}

// TestTimeoutsRosterPull: a member that missed a roster (partitioned
// away) pulls it after the heal. Its first roster stream after the heal,
// a pull from its event loop or from its maintenance loop, stalls: that
// pull fails after exactly the stream timeout, rather than holding its
// loop for good, and the member catches up. (The other loop may bring the
// roster before the stalled pull fails, so when it catches up is not
// checked against the timeout.)
func TestTimeoutsRosterPull(t *testing.T) {
	const seed = 69
	timeout := 30 * time.Second // cell's streamTimeout
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		book := newLogBook()
		n := New(Config{Seed: seed, Logger: slog.New(book)})
		defer settle(t, n)
		nodes := makeCell(t, ctx, n, 3)
		waitAlive(t, nodes, time.Minute)
		admin, away := nodes[0], nodes[2]
		n.Partition([]*Node{away})
		late := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatalf("seed %d: Invite: %v", seed, err)
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		r, err := late.Peer().Cell().Join(jctx, code.String(), "late")
		cancel()
		if err != nil {
			t.Fatalf("seed %d: Join: %v", seed, err)
		}
		time.Sleep(5 * time.Second)
		if got := away.Peer().Cell().Roster().Version; got >= r.Version {
			t.Fatalf("seed %d: node %d got roster version %d across the partition", seed, away.Index, got)
		}
		type stalledPull struct {
			to peer.ID
			at time.Time
		}
		picked := make(chan stalledPull, 1)
		lift := n.StallStreams(StreamMatch{From: away, Protocol: cell.ProtocolRoster, Nth: 1,
			Picked: func(to peer.ID) { picked <- stalledPull{to: to, at: time.Now()} }})
		defer lift()
		healed := time.Now()
		n.Heal()
		took, ok := waitUntil(3*time.Minute, 100*time.Millisecond, func() bool {
			return away.Peer().Cell().Roster().Version == r.Version
		})
		if !ok {
			t.Fatalf("seed %d: %v after the heal node %d holds roster version %d, want %d", seed, took, away.Index, away.Peer().Cell().Roster().Version, r.Version)
		}
		t.Logf("seed %d: node %d caught up %v after the heal", seed, away.Index, took)
		// Only a pull of its own brings the node the roster (the admin's
		// push went out during the partition): its first roster stream
		// was opened, and stalled, by now.
		var sp stalledPull
		select {
		case sp = <-picked:
		default:
			t.Fatalf("seed %d: node %d caught up without a roster stream of its own", seed, away.Index)
		}
		rec, ok := book.awaitEnd(away.Index, "roster pull failed", sp.to, sp.at, timeout+time.Minute)
		if !ok {
			t.Fatalf("seed %d: node %d's stalled pull from %s, opened %v after the heal, never failed", seed, away.Index, sp.to, sp.at.Sub(healed))
		}
		t.Logf("seed %d: the stalled pull, opened %v after the heal, failed %v later: %s", seed, sp.at.Sub(healed), rec.at.Sub(sp.at), rec.err)
		checkTook(t, seed, "the stalled pull failed", rec.at.Sub(sp.at), timeout)
		waitAlive(t, n.Nodes(), 2*time.Minute)
	})
}
