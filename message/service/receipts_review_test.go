package service

import (
	"fmt"

	"github.com/exopeer/exopeer/message"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// readMeanwhile records d's cell's message text read, as a read receipt
// received by the cell meanwhile does.
func readMeanwhile(t *testing.T, d *device, text string) {
	for _, m := range d.store.messages() {
		if m.Text != text {
			continue
		}
		m.State = Read
		if err := d.svc.put(t.Context(), m, time.Time{}); err != nil {
			t.Errorf("read meanwhile: %v", err)
		}
		return
	}
	t.Errorf("%s holds no %q", d.name, text)
}

// readOnReceive makes from's cell record text read (a receipt applied)
// as to's cell records the message, before its acknowledgement leaves.
func readOnReceive(t *testing.T, to, from *device, text string) {
	var once sync.Once
	to.store.mu.Lock()
	to.store.onPut = func() { once.Do(func() { readMeanwhile(t, from, text) }) }
	to.store.mu.Unlock()
}

// TestSendKeepsRead: a receipt applied while Send waits for its
// acknowledgement leaves the message read: Send's "delivered" comes
// after, and a record goes only forward (Advances).
func TestSendKeepsRead(t *testing.T) { bubble(t, testSendKeepsRead) }

func testSendKeepsRead(t *testing.T) {
	alice, bob := courierPair(t)
	readOnReceive(t, bob, alice, "one")
	if _, err := alice.svc.Send(t.Context(), "Bob", "one"); err != nil {
		t.Fatal(err)
	}
	if st := states(alice); st["one"] != Read {
		t.Fatalf("alice holds %v, want read (the receipt came before the acknowledgement)", st)
	}
}

// TestCourierKeepsRead: the same for the courier's "delivered".
func TestCourierKeepsRead(t *testing.T) { bubble(t, testCourierKeepsRead) }

func testCourierKeepsRead(t *testing.T) {
	alice, bob := courierPair(t)
	_ = bob.svc.Close()
	sendPending(t, alice, "Bob", "one")
	readOnReceive(t, bob, alice, "one")
	bob.start(t)
	time.Sleep(time.Minute)
	synctest.Wait()
	if n := alice.svc.Courier().Delivered; n != 1 {
		t.Fatalf("alice's courier delivered %d", n)
	}
	if st := states(alice); st["one"] != Read {
		t.Fatalf("alice holds %v, want read (the receipt came before the acknowledgement)", st)
	}
}

// TestReceiptLeavesPendingPending: phone wrote "one" while bob was off
// (pending; laptop, of the same cell, delivers it after its grace);
// laptop's "two", later, reaches bob, who reads up to it at once. His
// receipt covers "two" only in fact: "one" never reached him. It must
// not make "one" read, which ends its delivery: bob gets it after the
// grace.
func TestReceiptLeavesPendingPending(t *testing.T) { bubble(t, testReceiptLeavesPendingPending) }

func testReceiptLeavesPendingPending(t *testing.T) {
	devs := newDevices(t, "phone", "laptop", "bob")
	phone, laptop, bob := devs[0], devs[1], devs[2]
	oneCell(t, "", phone, laptop)
	phone.befriend("Bob", bob)
	laptop.befriend("Bob", bob)
	bob.befriend("Alice", phone)
	onClock(t, bob)
	_ = bob.svc.Close()
	sendPending(t, phone, "Bob", "one")
	_ = phone.svc.Close()
	bob.start(t)
	send(t, laptop, "Bob", "two")
	if got, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil || got.Marked != 1 {
		t.Fatalf("bob reads: %+v, %v", got, err)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	if st := states(laptop); st["two"] != Read || st["one"] == Read {
		t.Fatalf("alice's cell holds %v, want two read, one not (bob never had it)", st)
	}
	time.Sleep(2 * time.Minute)
	synctest.Wait()
	if st := states(bob); st["one"] != Delivered {
		t.Fatalf("bob holds %v, want one delivered after laptop's grace", st)
	}
}

// TestReceiptCostBounded: alice has not read bob's many messages; bob
// sends receipts in a loop, up to alice's one message to him, then each
// up to a later key. Each marks nothing after the first, and must cost
// a bounded number of hits, not a page through every unread message of
// bob's.
func TestReceiptCostBounded(t *testing.T) { bubble(t, testReceiptCostBounded) }

func testReceiptCostBounded(t *testing.T) {
	alice, bob := courierPair(t)
	alice.store.mu.Lock()
	alice.store.limits = true
	alice.store.mu.Unlock()
	for i := range 4 * ReadPage {
		send(t, bob, "Alice", fmt.Sprint("bob ", i))
	}
	time.Sleep(time.Second) // mine after bob's, whatever their IDs
	mine := send(t, alice, "Bob", "mine")
	sent, author, seq, err := message.ParseOrderKey(mine.Order)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Minute) // the courier's passes are done
	synctest.Wait()
	const loops = 10
	alice.store.mu.Lock()
	before := alice.store.hits
	alice.store.mu.Unlock()
	for i := range 2 * loops {
		// The same key, then each a later one.
		r := &message.Receipt{
			ID: message.ID{0xee, byte(i)}, Cell: bob.list.Cell, To: alice.list.Cell, Device: bob.h.ID(),
			Sent: sent, Author: author, Seq: seq + uint64(max(i-loops+1, 0)),
		}
		if err := bob.svc.deliverOut(t.Context(), alice.h.ID(), outgoing{id: r.ID, rec: r}, nil, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	alice.store.mu.Lock()
	hits := alice.store.hits - before
	alice.store.mu.Unlock()
	if st := states(alice); st["mine"] != Read {
		t.Fatalf("alice holds mine %s", st["mine"])
	}
	if per := hits / (2 * loops); per > ReadPage {
		t.Fatalf("%d receipts cost alice %d hits (%d each) with %d unread messages in", 2*loops, hits, per, 4*ReadPage)
	}
}

// TestReadReceiptClockAhead: bob's clock is an hour ahead of alice's.
// His own message sorts last in the conversation, so Read with no key
// read "up to" it: alice's later messages (earlier keys) are marked read
// in bob's cell, but the marker says read that far already and no
// receipt goes: alice sees them delivered, never read.
func TestReadReceiptClockAhead(t *testing.T) { bubble(t, testReadReceiptClockAhead) }

func testReadReceiptClockAhead(t *testing.T) {
	alice, bob := courierPair(t)
	_ = bob.svc.Close()
	bob.now = func() time.Time { return time.Now().Add(time.Hour) }
	bob.start(t)
	send(t, bob, "Alice", "bob's")
	send(t, alice, "Bob", "one")
	if _, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	send(t, alice, "Bob", "two")
	got, err := bob.svc.Read(t.Context(), "Alice", "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	if st := states(alice); st["one"] != Read || st["two"] != Read {
		t.Fatalf("alice holds %v; bob read both (his second read: %+v)", st, got)
	}
}

// TestReadLastInPastOwnPage: Read with no key finds the last message in
// behind more than a page of the cell's own.
func TestReadLastInPastOwnPage(t *testing.T) { bubble(t, testReadLastInPastOwnPage) }

func testReadLastInPastOwnPage(t *testing.T) {
	alice, bob := courierPair(t)
	send(t, alice, "Bob", "one")
	time.Sleep(time.Second)
	for i := range ReadPage + 2 {
		send(t, bob, "Alice", fmt.Sprint("bob ", i))
	}
	bob.store.mu.Lock()
	bob.store.limits = true
	bob.store.mu.Unlock()
	got, err := bob.svc.Read(t.Context(), "Alice", "")
	if err != nil || got.Marked != 1 || !got.Receipt {
		t.Fatalf("Read: %+v, %v; want one marked and a receipt", got, err)
	}
}

// TestSlowReceiptGetsThrough: alice's store is slow (a page takes a
// third of the delivery timeout) and she has not read bob's many
// messages: marking one receipt takes longer than the timeout, so it is
// refused and sent again. Each try must go on from where the last one
// stopped, and her message become read, not page from the start each
// time and never reach it.
func TestSlowReceiptGetsThrough(t *testing.T) { bubble(t, testSlowReceiptGetsThrough) }

func testSlowReceiptGetsThrough(t *testing.T) {
	alice, bob := courierPair(t)
	for i := range 4 * ReadPage {
		send(t, bob, "Alice", fmt.Sprint("bob ", i))
	}
	time.Sleep(time.Second)
	send(t, alice, "Bob", "mine")
	alice.store.mu.Lock()
	alice.store.limits = true
	alice.store.onQuery = func() { time.Sleep(alice.svc.cfg.Timeout / 3) }
	alice.store.mu.Unlock()
	if _, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Hour)
	synctest.Wait()
	alice.store.mu.Lock()
	alice.store.onQuery = nil
	alice.store.mu.Unlock()
	if st := states(alice); st["mine"] != Read {
		t.Fatalf("alice holds mine %s after an hour of bob's receipt", st["mine"])
	}
}

// TestReadMarkerNeverLowered: two Reads of one device race: the one up
// to "one" read the marker (none) before the one up to "two" wrote it,
// and writes its own after: the marker must stay at "two" (doc.go:
// "never lowered by this device"), or the receipt tells alice of "one"
// only.
func TestReadMarkerNeverLowered(t *testing.T) { bubble(t, testReadMarkerNeverLowered) }

func testReadMarkerNeverLowered(t *testing.T) {
	alice, bob := courierPair(t)
	one := send(t, alice, "Bob", "one")
	two := send(t, alice, "Bob", "two")
	readMeanwhile(t, bob, "one") // so that Read up to one writes the marker only
	var fired atomic.Bool
	bob.store.mu.Lock()
	bob.store.onPut = func() {
		if fired.CompareAndSwap(false, true) {
			go func() {
				if _, err := bob.svc.Read(t.Context(), "Alice", two.Order); err != nil {
					t.Error(err)
				}
			}()
			time.Sleep(time.Second) // the other Read runs (or waits)
		}
	}
	bob.store.mu.Unlock()
	if _, err := bob.svc.Read(t.Context(), "Alice", one.Order); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	if mk := readMarker(t, bob, alice); mk.UpTo != two.Order {
		t.Fatalf("bob's marker up to %s, want %s (two)", mk.UpTo, two.Order)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	if st := states(alice); st["two"] != Read {
		t.Fatalf("alice holds %v, want two read", st)
	}
}
