// Package doctor tells, in words, what is wrong with a node's
// connectivity and its data dir, and what to do about each problem: it is
// the pure core of `exopeer doctor`. Diagnose takes Facts, a snapshot the
// node gathers (package peer, Node.Doctor: its listen addresses, AutoNAT
// v2's verdict on each, the addresses peers observed it at, its open
// connections and their paths with the last hole punch with each peer,
// clock readings from its cell's members, the
// data dir's free space and modes), and returns Findings, each with a
// level (ok, warn, problem), a sentence and, for each warning or problem,
// what to do.
//
// It is a package of its own, not files of peer, so that its rules are
// pure by construction: it imports no os, net or clock and starts nothing,
// and its table tests (one per rule) run without a node.
//
// The NAT's type is told from observations as far as they go: the same
// local address (IP, protocol and port) seen by two or more observers on
// the internet at different external ports means the NAT maps ports per
// destination (endpoint-dependent, "symmetric"), which hole punching
// cannot pass; the observers are the cell's members and its contacts'
// devices only (an observed address is what the remote peer says, so the
// node keeps no other peer's), one vote a peer (Observation.Observer is
// its peer ID, whatever addresses it comes from); seen at one external
// port by all, the mapping is
// endpoint-independent and punching can work. Fewer than two observers of
// one local address tell nothing. A relayed peer's finding says why it is
// not direct, with the error its last hole punch ended with; a direct one
// says whether hole punching made it.
package doctor
