package simnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/cpace"
)

// The join's hardening: a bystander cannot void or hijack a join, a lost
// welcome does not lock a device out, and invites outlive the admin's
// process. The join protocol is spoken by hand here, from its description
// in cell/doc.go, the way an attacker would.

// Join protocol bytes (cell/doc.go).
const (
	joinHello   = 1
	joinReply   = 2
	joinStatusN = 8 // statuses 0-7
)

func writeJoinFrame(w io.Writer, b []byte) error {
	_, err := w.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}

func readJoinFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > 1<<16 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// squatHellos makes sq answer every join hello with the next status of a
// cycle through every status the protocol has, "ok" with random bytes in
// place of a CPace message and key-confirmation tag included. It counts
// the hellos it answered.
func squatHellos(sq *Node) *atomic.Int64 {
	var n atomic.Int64
	// "expired" first: the answer that, believed, stops a join at once;
	// the two that look like a wrong code last, since a joiner rightly
	// does not ask again a peer that gave one.
	order := []byte{2, 3, 5, 6, 7, 1, 4, 0}
	sq.Peer().Host().SetStreamHandler(cell.ProtocolJoin, func(st network.Stream) {
		defer st.Close()
		rd := bufio.NewReader(st)
		if _, err := readJoinFrame(rd); err != nil {
			_ = st.Reset()
			return
		}
		status := order[(n.Add(1)-1)%joinStatusN]
		b := []byte{joinReply, status}
		if status == 0 {
			junk := make([]byte, cpace.MessageSize+cpace.TagSize)
			rand.Read(junk)
			b = append(b, junk...)
		}
		if err := writeJoinFrame(st, b); err != nil {
			_ = st.Reset()
			return
		}
		_, _ = readJoinFrame(rd) // a confirm, if the joiner believed the "ok"
	})
	return &n
}

// sprayHellos sends the admin count join hellos for nameplate from sq,
// each a valid CPace message for a guessed password, abandoned after the
// admin's reply; the first one is replayed replays times right away. It
// returns the statuses the admin answered, in order.
func sprayHellos(t *testing.T, ctx context.Context, sq, admin *Node, nameplate uint16, count, replays int) []byte {
	t.Helper()
	ci := []byte("exopeer join v1\x00")
	ci = binary.AppendUvarint(ci, uint64(len(admin.ID)))
	ci = append(append(ci, admin.ID...), sq.ID...)
	var got []byte
	send := func(hello []byte) {
		st, err := sq.Peer().Host().NewStream(ctx, admin.ID, cell.ProtocolJoin)
		if err != nil {
			t.Fatalf("squatter's stream to the admin: %v", err)
		}
		rd := bufio.NewReader(st)
		if err := writeJoinFrame(st, hello); err != nil {
			t.Fatalf("squatter's hello: %v", err)
		}
		b, err := readJoinFrame(rd)
		if err != nil || len(b) < 2 || b[0] != joinReply {
			t.Fatalf("admin's reply to hello %d: %x %v", len(got), b, err)
		}
		got = append(got, b[1])
		_ = st.Reset() // abandoned: the admin books a failed attempt
	}
	for i := range count {
		sid := make([]byte, 16)
		rand.Read(sid)
		_, ya, err := cpace.Start(cpace.Initiator, fmt.Appendf(nil, "guess number %d", i), ci, sid, nil, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		hello := []byte{joinHello, 1}
		hello = binary.BigEndian.AppendUint16(hello, nameplate)
		hello = append(append(hello, sid...), ya...)
		send(hello)
		for range replays * max(1-i, 0) {
			send(hello)
		}
	}
	return got
}

// TestSquatterCannotVoidJoin: a bystander that answers every hello with
// every status, and sends hellos of its own for the invite's nameplate
// (public: anyone can compute all 10,000), neither stops nor voids an
// honest join with the right code.
func TestSquatterCannotVoidJoin(t *testing.T) {
	const seed = 31
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		sq := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		// The joiner knows only the squatter; it meets the admin through
		// the nameplate's rendezvous.
		joiner := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{sq}})
		answered := squatHellos(sq)
		ac := admin.Peer().Cell()
		if _, err := ac.Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		code, _, err := ac.Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Its replays cost the invite nothing, and its fresh guesses only
		// its own share: 3 of the invite's 20 failed attempts.
		statuses := sprayHellos(t, ctx, sq, admin, code.Nameplate, 8, 4)
		if want := []byte{0, 6, 6, 6, 6, 0, 0, 3, 3, 3, 3, 3}; !bytes.Equal(statuses, want) {
			t.Errorf("seed %d: the admin answered the squatter's hellos with statuses %v, want %v", seed, statuses, want)
		}

		// For the first minute the joiner can reach the squatter only.
		n.Partition([]*Node{joiner, sq}, []*Node{admin})
		start := time.Now()
		done := make(chan error, 1)
		var r *cell.Roster
		go func() {
			jctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			var err error
			r, err = joiner.Peer().Cell().Join(jctx, code.String(), "joiner")
			done <- err
		}()
		time.Sleep(time.Minute)
		n.Heal()
		if err := <-done; err != nil {
			t.Fatalf("seed %d: honest join beside a squatter (it answered %d hellos): %v", seed, answered.Load(), err)
		}
		t.Logf("seed %d: joined %v (virtual) after the start, %v after the partition ended; the squatter answered %d hellos",
			seed, time.Since(start), time.Since(start)-time.Minute, answered.Load())
		if got := answered.Load(); got < joinStatusN-1 {
			t.Errorf("seed %d: the joiner asked the squatter %d times, want at least %d: the test proves less than it says", seed, got, joinStatusN-1)
		}
		if !r.Has(joiner.ID) || r.Has(sq.ID) || r.Version != 2 {
			t.Fatalf("seed %d: roster version %d: joiner %v, squatter %v", seed, r.Version, r.Has(joiner.ID), r.Has(sq.ID))
		}
		waitAlive(t, []*Node{admin, joiner}, time.Minute)
	})
}

// stallHellos makes nd read join hellos and never answer them.
func stallHellos(nd *Node) {
	nd.Peer().Host().SetStreamHandler(cell.ProtocolJoin, func(st network.Stream) {
		_, _ = io.Copy(io.Discard, st) // until the joiner gives up on it
		_ = st.Reset()
	})
}

// TestStallingPeersCannotVoidJoin: peers that take a hello and never
// answer do not hold a join up until it times out.
func TestStallingPeersCannotVoidJoin(t *testing.T) {
	const seed, stallers = 36, 5
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		var bad []*Node
		for range stallers {
			nd := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
			stallHellos(nd)
			bad = append(bad, nd)
		}
		joiner := addNode(t, ctx, n, NodeConfig{Bootstrap: bad})
		ac := admin.Peer().Cell()
		if _, err := ac.Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		code, _, err := ac.Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The nameplate's rendezvous reaches the DHT; then the joiner meets
		// the stallers first, the admin a few seconds later.
		time.Sleep(5 * time.Second)
		n.Partition(append([]*Node{joiner}, bad...), []*Node{admin})
		start := time.Now()
		done := startJoin(ctx, joiner, code.String(), 2*time.Minute)
		time.Sleep(5 * time.Second)
		n.Heal()
		if err := <-done; err != nil {
			t.Fatalf("seed %d: join beside %d peers that never answer: %v", seed, stallers, err)
		}
		t.Logf("seed %d: joined %v (virtual) after the partition ended", seed, time.Since(start)-5*time.Second)
		checkJoined(t, seed, admin, joiner, 2)
	})
}

// cellAndJoiner adds an admin that creates a cell and invites, and a
// joiner that knows the admin, and returns them with the admin's cell
// service and the code.
func cellAndJoiner(t *testing.T, ctx context.Context, n *Net) (admin, joiner *Node, ac *cell.Service, code cell.Code) {
	t.Helper()
	admin = addNode(t, ctx, n, NodeConfig{})
	joiner = addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
	ac = admin.Peer().Cell()
	if _, err := ac.Create(ctx, "home", "admin"); err != nil {
		t.Fatal(err)
	}
	code, _, err := ac.Invite(cell.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return admin, joiner, ac, code
}

// startJoin runs joiner's Join in the background; the error comes on the
// channel.
func startJoin(ctx context.Context, joiner *Node, code string, within time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		jctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		_, err := joiner.Peer().Cell().Join(jctx, code, "joiner")
		done <- err
	}()
	return done
}

// awaitAdmitted waits, a virtual millisecond at a time, until the admin
// holds a roster that names joiner: its welcome is on the wire then (10 ms
// of latency), not yet delivered.
func awaitAdmitted(t *testing.T, admin, joiner *Node) {
	t.Helper()
	if _, ok := waitUntil(time.Minute, time.Millisecond, func() bool {
		r := admin.Peer().Cell().Roster()
		return r != nil && r.Has(joiner.ID)
	}); !ok {
		t.Fatal("the admin never admitted the joiner")
	}
}

// welcomeLost fails the test if joiner got into the cell: the cut came too
// late to lose the welcome, and the test would prove nothing.
func welcomeLost(t *testing.T, seed uint64, joiner *Node) {
	t.Helper()
	if r := joiner.Peer().Cell().Roster(); r != nil {
		t.Fatalf("seed %d: the welcome arrived before the cut: the test proves nothing", seed)
	}
}

// checkJoined checks that admin and joiner hold one roster version that
// names the joiner once, and see each other alive.
func checkJoined(t *testing.T, seed uint64, admin, joiner *Node, version uint64) {
	t.Helper()
	ar, jr := admin.Peer().Cell().Roster(), joiner.Peer().Cell().Roster()
	if jr == nil || !jr.Has(joiner.ID) || !ar.Has(joiner.ID) {
		t.Fatalf("seed %d: joiner on its roster %v, on the admin's %v", seed, jr != nil && jr.Has(joiner.ID), ar.Has(joiner.ID))
	}
	if ar.Version != version || len(ar.Members) != 2 {
		t.Errorf("seed %d: admin's roster version %d with %d members, want %d with 2", seed, ar.Version, len(ar.Members), version)
	}
	waitAlive(t, []*Node{admin, joiner}, time.Minute)
}

// TestJoinWelcomeLostRetrySameCode: the joiner is cut off between the
// admin adopting the roster that names it and the welcome arriving; when
// it can reach the admin again its retry with the same code completes the
// join (the admission is idempotent), with no second roster version.
func TestJoinWelcomeLostRetrySameCode(t *testing.T) {
	const seed = 32
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		joiner := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		if _, err := admin.Peer().Cell().Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		done := startJoin(ctx, joiner, code.String(), 3*time.Minute)
		awaitAdmitted(t, admin, joiner)
		n.Partition([]*Node{joiner})
		time.Sleep(20 * time.Second)
		welcomeLost(t, seed, joiner)
		n.Heal()
		if err := <-done; err != nil {
			t.Fatalf("seed %d: join after a lost welcome: %v", seed, err)
		}
		checkJoined(t, seed, admin, joiner, 2)
	})
}

// TestJoinWelcomeLostFreshCode: the joiner gave up after a lost welcome;
// its error says which peer it reached and what went wrong, and a fresh
// code completes the join instead of being refused as "already a member".
func TestJoinWelcomeLostFreshCode(t *testing.T) {
	const seed = 33
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin, joiner, ac, code := cellAndJoiner(t, ctx, n)
		done := startJoin(ctx, joiner, code.String(), 15*time.Second)
		awaitAdmitted(t, admin, joiner)
		n.Partition([]*Node{joiner})
		err := <-done
		welcomeLost(t, seed, joiner)
		if err == nil {
			t.Fatalf("seed %d: join succeeded while cut off", seed)
		}
		t.Logf("seed %d: the joiner's error: %v", seed, err)
		if msg := err.Error(); !strings.Contains(msg, admin.ID.String()) || !errors.Is(err, context.DeadlineExceeded) ||
			!errors.Is(err, cell.ErrWelcomeLost) {
			t.Errorf("seed %d: the joiner's error does not name the admin it reached, the lost welcome and the deadline: %v", seed, err)
		}
		n.Heal()
		fresh, _, err := ac.Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-startJoin(ctx, joiner, fresh.String(), 2*time.Minute); err != nil {
			t.Fatalf("seed %d: join with a fresh code after a lost welcome: %v", seed, err)
		}
		checkJoined(t, seed, admin, joiner, 2)
	})
}

// TestJoinAdminCrashBeforeWelcome: the admin crashes right after adopting
// the roster that names the joiner; once it is back, the joiner, still
// trying with the same code, completes the join.
func TestJoinAdminCrashBeforeWelcome(t *testing.T) {
	const seed = 34
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		joiner := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		if _, err := admin.Peer().Cell().Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		done := startJoin(ctx, joiner, code.String(), 3*time.Minute)
		awaitAdmitted(t, admin, joiner)
		if err := n.Crash(admin); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Second)
		welcomeLost(t, seed, joiner)
		if err := n.Restart(ctx, admin); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("seed %d: join across the admin's crash: %v", seed, err)
		}
		checkJoined(t, seed, admin, joiner, 2)
	})
}

// TestInviteSurvivesAdminRestart: an invite opened before the admin's
// process restarts still admits its joiner afterwards.
func TestInviteSurvivesAdminRestart(t *testing.T) {
	const seed = 35
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		joiner := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		if _, err := admin.Peer().Cell().Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Crash(admin); err != nil {
			t.Fatal(err)
		}
		if err := n.Restart(ctx, admin); err != nil {
			t.Fatal(err)
		}
		if err := <-startJoin(ctx, joiner, code.String(), 2*time.Minute); err != nil {
			t.Fatalf("seed %d: join with an invite from before the admin's restart: %v", seed, err)
		}
		checkJoined(t, seed, admin, joiner, 2)
	})
}

// TestRemovedDeviceCannotReuseItsCode: the invite a device joined with
// stays bound to it until it expires, so that a lost welcome can be sent
// again; once the device is removed, that invite admits it no more.
func TestRemovedDeviceCannotReuseItsCode(t *testing.T) {
	const seed = 37
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin, joiner, ac, code := cellAndJoiner(t, ctx, n)
		if err := <-startJoin(ctx, joiner, code.String(), time.Minute); err != nil {
			t.Fatalf("seed %d: join: %v", seed, err)
		}
		waitAlive(t, []*Node{admin, joiner}, time.Minute)
		r, err := ac.Remove(ctx, joiner.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool { return removed(joiner) }); !ok {
			t.Fatalf("seed %d: the removed device was never told", seed)
		}
		err = <-startJoin(ctx, joiner, code.String(), 20*time.Second)
		if err == nil || ac.Roster().Has(joiner.ID) || ac.Roster().Version != r.Version {
			t.Fatalf("seed %d: the removed device joined again with its old code: %v; admin's roster version %d (removal: %d)",
				seed, err, ac.Roster().Version, r.Version)
		}
		t.Logf("seed %d: the removed device's retry: %v", seed, err)
	})
}

// TestInviteAttemptsSurviveAdminRestart: the failed attempts booked against
// an invite are stored with it, so that restarting the admin gives a
// guesser no more tries.
func TestInviteAttemptsSurviveAdminRestart(t *testing.T) {
	const seed = 38
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		admin := addNode(t, ctx, n, NodeConfig{})
		guesser := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}})
		if _, err := admin.Peer().Cell().Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := sprayHellos(t, ctx, guesser, admin, code.Nameplate, 3, 0); !bytes.Equal(got, []byte{0, 0, 0}) {
			t.Fatalf("seed %d: first three guesses answered %v, want [0 0 0]", seed, got)
		}
		if err := n.Crash(admin); err != nil {
			t.Fatal(err)
		}
		if err := n.Restart(ctx, admin); err != nil {
			t.Fatal(err)
		}
		// Connected is not enough: the restarted admin's cell sets its
		// join handler once it has loaded the cell, which may come after
		// the guesser's connection (the stream was then refused for an
		// unsupported protocol).
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			return guesser.Peer().Host().Network().Connectedness(admin.ID) == network.Connected &&
				slices.Contains(admin.Peer().Host().Mux().Protocols(), cell.ProtocolJoin)
		}); !ok {
			t.Fatalf("seed %d: the guesser never reconnected to the restarted admin, or its join handler is not set", seed)
		}
		if got := sprayHellos(t, ctx, guesser, admin, code.Nameplate, 1, 0); !bytes.Equal(got, []byte{3}) {
			t.Errorf("seed %d: a fourth guess after the admin's restart answered %v, want [3] (exhausted for this peer)", seed, got)
		}
	})
}
