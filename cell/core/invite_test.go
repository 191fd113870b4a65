package core

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/cpace"
)

// seededPeer returns the peer ID of the i-th test key (made from a seed).
func seededPeer(t testing.TB, i int) peer.ID {
	t.Helper()
	seed := binary.BigEndian.AppendUint64(make([]byte, ed25519.SeedSize-8), uint64(i))
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// testMessage is a distinct CPace message for each i.
func testMessage(i int) [pointLen]byte {
	var y [pointLen]byte
	binary.BigEndian.PutUint64(y[:], uint64(i)+1)
	return y
}

func TestInviteBooking(t *testing.T) {
	const perPeer, total = 3, 20
	now := time.Unix(1_800_000_000, 0)
	inv := NewInvite(Code{Nameplate: 4721}, RoleChain, now.Add(10*time.Minute))
	a, b := seededPeer(t, 1), seededPeer(t, 2)
	book := func(id peer.ID, i int) byte { return inv.book(id, testMessage(i), now, perPeer, total) }

	if st := book(a, 0); st != StatusOK {
		t.Fatalf("first attempt: status %d", st)
	}
	if st := book(a, 0); st != StatusBadMessage {
		t.Errorf("replayed message: status %d, want %d (bad message)", st, StatusBadMessage)
	}
	if st := book(b, 0); st != StatusBadMessage {
		t.Errorf("message replayed by another peer: status %d, want %d", st, StatusBadMessage)
	}
	for i := 1; i < perPeer; i++ {
		if st := book(a, i); st != StatusOK {
			t.Fatalf("attempt %d of a: status %d", i+1, st)
		}
	}
	if st := book(a, 99); st != StatusExhausted {
		t.Errorf("attempt past the per-peer limit: status %d, want %d", st, StatusExhausted)
	}
	if inv.Failures != perPeer {
		t.Errorf("%d failures booked, want %d (replays and refused attempts count for nothing)", inv.Failures, perPeer)
	}
	// Another peer still has its own share.
	if st := book(b, 100); st != StatusOK {
		t.Fatalf("another peer after a's share is spent: status %d", st)
	}
	// Proving the code takes the failure back.
	inv.settle(b, testMessage(100))
	inv.settle(b, testMessage(100)) // twice: no effect
	if inv.Failures != perPeer || inv.byPeer[b] != 0 || len(inv.byPeer) != 1 {
		t.Errorf("after settling: %d failures, %v by peer", inv.Failures, inv.byPeer)
	}
	// Bound to b: a is told there is no invite.
	inv.Joiner = b
	if st := inv.check(a, now, perPeer, total); st != StatusNoInvite {
		t.Errorf("another peer after admission: status %d, want %d", st, StatusNoInvite)
	}
	if st := inv.check(b, now, perPeer, total); st != StatusOK {
		t.Errorf("the admitted peer again: status %d", st)
	}
	if st := inv.check(b, now.Add(11*time.Minute), perPeer, total); st != StatusExpired || !inv.Dead(now.Add(11*time.Minute), total) {
		t.Errorf("after the TTL: status %d, dead %v", st, inv.Dead(now.Add(11*time.Minute), total))
	}
}

// TestInviteBookingBound: however many peers try, what an invite
// remembers stays within its limit of failed attempts, and the invite
// dies there.
func TestInviteBookingBound(t *testing.T) {
	const perPeer, total, peers = 3, 20, 50
	now := time.Unix(1_800_000_000, 0)
	inv := NewInvite(Code{Nameplate: 1}, RoleChain, now.Add(time.Hour))
	msg := 0
	for p := range peers {
		id := seededPeer(t, p)
		for range perPeer + 1 {
			msg++
			inv.book(id, testMessage(msg), now, perPeer, total)
			if len(inv.byPeer) > total || len(inv.seen) > total || inv.Failures > total {
				t.Fatalf("after %d attempts: %d peers, %d messages, %d failures remembered; limit %d",
					msg, len(inv.byPeer), len(inv.seen), inv.Failures, total)
			}
		}
	}
	if inv.Failures != total || !inv.Dead(now, total) {
		t.Errorf("%d failures, dead %v; want %d, true", inv.Failures, inv.Dead(now, total), total)
	}
	if st := inv.check(seededPeer(t, peers+1), now, perPeer, total); st != StatusExhausted {
		t.Errorf("a new peer on an exhausted invite: status %d, want %d", st, StatusExhausted)
	}
}

func TestInviteEncoding(t *testing.T) {
	now := time.Unix(1_800_000_000, 123)
	inv := NewInvite(Code{Nameplate: 9999, Words: [3]uint16{0, 1, 2047}}, RoleChain|RoleRelay, now)
	for i := range 5 {
		inv.book(seededPeer(t, i%2), testMessage(i), now.Add(-time.Minute), 3, 20)
	}
	inv.Joiner = seededPeer(t, 7)
	b := inv.Encode()
	got, err := DecodeInvite(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), b) || got.Code != inv.Code || got.Roles != inv.Roles ||
		!got.Expires.Equal(inv.Expires) || got.Failures != 5 || got.Joiner != inv.Joiner || len(got.seen) != 5 {
		t.Errorf("round trip: got %+v, want %+v", got, inv)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", b[:len(b)-1]},
		{"trailing byte", append(bytes.Clone(b), 0)},
		{"admin role", func() []byte { c := bytes.Clone(b); c[len(inviteMagic)+8] = byte(RoleAdmin); return c }()},
		{"bad nameplate", func() []byte { c := bytes.Clone(b); c[len(inviteMagic)] = 0xff; return c }()},
	} {
		if _, err := DecodeInvite(tc.b); err == nil {
			t.Errorf("%s: decoded", tc.name)
		}
	}
}

func FuzzDecodeInvite(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	inv := NewInvite(Code{Nameplate: 4721, Words: [3]uint16{5, 6, 7}}, RoleChain|RoleStore, now)
	f.Add(inv.Encode())
	inv.book(seededPeer(f, 1), testMessage(1), now.Add(-time.Second), 3, 20)
	inv.Joiner = seededPeer(f, 2)
	f.Add(inv.Encode())
	f.Add(NewInvite(inv.Code, RoleChain, time.Unix(0, -1)).Encode()) // refused: out of range
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := DecodeInvite(b)
		if err != nil {
			return
		}
		if !bytes.Equal(inv.Encode(), b) {
			t.Fatalf("accepted invite re-encodes to %x, not %x", inv.Encode(), b)
		}
		sum := 0
		for _, k := range inv.byPeer {
			sum += k
		}
		if sum != inv.Failures || len(inv.seen) != inv.Failures || inv.Failures > MaxInviteAttempts || !inv.Code.Valid() {
			t.Fatalf("accepted an inconsistent invite: %d failures, %d by peer, %d messages", inv.Failures, sum, len(inv.seen))
		}
	})
}

// BenchmarkAdminHello is what the admin does for a hello it books, short
// of the network and the disk: the checks, the CPace responder's message
// and key, the booking and the invite's stored form.
func BenchmarkAdminHello(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	code := Code{Nameplate: 4721, Words: [3]uint16{5, 6, 7}}
	admin, joiner := seededPeer(b, 1), seededPeer(b, 2)
	ci := joinCI(admin, joiner)
	sid := make([]byte, sidLen)
	_, ya, err := cpace.Start(cpace.Initiator, code.Password(), ci, sid, nil, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		inv := NewInvite(code, RoleChain, now.Add(time.Hour))
		if inv.check(joiner, now, 3, 20) != StatusOK {
			b.Fatal("refused")
		}
		st, _, err := cpace.Start(cpace.Responder, code.Password(), ci, sid, nil, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Finish(ya, nil); err != nil {
			b.Fatal(err)
		}
		if inv.book(joiner, [pointLen]byte(ya), now, 3, 20) != StatusOK {
			b.Fatal("not booked")
		}
		_ = inv.Encode()
	}
}

// BenchmarkInviteRecord encodes and decodes an invite holding the most
// failed attempts it may (20, by 7 peers).
func BenchmarkInviteRecord(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	inv := NewInvite(Code{Nameplate: 4721, Words: [3]uint16{5, 6, 7}}, RoleChain, now.Add(time.Hour))
	for i := range 20 {
		inv.book(seededPeer(b, i/3), testMessage(i), now, 3, 20)
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		enc := inv.Encode()
		n = len(enc)
		if _, err := DecodeInvite(enc); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "bytes/record")
}

// BenchmarkAdminJunkHello is the admin's work for a hello whose CPace
// message is not a valid element, which books nothing: "start" is the work
// of answering it with cpace.Start and Finish, as the admin did before,
// "check" is cpace.CheckMessage, which it does now.
func BenchmarkAdminJunkHello(b *testing.B) {
	code := Code{Nameplate: 4721, Words: [3]uint16{5, 6, 7}}
	ci := joinCI(seededPeer(b, 1), seededPeer(b, 2))
	sid := make([]byte, sidLen)
	junk := bytes.Repeat([]byte{0xff}, pointLen)
	b.Run("start", func(b *testing.B) {
		for b.Loop() {
			st, _, err := cpace.Start(cpace.Responder, code.Password(), ci, sid, nil, rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Finish(junk, nil); err == nil {
				b.Fatal("junk accepted")
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if cpace.CheckMessage(junk) == nil {
				b.Fatal("junk accepted")
			}
		}
	})
}

// TestInviteExpiryOverflow: an expiry out of the range of Unix
// nanoseconds (before 1970, which is where one past 2262 wraps to) is
// refused by the decoder, naming it, rather than read as long expired.
func TestInviteExpiryOverflow(t *testing.T) {
	c := Code{Nameplate: 42, Words: [3]uint16{1, 2, 3}}
	for _, exp := range []time.Time{
		time.Unix(1_800_000_000, 0).Add(250 * 365 * 24 * time.Hour), // wraps
		time.Unix(0, -1),
		time.Unix(0, 0),
	} {
		_, err := DecodeInvite(NewInvite(c, RoleChain, exp).Encode())
		if err == nil || !strings.Contains(err.Error(), "expiry") {
			t.Errorf("invite expiring %v: %v, want an error about its expiry", exp, err)
		}
	}
	if _, err := DecodeInvite(NewInvite(c, RoleChain, time.Unix(0, 1)).Encode()); err != nil {
		t.Errorf("invite expiring 1 ns after 1970: %v", err)
	}
}
