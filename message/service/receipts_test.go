package service

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/store"
)

// states returns the states of the messages d's cell holds, by text.
func states(d *device) map[string]string {
	out := map[string]string{}
	for _, m := range d.store.messages() {
		out[m.Text] = m.State
	}
	return out
}

// send sends text from d to name and wants it delivered.
func send(t *testing.T, d *device, name, text string) Message {
	t.Helper()
	m, err := d.svc.Send(t.Context(), name, text)
	if err != nil || m.State != Delivered {
		t.Fatalf("%s sends %q: %+v, %v", d.name, text, m, err)
	}
	return m
}

// readMarker returns d's cell's read marker of the conversation with
// the device of's cell.
func readMarker(t *testing.T, d, of *device) marker {
	t.Helper()
	mk, ok, err := d.svc.getMarker(t.Context(), store.EntityID(message.ReadEntityOf(of.list.Cell)))
	if err != nil || !ok {
		t.Fatalf("%s's marker: %v, %v", d.name, ok, err)
	}
	return mk
}

// TestReadReceipt: bob reads the conversation: his two messages in go
// read in his cell, one receipt goes to alice's cell, which records her
// two messages read; the marker is acknowledged; reading again marks
// nothing and sends nothing.
func TestReadReceipt(t *testing.T) { bubble(t, testReadReceipt) }

func testReadReceipt(t *testing.T) {
	alice, bob := courierPair(t)
	send(t, alice, "Bob", "one")
	send(t, alice, "Bob", "two")
	send(t, bob, "Alice", "mine")
	got, err := bob.svc.Read(t.Context(), "Alice", "")
	if err != nil || got.Marked != 2 || !got.Receipt {
		t.Fatalf("Read: %+v, %v; want 2 marked and a receipt", got, err)
	}
	if st := states(bob); st["one"] != Read || st["two"] != Read || st["mine"] != Delivered {
		t.Fatalf("bob holds %v, want his messages in read, his own delivered", st)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	if st := states(alice); st["one"] != Read || st["two"] != Read || st["mine"] != Delivered {
		t.Fatalf("alice holds %v, want her messages read, bob's delivered", st)
	}
	if n := bob.svc.Courier().Receipts; n != 1 {
		t.Fatalf("bob sent %d receipts, want 1", n)
	}
	if mk := readMarker(t, bob, alice); mk.State != Delivered || mk.UpTo != got.UpTo {
		t.Fatalf("bob's marker %+v, want delivered up to %s", mk, got.UpTo)
	}
	again, err := bob.svc.Read(t.Context(), "Alice", "")
	if err != nil || again.Marked != 0 || again.Receipt {
		t.Fatalf("Read again: %+v, %v; want nothing", again, err)
	}
	time.Sleep(time.Minute)
	synctest.Wait()
	if n := bob.svc.Courier().Receipts; n != 1 {
		t.Fatalf("bob sent %d receipts, want 1", n)
	}
}

// TestReadUpTo: Read up to an order key marks the messages at or before
// it only, and the receipt marks alice's at or before it only; a key
// that does not parse is refused and marks nothing.
func TestReadUpTo(t *testing.T) { bubble(t, testReadUpTo) }

func testReadUpTo(t *testing.T) {
	alice, bob := courierPair(t)
	send(t, alice, "Bob", "one")
	two := send(t, alice, "Bob", "two")
	send(t, alice, "Bob", "three")
	if _, err := bob.svc.Read(t.Context(), "Alice", "not a key"); !errors.Is(err, message.ErrBadOrderKey) {
		t.Fatalf("Read of a bad key: %v, want ErrBadOrderKey", err)
	}
	if got, err := bob.svc.Read(t.Context(), "Alice", two.Order); err != nil || got.Marked != 2 {
		t.Fatalf("Read: %+v, %v", got, err)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	want := map[string]string{"one": Read, "two": Read, "three": Delivered}
	for _, d := range []*device{alice, bob} {
		if st := states(d); !mapsEqual(st, want) {
			t.Fatalf("%s holds %v, want %v", d.name, st, want)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestReadPages: a conversation longer than ReadPage, the store giving
// one page at a time, is read whole, each side.
func TestReadPages(t *testing.T) { bubble(t, testReadPages) }

func testReadPages(t *testing.T) {
	alice, bob := courierPair(t)
	for _, d := range []*device{alice, bob} {
		d.store.mu.Lock()
		d.store.limits = true
		d.store.mu.Unlock()
	}
	n := 2*ReadPage + 3
	for i := range n {
		send(t, alice, "Bob", strings.Repeat("x", i+1))
	}
	if got, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil || got.Marked != n {
		t.Fatalf("Read: %+v, %v; want %d marked", got, err, n)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	for _, d := range []*device{alice, bob} {
		if got := held(t, d, Read); len(got) != n {
			t.Fatalf("%s holds %d read", d.name, len(got))
		}
	}
}

// TestReadReceiptWhileOffline: bob reads while alice's device is off;
// the receipt waits in bob's chain and goes when she is back.
func TestReadReceiptWhileOffline(t *testing.T) { bubble(t, testReadReceiptWhileOffline) }

func testReadReceiptWhileOffline(t *testing.T) {
	alice, bob := courierPair(t)
	send(t, alice, "Bob", "one")
	_ = alice.svc.Close()
	if got, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil || !got.Receipt {
		t.Fatalf("Read: %+v, %v", got, err)
	}
	time.Sleep(time.Hour)
	synctest.Wait()
	if mk := readMarker(t, bob, alice); mk.State != Sent {
		t.Fatalf("bob's marker %+v with alice off, want sent (due)", mk)
	}
	alice.start(t)
	time.Sleep(10 * time.Minute)
	synctest.Wait()
	if st := states(alice); st["one"] != Read {
		t.Fatalf("alice holds %v, want read", st)
	}
	if mk := readMarker(t, bob, alice); mk.State != Delivered {
		t.Fatalf("bob's marker %+v, want delivered", mk)
	}
}

// TestReadReceiptsOff: with receipts off for alice, bob's reads are
// marked in his cell and nothing goes to alice's: her message stays
// delivered, as if not read yet; turned on, the next read goes.
func TestReadReceiptsOff(t *testing.T) { bubble(t, testReadReceiptsOff) }

func testReadReceiptsOff(t *testing.T) {
	alice, bob := courierPair(t)
	setReceiptsOff(bob, "Alice", true)
	send(t, alice, "Bob", "one")
	got, err := bob.svc.Read(t.Context(), "Alice", "")
	if err != nil || got.Marked != 1 || got.Receipt {
		t.Fatalf("Read: %+v, %v; want 1 marked, no receipt", got, err)
	}
	time.Sleep(time.Hour)
	synctest.Wait()
	if st := states(alice); st["one"] != Delivered {
		t.Fatalf("alice holds %v, want delivered (receipts off)", st)
	}
	if st := states(bob); st["one"] != Read {
		t.Fatalf("bob holds %v, want read", st)
	}
	if n := bob.svc.Courier().Receipts; n != 0 {
		t.Fatalf("bob sent %d receipts with receipts off", n)
	}
	if mk := readMarker(t, bob, alice); mk.State != ReceiptsOff {
		t.Fatalf("bob's marker %+v, want off", mk)
	}
	setReceiptsOff(bob, "Alice", false)
	send(t, alice, "Bob", "two")
	if got, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil || !got.Receipt {
		t.Fatalf("Read with receipts on: %+v, %v", got, err)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	if st := states(alice); st["two"] != Read {
		t.Fatalf("alice holds %v, want two read", st)
	}
}

// TestReceiptTurnedOffBeforeSent: receipts turned off after the read,
// before the receipt went: none goes.
func TestReceiptTurnedOffBeforeSent(t *testing.T) { bubble(t, testReceiptTurnedOffBeforeSent) }

func testReceiptTurnedOffBeforeSent(t *testing.T) {
	alice, bob := courierPair(t)
	send(t, alice, "Bob", "one")
	_ = alice.svc.Close()
	if got, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil || !got.Receipt {
		t.Fatalf("Read: %+v, %v", got, err)
	}
	setReceiptsOff(bob, "Alice", true)
	alice.start(t)
	time.Sleep(time.Hour)
	synctest.Wait()
	if st := states(alice); st["one"] != Delivered {
		t.Fatalf("alice holds %v, want delivered", st)
	}
	if mk := readMarker(t, bob, alice); mk.State != ReceiptsOff {
		t.Fatalf("bob's marker %+v, want off", mk)
	}
}

func setReceiptsOff(d *device, name string, off bool) {
	d.cons.mu.Lock()
	defer d.cons.mu.Unlock()
	for i := range d.cons.cs {
		if d.cons.cs[i].Name == name {
			d.cons.cs[i].ReceiptsOff = off
		}
	}
}

// TestReceiptOnlyFromTheContact: carol's read marks alice's messages to
// carol only, not those to bob; a receipt carol's device sends naming
// bob's cell is refused and marks nothing.
func TestReceiptOnlyFromTheContact(t *testing.T) { bubble(t, testReceiptOnlyFromTheContact) }

func testReceiptOnlyFromTheContact(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	onClock(t, alice, bob, carol)
	send(t, alice, "Bob", "to bob")
	send(t, alice, "Carol", "to carol")
	if _, err := carol.svc.Read(t.Context(), "Alice", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	if st := states(alice); st["to carol"] != Read || st["to bob"] != Delivered {
		t.Fatalf("alice holds %v, want carol's read only", st)
	}
	// Carol's device speaks for bob's cell.
	sent, author, seq, err := message.ParseOrderKey("7" + strings.Repeat("f", 15) + "." + alice.h.ID().String() + "." + strings.Repeat("0", 16))
	if err != nil {
		t.Fatal(err)
	}
	r := &message.Receipt{
		ID: message.ID{9}, Cell: bob.list.Cell, To: alice.list.Cell, Device: carol.h.ID(),
		Sent: sent, Author: author, Seq: seq,
	}
	err = carol.svc.deliverOut(t.Context(), alice.h.ID(), outgoing{id: r.ID, rec: r}, nil, func() error { return nil })
	if !errors.Is(err, errRefused) {
		t.Fatalf("a receipt for another cell: %v, want refused", err)
	}
	if st := states(alice); st["to bob"] != Delivered {
		t.Fatalf("alice holds %v after carol's forged receipt", st)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range states(alice) {
			if !yield(k) {
				return
			}
		}
	}); len(got) != 2 {
		t.Fatalf("alice holds %q", got)
	}
}

// TestReadStaysRead: a message in that is read, received again (a
// second courier, an acknowledgement lost), stays read: counted as a
// duplicate, not taken back to delivered.
func TestReadStaysRead(t *testing.T) { bubble(t, testReadStaysRead) }

func testReadStaysRead(t *testing.T) {
	alice, bob := courierPair(t)
	send(t, alice, "Bob", "one")
	if _, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil {
		t.Fatal(err)
	}
	ms := bob.store.messages()
	if len(ms) != 1 || ms[0].State != Read {
		t.Fatalf("bob holds %+v", ms)
	}
	again := ms[0]
	again.State = Delivered
	if err := bob.svc.recordIn(t.Context(), again, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st := states(bob); st["one"] != Read {
		t.Fatalf("bob holds %v after the message came again, want read", st)
	}
	if n := bob.svc.Courier().Duplicates; n != 1 {
		t.Fatalf("%d duplicates, want 1", n)
	}
}
