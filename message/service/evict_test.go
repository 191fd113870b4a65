package service

import (
	"testing"

	ds "github.com/ipfs/go-datastore"
)

// TestEvictAfterFailedWrite: a device whose last session write failed,
// evicted from the cache (the only one not in use), comes back from
// disk, and the next messages with it go on on the same session: the
// state in memory was ahead of the disk only by a step no frame left
// from.
func TestEvictAfterFailedWrite(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	for _, d := range []*device{bob, carol} {
		alice.befriend(d.name, d)
		d.befriend("Alice", alice)
	}
	ctx := t.Context()
	alice.svc.cache.max = 1
	for _, text := range []string{"hello", "confirmed"} {
		if _, err := alice.svc.Send(ctx, "bob", text); err != nil {
			t.Fatal(err)
		}
	}
	alice.fault.fail(sessionsPrefix)
	if _, err := alice.svc.Send(ctx, "bob", "never left"); err == nil {
		t.Fatal("sent with its session write failing")
	}
	alice.fault.fail(ds.NewKey("/"))
	e := alice.svc.cache.acquire(bob.h.ID())
	if e.durable.Load() == e.ver.Load() {
		t.Fatal("bob's state in memory is on disk after a failed write")
	}
	alice.svc.cache.release(e)
	if _, err := alice.svc.Send(ctx, "carol", "hi"); err != nil { // evicts bob's
		t.Fatal(err)
	}
	alice.svc.cache.mu.Lock()
	_, held := alice.svc.cache.m[bob.h.ID()]
	alice.svc.cache.mu.Unlock()
	if held {
		t.Fatal("bob's sessions still cached past the bound")
	}
	for _, text := range []string{"after", "and after"} {
		if _, err := alice.svc.Send(ctx, "bob", text); err != nil {
			t.Fatal(err)
		}
	}
	if n := alice.prek.fetches(); n != 2 {
		t.Fatalf("%d bundles fetched for two devices, want 2: bob's session was lost", n)
	}
	if n := len(bob.store.messages()); n != 4 {
		t.Fatalf("bob holds %d messages, want 4", n)
	}
}
