package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message"
	storeservice "github.com/exopeer/exopeer/store/service"
)

// Status is the store's status as status gives it; without status, a
// node whose reads a store member answers.
func (f *fakeStore) Status(context.Context) (storeservice.Status, error) {
	f.mu.Lock()
	status := f.status
	f.mu.Unlock()
	if status == nil {
		return storeservice.Status{Role: storeservice.RoleRemote}, nil
	}
	return status()
}

// sweepFixture is alice, who holds sessions with bob and bob2 (one cell,
// its list of version 2 naming both) and has swept them named; onlyBob
// is the cell's list of version 3, naming bob only.
type sweepFixture struct {
	alice, bob, bob2 *device
	onlyBob          *contact.DeviceList
	full             []contactservice.Contact // alice's contacts
}

func newSweepFixture(t *testing.T) *sweepFixture {
	t.Helper()
	alice, bob, bob2, onlyBob := twoDeviceBob(t)
	for _, d := range []*device{bob, bob2} {
		if _, err := d.svc.Send(t.Context(), "Alice", "from "+d.name); err != nil {
			t.Fatalf("%s sends: %v", d.name, err)
		}
	}
	synctest.Wait()
	f := &sweepFixture{alice: alice, bob: bob, bob2: bob2, onlyBob: onlyBob}
	alice.cons.mu.Lock()
	f.full = slices.Clone(alice.cons.cs)
	alice.cons.mu.Unlock()
	f.held(t, "before the test", bob, bob2)
	return f
}

// held fails unless alice holds each device's record and cache entry.
func (f *sweepFixture) held(t *testing.T, when string, ds ...*device) {
	t.Helper()
	for _, d := range ds {
		if !f.alice.has(t, d.h.ID()) || !f.alice.cached(d.h.ID()) {
			t.Fatalf("%s: alice holds %s's record %v, entry %v; want both", when, d.name, f.alice.has(t, d.h.ID()), f.alice.cached(d.h.ID()))
		}
	}
}

// dropped fails unless alice holds neither the record nor the entry of
// each device.
func (f *sweepFixture) dropped(t *testing.T, when string, ds ...*device) {
	t.Helper()
	for _, d := range ds {
		if f.alice.has(t, d.h.ID()) || f.alice.cached(d.h.ID()) {
			t.Fatalf("%s: alice holds %s's record %v, entry %v; want neither", when, d.name, f.alice.has(t, d.h.ID()), f.alice.cached(d.h.ID()))
		}
	}
}

// contacts makes cs alice's contacts, as her store's index reads them.
func (f *sweepFixture) contacts(cs []contactservice.Contact) {
	f.alice.cons.mu.Lock()
	f.alice.cons.cs = slices.Clone(cs)
	f.alice.cons.mu.Unlock()
}

// bobWith is alice's contact Bob with list l.
func (f *sweepFixture) bobWith(l *contact.DeviceList) []contactservice.Contact {
	c := f.full[0]
	c.Devices = l
	return []contactservice.Contact{c}
}

// status makes the store's Status answer each of script in turn, then
// last; it returns the count of calls.
func (f *sweepFixture) status(last storeservice.Status, lastErr error, script ...storeservice.Status) *atomic.Int64 {
	calls := new(atomic.Int64)
	f.alice.store.mu.Lock()
	f.alice.store.status = func() (storeservice.Status, error) {
		if i := calls.Add(1) - 1; i < int64(len(script)) {
			return script[i], nil
		}
		return last, lastErr
	}
	f.alice.store.mu.Unlock()
	return calls
}

var (
	caughtUp = storeservice.Status{Role: storeservice.RoleStore, Next: 40}
	behind   = storeservice.Status{Role: storeservice.RoleStore, Next: 0, Behind: 40}
)

// TestSweepPostponedWhileIndexBehind: while the store's index is behind
// the chain (a reindex emptied it and applies the chain again: the
// contacts read from it name no device), the sweeper drops nothing,
// however long, and reads the store's status again every SweepRetry,
// not more; nor while the index has applied nothing though the chain
// reads as empty, nor while the status cannot be read. Once caught up,
// the contacts name the same devices and nothing is dropped; a newer
// list then drops its device at once.
func TestSweepPostponedWhileIndexBehind(t *testing.T) {
	bubble(t, testSweepPostponedWhileIndexBehind)
}

func testSweepPostponedWhileIndexBehind(t *testing.T) {
	f := newSweepFixture(t)
	calls := f.status(behind, nil)
	f.contacts(nil)
	f.alice.svc.listsChanged() // the emptied index's watch event
	synctest.Wait()
	f.held(t, "at the reindex's start", f.bob, f.bob2)
	calls.Store(0)
	time.Sleep(4 * SweepRetry)
	synctest.Wait()
	f.held(t, "4 retries into the reindex", f.bob, f.bob2)
	if n := calls.Load(); n < 4 || n > 5 {
		t.Fatalf("the status read %d times in 4 SweepRetry periods, want one a period", n)
	}
	f.status(storeservice.Status{Role: storeservice.RoleStore}, nil) // Next 0, Behind 0
	time.Sleep(3 * SweepRetry)
	synctest.Wait()
	f.held(t, "while the index has applied nothing of a chain read as empty", f.bob, f.bob2)
	f.status(storeservice.Status{}, errors.New("index not open"))
	time.Sleep(3 * SweepRetry)
	synctest.Wait()
	f.held(t, "while the status cannot be read", f.bob, f.bob2)
	f.status(caughtUp, nil)
	f.contacts(f.full)
	time.Sleep(3 * SweepRetry)
	synctest.Wait()
	f.held(t, "once caught up", f.bob, f.bob2)
	f.contacts(f.bobWith(f.onlyBob))
	f.alice.svc.listsChanged()
	synctest.Wait()
	f.dropped(t, "a newer list without bob2, caught up", f.bob2)
	f.held(t, "a newer list naming bob, caught up", f.bob)
}

// TestSweepPostponedWhenIndexMovesUnderTheRead: the store's status is
// read again after the contacts; if the index fell behind meanwhile,
// went back, or the node's role changed, what was read may come from a
// half-made index, and the sweep is postponed, even for a drop it would
// be sure of (a newer list without bob2). The retry, caught up, drops.
func TestSweepPostponedWhenIndexMovesUnderTheRead(t *testing.T) {
	bubble(t, testSweepPostponedWhenIndexMovesUnderTheRead)
}

func testSweepPostponedWhenIndexMovesUnderTheRead(t *testing.T) {
	f := newSweepFixture(t)
	f.contacts(f.bobWith(f.onlyBob))
	f.status(caughtUp, nil, caughtUp, storeservice.Status{Role: storeservice.RoleStore, Next: 40, Behind: 3})
	f.alice.svc.listsChanged()
	synctest.Wait()
	f.held(t, "the index behind after the read", f.bob2)
	f.status(caughtUp, nil, caughtUp, storeservice.Status{Role: storeservice.RoleStore, Next: 39})
	time.Sleep(SweepRetry)
	synctest.Wait()
	f.held(t, "the index gone back during the read", f.bob2)
	f.status(caughtUp, nil, storeservice.Status{Role: storeservice.RoleRemote}, caughtUp) // became a store member
	time.Sleep(SweepRetry)
	synctest.Wait()
	f.held(t, "the role changed during the read", f.bob2)
	time.Sleep(SweepRetry)
	synctest.Wait()
	f.dropped(t, "the retry, caught up", f.bob2)
	f.held(t, "the retry, caught up", f.bob)
}

// TestSweepWaitsForASecondRead: the index may be emptied and caught up
// again between the two reads of the store's status, and a store member
// answering a node's reads says nothing of its index; so a drop the
// sweep cannot be sure of (a contact of the last complete sweep gone,
// or its list older) waits for a read of the contacts SweepRetry later
// that names the same devices (not one at once). One that names more
// (the contact back) drops nothing.
func TestSweepWaitsForASecondRead(t *testing.T) { bubble(t, testSweepWaitsForASecondRead) }

func testSweepWaitsForASecondRead(t *testing.T) {
	f := newSweepFixture(t)
	// A read without Bob, the next with him: nothing dropped.
	f.contacts(nil)
	f.alice.svc.listsChanged()
	synctest.Wait()
	f.held(t, "Bob missing from one read", f.bob, f.bob2)
	f.contacts(f.full)
	time.Sleep(SweepRetry)
	synctest.Wait()
	f.held(t, "Bob read again", f.bob, f.bob2)
	// An older list of Bob's cell (version 1, naming bob): bob2 is
	// dropped once a second read agrees.
	older := contact.NewDeviceList(f.bob.cell.Public().(ed25519.PublicKey), 1, []peer.ID{f.bob.h.ID()})
	if err := older.Sign(f.bob.cell); err != nil {
		t.Fatal(err)
	}
	f.contacts(f.bobWith(older))
	f.alice.svc.listsChanged()
	synctest.Wait()
	f.held(t, "an older list without bob2, read once", f.bob2)
	f.alice.svc.listsChanged() // a second read at once does not agree
	synctest.Wait()
	f.held(t, "an older list without bob2, read twice at once", f.bob2)
	time.Sleep(SweepRetry)
	synctest.Wait()
	f.dropped(t, "an older list without bob2, read twice", f.bob2)
	f.held(t, "an older list naming bob, read twice", f.bob)
	// Bob removed: his devices' sessions go once a second read agrees.
	f.contacts(nil)
	f.alice.svc.listsChanged()
	synctest.Wait()
	f.held(t, "Bob removed, read once", f.bob)
	time.Sleep(SweepRetry)
	synctest.Wait()
	f.dropped(t, "Bob removed, read twice", f.bob)
}

// TestNothingSentToADroppedDevice: a delivery that checked its entry
// before a sweep dropped the device (deliverOnce's gone check, then the
// drop) opens no new stream to it and writes nothing: the drop shut its
// pool.
func TestNothingSentToADroppedDevice(t *testing.T) { bubble(t, testNothingSentToADroppedDevice) }

func testNothingSentToADroppedDevice(t *testing.T) {
	f := newSweepFixture(t)
	ctx := t.Context()
	id := f.bob2.h.ID()
	e := f.alice.svc.cache.acquire(id) // the delivery holds the entry
	defer f.alice.svc.cache.release(e)
	if err := f.alice.svc.dropDevice(ctx, id); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	if n := f.alice.protocolStreams(id); n != 0 {
		t.Fatalf("%d streams with bob2 after the drop, want 0", n)
	}
	release, err := e.deliverySlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frame := message.Frame{Kind: message.KindSession, Body: []byte("sealed before the drop")}
	_, kept, err := f.alice.svc.exchange(ctx, e, id, frame, message.ID{}, release)
	if !kept {
		release()
	}
	if !errors.Is(err, errRemoved) {
		t.Fatalf("a delivery to bob2 after its drop: %v, want errRemoved", err)
	}
	synctest.Wait()
	if n := f.alice.protocolStreams(id); n != 0 {
		t.Fatalf("%d streams with bob2 opened after the drop, want 0", n)
	}
}

// TestSweepWaitsForADeviceNotNamedBefore: a sure drop (a newer list of
// a contact of the last complete sweep, without bob2) is made at once,
// but a device that sweep did not name (its sessions made since, by a
// contact the sweeper never read, which a read from an index not caught
// up may lack) waits for a second read SweepRetry later.
func TestSweepWaitsForADeviceNotNamedBefore(t *testing.T) {
	bubble(t, testSweepWaitsForADeviceNotNamedBefore)
}

func testSweepWaitsForADeviceNotNamedBefore(t *testing.T) {
	f := newSweepFixture(t)
	ctx := t.Context()
	sk, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8([32]byte{11}))
	if err != nil {
		t.Fatal(err)
	}
	other, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.alice.ds.Put(ctx, sessionKey(other), []byte{sessionsVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	f.contacts(f.bobWith(f.onlyBob))
	f.alice.svc.listsChanged()
	synctest.Wait()
	f.dropped(t, "a newer list without bob2", f.bob2)
	if !f.alice.has(t, other) {
		t.Fatal("a device the last complete sweep did not name dropped at the first read")
	}
	time.Sleep(SweepRetry)
	synctest.Wait()
	if f.alice.has(t, other) {
		t.Fatal("a device no list names held after a second read agreed")
	}
	f.held(t, "bob, named", f.bob)
}
