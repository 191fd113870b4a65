package cell

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
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
	inv := newInvite(Code{Nameplate: 4721}, RoleChain, now.Add(10*time.Minute))
	a, b := seededPeer(t, 1), seededPeer(t, 2)
	book := func(id peer.ID, i int) byte { return inv.book(id, testMessage(i), now, perPeer, total) }

	if st := book(a, 0); st != statusOK {
		t.Fatalf("first attempt: status %d", st)
	}
	if st := book(a, 0); st != statusBadMessage {
		t.Errorf("replayed message: status %d, want %d (bad message)", st, statusBadMessage)
	}
	if st := book(b, 0); st != statusBadMessage {
		t.Errorf("message replayed by another peer: status %d, want %d", st, statusBadMessage)
	}
	for i := 1; i < perPeer; i++ {
		if st := book(a, i); st != statusOK {
			t.Fatalf("attempt %d of a: status %d", i+1, st)
		}
	}
	if st := book(a, 99); st != statusExhausted {
		t.Errorf("attempt past the per-peer limit: status %d, want %d", st, statusExhausted)
	}
	if inv.failures != perPeer {
		t.Errorf("%d failures booked, want %d (replays and refused attempts count for nothing)", inv.failures, perPeer)
	}
	// Another peer still has its own share.
	if st := book(b, 100); st != statusOK {
		t.Fatalf("another peer after a's share is spent: status %d", st)
	}
	// Proving the code takes the failure back.
	inv.settle(b, testMessage(100))
	inv.settle(b, testMessage(100)) // twice: no effect
	if inv.failures != perPeer || inv.byPeer[b] != 0 || len(inv.byPeer) != 1 {
		t.Errorf("after settling: %d failures, %v by peer", inv.failures, inv.byPeer)
	}
	// Bound to b: a is told there is no invite.
	inv.joiner = b
	if st := inv.check(a, now, perPeer, total); st != statusNoInvite {
		t.Errorf("another peer after admission: status %d, want %d", st, statusNoInvite)
	}
	if st := inv.check(b, now, perPeer, total); st != statusOK {
		t.Errorf("the admitted peer again: status %d", st)
	}
	if st := inv.check(b, now.Add(11*time.Minute), perPeer, total); st != statusExpired || !inv.dead(now.Add(11*time.Minute), total) {
		t.Errorf("after the TTL: status %d, dead %v", st, inv.dead(now.Add(11*time.Minute), total))
	}
}

// TestInviteBookingBound: however many peers try, what an invite
// remembers stays within its limit of failed attempts, and the invite
// dies there.
func TestInviteBookingBound(t *testing.T) {
	const perPeer, total, peers = 3, 20, 50
	now := time.Unix(1_800_000_000, 0)
	inv := newInvite(Code{Nameplate: 1}, RoleChain, now.Add(time.Hour))
	msg := 0
	for p := range peers {
		id := seededPeer(t, p)
		for range perPeer + 1 {
			msg++
			inv.book(id, testMessage(msg), now, perPeer, total)
			if len(inv.byPeer) > total || len(inv.seen) > total || inv.failures > total {
				t.Fatalf("after %d attempts: %d peers, %d messages, %d failures remembered; limit %d",
					msg, len(inv.byPeer), len(inv.seen), inv.failures, total)
			}
		}
	}
	if inv.failures != total || !inv.dead(now, total) {
		t.Errorf("%d failures, dead %v; want %d, true", inv.failures, inv.dead(now, total), total)
	}
	if st := inv.check(seededPeer(t, peers+1), now, perPeer, total); st != statusExhausted {
		t.Errorf("a new peer on an exhausted invite: status %d, want %d", st, statusExhausted)
	}
}

func TestInviteEncoding(t *testing.T) {
	now := time.Unix(1_800_000_000, 123)
	inv := newInvite(Code{Nameplate: 9999, Words: [3]uint16{0, 1, 2047}}, RoleChain|RoleRelay, now)
	for i := range 5 {
		inv.book(seededPeer(t, i%2), testMessage(i), now.Add(-time.Minute), 3, 20)
	}
	inv.joiner = seededPeer(t, 7)
	b := inv.encode()
	got, err := decodeInvite(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.encode(), b) || got.code != inv.code || got.roles != inv.roles ||
		!got.expires.Equal(inv.expires) || got.failures != 5 || got.joiner != inv.joiner || len(got.seen) != 5 {
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
		if _, err := decodeInvite(tc.b); err == nil {
			t.Errorf("%s: decoded", tc.name)
		}
	}
}

func FuzzDecodeInvite(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	inv := newInvite(Code{Nameplate: 4721, Words: [3]uint16{5, 6, 7}}, RoleChain|RoleStore, now)
	f.Add(inv.encode())
	inv.book(seededPeer(f, 1), testMessage(1), now.Add(-time.Second), 3, 20)
	inv.joiner = seededPeer(f, 2)
	f.Add(inv.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := decodeInvite(b)
		if err != nil {
			return
		}
		if !bytes.Equal(inv.encode(), b) {
			t.Fatalf("accepted invite re-encodes to %x, not %x", inv.encode(), b)
		}
		sum := 0
		for _, k := range inv.byPeer {
			sum += k
		}
		if sum != inv.failures || len(inv.seen) != inv.failures || inv.failures > maxInviteAttempts || !inv.code.Valid() {
			t.Fatalf("accepted an inconsistent invite: %d failures, %d by peer, %d messages", inv.failures, sum, len(inv.seen))
		}
	})
}

// TestStoredInvites: invites are stored and read back; one that does not
// decode, or sits under another nameplate's name, is reported with its
// record's name and left as it is.
func TestStoredInvites(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	st := newStore(d)
	now := time.Unix(1_800_000_000, 0)
	inv := newInvite(Code{Nameplate: 42, Words: [3]uint16{1, 2, 3}}, RoleChain, now)
	if err := st.putInvite(ctx, inv); err != nil {
		t.Fatal(err)
	}
	got, err := st.loadInvites(ctx)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].encode(), inv.encode()) {
		t.Fatalf("loaded %v, %v", got, err)
	}
	if err := st.deleteInvite(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if got, err := st.loadInvites(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after delete: %v, %v", got, err)
	}
	for _, tc := range []struct {
		name, key string
		value     []byte
	}{
		{"junk", "/cell/invites/0001", []byte("EXI1junk")},
		{"misplaced", "/cell/invites/0001", inv.encode()},
	} {
		k := ds.NewKey(tc.key)
		if err := d.Put(ctx, k, tc.value); err != nil {
			t.Fatal(err)
		}
		_, err := st.loadInvites(ctx)
		if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v, want ErrCorruptState naming %s", tc.name, err, tc.key)
		}
		if b, err := d.Get(ctx, k); err != nil || !bytes.Equal(b, tc.value) {
			t.Errorf("%s: the record was changed: %x, %v", tc.name, b, err)
		}
		_ = d.Delete(ctx, k)
	}
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
		inv := newInvite(code, RoleChain, now.Add(time.Hour))
		if inv.check(joiner, now, 3, 20) != statusOK {
			b.Fatal("refused")
		}
		st, _, err := cpace.Start(cpace.Responder, code.Password(), ci, sid, nil, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Finish(ya, nil); err != nil {
			b.Fatal(err)
		}
		if inv.book(joiner, [pointLen]byte(ya), now, 3, 20) != statusOK {
			b.Fatal("not booked")
		}
		_ = inv.encode()
	}
}

// BenchmarkInviteRecord encodes and decodes an invite holding the most
// failed attempts it may (20, by 7 peers).
func BenchmarkInviteRecord(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	inv := newInvite(Code{Nameplate: 4721, Words: [3]uint16{5, 6, 7}}, RoleChain, now.Add(time.Hour))
	for i := range 20 {
		inv.book(seededPeer(b, i/3), testMessage(i), now, 3, 20)
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		enc := inv.encode()
		n = len(enc)
		if _, err := decodeInvite(enc); err != nil {
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
