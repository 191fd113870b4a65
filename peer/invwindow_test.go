package peer

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func seedID(t testing.TB, seed byte) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(seedKeyF(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// seedKeyF is seedKey for any test, fuzz tests included.
func seedKeyF(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(testKey(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestWindowWire: a window signed by its member opens to what was signed;
// one signed by another key, altered, truncated or of another version is
// refused.
func TestWindowWire(t *testing.T) {
	a := seedID(t, 2)
	t0 := time.Unix(1_800_000_000, 5)
	w := windowMsg{member: a, issued: t0, until: t0.Add(windowLease)}
	msg, err := signWindow(seedKey(t, 2), w)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) > windowMsgMax {
		t.Fatalf("window of %d bytes, over windowMsgMax %d", len(msg), windowMsgMax)
	}
	got, err := openWindow(msg)
	if err != nil || got.member != a || !got.issued.Equal(w.issued) || !got.until.Equal(w.until) {
		t.Fatalf("openWindow = %+v, %v, want %+v", got, err, w)
	}
	forged, err := signWindow(seedKey(t, 3), w) // B signs A's window
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"signed by another member": forged,
		"empty":                    nil,
		"version 2":                append([]byte{2}, msg[1:]...),
		"until moved":              func() []byte { m := bytes.Clone(msg); m[10]++; return m }(),
		"truncated signature":      msg[:len(msg)-1],
		"no signature":             msg[:windowHeader+len(a)],
		"header only":              msg[:windowHeader],
		"id length 0":              func() []byte { m := bytes.Clone(msg); m[windowHeader-1] = 0; return m }(),
		"id length 200":            func() []byte { m := bytes.Clone(msg); m[windowHeader-1] = 200; return m }(),
		"trailing bytes":           append(bytes.Clone(msg), make([]byte, maxWindowSig)...),
	}
	for name, m := range bad {
		if got, err := openWindow(m); !errors.Is(err, errWindow) {
			t.Errorf("%s: openWindow = %+v, %v, want errWindow", name, got, err)
		}
	}
}

// FuzzOpenWindow: any bytes give a window that verifies or an error, never
// a panic; a window that opens was signed for the member it names.
func FuzzOpenWindow(f *testing.F) {
	t0 := time.Unix(1_800_000_000, 0)
	for i, k := range []byte{2, 3} {
		key := seedKeyF(f, k)
		id, _ := peer.IDFromPrivateKey(key)
		msg, err := signWindow(key, windowMsg{member: id, issued: t0, until: t0.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
		f.Add(msg[:windowHeader])
	}
	f.Add([]byte{windowV1})
	f.Fuzz(func(t *testing.T, msg []byte) {
		w, err := openWindow(msg)
		if err != nil {
			return
		}
		if _, err := openWindow(msg); err != nil || w.member == "" {
			t.Fatalf("opened %+v, then %v", w, err)
		}
	})
}

// TestWindowTable: a window admits strangers to its member until it ends
// or is closed, at most windowStrangers connected at once, only to that
// member; older announces, windows past maxWindows and ends past windowMax
// are not taken.
func TestWindowTable(t *testing.T) {
	a, b, c := seedID(t, 2), seedID(t, 3), seedID(t, 4)
	t0 := time.Unix(1_800_000_000, 0)
	all := func(peer.ID) bool { return true }
	stranger := func(i int) peer.ID { return peer.ID([]byte{0, byte(i), 7, 7}) }
	var tab windowTable

	if tab.admit(stranger(0), a, t0) {
		t.Fatal("admitted to a member without a window")
	}
	if !tab.put(windowMsg{member: a, issued: t0, until: t0.Add(windowLease)}, t0, all) {
		t.Fatal("open window not taken")
	}
	if !tab.admit(stranger(0), a, t0) {
		t.Fatal("stranger refused through an open window")
	}
	if tab.admit(stranger(0), b, t0) {
		t.Fatal("A's window admitted a stranger to member B")
	}
	// Strangers: at most windowStrangers slots at once.
	for i := 1; i < windowStrangers; i++ {
		if !tab.admit(stranger(i), a, t0) {
			t.Fatalf("stranger %d refused", i)
		}
	}
	if tab.admit(stranger(windowStrangers), a, t0) {
		t.Fatalf("stranger %d admitted: over windowStrangers", windowStrangers)
	}
	if !tab.admit(stranger(3), a, t0) {
		t.Fatal("a stranger already admitted was refused again")
	}
	// A slot is held while its stranger has a circuit to the member
	// (live, the relay's sweep), and at least slotGrace (its handshake):
	// a stranger merely connected to the relay holds none.
	live := func(src, dest peer.ID) bool { return dest == a && src != stranger(3) }
	tab.free(live, t0.Add(slotGrace-time.Nanosecond))
	if tab.admit(stranger(windowStrangers), a, t0) {
		t.Fatal("a slot freed within its grace")
	}
	tab.free(live, t0.Add(slotGrace))
	if !tab.admit(stranger(windowStrangers), a, t0.Add(slotGrace)) {
		t.Fatal("stranger refused after a slot with no circuit freed")
	}
	if tab.holds(stranger(3), a, t0.Add(slotGrace)) {
		t.Fatal("a stranger with no circuit still holds its slot")
	}
	// The relay's sweep keeps a held stranger's circuit to that member
	// while the window is open (TestWindowSweep: and ends it once the
	// window closes).
	if !tab.holds(stranger(0), a, t0) || tab.holds(stranger(0), b, t0) || tab.holds(stranger(99), a, t0) {
		t.Fatal("holds: want the admitted stranger, to A only")
	}
	// Older announce ignored; the window, the first of A's this table
	// holds, ends windowFirst after its receipt.
	if tab.put(windowMsg{member: a, issued: t0.Add(-time.Second), until: t0.Add(-time.Millisecond)}, t0, all) {
		t.Fatal("an older announce was taken")
	}
	end := t0.Add(windowFirst)
	if !tab.admit(stranger(0), a, end.Add(-time.Nanosecond)) || tab.admit(stranger(0), a, end) {
		t.Fatal("A's first window does not end windowFirst after its receipt")
	}
	// Reopened, then closed: an older open announce arriving late stays out.
	t1 := end.Add(time.Minute)
	tab.put(windowMsg{member: a, issued: t1, until: t1.Add(windowLease)}, t1, all)
	if tab.holds(stranger(1), a, t1) {
		t.Fatal("a reopened window kept the slots of the one that ended")
	}
	for i := range windowStrangers {
		if !tab.admit(stranger(100+i), a, t1) {
			t.Fatalf("reopened window refused new stranger %d", i)
		}
	}
	if tab.admit(stranger(0), a, t1) {
		t.Fatal("reopened window admitted a stranger past windowStrangers")
	}
	if !tab.put(windowMsg{member: a, issued: t1.Add(time.Second), until: t1.Add(time.Second)}, t1, all) {
		t.Fatal("close not taken")
	}
	if tab.admit(stranger(0), a, t1) { // the relay's clock behind the member's
		t.Fatal("admitted through a closed window")
	}
	tab.put(windowMsg{member: a, issued: t1, until: t1.Add(windowLease)}, t1.Add(2*time.Second), all)
	if tab.admit(stranger(0), a, t1.Add(2*time.Second)) {
		t.Fatal("a late older announce reopened a closed window")
	}
	// A renewal's life clamped to windowMax from its receipt.
	tab.put(windowMsg{member: c, issued: t0, until: t0.Add(100 * time.Hour)}, t0, all)
	tab.put(windowMsg{member: c, issued: t0.Add(time.Second), until: t0.Add(100 * time.Hour)}, t0.Add(time.Minute), all)
	if !tab.admit(stranger(0), c, t0.Add(time.Minute+windowMax-time.Nanosecond)) || tab.admit(stranger(0), c, t0.Add(time.Minute+windowMax)) {
		t.Fatal("window not open until windowMax after its receipt")
	}
	// At most maxWindows: past it, only room made from former members.
	var full windowTable
	for i := range maxWindows {
		full.put(windowMsg{member: peer.ID([]byte{1, byte(i >> 8), byte(i)}), issued: t0, until: t0.Add(time.Minute)}, t0, all)
	}
	if full.put(windowMsg{member: a, issued: t0, until: t0.Add(time.Minute)}, t0, all) || full.len() != maxWindows {
		t.Fatalf("window taken over maxWindows (%d held)", full.len())
	}
	if !full.put(windowMsg{member: a, issued: t0, until: t0.Add(time.Minute)}, t0, func(id peer.ID) bool { return id == a }) || full.len() != 1 {
		t.Fatalf("former members' windows not dropped for room (%d held)", full.len())
	}
}

// TestWindowSkew: a window's life is its announce's until-issued (the
// member's clock), counted from the relay's receipt (the relay's): a
// member whose clock is 40 minutes ahead or behind gets a window of
// exactly its lease. Before, the end was read on the member's clock and
// compared with the relay's: behind, the window came closed; ahead, it
// lasted until the relay's clamp, an hour.
func TestWindowSkew(t *testing.T) {
	relayNow := time.Unix(1_800_000_000, 0)
	all := func(peer.ID) bool { return true }
	for _, skew := range []time.Duration{-40 * time.Minute, 40 * time.Minute, 0} {
		var tab windowTable
		a := seedID(t, 2)
		memberNow := relayNow.Add(skew)
		// The member's first announce, then its renewal windowRenew later.
		tab.put(windowMsg{member: a, issued: memberNow, until: memberNow.Add(windowLease)}, relayNow, all)
		renewed := relayNow.Add(windowRenew)
		m := memberNow.Add(windowRenew)
		if !tab.put(windowMsg{member: a, issued: m, until: m.Add(windowLease)}, renewed, all) {
			t.Fatalf("skew %v: renewal not taken", skew)
		}
		end := renewed.Add(windowLease)
		if !tab.admit(seedID(t, 9), a, renewed) || !tab.admit(seedID(t, 9), a, end.Add(-time.Nanosecond)) || tab.admit(seedID(t, 9), a, end) {
			t.Fatalf("skew %v: window not open from its receipt for exactly its lease", skew)
		}
	}
}

// TestWindowReplay: an old open announce of A's, replayed to a relay that
// holds nothing of A's (it just restarted), is taken once and held at
// most windowFirst (A's own renewal would extend a true one); A's newer
// close ends it, and neither it nor any older announce is taken again.
// Before, a replay was held for the lease it named, up to an hour.
func TestWindowReplay(t *testing.T) {
	a := seedID(t, 2)
	all := func(peer.ID) bool { return true }
	t0 := time.Unix(1_800_000_000, 0)
	old := windowMsg{member: a, issued: t0, until: t0.Add(windowLease)}
	relayNow := t0.Add(5 * time.Hour) // the relay restarted long after A's window closed
	var tab windowTable
	if !tab.put(old, relayNow, all) {
		t.Fatal("replayed announce not taken by a relay that holds nothing of A's")
	}
	end := relayNow.Add(windowFirst)
	if !tab.admit(seedID(t, 9), a, end.Add(-time.Nanosecond)) || tab.admit(seedID(t, 9), a, end) {
		t.Fatal("a replayed announce held other than windowFirst from its receipt")
	}
	if tab.put(old, end, all) {
		t.Fatal("the same announce taken twice")
	}
	closed := windowMsg{member: a, issued: t0.Add(time.Minute), until: t0.Add(time.Minute)}
	if !tab.put(closed, relayNow.Add(time.Minute), all) || tab.admit(seedID(t, 9), a, relayNow.Add(time.Minute)) {
		t.Fatal("A's newer close did not end the replayed window")
	}
	if tab.put(old, relayNow.Add(2*time.Minute), all) {
		t.Fatal("a replay older than A's close taken")
	}
	// A relay full of members forgets none of them for a stranger's room:
	// a forgotten member's old announce could be replayed again.
	var full windowTable
	for i := range maxWindows {
		full.put(windowMsg{member: peer.ID([]byte{1, byte(i >> 8), byte(i)}), issued: t0, until: t0}, t0, all)
	}
	if full.put(windowMsg{member: a, issued: t0, until: t0.Add(time.Minute)}, t0, all) || full.len() != maxWindows {
		t.Fatalf("a member's closed window dropped for room (%d held)", full.len())
	}
}

// TestWindowSweep: the relay's sweep (relayACL.admitsCircuit) keeps the
// circuit of a stranger an open window admitted, to that member only, and
// ends it once the window closes; a stranger no window holds is ended at
// once.
func TestWindowSweep(t *testing.T) {
	a, b := seedID(t, 2), seedID(t, 3)
	t0 := time.Unix(1_800_000_000, 0)
	now := t0
	all := func(peer.ID) bool { return true }
	var tab windowTable
	in, out := peer.ID([]byte{0, 1, 7, 7}), peer.ID([]byte{0, 2, 7, 7})
	isMember := func(p peer.ID) bool { return p == a || p == b }
	acl := relayACL{member: isMember, contactDevice: noContact, held: func(src, dest peer.ID) bool { return tab.holds(src, dest, now) }}
	tab.put(windowMsg{member: a, issued: t0, until: t0.Add(windowLease)}, t0, all)
	if !tab.admit(in, a, t0) {
		t.Fatal("stranger refused through an open window")
	}
	if acl.admitsCircuit(in, a) != verdictYes {
		t.Fatal("the sweep would end a circuit its open window admitted")
	}
	if acl.admitsCircuit(in, b) != verdictNo {
		t.Fatal("the sweep keeps a stranger's circuit to a member whose window does not hold it")
	}
	if acl.admitsCircuit(out, a) != verdictNo {
		t.Fatal("the sweep keeps a stranger no window holds")
	}
	now = t0.Add(time.Second)
	tab.put(windowMsg{member: a, issued: now, until: now}, now, all) // closed
	if acl.admitsCircuit(in, a) != verdictNo {
		t.Fatal("the sweep keeps a stranger's circuit after its window closed")
	}
}
