package service

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/message/mailbox"
)

// TestPollStep: the steady poll's rule, event by event.
func TestPollStep(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	const base, ceiling = time.Minute, 16 * time.Minute
	for _, tt := range []struct {
		name      string
		st        pollState
		ev        pollEvent
		connected bool
		want      pollState
	}{
		{"none yet, nothing found: twice base", pollState{}, polledEmpty, false, pollState{every: 2 * base, due: now.Add(2 * base)}},
		{"nothing found doubles", pollState{every: 4 * base}, polledEmpty, false, pollState{every: 8 * base, due: now.Add(8 * base)}},
		{"doubling stops at the ceiling", pollState{every: 8 * base}, polledEmpty, false, pollState{every: ceiling, due: now.Add(ceiling)}},
		{"at the ceiling stays", pollState{every: ceiling}, polledEmpty, false, pollState{every: ceiling, due: now.Add(ceiling)}},
		{"below base counts as base", pollState{every: time.Second}, polledEmpty, false, pollState{every: 2 * base, due: now.Add(2 * base)}},
		{"nothing found, connected: the ceiling", pollState{every: base}, polledEmpty, true, pollState{every: ceiling, due: now.Add(ceiling), conn: true, ramp: 2 * base}},
		{"found: base", pollState{every: ceiling}, polledNews, false, pollState{every: base, due: now.Add(base)}},
		{"found, connected: base", pollState{every: ceiling}, polledNews, true, pollState{every: base, due: now.Add(base)}},
		{"unreachable: due now, base", pollState{every: ceiling, due: now.Add(ceiling)}, contactLost, false, pollState{every: base, due: now}},
		{"a device back: due now, base", pollState{every: 8 * base, due: now.Add(time.Hour)}, contactBack, true, pollState{every: base, due: now}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.st.step(tt.ev, now, tt.connected, base, ceiling)
			if got != tt.want {
				t.Fatalf("step(%+v, %d, connected %v) = %+v, want %+v", tt.st, tt.ev, tt.connected, got, tt.want)
			}
		})
	}
	t.Run("left", func(t *testing.T) {
		st := pollState{every: base}.step(polledEmpty, now, true, base, ceiling).left()
		if want := (pollState{every: 2 * base, due: now.Add(2 * base)}); st != want {
			t.Fatalf("connected at a poll, then left: %+v, want %+v", st, want)
		}
		if st.left() != st {
			t.Fatal("left of a state not set for a connection changed it")
		}
	})
	t.Run("a fixed period", func(t *testing.T) {
		st := pollState{}
		for range 5 {
			if st = st.step(polledEmpty, now, false, base, base); st.every != base {
				t.Fatalf("with the ceiling at base, the interval went to %v", st.every)
			}
		}
	})
}

// TestPollStatesBound: at most MaxContactRecords contacts have a steady
// poll's state, at most MaxSeenDevices devices are remembered seen.
func TestPollStatesBound(t *testing.T) {
	s := Service{mstate: mailboxState{polls: map[string]pollState{}, seen: map[peer.ID]struct{}{}}}
	s.cfg = Config{}.withDefaults()
	for i := range MaxContactRecords + 10 {
		s.pollStep(fmt.Sprint(i), polledEmpty, false)
	}
	if n := len(s.mstate.polls); n != MaxContactRecords {
		t.Fatalf("%d contacts' polls held, the most is %d", n, MaxContactRecords)
	}
	for i := range MaxSeenDevices + 10 {
		s.seenDevice(peer.ID(fmt.Sprint(i)))
	}
	if n := len(s.mstate.seen); n != MaxSeenDevices {
		t.Fatalf("%d devices remembered seen, the most is %d", n, MaxSeenDevices)
	}
}

// pollMinutes restarts d's service, then, each minute for minutes,
// half a minute off the service's own minutes, runs at(i) (if set) and
// notes whether d looked up key since: the minutes at which it did (0:
// the poll at start).
func pollMinutes(t *testing.T, d *device, m *fakeDHT, key string, minutes int, at func(i int)) []int {
	t.Helper()
	_ = d.svc.Close()
	before := m.getsOf(key)
	d.start(t)
	time.Sleep(30 * time.Second)
	synctest.Wait()
	var out []int
	for i := 0; i <= minutes; i++ {
		if i > 0 {
			time.Sleep(time.Minute)
			synctest.Wait()
		}
		if n := m.getsOf(key); n > before {
			out = append(out, i)
			before = n
		}
		if at != nil {
			at(i)
		}
	}
	return out
}

// TestMailboxPollBacksOff: a contact whose slots hold nothing is polled
// at start, then at intervals doubling from MailboxPoll (1 min) up to
// MailboxPollMax (16 min); with a device of the contact connected, at
// MailboxPollMax at once. The full poll comes back at the hour.
func TestMailboxPollBacksOff(t *testing.T) { bubble(t, testMailboxPollBacksOff) }

func testMailboxPollBacksOff(t *testing.T) {
	for _, tt := range []struct {
		name      string
		connected bool
		want      []int
	}{
		{"apart", false, []int{0, 2, 6, 14, 30, 46, 60}},
		{"connected", true, []int{0, 16, 32, 48, 60}},
	} {
		alice, bob, m := mailboxPair(t)
		_ = bob.svc.Close()
		if !tt.connected {
			if err := alice.h.Network().ClosePeer(bob.h.ID()); err != nil {
				t.Fatal(err)
			}
		}
		got := pollMinutes(t, alice, m, slotOf(t, bob, alice, 0).RecordKey(), 61, nil)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: the minutes alice polled bob's slot (-want +got):\n%s", tt.name, diff)
		}
		_ = alice.svc.Close()
	}
}

// The steady poll's interval goes back to MailboxPoll when a poll finds
// something new of the contact's (a frame recorded: TestMailboxPollFound),
// when a courier pass finds the contact unreachable (polled then at once:
// TestMailboxPollUnreachable), and when a device of the contact connects
// to this host (TestMailboxPollBack).
func TestMailboxPollFound(t *testing.T)       { bubble(t, testMailboxPollFound) }
func TestMailboxPollUnreachable(t *testing.T) { bubble(t, testMailboxPollUnreachable) }
func TestMailboxPollBack(t *testing.T)        { bubble(t, testMailboxPollBack) }

func testMailboxPollFound(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = alice.svc.Close()
	sendPending(t, bob, "Alice", "hello")
	time.Sleep(time.Minute)
	synctest.Wait()
	if f, _ := kinds(slotEntries(t, m, slotOf(t, bob, alice, 0))); f != 1 {
		t.Fatalf("the slot bob → alice holds %d frames, want 1", f)
	}
	// Bob off: the frame stays in the slot for alice's reader.
	_ = bob.svc.Close()
	got := pollMinutes(t, alice, m, slotOf(t, bob, alice, 0).RecordKey(), 20, nil)
	if texts := held(t, alice, Delivered); !slices.Equal(texts, []string{"hello"}) {
		t.Fatalf("alice holds %q", texts)
	}
	// Found at start: again a minute later; then connected: 16 after.
	if want := []int{0, 1, 17}; !slices.Equal(got, want) {
		t.Fatalf("alice polled bob's slot at minutes %v, want %v", got, want)
	}
	_ = alice.svc.Close()
}

func testMailboxPollUnreachable(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	key := slotOf(t, bob, alice, 0).RecordKey()
	var after []int
	got := pollMinutes(t, alice, m, key, 20, func(i int) {
		if i != 20 {
			return
		}
		before := m.getsOf(key)
		sendPending(t, alice, "Bob", "hello")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		after = append(after, m.getsOf(key)-before)
	})
	if want := []int{0, 16}; !slices.Equal(got, want) {
		t.Fatalf("alice polled bob's slot at minutes %v, want %v", got, want)
	}
	if len(after) != 1 || after[0] == 0 {
		t.Fatalf("bob found unreachable: alice looked up his slot %v times within 10 s, want some", after)
	}
	_ = alice.svc.Close()
}

func testMailboxPollBack(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	if err := alice.h.Network().ClosePeer(bob.h.ID()); err != nil {
		t.Fatal(err)
	}
	got := pollMinutes(t, alice, m, slotOf(t, bob, alice, 0).RecordKey(), 40, func(i int) {
		if i == 20 {
			if _, err := bob.h.Network().DialPeer(t.Context(), alice.h.ID()); err != nil {
				t.Fatal(err)
			}
		}
	})
	// Back at 20: polled at the next minute, then connected: 16 after.
	if want := []int{0, 2, 6, 14, 21, 37}; !slices.Equal(got, want) {
		t.Fatalf("alice polled bob's slot at minutes %v, want %v", got, want)
	}
	_ = alice.svc.Close()
}

// TestMailboxStartPollRecent: a device restarted within
// MailboxFullPoll of its last poll of the whole window (on disk) reads
// at start the epochs from the day before that poll's only; the whole
// window again when that poll is MailboxFullPoll old, and at once at a
// start after a record that does not decode.
func TestMailboxStartPollRecent(t *testing.T) { bubble(t, testMailboxStartPollRecent) }

func testMailboxStartPollRecent(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	day := mailbox.Epoch(time.Now())
	old := slotAt(t, bob, alice, day-3, 0).RecordKey()
	yesterday := slotAt(t, bob, alice, day-1, 0).RecordKey()
	polled := func(what string, key string, want bool) {
		t.Helper()
		before := m.getsOf(key)
		_ = alice.svc.Close()
		alice.start(t)
		synctest.Wait()
		if got := m.getsOf(key) > before; got != want {
			t.Fatalf("%s: the start poll looked up the slot: %v, want %v", what, got, want)
		}
	}
	time.Sleep(30 * time.Minute)
	polled("30 min after a whole poll, 3 days ago", old, false)
	polled("30 min after a whole poll, the day before", yesterday, true)
	before := m.getsOf(old)
	time.Sleep(31 * time.Minute)
	synctest.Wait()
	if m.getsOf(old) == before {
		t.Fatal("61 min after the last whole poll, the slot of 3 days ago was not looked up")
	}
	if err := alice.ds.Put(t.Context(), wholeKey, []byte{wholeVersion, 1}); err != nil {
		t.Fatal(err)
	}
	polled("a record that does not decode", old, true)
	_ = alice.svc.Close()
}

// FuzzDecodeWhole: any stored bytes are a time or an error, never a
// panic; a time decoded encodes back to its bytes.
func FuzzDecodeWhole(f *testing.F) {
	f.Add(encodeWhole(time.UnixMilli(946_684_800_000)))
	f.Add(encodeWhole(time.UnixMilli(-1)))
	f.Add([]byte{wholeVersion})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWhole(b)
		if err != nil {
			if !errors.Is(err, errCorruptWhole) {
				t.Fatalf("an error not errCorruptWhole: %v", err)
			}
			return
		}
		if !bytes.Equal(encodeWhole(w), b) {
			t.Fatal("a decoded record does not encode back to its bytes")
		}
	})
}

// TestMailboxPollMidnight: the steady poll reads the current epoch only,
// and a contact's interval is up to MailboxPollMax (16 min): a slot the
// contact wrote in the minutes before midnight (after this device's last
// steady poll of that day) is read by no steady poll after midnight,
// only by the next whole-window poll, up to MailboxFullPoll (an hour)
// later. Here the last steady poll of the day is at 23:46, the next at
// 00:02 reads the new day only, and the day before is looked up again
// only at the full poll of 00:30.
func TestMailboxPollMidnight(t *testing.T) { bubble(t, testMailboxPollMidnight) }

func testMailboxPollMidnight(t *testing.T) {
	time.Sleep(30 * time.Minute) // the full polls at half past
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	if err := alice.h.Network().ClosePeer(bob.h.ID()); err != nil {
		t.Fatal(err)
	}
	day := mailbox.Epoch(time.Now())
	key := slotAt(t, bob, alice, day, 0).RecordKey()
	midnight := time.Unix(int64(day+1)*int64(mailbox.EpochLength/time.Second), 0)
	time.Sleep(time.Until(midnight.Add(-13 * time.Minute))) // 23:47
	synctest.Wait()
	before := m.getsOf(key)
	time.Sleep(33 * time.Minute) // 00:20
	synctest.Wait()
	if m.getsOf(key) == before {
		t.Error("between 23:47 and 00:20 alice did not look up bob's slot of the day before midnight (written to maybe after her last poll of it)")
	}
	_ = alice.svc.Close()
}

// TestMailboxPollBackFlood: MaxSeenDevices other peers connecting to
// this host within a round (fresh IDs are free; a busy DHT server takes
// that many inbound connections from strangers) fill the devices
// remembered seen, and a device of the contact connecting then is not
// remembered: its contact's steady poll stays at its long interval
// (here polled at 30, not 21), though it is the event that matters.
func TestMailboxPollBackFlood(t *testing.T) { bubble(t, testMailboxPollBackFlood) }

func testMailboxPollBackFlood(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	if err := alice.h.Network().ClosePeer(bob.h.ID()); err != nil {
		t.Fatal(err)
	}
	got := pollMinutes(t, alice, m, slotOf(t, bob, alice, 0).RecordKey(), 40, func(i int) {
		if i == 20 {
			for j := range MaxSeenDevices {
				alice.svc.seenDevice(peer.ID(fmt.Sprint("stranger", j))) // as the notifee, for inbound connections
			}
			if _, err := bob.h.Network().DialPeer(t.Context(), alice.h.ID()); err != nil {
				t.Fatal(err)
			}
		}
	})
	if want := []int{0, 2, 6, 14, 21, 37}; !slices.Equal(got, want) {
		t.Fatalf("alice polled bob's slot at minutes %v, want %v", got, want)
	}
	_ = alice.svc.Close()
}

// TestMailboxPollBackLeft: a device of the contact connects (polled at
// once: 21), then leaves a minute later (a phone online a moment). Its
// poll found nothing while connected, so its interval went to
// MailboxPollMax for the direct path; with the device gone the contact
// writes to the slots again, but nothing brings the interval back: bob
// is next polled at 37, not at 23 (where doubling from the connection
// would have put it).
func TestMailboxPollBackLeft(t *testing.T) { bubble(t, testMailboxPollBackLeft) }

func testMailboxPollBackLeft(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	if err := alice.h.Network().ClosePeer(bob.h.ID()); err != nil {
		t.Fatal(err)
	}
	got := pollMinutes(t, alice, m, slotOf(t, bob, alice, 0).RecordKey(), 30, func(i int) {
		switch i {
		case 20:
			if _, err := bob.h.Network().DialPeer(t.Context(), alice.h.ID()); err != nil {
				t.Fatal(err)
			}
		case 21:
			if err := alice.h.Network().ClosePeer(bob.h.ID()); err != nil {
				t.Fatal(err)
			}
		}
	})
	if want := []int{0, 2, 6, 14, 21, 23, 27}; !slices.Equal(got, want) {
		t.Fatalf("alice polled bob's slot at minutes %v, want %v", got, want)
	}
	_ = alice.svc.Close()
}
