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
//     the node itself. A member removed from the cell is no longer one:
//     its next refresh (AutoRelay refreshes every minute) is refused,
//     and its open circuits end at the service's next sweep (relaySweep).
//   - A circuit goes to a member other than the node itself, from a
//     member or from a device of one of the cell's contacts, or from
//     anyone while that member's invite window is open (window: see
//     windowTopic), from at most windowStrangers such peers at once.
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
}

// AllowReserve is relay.ACLFilter's: a member other than the node itself.
func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	return p != a.self && a.member(p)
}

// AllowConnect is relay.ACLFilter's: to a member other than the node
// itself, from a member or a contact's device, or from anyone through the
// member's open invite window; never from the destination itself.
func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	if dest == a.self || src == dest || !a.member(dest) {
		return false
	}
	if a.member(src) || a.contactDevice(src) {
		return true
	}
	return a.window != nil && a.window(src, dest)
}

// admitsSource reports whether a circuit from src is still admitted
// (relayService's sweep): a member or a contact's device.
func (a relayACL) admitsSource(src peer.ID) bool { return a.member(src) || a.contactDevice(src) }

// admitsDest reports whether a circuit to dest is still admitted
// (relayService's sweep): a member other than the node itself.
func (a relayACL) admitsDest(dest peer.ID) bool { return dest != a.self && a.member(dest) }
