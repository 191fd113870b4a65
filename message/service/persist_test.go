package service

import (
	"testing"

	ds "github.com/ipfs/go-datastore"
)

// TestPersistStepDuringWrite: a step taken while a write of the device's
// record is under way is not counted on disk by that write: its own
// persist writes it. (A writer that marked as durable the version held
// when its write ended, rather than the one it wrote, would let that
// step's frame leave with its state on no disk; the tests of whole
// deliveries rarely see a step fall inside a write, and passed so.)
func TestPersistStepDuringWrite(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	ctx := t.Context()
	s := alice.svc
	e := s.cache.acquire(bob.h.ID())
	defer s.cache.release(e)
	if err := s.lockEntry(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.rec.listSent = 1
	v1 := s.cache.step(e)
	e.mu.Unlock()

	inWrite, resume := make(chan struct{}), make(chan struct{})
	alice.fault.mu.Lock()
	alice.fault.onPut = func(k ds.Key) {
		if k == sessionKey(bob.h.ID()) {
			inWrite <- struct{}{}
			<-resume
		}
	}
	alice.fault.mu.Unlock()
	done := goDo(func() error { return s.persist(ctx, e, v1) })
	<-inWrite // version 1's bytes are taken, its write under way
	e.mu.Lock()
	e.rec.listSent = 2
	v2 := s.cache.step(e)
	e.mu.Unlock()
	resume <- struct{}{}
	if err := done.wait(); err != nil {
		t.Fatal(err)
	}
	alice.fault.mu.Lock()
	alice.fault.onPut = nil
	alice.fault.mu.Unlock()
	if err := s.persist(ctx, e, v2); err != nil {
		t.Fatal(err)
	}
	b, err := alice.ds.Get(ctx, sessionKey(bob.h.ID()))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.listSent != 2 {
		t.Fatalf("version %d persisted, but the disk holds version 1's record (list %d)", v2, r.listSent)
	}
}
