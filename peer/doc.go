// Package peer is the exopeer node: it builds every part on one libp2p host
// (the block store and bitswap exchange, the private DHT, peer discovery,
// the cell and its chain, the store, the blobs and files) and owns their
// lifecycle: parts.go is the registry that starts them in order and stops
// them in reverse. The control API that
// the CLI talks to is package api/server, on top of a Node; the data dir is
// package datadir.
//
// The part "reach" (reachwatch.go) follows AutoNAT v2's verdicts on the
// host's addresses (event.EvtHostReachableAddrsChanged); a pure rule
// (reach.go) tells each address's state and the node's reachability
// (public once some address is confirmed reachable), which Node.Reach and
// Status report and which sets the DHT's mode in dht.ModeAuto
// (dht.DHT.SetReachability). Its listeners, told after the DHT, are the
// relay parts.
//
// Relays from the cell (when Network.Relays is set: the real network, not
// simnet's): part "relay" (relay.go) runs circuit relay v2 for the cell's
// members and its contacts' devices only (relayACL, relayacl.go: a
// contact's device may reserve, at most maxRelayGuests of them and
// maxContactGuests of one contact's, a slot
// taken only once the relay grants it, and be reached from members only;
// a source other than a member holds at most maxGuestCircuits circuits
// at once, the devices of one contact at most maxContactCircuits to one
// member and all contacts' devices at most maxContactsCircuits to one
// member, relaycontacts.go), with no limit on a circuit, while
// the node is public (config relay_service "auto"), always ("on") or
// never ("off"), and counts what it does (Node.RelayStats). Its sweep
// (every relaySweep) judges each open circuit by its (source,
// destination) pair, read off the relay's stop stream (relaycircuits.go:
// relayHost, circuitBook), ends those no longer admitted and keeps them
// when a read fails; stopping the service waits for it with the service's
// lock released. Part "autorelay" (autorelay.go) holds slots on the
// cell's relays, found in the roster, then on the static relays, while the
// node is private or unknown, and the host advertises the relayed
// addresses. exopeer's protocols open streams over Limited connections
// (a third party's relay with limits). Part "meet" (meet.go) dials a
// member that gossip says is alive (or suspect) but that the host holds
// no connection to, and held none to since the node started, through the
// cell's relays (members it speaks the hop protocol with
// over a direct connection), at <relay>/p2p/<relay>/p2p-circuit: two
// members behind NAT that joined through a third know each other from
// gossip only, with no address, until discovery's next rendezvous round.
// The lower peer ID of a pair dials at once, the other meetYield (5 s)
// later; then after 1, 2, 4, 8, 16 s and 30 s four times (meetBackoff, on
// the node's clock: the member may not hold its relay slot yet), then no
// more until the member is reached or leaves the alive members; its
// state holds roster members only. A member once connected is left to
// discovery's known table and gossip's redial: a dial of part "meet"
// would race theirs and the peer's (a relayed connection each way, which
// punchretry retries from the lower peer ID only).
//
// Invite windows (invwindow.go, invwindowpart.go): part "windows" stands
// between the cell and contacts and discovery's rendezvous; while the node
// advertises an invite's nameplate (cell or contact invite) it announces
// on the cell's gossip (topic "relay/window") a window {member, issued,
// until} signed by its own key, renewed every 10 minutes (windowLease 30
// minutes), closed when the last nameplate is withdrawn; its issued grows
// across restarts (the last is stored), whatever the clock does. A relay
// keeps the members' windows (one each, at most 1024, a member's never
// dropped for room), orders a member's by issued alone and holds one
// open for until-issued from its own receipt (at most the lease; at most
// windowFirst for a member it held nothing of, as a replay would be), and
// admits circuits from anyone to that member while its window is open,
// from at most 8 peers outside the cell at once (windowStrangers), each
// slot held while its stranger has a circuit to that member (freed by the
// sweep after slotGrace) and none kept into a reopened window: a joiner or
// a new contact meets a member behind NAT through the cell's relay.
// Reservations stay for members.
//
// Hole punching (punch.go, unrelay.go, punchretry.go): the host runs go-libp2p's DCUtR
// (QUIC only in practice: our TCP dials leave from ephemeral ports), and
// its tracer (punchTracer) keeps the last result per peer, at most
// maxPunches peers, the oldest forgotten first. Node.Path says how a peer
// is reached now, direct or relayed and through which relay, from the
// host's connections at the call, with that result; the API's peers and
// the doctor's per-peer findings show it. Part "unrelay" closes a peer's
// relayed connections once a direct one has been open for 30 s
// (unrelayGrace), so that streams left on the relay move to the direct
// path; the peer stays Connected throughout. go-libp2p punches only when
// a relayed connection arrives, on the side that receives it, once: part
// "punchretry" retries for a member or a contact's device reached only
// through a relayed connection this node dialled, by closing it and
// dialling again through the relay (the peer punches on the new one),
// after 10 s, 1 min, 5 min and 30 min, then no more (punchBackoff, on the
// node's clock; a direct connection, or none, starts it over, except that
// a peer retried once, whose redial failed or whose connection then ended
// by itself or was replaced by one the peer dialled, is kept for punchKeepFailed, at most maxPunchFailed, so that
// its back-off goes on when it is reached through the relay again), only while the node's own DCUtR handler is
// registered, for a pair in which each side dialled a relayed connection
// to the other (both known tables dial at once after a restart, before
// either DCUtR handler is registered, so neither arrival is punched)
// only on the lower peer ID, which closes both and redials so that the
// peer receives one new connection and punches on it (mutualRetry), and
// never while a punch with the peer may be under way (punchUnderWay: a
// punch stream open, a round started and not ended, a failed round with
// rounds left within a dial and roundGap, or a connection younger than a dial and a
// gap with no event yet, judged on go-libp2p's clock, which stamps the
// tracer's events): the retry waits until it ended; its state holds the
// peers with such a connection now and those kept retried ones.
//
// The part "doctor" (doctorpart.go) serves the time protocol
// (ProtocolTime, doctortime.go) to the cell's members and contacts'
// devices, within a token bucket, and keeps the addresses those same peers
// observed this node at (identify; doctorobs.go: one per observer peer
// and local address; at most MaxContactObservers observers per set of
// contacts naming the device, a contact's device's never kept in place of
// a member's; a stranger's observation is not kept, the contact check
// runs off identify's event loop). Peers off the roster pass one gate for
// both (doctorgate.go): at most LookupRate contact look-ups a second,
// each verdict remembered (a stranger 10 min), bounded; a look-up that
// failed is not remembered, but spent its token. At each doctor the
// observations of peers no longer members or contacts' devices are
// dropped. Node.Doctor (doctor.go) gathers those with the listen
// addresses, reachability, connections, members' clocks and the data
// dir's disk and modes, and package doctor judges them.
//
// The node keeps the last known addresses of its cell's members and its
// contacts' devices across restarts (known.go): discovery's known table,
// in the node's datastore, for the peers Node.interesting accepts (read
// from the roster and the contacts when asked: yes, no, or unknown while
// the roster is not there or the contacts cannot be read; entries it says
// no to are deleted, entries of non-members evicted first by
// Node.member, at most 16 of one contact's devices by Node.owner),
// dialled when the node starts, redialled when lost while accepted
// (unknown: if seen within 7 days); the public ones accepted (once
// unknown, the members) are also the DHT's bootstrap peers beside the
// configured list, so a node that met its cell once finds it again from
// any network with no bootstrap list.
//
// The network is injected: New takes a Network whose NewHost builds the
// libp2p host and whose NewLAN builds LAN discovery. `exopeer run` passes
// RealNetwork (real sockets, real mDNS); the simulator passes a simulated
// network and runs the very same Node. The node reads no global state and
// starts no goroutine before Start.
package peer
