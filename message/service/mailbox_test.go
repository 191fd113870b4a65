package service

import (
	"crypto/ed25519"
	"fmt"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
)

// mailboxPair is courierPair with blind mailboxes on one fake DHT.
func mailboxPair(t *testing.T) (alice, bob *device, m *fakeDHT) {
	t.Helper()
	devs := newDevices(t, "alice", "bob")
	alice, bob = devs[0], devs[1]
	m = newFakeDHT()
	withMailbox(t, m, alice, bob)
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	onClock(t, alice, bob)
	return alice, bob, m
}

// TestMailboxWriteReadAck: alice sends while bob is off; her courier,
// finding him unreachable, leaves the message in a slot and records it
// stored. Alice off, bob on: his reader records it once, empties the
// slot and leaves an ack; bob off, alice on: her reader records the
// message delivered and removes the ack. The two never are on together.
func TestMailboxWriteReadAck(t *testing.T) { bubble(t, testMailboxWriteReadAck) }

func testMailboxWriteReadAck(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	sendPending(t, alice, "Bob", "one")
	sendPending(t, alice, "Bob", "two")
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, alice, Stored); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("alice holds %q as stored", got)
	}
	if f, _ := kinds(slotEntries(t, m, slotOf(t, alice, bob, 0))); f != 2 {
		t.Fatalf("the slot alice → bob holds %d frames, want 2", f)
	}
	// Written once: later passes see the frames in the slot.
	time.Sleep(time.Hour)
	synctest.Wait()
	if st := alice.svc.Mailbox(); st.Stored != 2 || len(st.Refused) != 0 {
		t.Fatalf("alice's mailbox after an hour: %+v, want 2 stored, no refusal", st)
	}
	if f, _ := kinds(slotEntries(t, m, slotOf(t, alice, bob, 0))); f != 2 || slotEntries(t, m, slotOf(t, alice, bob, 1)) != nil {
		t.Fatalf("the slots alice → bob: %d frames at index 0 and something at 1, want 2 and nothing", f)
	}

	_ = alice.svc.Close()
	disconnect(t, alice, bob)
	bob.start(t)
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("bob holds %q, want the two messages once", got)
	}
	if st := bob.svc.Mailbox(); st.Received != 2 || len(st.Refused) != 0 {
		t.Fatalf("bob's mailbox: %+v, want 2 received", st)
	}
	if es := slotEntries(t, m, slotOf(t, alice, bob, 0)); len(es) != 0 {
		t.Fatalf("the slot alice → bob holds %d entries after bob read it", len(es))
	}
	if _, a := kinds(slotEntries(t, m, slotOf(t, bob, alice, 0))); a != 2 {
		t.Fatalf("the slot bob → alice holds %d acks, want 2", a)
	}

	_ = bob.svc.Close()
	alice.start(t)
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, alice, Delivered); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("alice holds %q, want the two delivered through the acks", got)
	}
	if st := alice.svc.Mailbox(); st.Acked != 2 {
		t.Fatalf("alice's mailbox: %+v, want 2 acked", st)
	}
	if es := slotEntries(t, m, slotOf(t, bob, alice, 0)); len(es) != 0 {
		t.Fatalf("the slot bob → alice holds %d entries after alice read the acks", len(es))
	}
	if st := bob.svc.Courier(); st.Duplicates != 0 {
		t.Fatalf("bob: %+v, want no duplicates", st)
	}
	_ = alice.svc.Close()
}

// TestMailboxAfterDirect: a message alice left in a slot is then
// delivered directly (bob back without mailboxes); when bob's reader
// later finds it in the slot, it is recorded once (no second record, not
// handed to the receive path, whose key is spent), the slot is emptied
// and acked, and alice's "delivered" stays.
func TestMailboxAfterDirect(t *testing.T) { bubble(t, testMailboxAfterDirect) }

func testMailboxAfterDirect(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	sendPending(t, alice, "Bob", "one")
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, alice, Stored); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("alice holds %q as stored", got)
	}
	bob.mdht = nil
	bob.start(t)
	time.Sleep(15 * time.Minute) // the courier's next retry
	synctest.Wait()
	if got := held(t, alice, Delivered); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("alice holds %q, want delivered directly", got)
	}
	_ = bob.svc.Close()
	bob.mdht = m
	bob.start(t)
	time.Sleep(2 * time.Minute)
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("bob holds %q, want one record", got)
	}
	if st := bob.svc.Mailbox(); st.Received != 0 || len(st.Refused) != 0 {
		t.Fatalf("bob's mailbox: %+v, want nothing received again, no refusal", st)
	}
	if es := slotEntries(t, m, slotOf(t, alice, bob, 0)); len(es) != 0 {
		t.Fatalf("the slot alice → bob holds %d entries", len(es))
	}
	if got := held(t, alice, Delivered); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("alice holds %q, want still delivered", got)
	}
	if es := slotEntries(t, m, slotOf(t, bob, alice, 0)); len(es) != 0 {
		t.Fatalf("the slot bob → alice holds %d entries: alice's reader left the ack", len(es))
	}
}

// TestMailboxNeverDowngrades: the writer leaves a delivered (or read)
// message alone, and "stored" is never written over "delivered".
func TestMailboxNeverDowngrades(t *testing.T) { bubble(t, testMailboxNeverDowngrades) }

func testMailboxNeverDowngrades(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	sent, err := alice.svc.Send(t.Context(), "Bob", "one")
	if err != nil || sent.State != Delivered {
		t.Fatalf("Send: %+v, %v", sent, err)
	}
	c, err := alice.cons.Get(t.Context(), "Bob")
	if err != nil {
		t.Fatal(err)
	}
	alice.svc.mailboxStore(t.Context(), c, []Message{sent}, alice.cell.Public().(ed25519.PublicKey), nil, 0)
	if es := slotEntries(t, m, slotOf(t, alice, bob, 0)); len(es) != 0 {
		t.Fatalf("a delivered message written to the slot: %d entries", len(es))
	}
	if alice.svc.advanceTo(t.Context(), sent.Entity, Stored) {
		t.Fatal("advance wrote stored over delivered")
	}
	if got := held(t, alice, Delivered); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("alice holds %q, want delivered", got)
	}
}

// TestMailboxLostWrite: another writer puts the slot at the sequence
// number alice puts it at, and wins; alice reads the slot back, finds
// her entries missing and appends them again on top of the other's:
// both writes are in the slot.
func TestMailboxLostWrite(t *testing.T) { bubble(t, testMailboxLostWrite) }

func testMailboxLostWrite(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	slot := slotOf(t, alice, bob, 0)
	theirs := ackOf(t, alice, bob, message.ID{0xee})
	raced := false
	m.beforePut = func(key string, seq uint64) {
		if key == slot.RecordKey() && !raced {
			raced = true
			putEntries(t, m, slot, []mailbox.Entry{theirs}, seq)
		}
	}
	c, err := alice.cons.Get(t.Context(), "Bob")
	if err != nil {
		t.Fatal(err)
	}
	pairs, _, err := alice.svc.pairWith(t.Context(), c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ours := []mailbox.Entry{ackOf(t, alice, bob, message.ID{1}), ackOf(t, alice, bob, message.ID{2})}
	there, err := alice.svc.mailboxAppend(t.Context(), pairs[0], alice.list.Cell, bob.list.Cell, func(map[message.ID]bool) []mailbox.Entry { return ours })
	if err != nil {
		t.Fatal(err)
	}
	got := entryIDs(slotEntries(t, m, slot))
	want := []message.ID{theirs.ID, ours[0].ID, ours[1].ID}
	if !raced || !slices.Equal(got, want) {
		t.Fatalf("the slot holds %v (raced %v), want %v: a write lost", got, raced, want)
	}
	if len(there) != 3 {
		t.Fatalf("mailboxAppend saw %d IDs in the slot, want 3", len(there))
	}
}

// TestMailboxRefusals: bob's reader leaves a frame for another device of
// his cell (counted nowhere), and refuses with a counted reason, leaving
// it where it is, a frame from a device not on alice's list, a record
// whose value does not open and one not signed by the slot's key; a
// frame for him that does not decode is refused and removed from its
// slot (dropped); nothing is recorded, nothing panics.
func TestMailboxRefusals(t *testing.T) { bubble(t, testMailboxRefusals) }

func testMailboxRefusals(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = alice.svc.Close()
	_ = bob.svc.Close()
	stranger := mailboxStranger(t)
	es := []mailbox.Entry{
		mailbox.Frame(message.ID{1}, alice.h.ID(), stranger, []byte{1, 2, 3}), // another device's
		mailbox.Frame(message.ID{2}, stranger, bob.h.ID(), []byte{1, 2, 3}),   // not alice's device
		mailbox.Frame(message.ID{3}, alice.h.ID(), bob.h.ID(), []byte{9, 9}),  // not a frame
	}
	putEntries(t, m, slotOf(t, alice, bob, 0), es, 1)
	putValue(t, m, slotOf(t, alice, bob, 1), make([]byte, 1024), 1)
	// Index 2: a record signed by another key than the slot's.
	_, forged, err := dht.SealRecord(slotOf(t, alice, bob, 3).Owner(), mailbox.RecordName, make([]byte, 1024), 1, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	m.raw[slotOf(t, alice, bob, 2).RecordKey()] = forged
	bob.start(t)
	synctest.Wait() // the poll at start
	st := bob.svc.Mailbox()
	if want := map[string]int64{"device": 1, "frame": 1, "value": 1, "record": 1}; st.Received != 0 || st.Dropped != 1 || !maps.Equal(st.Refused, want) {
		t.Fatalf("bob's mailbox after one poll: %+v, want refused %v, 1 dropped", st, want)
	}
	if got := entryIDs(slotEntries(t, m, slotOf(t, alice, bob, 0))); !slices.Equal(got, entryIDs(es[:2])) {
		t.Fatalf("the slot holds %v, want every entry left but the frame that does not decode", got)
	}
	if n := len(bob.store.messages()); n != 0 {
		t.Fatalf("bob recorded %d messages", n)
	}
}

// TestMailboxWriteBound: the writer seals at most MailboxWriteMax
// messages to a contact into slots at a time (a courier pass); the next
// time, the rest.
func TestMailboxWriteBound(t *testing.T) { bubble(t, testMailboxWriteBound) }

func testMailboxWriteBound(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	_ = alice.svc.Close()
	alice.backoff = 24 * time.Hour // the courier stays out of the way
	alice.start(t)
	for i := range MailboxWriteMax + 4 {
		sendPending(t, alice, "Bob", fmt.Sprint(i))
	}
	c, err := alice.cons.Get(t.Context(), "Bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{MailboxWriteMax, MailboxWriteMax + 4} {
		alice.svc.mailboxStore(t.Context(), c, alice.store.messages(), alice.list.Cell, nil, 0)
		// Initial frames (about 2 KiB: no answer confirms the session)
		// fill a slot at 7; the rest go to the next indexes.
		n := 0
		for i := range mailbox.SlotsPerEpoch {
			f, _ := kinds(slotEntries(t, m, slotOf(t, alice, bob, i)))
			n += f
		}
		if n != want {
			t.Fatalf("the slots hold %d frames, want %d", n, want)
		}
	}
}

// TestMailboxReadBound: with every slot of the window full, a full poll
// reads MailboxReadMax records per contact and key, no more (8 epochs of
// 8 slots: what doc.go allows), and a poll of the current epoch 8.
func TestMailboxReadBound(t *testing.T) { bubble(t, testMailboxReadBound) }

func testMailboxReadBound(t *testing.T) {
	time.Sleep(time.Hour) // past MailboxPollMax of midnight: a steady poll reads one epoch
	alice, bob, m := mailboxPair(t)
	_ = alice.svc.Close()
	_ = bob.svc.Close()
	first, last := mailbox.ReadEpochs(time.Now())
	n := 0
	for e := first; e <= last; e++ {
		for i := range mailbox.SlotsPerEpoch {
			n++
			putEntries(t, m, slotAt(t, alice, bob, e, i), nil, 1)
		}
	}
	c, err := bob.cons.Get(t.Context(), "Alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		full bool
		want int
	}{{true, MailboxReadMax}, {false, mailbox.SlotsPerEpoch}} {
		before, _ := m.counts()
		bob.svc.mailboxRead(t.Context(), c, tt.full, 0)
		if after, _ := m.counts(); after-before != tt.want {
			t.Fatalf("a poll (full %v) of %d full slots looked up %d records, want %d", tt.full, n, after-before, tt.want)
		}
	}
}

// TestMailboxRePut: the DHT drops a record 48 h after its put; alice's
// device puts the slot it wrote again within that, so that it lives its
// 7 days while bob is away.
func TestMailboxRePut(t *testing.T) { bubble(t, testMailboxRePut) }

func testMailboxRePut(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	m.dropAfter = 48 * time.Hour
	_ = bob.svc.Close()
	day := mailbox.Epoch(time.Now())
	sendPending(t, alice, "Bob", "one")
	time.Sleep(time.Minute)
	synctest.Wait()
	slot := slotAt(t, alice, bob, day, 0)
	if f, _ := kinds(slotEntries(t, m, slot)); f != 1 {
		t.Fatalf("the slot holds %d frames, want 1", f)
	}
	time.Sleep(5 * 24 * time.Hour)
	synctest.Wait()
	if f, _ := kinds(slotEntries(t, m, slot)); f != 1 {
		t.Fatalf("5 days later the first slot holds %d frames, want 1: not put again", f)
	}
}

// mailboxStranger is a device on no list.
func mailboxStranger(t *testing.T) peer.ID {
	t.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestMailboxFullPollRetried: the full poll at start fails (the DHT has
// no peers yet); the next poll, a minute later, is full again, not one
// of the current epoch only (the next full one would be an hour later):
// an ack left three days ago is taken then.
func TestMailboxFullPollRetried(t *testing.T) { bubble(t, testMailboxFullPollRetried) }

func testMailboxFullPollRetried(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = alice.svc.Close()
	_ = bob.svc.Close()
	old := slotAt(t, bob, alice, mailbox.Epoch(time.Now())-3, 0)
	putEntries(t, m, old, []mailbox.Entry{ackOf(t, bob, alice, message.ID{7})}, 1)
	// Alice never read the whole window (else her start poll reads
	// from the day before the one she last did: runMailbox).
	if err := alice.ds.Delete(t.Context(), wholeKey); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.noPeers = true
	m.mu.Unlock()
	alice.start(t)
	synctest.Wait()
	m.mu.Lock()
	m.noPeers = false
	m.mu.Unlock()
	if st := alice.svc.Mailbox(); st.Refused["dht"] == 0 {
		t.Fatalf("the first poll: %+v, want failed lookups", st)
	}
	time.Sleep(time.Minute)
	synctest.Wait()
	if es := slotEntries(t, m, old); len(es) != 0 {
		t.Fatalf("the slot of 3 days ago holds %d entries a minute later: the full poll was not retried", len(es))
	}
}

// TestMailboxRePutBound: the records a device remembers to put again
// are at most MaxRePuts; past it, the one put first goes.
func TestMailboxRePutBound(t *testing.T) { bubble(t, testMailboxRePutBound) }

func testMailboxRePutBound(t *testing.T) {
	alice, bob, _ := mailboxPair(t)
	_ = bob.svc.Close()
	first := slotAt(t, alice, bob, 1, 0)
	es := []mailbox.Entry{ackOf(t, alice, bob, message.ID{1})}
	for i := range MaxRePuts + 8 {
		s := slotAt(t, alice, bob, uint64(1+i/mailbox.SlotsPerEpoch), i%mailbox.SlotsPerEpoch)
		if err := alice.svc.putSlot(t.Context(), s, es, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // each put at its own time
	}
	alice.svc.mstate.mu.Lock()
	n := len(alice.svc.mstate.puts)
	_, kept := alice.svc.mstate.puts[first.RecordKey()]
	alice.svc.mstate.mu.Unlock()
	if n != MaxRePuts || kept {
		t.Fatalf("%d records remembered (the first kept: %v), want %d without the first", n, kept, MaxRePuts)
	}
}
