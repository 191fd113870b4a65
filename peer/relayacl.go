package peer

import (
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// relayACL is who the node's relay service (part "relay") serves: the
// members of its cell, and its contacts' devices. It is an admission
// list, not a public service: its circuits have no limit (see
// relayResources), so that chain sync, messages and blobs run over them,
// and only people the cell knows may use them.
//
//   - A reservation (a slot to be reached at) is for a member other than
//     the node itself, or for a contact's device while the guests' book
//     (relayGuests: maxRelayGuests devices of all contacts) has room. A
//     member removed from the cell (a contact deleted) is no longer one:
//     its next refresh (AutoRelay refreshes every minute) is refused,
//     and its open circuits end at the service's next sweep (relaySweep).
//   - A circuit goes to a member other than the node itself, from a
//     member or from a device of one of the cell's contacts, or from
//     anyone while that member's invite window is open (window: see
//     windowTopic), from at most windowStrangers such peers at once; or
//     to a contact's device from a member only (the cell's members reach
//     their contacts through it, and nobody else does).
//
// It reads the live roster and contacts at every call (go-libp2p calls it
// from the relay's stream handlers, concurrently): its functions must be
// safe for concurrent use and must not block for long.
type relayACL struct {
	self peer.ID
	// member reports whether id is on the cell's roster now (false when
	// the node is in no cell).
	member func(id peer.ID) bool
	// contactDevice reports whether id is a device of one of the cell's
	// contacts (false on any error: a refusal, never a wrong admission).
	contactDevice func(id peer.ID) bool
	// window reports whether src may reach member dest through dest's
	// open invite window (nil: no windows).
	window func(src, dest peer.ID) bool
	// held reports whether src holds a stranger's slot in an open invite
	// window (nil: no windows): the sweep keeps its circuits.
	held func(src peer.ID) bool
	// guests bounds the contacts' devices' reservations (nil: none).
	guests *relayGuests
}

// AllowReserve is relay.ACLFilter's: a member other than the node itself,
// or a contact's device within the guests' bound.
func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	if p == a.self {
		return false
	}
	return a.member(p) || (a.contactDevice(p) && a.guests.admit(p))
}

// AllowConnect is relay.ACLFilter's: to a member other than the node
// itself, from a member or a contact's device, or from anyone through the
// member's open invite window; to a contact's device from a member; never
// from the destination itself.
func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	if dest == a.self || src == dest {
		return false
	}
	if a.member(dest) {
		if a.member(src) || a.contactDevice(src) {
			return true
		}
		return a.window != nil && a.window(src, dest)
	}
	return a.contactDevice(dest) && a.member(src)
}

// admitsSource reports whether a circuit from src is still admitted
// (relayService's sweep): a member, a contact's device, or a stranger an
// open invite window holds (the window's close ends its circuit).
func (a relayACL) admitsSource(src peer.ID) bool {
	return a.member(src) || a.contactDevice(src) || (a.held != nil && a.held(src))
}

// admitsDest reports whether a circuit to dest is still admitted
// (relayService's sweep): a member other than the node itself, or a
// contact's device.
func (a relayACL) admitsDest(dest peer.ID) bool {
	return dest != a.self && (a.member(dest) || a.contactDevice(dest))
}
