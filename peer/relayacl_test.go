package peer

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// seedKey is the libp2p form of testKey(seed).
func seedKey(t *testing.T, seed byte) crypto.PrivKey {
	t.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(testKey(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// noContact is a contacts' book with no device in it.
func noContact(peer.ID) (bool, error) { return false, nil }

// TestRelayACL: the relay serves members and contacts' devices only:
// reservations for members other than itself and for contacts' devices,
// circuits to such members from members or contacts' devices, and to
// contacts' devices from members only; a former member, a stranger and
// the relay itself are refused.
func TestRelayACL(t *testing.T) {
	id := func(seed byte) peer.ID {
		pid, err := peer.IDFromPrivateKey(seedKey(t, seed))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	self, a, b, former, contact, stranger, contact2 := id(1), id(2), id(3), id(4), id(5), id(6), id(7)
	members := map[peer.ID]bool{self: true, a: true, b: true}
	acl := relayACL{
		self:          self,
		member:        func(p peer.ID) bool { return members[p] },
		contactDevice: func(p peer.ID) (bool, error) { return p == contact || p == contact2, nil },
		guests:        newRelayGuests(maxRelayGuests, time.Hour, time.Now),
	}
	reserve := []struct {
		name string
		p    peer.ID
		want bool
	}{
		{"member", a, true},
		{"other member", b, true},
		{"self", self, false},
		{"former member", former, false},
		{"contact's device", contact, true},
		{"stranger", stranger, false},
	}
	for _, c := range reserve {
		if got := acl.AllowReserve(c.p, nil); got != c.want {
			t.Errorf("AllowReserve(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	connect := []struct {
		name      string
		src, dest peer.ID
		want      bool
	}{
		{"member to member", b, a, true},
		{"contact's device to member", contact, a, true},
		{"stranger to member", stranger, a, false},
		{"former member to member", former, a, false},
		{"member to former member", a, former, false},
		{"member to contact's device", a, contact, true},
		{"self to contact's device", self, contact, true},
		{"contact's device to another contact's device", contact2, contact, false},
		{"stranger to contact's device", stranger, contact, false},
		{"former member to contact's device", former, contact, false},
		{"contact's device to itself", contact, contact, false},
		{"member to stranger", a, stranger, false},
		{"member to self", a, self, false},
		{"self to member", self, a, true},
		{"member to itself", a, a, false},
	}
	for _, c := range connect {
		if got := acl.AllowConnect(c.src, nil, c.dest); got != c.want {
			t.Errorf("AllowConnect(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	// An invite window: A's (and a former member's, left over) admit
	// anyone to that member only; reservations stay for members.
	joiner := id(8)
	acl.window = func(src, dest peer.ID) bool { return dest == a || dest == former || dest == self }
	windowed := []struct {
		name      string
		src, dest peer.ID
		want      bool
	}{
		{"joiner to member with a window", joiner, a, true},
		{"stranger to member with a window", stranger, a, true},
		{"joiner to member without a window", joiner, b, false},
		{"joiner to former member with a window", joiner, former, false},
		{"joiner to the relay itself", joiner, self, false},
		{"member with a window to itself", a, a, false},
		{"member still to member", b, a, true},
	}
	for _, c := range windowed {
		if got := acl.AllowConnect(c.src, nil, c.dest); got != c.want {
			t.Errorf("window: AllowConnect(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	if acl.AllowReserve(joiner, nil) || acl.AllowReserve(stranger, nil) {
		t.Error("window: a stranger may reserve")
	}
	// Not in a cell: nobody.
	none := relayACL{self: self, member: func(peer.ID) bool { return false }, contactDevice: func(peer.ID) (bool, error) { return true, nil }}
	if none.AllowReserve(a, nil) || none.AllowConnect(contact, nil, a) {
		t.Error("a node in no cell admitted someone")
	}
}

// TestRelayGuests: the contacts' devices' reservations are bounded all
// together: a new device is refused while max hold one, a holder's
// refresh is granted, a slot frees when its reservation would have
// expired, and a request the relay refuses after the ACL holds none; a
// relay with no book grants contacts' devices nothing.
func TestRelayGuests(t *testing.T) {
	id := func(seed byte) peer.ID {
		pid, err := peer.IDFromPrivateKey(seedKey(t, seed))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newRelayGuests(2, time.Hour, func() time.Time { return now })
	acl := relayACL{
		self:          id(1),
		member:        func(p peer.ID) bool { return p == id(9) },
		contactDevice: func(p peer.ID) (bool, error) { return p != id(9), nil },
		guests:        g,
	}
	steps := []struct {
		name    string
		advance time.Duration
		p       peer.ID
		want    bool
		refused bool // the relay refuses it after the ACL (its own limits)
	}{
		{"first device", 0, id(2), true, false},
		{"second device, refused by the relay's limits", 0, id(3), true, true},
		{"third device: the refused one holds no slot", 0, id(4), true, false},
		{"second device, book full", 10 * time.Minute, id(3), false, false},
		{"a member, book full", 0, id(9), true, false},
		{"first device's refresh", 30 * time.Minute, id(2), true, false},
		{"second device once the third's slot expired", 35 * time.Minute, id(3), true, false},
		{"fourth device, book full again", 0, id(5), false, false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		acl.hopStarted(s.p) // as the relay handles the request's stream
		got := acl.AllowReserve(s.p, nil)
		if got != s.want {
			t.Errorf("%s: AllowReserve = %v, want %v", s.name, got, s.want)
		}
		if got && !s.refused {
			acl.reserved(s.p)
		}
		acl.hopDone(s.p)
	}
	if n := g.len(); n > 2 {
		t.Errorf("book holds %d devices, bound 2", n)
	}
	// A device's refused request while another of its hop streams (a
	// circuit) is handled: pending until the last is done, then free; a
	// circuit's stream done first does not unmark a request still
	// handled, which the relay then grants.
	g2 := newRelayGuests(1, time.Hour, func() time.Time { return now })
	g2.start(id(2)) // a circuit request
	g2.start(id(2)) // a reservation request
	if !g2.take(id(2)) || !g2.take(id(2)) || g2.take(id(3)) {
		t.Fatal("a device asking twice at once took more than its one slot, or lost it")
	}
	g2.done(id(2)) // the circuit's stream
	g2.grant(id(2))
	g2.done(id(2))
	if g2.len() != 1 || g2.take(id(3)) {
		t.Errorf("a granted device's slot after its streams: %d held, a new device admitted", g2.len())
	}
	g3 := newRelayGuests(1, time.Hour, func() time.Time { return now })
	g3.start(id(2))
	g3.start(id(2))
	g3.take(id(2))
	g3.done(id(2)) // refused, while another stream of its is handled
	if g3.take(id(3)) {
		t.Error("a new device admitted while the first is still pending")
	}
	g3.done(id(2))
	if g3.len() != 0 || !g3.take(id(3)) {
		t.Errorf("%d held after the refused device's streams were done, want 0", g3.len())
	}
	acl.guests = nil
	if acl.AllowReserve(id(5), nil) {
		t.Error("a relay with no guests' book granted a contact's device")
	}
}
