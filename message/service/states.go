package service

// States of a recorded message. A message out moves forward only, along
// sent → stored → delivered → read; undeliverable is apart (a pending
// record this cell cannot deliver, see Advances). A message in is
// recorded "delivered" and may become "read".
const (
	// Sent: in this cell's chain, not yet acknowledged by the contact's
	// cell: pending, the courier's to deliver.
	Sent = "sent"
	// Stored: also left in a blind mailbox for the contact (still
	// pending: the courier keeps trying its devices directly).
	Stored = "stored"
	// Delivered: a device of the contact's cell acknowledged it (for a
	// message in: recorded by this cell).
	Delivered = "delivered"
	// Read: the recipient opened it.
	Read = "read"
	// Undeliverable: a pending record that can never be delivered (it
	// makes no valid envelope); no longer pending.
	Undeliverable = "undeliverable"
)

// rank orders the states a message moves through; 0 is unknown.
func rank(state string) int {
	switch state {
	case Sent:
		return 1
	case Stored:
		return 2
	case Delivered:
		return 3
	case Read:
		return 4
	case Undeliverable:
		return 5
	}
	return 0
}

// Advances reports whether a message in state old may be recorded in
// state next: only forward along sent → stored → delivered → read, so
// that a device whose news is older (a courier's acknowledgement after
// the read receipt, a mailbox write after the delivery) never takes a
// message back. Undeliverable is reached from sent or stored only, and
// nothing follows it. An unknown old state (a record of a newer binary)
// is left alone; an unknown next state is never written.
func Advances(old, next string) bool {
	o, n := rank(old), rank(next)
	switch {
	case n == 0 || o == 0:
		return false
	case next == Undeliverable:
		return old == Sent || old == Stored
	case old == Undeliverable:
		return false
	}
	return n > o
}

// Pending reports whether a message out in this state is still the
// courier's to deliver.
func Pending(state string) bool { return state == Sent || state == Stored }
