package service

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
)

// oneCell makes devs the devices of one cell, the first's: its key, a
// list naming them all, one store (the chain, replicated at once), the
// mailbox role on mailbox if not empty; each restarted on the bubble's
// clock.
func oneCell(t *testing.T, mailbox peer.ID, devs ...*device) {
	t.Helper()
	first := devs[0]
	ids := []peer.ID{}
	for _, d := range devs {
		ids = append(ids, d.h.ID())
	}
	list := contact.NewDeviceList(first.list.Cell, 2, ids)
	if err := list.Sign(first.cell); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		d.cell, d.list, d.store, d.mailbox = first.cell, list, first.store, mailbox
		d.cons.own = list
	}
	onClock(t, devs...)
}

// onClock restarts devs with the real clock (the bubble's) and the
// courier's default timing.
func onClock(t *testing.T, devs ...*device) {
	t.Helper()
	for _, d := range devs {
		_ = d.svc.Close()
		d.now, d.backoff = time.Now, 0
		d.start(t)
	}
}

// courierPair makes alice and bob, contacts of each other, on the
// bubble's clock (onClock).
func courierPair(t *testing.T) (alice, bob *device) {
	t.Helper()
	devs := newDevices(t, "alice", "bob")
	alice, bob = devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	onClock(t, alice, bob)
	return alice, bob
}

// sendPending sends text from d to the contact name, none of whose
// devices serves: the message must stay pending.
func sendPending(t *testing.T, d *device, name, text string) Message {
	t.Helper()
	m, err := d.svc.Send(t.Context(), name, text)
	if !errors.Is(err, ErrUnreachable) || m.State != Sent {
		t.Fatalf("%s sends %q to %s, offline: %+v, %v", d.name, text, name, m, err)
	}
	return m
}

// held returns the texts d's cell holds, in order, and checks each is
// there once, in the state want.
func held(t *testing.T, d *device, want string) []string {
	t.Helper()
	ms := d.store.messages()
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.ID] {
			t.Fatalf("%s holds %s twice", d.name, m.ID)
		}
		seen[m.ID] = true
		if m.State != want {
			t.Fatalf("%s holds %q as %s, want %s", d.name, m.Text, m.State, want)
		}
	}
	return texts(ms)
}

// TestCourierDelivers: messages sent while the contact's only device is
// off stay pending; the sender's courier tries again with backoff
// (5 s doubling to 10 min: 10 tries in an hour, not more) and delivers
// them, in order and once each, when the device is back, at the next
// try (at most 10 min later); Close then waits for the courier.
func TestCourierDelivers(t *testing.T) { bubble(t, testCourierDelivers) }

func testCourierDelivers(t *testing.T) {
	alice, bob := courierPair(t)
	_ = bob.svc.Close() // off
	sendPending(t, alice, "Bob", "one")
	sendPending(t, alice, "Bob", "two")
	time.Sleep(time.Hour)
	// The two Sends failed (backoff 5 s, then 10 s); the courier's tries
	// at 10, 30, 70, 150, 310, 630 s, then every 600 s: 10 in the hour
	// (the second message waits behind the first).
	if n := alice.svc.Courier().Failed; n != 10 {
		t.Fatalf("%d tries in an hour, want 10 (backoff 5 s doubling to 10 min)", n)
	}
	if got := held(t, alice, Sent); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("alice holds %q", got)
	}
	bob.start(t)
	time.Sleep(10 * time.Minute)
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("bob holds %q, want the two pending messages", got)
	}
	if got := held(t, alice, Delivered); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("alice holds %q, not delivered", got)
	}
	if st := alice.svc.Courier(); st.Delivered != 2 {
		t.Fatalf("courier: %+v, want 2 delivered", st)
	}
	if st := bob.svc.Courier(); st.Duplicates != 0 {
		t.Fatalf("bob: %+v, want no duplicates", st)
	}
	// Close waits for the courier's goroutine (the bubble would report
	// one left blocked; leaktest one that outlives the test).
	if err := alice.svc.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCourierOfAnotherDevice: a message phone wrote while the contact
// was off, phone then off too, is delivered by laptop, another device
// of its cell, once the contact is back and laptop's grace (1 min)
// has passed; the contact records it under phone's order key, the one
// phone's cell holds, and a message the contact answers reaches the
// cell through laptop.
func TestCourierOfAnotherDevice(t *testing.T) { bubble(t, testCourierOfAnotherDevice) }

func testCourierOfAnotherDevice(t *testing.T) {
	devs := newDevices(t, "phone", "laptop", "bob")
	phone, laptop, bob := devs[0], devs[1], devs[2]
	oneCell(t, "", phone, laptop)
	phone.befriend("Bob", bob)
	laptop.befriend("Bob", bob)
	bob.befriend("Alice", phone)
	onClock(t, bob)
	_ = bob.svc.Close()
	sent := sendPending(t, phone, "Bob", "written on the phone")
	_ = phone.svc.Close()
	bob.start(t)
	time.Sleep(30 * time.Second)
	synctest.Wait()
	if got := held(t, bob, Delivered); len(got) != 0 {
		t.Fatalf("bob holds %q within laptop's grace", got)
	}
	time.Sleep(time.Minute)
	synctest.Wait()
	ms := bob.store.messages()
	if len(ms) != 1 || ms[0].Text != "written on the phone" {
		t.Fatalf("bob holds %+v, want phone's message", ms)
	}
	if ms[0].Order != sent.Order || ms[0].Device != phone.h.ID().String() {
		t.Fatalf("bob holds it as %s by %s, want phone's order %s", ms[0].Order, ms[0].Device, sent.Order)
	}
	if got := held(t, laptop, Delivered); !slices.Equal(got, []string{"written on the phone"}) {
		t.Fatalf("alice's cell holds %q", got)
	}
	if st := laptop.svc.Courier(); st.Delivered != 1 {
		t.Fatalf("laptop's courier: %+v", st)
	}
	if _, err := bob.svc.Send(t.Context(), "Alice", "got it"); err != nil {
		t.Fatalf("bob answers with phone off: %v", err)
	}
	if got := held(t, laptop, Delivered); !slices.Equal(got, []string{"written on the phone", "got it"}) {
		t.Fatalf("alice's cell holds %q", got)
	}
}

// TestCourierMailboxFirst: of the author's two other devices, the one
// with the mailbox role delivers (after 5 s), the other one not (its
// grace of 1 min sees the message delivered): one delivery, no
// duplicate.
func TestCourierMailboxFirst(t *testing.T) { bubble(t, testCourierMailboxFirst) }

func testCourierMailboxFirst(t *testing.T) {
	devs := newDevices(t, "phone", "box", "laptop", "bob")
	phone, box, laptop, bob := devs[0], devs[1], devs[2], devs[3]
	oneCell(t, box.h.ID(), phone, box, laptop)
	for _, d := range []*device{phone, box, laptop} {
		d.befriend("Bob", bob)
	}
	bob.befriend("Alice", phone)
	onClock(t, bob)
	_ = bob.svc.Close()
	sendPending(t, phone, "Bob", "hello")
	_ = phone.svc.Close()
	bob.start(t)
	time.Sleep(2 * time.Minute)
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("bob holds %q", got)
	}
	if b, l := box.svc.Courier(), laptop.svc.Courier(); b.Delivered != 1 || l.Delivered != 0 {
		t.Fatalf("mailbox delivered %d, laptop %d: want 1 and 0", b.Delivered, l.Delivered)
	}
	if st := bob.svc.Courier(); st.Duplicates != 0 {
		t.Fatalf("bob: %+v", st)
	}
}

// TestCourierDuplicateCounted: two devices delivering one message make
// one record, and the second delivery is counted as a duplicate.
func TestCourierDuplicateCounted(t *testing.T) { bubble(t, testCourierDuplicateCounted) }

func testCourierDuplicateCounted(t *testing.T) {
	devs := newDevices(t, "phone", "laptop", "bob")
	phone, laptop, bob := devs[0], devs[1], devs[2]
	oneCell(t, "", phone, laptop)
	phone.befriend("Bob", bob)
	laptop.befriend("Bob", bob)
	bob.befriend("Alice", phone)
	onClock(t, bob)
	m, err := phone.svc.Send(t.Context(), "Bob", "once")
	if err != nil {
		t.Fatal(err)
	}
	env, err := envelopeOf(m, phone.list.Cell, bob.list.Cell, laptop.h.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.svc.deliver(t.Context(), bob.h.ID(), env, nil, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"once"}) {
		t.Fatalf("bob holds %q", got)
	}
	if st := bob.svc.Courier(); st.Duplicates != 1 {
		t.Fatalf("bob: %+v, want 1 duplicate", st)
	}
}

// TestCourierBackoffResetOnConnect: a contact's device that connects to
// this host resets the backoff: its pending message goes at once, not at
// the next retry (10 min away).
func TestCourierBackoffResetOnConnect(t *testing.T) { bubble(t, testCourierBackoffResetOnConnect) }

func testCourierBackoffResetOnConnect(t *testing.T) {
	alice, bob := courierPair(t)
	_ = bob.svc.Close()
	sendPending(t, alice, "Bob", "hello")
	time.Sleep(time.Hour)
	if n := alice.svc.Courier().Failed; n != 11 {
		t.Fatalf("%d tries in an hour, want 11", n)
	}
	disconnect(t, alice, bob)
	synctest.Wait()
	bob.start(t)
	if err := bob.h.Connect(t.Context(), peer.AddrInfo{ID: alice.h.ID(), Addrs: alice.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // one pass gap
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("bob holds %q 2 s after he connected", got)
	}
}

// disconnect closes every connection between a and b, on both sides.
func disconnect(t *testing.T, a, b *device) {
	t.Helper()
	for _, p := range [][2]*device{{a, b}, {b, a}} {
		if err := p[0].h.Network().ClosePeer(p[1].h.ID()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCourierStopsAtClose: Close stops the courier and waits for it: no
// try after it, however long (and the bubble and leaktest see no
// goroutine of it left).
func TestCourierStopsAtClose(t *testing.T) { bubble(t, testCourierStopsAtClose) }

func testCourierStopsAtClose(t *testing.T) {
	alice, bob := courierPair(t)
	_ = bob.svc.Close()
	sendPending(t, alice, "Bob", "hello")
	time.Sleep(time.Minute)
	before := alice.svc.Courier().Failed
	if before == 0 {
		t.Fatal("no try in a minute")
	}
	if err := alice.svc.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Hour)
	if n := alice.svc.Courier().Failed; n != before {
		t.Fatalf("%d tries after Close", n-before)
	}
}
