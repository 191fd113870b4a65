package service

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestCounterCorruptRecord: after the counter's record is found corrupt
// (a length other than 16), seq goes on above every seq handed out
// before. It restarts at 1: seq repeats (the order key stays unique only
// while the clock has not gone back, sent being then above the earlier
// ones).
func TestCounterCorruptRecord(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	var last uint64
	for i := range 3 {
		m, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("m%d", i))
		if err != nil {
			t.Fatal(err)
		}
		last = seqOf(t, m)
	}
	_ = alice.svc.Close()
	if err := alice.ds.Put(ctx, counterKey, []byte("corrupt")); err != nil {
		t.Fatal(err)
	}
	alice.start(t)
	m, err := alice.svc.Send(ctx, "Bob", "after")
	if err != nil {
		t.Fatal(err)
	}
	if seq := seqOf(t, m); seq <= last {
		t.Fatalf("seq %d after a corrupt counter record, not above %d handed out before", seq, last)
	}
}

// TestCounterNoDriftOnRestarts: restarts in quick succession, each
// sending one message, do not carry the sent time ahead of the clock by
// more than one lease's floor (leaseMillis). Each restart resumes from
// the lease's floor (the clock plus 1 s when it was taken), and its
// first message takes a new lease 1 s past that: with the clock still,
// five restarts put sent 5 s ahead, n restarts n s ahead, and a contact's
// reply, sent at the real time, sorts before the message it answers.
func TestCounterNoDriftOnRestarts(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	const now = 1_790_000_000_000
	alice.now = func() time.Time { return time.UnixMilli(now) }
	for i := range 5 {
		_ = alice.svc.Close()
		alice.start(t)
		m, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("m%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if ahead := m.Sent.UnixMilli() - now; ahead > leaseMillis {
			t.Fatalf("restart %d: sent %d ms ahead of the clock", i, ahead)
		}
	}
}

// TestCounterLeaseRunsOut: with the clock still, the seqs of a lease run
// out after leaseSeqs and a new lease is on disk before the next seq is
// handed out: a restart right after the first seq past a lease resumes
// above it (and no lower in sent time).
func TestCounterLeaseRunsOut(t *testing.T) {
	devs := newDevices(t, "alice")
	alice := devs[0]
	ctx := t.Context()
	const now = 1_790_000_000_000
	alice.now = func() time.Time { return time.UnixMilli(now) }
	_ = alice.svc.Close()
	alice.start(t)
	s := alice.svc
	before := alice.fault.written(counterKey)
	var lastSeq uint64
	var lastSent int64
	restarts := 0
	for i := range 3 * leaseSeqs {
		s.cmu.Lock()
		lease, held := s.counter.maxSeq, s.counter.loaded
		sent, seq, err := s.nextLocked(ctx)
		if err == nil && held && seq > lease {
			// The first seq past the lease held: a restart, with what
			// is on disk only.
			s.counter = counter{}
			restarts++
		}
		s.cmu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if seq <= lastSeq || sent < lastSent {
			t.Fatalf("call %d: (sent %d, seq %d) after (%d, %d)", i, sent, seq, lastSent, lastSeq)
		}
		lastSeq, lastSent = seq, sent
	}
	if restarts < 2 {
		t.Fatalf("%d restarts past a lease, want 2 or more", restarts)
	}
	if n := alice.fault.written(counterKey) - before; n > 2*restarts+2 {
		t.Fatalf("%d counter writes for %d seqs and %d restarts", n, 3*leaseSeqs, restarts)
	}
}

// TestCounterLeaseTimeFloor: once the clock passes a lease's time floor,
// a new lease is on disk before that sent time is handed out: a restart
// right after, with the clock gone back, resumes no lower in sent time.
func TestCounterLeaseTimeFloor(t *testing.T) {
	devs := newDevices(t, "alice")
	alice := devs[0]
	ctx := t.Context()
	var clock atomic.Int64
	clock.Store(1_790_000_000_000)
	alice.now = func() time.Time { return time.UnixMilli(clock.Load()) }
	_ = alice.svc.Close()
	alice.start(t)
	s := alice.svc
	var lastSeq uint64
	var lastSent int64
	restarts := 0
	for i := range 40 {
		s.cmu.Lock()
		floor, held := s.counter.maxSent, s.counter.loaded
		sent, seq, err := s.nextLocked(ctx)
		if err == nil && held && sent > floor {
			s.counter = counter{} // a restart, the clock gone back
			clock.Add(-1_000)
			restarts++
		}
		s.cmu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if seq <= lastSeq || sent < lastSent {
			t.Fatalf("call %d: (sent %d, seq %d) after (%d, %d)", i, sent, seq, lastSent, lastSeq)
		}
		lastSeq, lastSent = seq, sent
		clock.Add(300)
	}
	if restarts < 2 {
		t.Fatalf("%d restarts past a time floor, want 2 or more", restarts)
	}
}
