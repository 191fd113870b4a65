package service

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
)

// snapshot copies d's datastore whole, as a backup does.
func (d *device) snapshot(t *testing.T) ds.Batching {
	t.Helper()
	ctx := context.Background()
	cp := dssync.MutexWrap(ds.NewMapDatastore())
	res, err := d.ds.Query(ctx, query.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		if err := cp.Put(ctx, ds.NewKey(r.Key), bytes.Clone(r.Value)); err != nil {
			t.Fatal(err)
		}
	}
	return cp
}

// restore stops d, puts back the datastore snap and starts d on it: a
// device restored from a backup.
func (d *device) restore(t *testing.T, snap ds.Batching) {
	t.Helper()
	_ = d.svc.Close()
	d.ds = snap
	d.fault = &faultyDS{Datastore: snap}
	d.start(t)
}

// storedSessions returns d's record of id on disk.
func (d *device) storedSessions(t *testing.T, id peer.ID) peerRecord {
	t.Helper()
	b, err := d.ds.Get(context.Background(), sessionKey(id))
	if err != nil {
		t.Fatal(err)
	}
	r, bad, err := decodeRecord(b)
	if err != nil || bad > 0 {
		t.Fatalf("%s's record of %s: %d bad, %v", d.name, id, bad, err)
	}
	return r
}

// encoded is st's session's encoding.
func encoded(t *testing.T, st stored) []byte {
	t.Helper()
	b, err := st.sess.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestoredSessionsNeverSeal: alice's datastore is restored from a
// copy taken before she sent more messages on her session with bob, so
// the session on disk is behind what she sent: sealing with it would
// use again message keys that went out. After the restore her next
// message goes on a new session (one handshake); the restored one is
// kept, unchanged, to open bob's messages. Bob holds every message
// once.
func TestRestoredSessionsNeverSeal(t *testing.T) {
	alice, bob := pair(t) // "hello" delivered: one session
	ctx := t.Context()
	snap := alice.snapshot(t)
	old := alice.storedSessions(t, bob.h.ID())
	if len(old.sessions) != 1 {
		t.Fatalf("alice holds %d sessions with bob, want 1", len(old.sessions))
	}
	for _, text := range []string{"two", "three"} {
		if _, err := alice.svc.Send(ctx, "Bob", text); err != nil {
			t.Fatal(err)
		}
	}
	alice.restore(t, snap)
	if _, err := alice.svc.Send(ctx, "Bob", "after the restore"); err != nil {
		t.Fatal(err)
	}
	if n := alice.prek.fetches(); n != 2 {
		t.Fatalf("alice fetched %d bundles, want 2 (a new session after the restore)", n)
	}
	r := alice.storedSessions(t, bob.h.ID())
	i := slices.IndexFunc(r.sessions, func(st stored) bool { return st.id == old.sessions[0].id })
	if i < 0 {
		t.Fatal("the restored session was dropped: it was used to seal, and bob refused it")
	}
	if !bytes.Equal(encoded(t, r.sessions[i]), encoded(t, old.sessions[0])) {
		t.Fatal("the restored session stepped after the restore: it sealed a message with keys already used")
	}
	if r.sessions[0].run != alice.svc.run {
		t.Fatal("the newest session is not of this run")
	}
	want := []string{"hello", "two", "three", "after the restore"}
	if got := texts(bob.store.messages()); !slices.Equal(got, want) {
		t.Fatalf("bob holds %q, want %q", got, want)
	}
}

// TestRestoredDeviceReceives: bob, current, writes to alice, restored
// from a copy taken before a round of their conversation: his message
// is on a chain whose ratchet key her restored session never saw, so
// it does not open; she refuses it, bob drops that session, makes a new
// one, and the message is delivered once.
func TestRestoredDeviceReceives(t *testing.T) {
	alice, bob := pair(t)
	ctx := t.Context()
	snap := alice.snapshot(t)
	for _, m := range []struct {
		from *device
		to   string
		text string
	}{{bob, "Alice", "r1"}, {alice, "Bob", "two"}, {bob, "Alice", "r2"}} {
		if _, err := m.from.svc.Send(ctx, m.to, m.text); err != nil {
			t.Fatal(err)
		}
	}
	alice.restore(t, snap)
	before := bob.prek.fetches()
	if _, err := bob.svc.Send(ctx, "Alice", "r3"); err != nil {
		t.Fatalf("bob writes to the restored alice: %v", err)
	}
	if n := bob.prek.fetches() - before; n != 1 {
		t.Fatalf("bob fetched %d bundles, want 1 (a new session after alice's refusal)", n)
	}
	if got, want := texts(alice.store.messages()), []string{"hello", "r1", "two", "r2", "r3"}; !slices.Equal(got, want) {
		t.Fatalf("alice holds %q, want %q", got, want)
	}
	if _, err := alice.svc.Send(ctx, "Bob", "and back"); err != nil {
		t.Fatal(err)
	}
}

// TestRestoredCounterSeqsAbove: a counter restored from an older copy
// of the datastore hands out no seq it handed out after the copy (the
// same seq with the lease's sent floor made the same order key: a real
// pair of processes showed it, internal/loopbench
// TestRestoredNodeNeverReusesKeys): seqs resume above the clock's
// milliseconds × 1,000.
func TestRestoredCounterSeqsAbove(t *testing.T) {
	alice, _ := pair(t)
	ctx := t.Context()
	snap := alice.snapshot(t)
	// A restart after the copy: its lease starts where the copy's ends.
	_ = alice.svc.Close()
	alice.start(t)
	var last uint64
	for _, text := range []string{"two", "three"} {
		m, err := alice.svc.Send(ctx, "Bob", text)
		if err != nil {
			t.Fatal(err)
		}
		last = seqOf(t, m)
	}
	alice.restore(t, snap)
	m, err := alice.svc.Send(ctx, "Bob", "after the restore")
	if err != nil {
		t.Fatal(err)
	}
	if seq := seqOf(t, m); seq <= last {
		t.Fatalf("seq %d after the restore, not above %d handed out after the copy", seq, last)
	}
}

// TestRestartsKeepOneTimePrekeys: each start of the service makes a new
// session with a device it writes to (restore.go); a sender restarted
// 20 times, a message after each start, spends one of the recipient's
// one-time prekeys in all (its first session), not one per start: the
// handshakes after the first use the last-resort prekey, and every
// message is delivered on them.
func TestRestartsKeepOneTimePrekeys(t *testing.T) {
	alice, bob := pair(t) // "hello": the first session, one one-time prekey
	ctx := t.Context()
	before := bob.prek.keys.OneTimeCount()
	const restarts = 20
	for i := range restarts {
		_ = alice.svc.Close()
		alice.start(t)
		if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprint("after restart ", i)); err != nil {
			t.Fatalf("send after restart %d: %v", i, err)
		}
	}
	if got := bob.prek.keys.OneTimeCount(); got != before {
		t.Fatalf("bob holds %d one-time prekeys after %d restarts of alice, each with a message, want the %d he held before", got, restarts, before)
	}
	if got := len(bob.store.messages()); got != restarts+1 {
		t.Fatalf("bob holds %d messages, want %d", got, restarts+1)
	}
	// A reply, and alice's answer, go on the last session: both sides
	// took it.
	if _, err := bob.svc.Send(ctx, "Alice", "reply"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.svc.Send(ctx, "Bob", "and back"); err != nil {
		t.Fatal(err)
	}
}
