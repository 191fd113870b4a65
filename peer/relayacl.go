package peer

import (
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	contactservice "github.com/exopeer/exopeer/contact/service"
)

// relayACL is who the node's relay service (part "relay") serves: the
// members of its cell, and its contacts' devices. It is an admission
// list, not a public service: its circuits have no limit (see
// relayResources), so that chain sync, messages and blobs run over them,
// and only people the cell knows may use them.
//
//   - A reservation (a slot to be reached at) is for a member other than
//     the node itself, or for a contact's device while the guests' book
//     (relayGuests: maxRelayGuests devices of all contacts, at most
//     maxContactGuests of one) has room; the
//     device holds a slot only once the relay grants it (its own limits
//     come after the ACL), through reserved, hopStarted and hopDone. A
//     member removed from the cell (a contact deleted) is no longer one:
//     its next refresh (AutoRelay refreshes every minute) is refused,
//     and its open circuits end at the service's next sweep (relaySweep).
//   - A circuit goes to a member other than the node itself, from a
//     member or from a device of one of the cell's contacts, or from
//     anyone while that member's invite window is open (window: see
//     windowTopic), from at most windowStrangers such peers at once; or
//     to a contact's device from a member only (the cell's members reach
//     their contacts through it, and nobody else does). A source other
//     than a member holds at most maxGuestCircuits circuits at once, and
//     the devices of one contact all together at most maxContactCircuits
//     to any one member (perContact).
//   - The service's sweep judges each open circuit again by its source
//     and destination (admitsCircuit): a stranger's only while it holds
//     its slot in that destination's open window; a failed read keeps it.
//
// It reads the live roster and contacts at every call (go-libp2p calls it
// from the relay's stream handlers, concurrently): its functions must be
// safe for concurrent use and must not block for long.
type relayACL struct {
	self peer.ID
	// member reports whether id is on the cell's roster now (false when
	// the node is in no cell).
	member func(id peer.ID) bool
	// rosterKnown reports whether the roster can be read now (nil: always):
	// while it cannot (a restart), the sweep ends no circuit.
	rosterKnown func() bool
	// contactDevice reports whether id is a device of one of the cell's
	// contacts; an error (the contacts not read in time) refuses a new
	// reservation or circuit and ends no open circuit.
	contactDevice func(id peer.ID) (bool, error)
	// window reports whether src may reach member dest through dest's
	// open invite window, taking one of its stranger slots (nil: no
	// windows).
	window func(src, dest peer.ID) bool
	// held reports whether src holds a stranger's slot in dest's open
	// invite window (nil: no windows): the sweep keeps that circuit.
	held func(src, dest peer.ID) bool
	// free is the sweep's: it frees the stranger slots with no live
	// circuit (nil: no windows).
	free func(live func(src, dest peer.ID) bool)
	// hops counts the hop streams src has open to the relay now (its
	// circuits, and its request being judged): a source other than a
	// member gets at most maxGuestCircuits circuits (nil: no bound).
	hops func(src peer.ID) int
	// guests bounds the contacts' devices' reservations (nil: none).
	guests *relayGuests
	// contactOf names the contacts (cells) src is a device of, and
	// perContact bounds the circuits of all the devices of one contact to
	// one member (maxContactCircuits); nil: no such bound.
	contactOf  func(src peer.ID) ([]string, error)
	perContact *contactLedger
}

// maxGuestCircuits bounds the circuits one source other than a member (a
// contact's device, a stranger through an invite window) holds through
// the relay at once: go-libp2p's MaxCircuits counts per peer, so one
// such source could otherwise take all 64 of a member's.
const maxGuestCircuits = 4

// verdict is the sweep's answer about an open circuit: unknown (a read
// failed) keeps it.
type verdict int8

const (
	verdictNo verdict = iota
	verdictYes
	verdictUnknown
)

// isContact is contactDevice as a verdict.
func (a relayACL) isContact(id peer.ID) verdict {
	ok, err := a.contactDevice(id)
	switch {
	case err != nil:
		return verdictUnknown
	case ok:
		return verdictYes
	}
	return verdictNo
}

// AllowReserve is relay.ACLFilter's: a member other than the node itself,
// or a contact's device within the guests' bound.
func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	if p == a.self {
		return false
	}
	if a.member(p) {
		return true
	}
	if a.isContact(p) != verdictYes {
		return false
	}
	if a.contactOf == nil {
		return a.guests.take(p)
	}
	cs, err := a.contactOf(p)
	if err != nil || len(cs) == 0 {
		return false
	}
	return a.guests.takeAs(p, contactsKey(cs))
}

// reserved is the relay's: it granted p a reservation (relayHost).
func (a relayACL) reserved(p peer.ID) { a.guests.grant(p) }

// hopStarted and hopDone are the relay's: it handles a hop stream of p's,
// then is done with it (relayHost).
func (a relayACL) hopStarted(p peer.ID) { a.guests.start(p) }
func (a relayACL) hopDone(p peer.ID)    { a.guests.done(p) }

// AllowConnect is relay.ACLFilter's: to a member other than the node
// itself, from a member or a contact's device, or from anyone through the
// member's open invite window; to a contact's device from a member; never
// from the destination itself. A source other than a member is refused
// past maxGuestCircuits.
func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	if dest == a.self || src == dest {
		return false
	}
	if a.member(src) {
		return a.member(dest) || a.isContact(dest) == verdictYes
	}
	if !a.member(dest) || (a.hops != nil && a.hops(src) > maxGuestCircuits) {
		return false
	}
	if a.isContact(src) == verdictYes {
		return a.contactRoom(src, dest)
	}
	return a.window != nil && a.window(src, dest)
}

// contactRoom takes a place for a circuit from contact's device src to
// dest within its contacts' bound (perContact), if there is one; a
// failed read refuses it. A device several contacts name is counted
// under that set of contacts, with none of them alone (as the known
// table's owner): any cell may sign a list naming any peer ID, so a
// contact naming another's device must not spend that device's places.
func (a relayACL) contactRoom(src, dest peer.ID) bool {
	if a.perContact == nil || a.contactOf == nil {
		return true
	}
	cs, err := a.contactOf(src)
	if err != nil || len(cs) == 0 {
		return false
	}
	return a.perContact.admit([]string{contactsKey(cs)}, src, dest)
}

// contactIDs is the IDs of contacts cs, as contactsKey takes them.
func contactIDs(cs []contactservice.Contact) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = string(c.ID[:])
	}
	return ids
}

// contactsKey is the key of the set of contacts cs (not empty) that a
// device is counted under: by the relay's places, the doctor's observers
// and the known table's cap per contact.
func contactsKey(cs []string) string {
	cs = slices.Clone(cs)
	slices.Sort(cs)
	return strings.Join(slices.Compact(cs), "\x00")
}

// admitsCircuit is the sweep's judgement of an open circuit from src to
// dest: what AllowConnect admits (the window only for a stranger that
// still holds its slot in dest's open window: its window closed, or its
// source's circuit gone, ends it), unknown while the roster or a
// contact cannot be read.
func (a relayACL) admitsCircuit(src, dest peer.ID) verdict {
	if dest == a.self {
		return verdictNo
	}
	if a.rosterKnown != nil && !a.rosterKnown() {
		return verdictUnknown
	}
	if a.member(src) {
		if a.member(dest) {
			return verdictYes
		}
		return a.isContact(dest)
	}
	if !a.member(dest) {
		return verdictNo
	}
	if a.held != nil && a.held(src, dest) {
		return verdictYes
	}
	return a.isContact(src)
}

// freeSlots is the sweep's: live counts the circuits open now.
func (a relayACL) freeSlots(live func(src, dest peer.ID) int) {
	if a.free != nil {
		a.free(func(src, dest peer.ID) bool { return live(src, dest) > 0 })
	}
	if a.perContact != nil {
		a.perContact.free(live)
	}
}
