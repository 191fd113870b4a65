package peer

import (
	"testing"

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

// TestRelayACL: the relay serves members and contacts' devices only:
// reservations for members other than itself, circuits to such members
// from members or contacts' devices; a former member, a stranger and the
// relay itself are refused.
func TestRelayACL(t *testing.T) {
	id := func(seed byte) peer.ID {
		pid, err := peer.IDFromPrivateKey(seedKey(t, seed))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	self, a, b, former, contact, stranger := id(1), id(2), id(3), id(4), id(5), id(6)
	members := map[peer.ID]bool{self: true, a: true, b: true}
	acl := relayACL{
		self:          self,
		member:        func(p peer.ID) bool { return members[p] },
		contactDevice: func(p peer.ID) bool { return p == contact },
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
		{"contact's device", contact, false},
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
		{"member to contact's device", a, contact, false},
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
	joiner := id(7)
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
	none := relayACL{self: self, member: func(peer.ID) bool { return false }, contactDevice: func(peer.ID) bool { return true }}
	if none.AllowReserve(a, nil) || none.AllowConnect(contact, nil, a) {
		t.Error("a node in no cell admitted someone")
	}
}
