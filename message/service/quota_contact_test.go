package service

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
)

// TestOnlyContactsDeliver: a stranger's device is refused before
// anything is read (counted: RefusedNotContact), and a contact's device
// whose envelope claims another contact's cell (Mallory's device, on
// Mallory's list only, writing as Bob's cell) is refused and recorded
// nowhere, while Bob's own message is delivered.
func TestOnlyContactsDeliver(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "mallory", "dave")
	alice, bob, mallory, dave := devs[0], devs[1], devs[2], devs[3]
	alice.befriend("Bob", bob)
	alice.befriend("Mallory", mallory)
	bob.befriend("Alice", alice)
	mallory.befriend("Alice", alice)
	dave.befriend("Alice", alice)
	// Mallory's service writes envelopes of Bob's cell, with no device
	// list (its own is Mallory's cell's, which an envelope of Bob's cell
	// cannot carry).
	mallory.cell, mallory.cons.own = bob.cell, nil
	_ = mallory.svc.Close()
	mallory.start(t)
	ctx := t.Context()
	if _, err := mallory.svc.Send(ctx, "Alice", "I am Bob"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("mallory writes as Bob's cell: %v, want refused (ErrUnreachable)", err)
	}
	if _, err := dave.svc.Send(ctx, "Alice", "a stranger"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a stranger sends: %v, want refused (ErrUnreachable)", err)
	}
	if got := texts(alice.store.messages()); len(got) != 0 {
		t.Fatalf("alice recorded %q", got)
	}
	if m, err := bob.svc.Send(ctx, "Alice", "from bob"); err != nil || m.State != Delivered {
		t.Fatalf("bob sends: %+v, %v", m, err)
	}
	ms := alice.store.messages()
	if len(ms) != 1 || ms[0].Text != "from bob" || ms[0].Device != bob.h.ID().String() {
		t.Fatalf("alice holds %+v, want bob's message only", ms)
	}
	if got := alice.svc.Quota().RefusedNotContact; got < 1 {
		t.Fatalf("RefusedNotContact = %d, want the stranger's refusals counted", got)
	}
}

// floodUntilRefused has from send to the contact name, one message at a
// time, until one is refused (at most 200): it returns how many went.
func floodUntilRefused(t *testing.T, from *device, name string) int {
	t.Helper()
	for i := range 200 {
		_, err := from.svc.Send(t.Context(), name, fmt.Sprint("message number ", i))
		switch {
		case errors.Is(err, ErrUnreachable):
			return i
		case err != nil:
			t.Fatalf("%s sends %d: %v", from.name, i, err)
		}
	}
	t.Fatalf("%s sent 200 messages, none refused", from.name)
	return 0
}

// TestDailyBudgetSurvivesRestart: a contact past its bytes of the day is
// refused (counted: RefusedContactDay), and still is after Alice's node
// restarts, its day's count read back from the datastore; another
// contact still delivers.
func TestDailyBudgetSurvivesRestart(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	alice.tune = func(c *Config) { c.MaxInBytesPerContactPerDay = 8 << 10 }
	_ = alice.svc.Close()
	alice.start(t)
	n := floodUntilRefused(t, bob, "Alice")
	if n == 0 || alice.svc.Quota().RefusedContactDay == 0 {
		t.Fatalf("%d of bob's messages went; quota %+v: want some, then refused for the contact's day", n, alice.svc.Quota())
	}
	_ = alice.svc.Close()
	alice.start(t)
	if _, err := bob.svc.Send(t.Context(), "Alice", "after the restart"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("bob sends after alice's restart: %v, want refused", err)
	}
	if got := alice.svc.Quota().RefusedContactDay; got == 0 {
		t.Fatalf("after the restart RefusedContactDay = %d, want counted", got)
	}
	if _, err := carol.svc.Send(t.Context(), "Alice", "from carol"); err != nil {
		t.Fatalf("carol sends: %v", err)
	}
	bobCell := hexKey(bob.cell.Public().(ed25519.PublicKey))
	in := 0
	for _, m := range alice.store.messages() {
		if m.Conversation == bobCell {
			in++
		}
	}
	if in != n {
		t.Fatalf("alice recorded %d of bob's messages, want the %d acknowledged", in, n)
	}
}

// TestNodeDailyBudget: past the node's bytes of the day from all
// contacts, every contact is refused (counted: RefusedNodeDay), not only
// the one that spent them.
func TestNodeDailyBudget(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	alice.tune = func(c *Config) { c.MaxInBytesPerDay = 8 << 10 }
	_ = alice.svc.Close()
	alice.start(t)
	if n := floodUntilRefused(t, bob, "Alice"); n == 0 {
		t.Fatal("none of bob's messages went")
	}
	if _, err := carol.svc.Send(t.Context(), "Alice", "from carol"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("carol sends past the node's day: %v, want refused", err)
	}
	if st := alice.svc.Quota(); st.RefusedNodeDay < 2 || st.RefusedContactDay != 0 {
		t.Fatalf("quota %+v: want bob's and carol's refusals for the node's day", st)
	}
}
