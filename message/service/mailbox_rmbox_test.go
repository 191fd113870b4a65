package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
)

// TestMailboxAckOtherContact: an ack in the slot bob → alice names a
// message alice sent to carol, not to bob. Only carol's cell can
// acknowledge it: bob's ack must not make it delivered.
func TestMailboxAckOtherContact(t *testing.T) { bubble(t, testMailboxAckOtherContact) }

func testMailboxAckOtherContact(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	m := newFakeDHT()
	withMailbox(t, m, alice, bob, carol)
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	onClock(t, alice, bob, carol)
	_ = bob.svc.Close()
	_ = carol.svc.Close()
	sent := sendPending(t, alice, "Carol", "for carol")
	id, err := message.ParseID(sent.ID)
	if err != nil {
		t.Fatal(err)
	}
	putEntries(t, m, slotOf(t, bob, alice, 0), []mailbox.Entry{ackOf(t, bob, alice, id)}, 1)
	time.Sleep(2 * time.Minute)
	synctest.Wait()
	for _, got := range alice.store.messages() {
		if got.ID == sent.ID && got.State == Delivered {
			t.Fatalf("bob's ack made alice's message to carol %s", got.State)
		}
	}
	_ = alice.svc.Close()
}

// TestMailboxForgedAck: a device removed from bob's cell keeps the
// mailbox key it held, which alice still pairs with (she learns bob's
// next key only through a slot). With it, it reads the IDs of alice's
// entries in alice → bob, empties that slot and leaves acks of them in
// bob → alice. Bob never had the message; message/mailbox doc.go says
// such a writer only makes what was lost be sent again ("a message stays
// pending until it is acknowledged"), yet alice records it delivered and
// stops sending it: lost for good, shown as delivered. Acks are signed
// by a device of the acknowledging cell (message/mailbox doc.go): the
// removed device signs with its own key, or names bob's device without
// its key, or reflects an ack alice signed; none may count.
func TestMailboxForgedAck(t *testing.T) { bubble(t, testMailboxForgedAck) }

func testMailboxForgedAck(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	sent := sendPending(t, alice, "Bob", "never seen by bob")
	time.Sleep(time.Minute)
	synctest.Wait()
	out := slotOf(t, alice, bob, 0)
	es := slotEntries(t, m, out)
	if len(es) != 1 {
		t.Fatalf("the slot alice → bob holds %d entries, want 1", len(es))
	}
	// The removed device: bob's mailbox key, no session of bob's.
	r, err := m.GetSigned(t.Context(), out.RecordKey())
	if err != nil {
		t.Fatal(err)
	}
	putEntries(t, m, out, nil, r.Seq+1)
	// It signs with its own key (no longer on bob's list), and it signs
	// in the name of bob's device, whose key it does not have.
	removed := ed25519.NewKeyFromSeed(make([]byte, 32))
	own, err := mailbox.Ack(removed, bob.list.Cell, alice.list.Cell, es[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	posing := own
	posing.From = bob.h.ID()
	// And it reflects an ack alice's device signed, as acknowledging
	// cell, for a message of bob's of the same ID.
	reflected := ackOf(t, alice, bob, es[0].ID)
	putEntries(t, m, slotOf(t, bob, alice, 0), []mailbox.Entry{own}, 1)
	putEntries(t, m, slotOf(t, bob, alice, 1), []mailbox.Entry{posing}, 1)
	putEntries(t, m, slotOf(t, bob, alice, 2), []mailbox.Entry{reflected}, 1)
	time.Sleep(2 * time.Minute)
	synctest.Wait()
	if st := alice.svc.Mailbox(); st.Refused["ack"] < 3 {
		t.Errorf("the forged acks were not refused: %+v", st)
	}
	for _, got := range alice.store.messages() {
		if got.ID == sent.ID && !Pending(got.State) {
			t.Errorf("a forged ack made alice's message, which bob never received, %s: no longer sent again", got.State)
		}
	}
	_ = alice.svc.Close()
}

// failingDHT is a fakeDHT whose lookups of the keys in fail fail, and
// that counts the lookups of each key.
type failingDHT struct {
	*fakeDHT
	mu   sync.Mutex
	fail map[string]bool
	gets map[string]int
}

func (f *failingDHT) GetSigned(ctx context.Context, key string) (dht.Record, error) {
	f.mu.Lock()
	f.gets[key]++
	bad := f.fail[key]
	f.mu.Unlock()
	if bad {
		return dht.Record{}, errors.New("fake: lookup timed out")
	}
	return f.fakeDHT.GetSigned(ctx, key)
}

// TestMailboxFullPollNotStuck: one contact's slot whose lookup keeps
// failing (a DHT node that never answers for that key) must not make
// every poll of every contact a full one: doc.go says the whole window
// is read at start and every MailboxFullPoll (1 h), again only while
// lookups fail at start (a DHT with no peers yet). In 30 minutes,
// bob's slot of 3 days ago is read at the start's full poll, not at
// every minute's poll.
func TestMailboxFullPollNotStuck(t *testing.T) { bubble(t, testMailboxFullPollNotStuck) }

func testMailboxFullPollNotStuck(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	m := newFakeDHT()
	withMailbox(t, m, alice, bob, carol)
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	onClock(t, alice, bob, carol)
	_ = alice.svc.Close()
	_ = bob.svc.Close()
	_ = carol.svc.Close()
	f := &failingDHT{fakeDHT: m, fail: map[string]bool{}, gets: map[string]int{}}
	f.fail[slotOf(t, carol, alice, 0).RecordKey()] = true
	alice.mdht = f
	alice.start(t)
	time.Sleep(30 * time.Minute)
	synctest.Wait()
	_ = alice.svc.Close()
	old := slotAt(t, bob, alice, mailbox.Epoch(time.Now())-3, 0).RecordKey()
	f.mu.Lock()
	n := f.gets[old]
	f.mu.Unlock()
	if n > 2 {
		t.Fatalf("bob's slot of 3 days ago looked up %d times in 30 minutes: every poll is a full one while carol's slot fails", n)
	}
}

// TestMailboxRefusedFrameChargedOnce: a frame in bob → alice that the
// receive path refuses (it opens with no session: written by a device
// removed from bob's cell that keeps the mailbox key, or garbage) is
// left in its slot, to expire (doc.go), and handed to the receive path
// again at every poll, which charges bob's inbound quota again each
// time. 14 KiB written once drain a 512 KiB daily budget in an hour:
// bob's real messages are then refused until the next day.
func TestMailboxRefusedFrameChargedOnce(t *testing.T) { bubble(t, testMailboxRefusedFrameChargedOnce) }

func testMailboxRefusedFrameChargedOnce(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = alice.svc.Close()
	_ = bob.svc.Close()
	var es []mailbox.Entry
	for i := range 7 {
		f, err := message.Frame{Kind: message.KindSession, Body: bytes.Repeat([]byte{byte(i + 1)}, 2000)}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, mailbox.Frame(message.ID{byte(i + 1)}, bob.h.ID(), alice.h.ID(), f))
	}
	putEntries(t, m, slotOf(t, bob, alice, 0), es, 1)
	alice.tune = func(c *Config) { c.MaxInBytesPerContactPerDay = 512 << 10 }
	alice.start(t)
	time.Sleep(time.Hour)
	synctest.Wait()
	q := alice.svc.Quota()
	_ = alice.svc.Close()
	if q.RefusedContactDay > 0 {
		t.Fatalf("14 KiB left once in a slot used up bob's daily budget of 512 KiB in an hour: %+v", q)
	}
}
