// Package discovery finds other exopeer nodes and keeps the node connected to
// them.
//
// Peers come from five kinds of source, all behind one Service:
//
//   - the LAN: a LAN implementation announces this node on the local
//     segment and reports the nodes it hears (MDNS does it with real
//     multicast DNS, service "_exopeer._udp"; the simulator brings its own);
//   - DHT rendezvous: a node advertises itself as a provider of a blinded,
//     time-rotating rendezvous key (RendezvousKey: an HMAC of a secret and the
//     epoch) and looks up the other providers of the same key, so that
//     nothing on the DHT names what the nodes have in common; for a closed
//     group (RendezvousMembers: a cell) only the few members ranked lowest
//     for the epoch among those connected to each other do, so that the DHT
//     does not learn the whole group;
//   - the static bootstrap list from the configuration;
//   - the known table (below): the peers the node cares about, met before,
//     at their last known addresses;
//   - addresses given by hand (`exopeer connect MULTIADDR`), and nodes that
//     connect to us (inbound).
//
// Every peer found is dialled with exponential back-off. A peer found on
// the LAN or the DHT is forgotten after Config.MaxFailures failed dials in
// a row; bootstrap and hand-added peers never are, nor known peers while
// Config.Interesting accepts them. Those, and peers heard on the LAN, are
// redialled whenever their connection is lost. Once connected and
// identified, a peer must speak exopeer's ping protocol; one that does not is
// disconnected and ignored for a while, so the node never spends itself on
// the public IPFS network or any other libp2p application sharing a LAN.
// A peer reached only through a relay that limits its circuits (libp2p's
// Limited connectedness) is still connected: it is pinged over that
// connection and kept.
//
// # Known table
//
// So that a node that has met its cell once finds it again from any
// network with no bootstrap list, discovery keeps, in the node's datastore
// (Config.Known), the last known addresses of the peers Config.Interesting
// accepts: the node gives its cell's members and its contacts' devices.
// Interesting says yes, no, or unknown (the roster or the contacts not
// read yet, or their read failed). An entry is written when such a peer
// is identified as an exopeer node, and at each ping round for such a
// peer connected (a peer identified before it became interesting, such as
// the inviter before the roster arrived, is so written too); it is not
// written again for the same set of addresses within KnownDebounce (10
// min), nor for other addresses within KnownMinWrite (1 min) of the last
// write: the change is kept in memory and written when due (the peer's
// next sighting or the next ping round), so that a peer whose addresses
// flap costs at most a write a minute. At each ping round the entries of
// the peers Interesting says no to (a device removed from the cell, a
// deleted contact's) are deleted; never on unknown. At Start every entry
// is read, checked and dialled (source "known"). The table holds at most
// MaxKnownPerContact (16) entries of one contact's devices (Config.Owner,
// booked when the peer is identified and at each ping round; members not
// counted); past it that contact's device seen longest ago is evicted. It
// holds at most MaxKnown (512) entries; past it the one seen longest ago
// that is not a cell member (Config.Member) is evicted, members only when
// every entry is one. An entry last seen more than KnownMaxAge (90 days) ago is
// dropped; one last seen after the present (a clock that was ahead) is
// taken as seen now, so it ages like the others. The entries last seen
// with a public address, not through a relay, that Interesting says yes
// to (or, once it says unknown, that Config.Member names) are the DHT's
// bootstrap peers (BootstrapPeers: up to KnownBootstrap, most recently
// seen first): an entry that cannot be judged may be a removed device's,
// and the members, judged from the roster in memory, are what the DHT
// needs. A known peer lost is redialled, at the table's addresses, while
// Interesting says yes, or says unknown and the table saw the peer within
// KnownUnknownRedial (7 days): a device removed while this node could not
// read the contacts (no store member reachable) is not redialled for the
// 90 days its entry is kept.
// A cell member that moved is found again through the cell's DHT
// rendezvous (RendezvousMembers), as before.
//
// One key per peer, KnownPrefix + "/" + <peer ID>; the value is, version
// 1, integers big-endian:
//
//	offset  size  field
//	0       1     version, 0x01
//	1       8     last seen, int64 unix nanoseconds
//	9       1     flags: bit 0 public; the other bits are zero
//	10      2     r: length of the signed peer record, at most 4096; 0: none
//	12      r     the record: a marshalled libp2p envelope of a peer record
//	12+r    1     a: number of addresses, at most 16; 0 when r > 0
//	then a times: 2-byte length (1 to 256), the multiaddr's bytes
//
// with nothing after. Identify's signed peer record is kept when the peer
// sent one (go-libp2p's identify verifies it and drops it, so the service
// holds the last one of each peer it tracks), plain listen addresses
// otherwise. Identified peers are booked, and lost known peers judged
// (redialled or forgotten), by a worker of their own, through queues of
// KnownQueue (64) peers each (past it, the next ping round books an
// identified peer, and a lost one is redialled, dial asking Interesting
// before forgetting it), so that the event loop never waits on
// Interesting. Nothing read back is trusted: an entry that does not decode
// strictly, is not keyed by a peer ID, has expired, or whose record does
// not verify (signature, a peer record, signed by and naming the peer of
// the key) is deleted with a warning; the public flag is computed again
// from the addresses, as on write.
//
// # Wire protocol
//
// /exopeer/ping/1.0.0 marks a node as an exopeer node and measures the
// round-trip time. The dialler opens a stream and writes PingSize (32) random
// bytes; the listener writes the same 32 bytes back. The dialler may repeat
// on the same stream; the listener answers each 32-byte frame until the
// stream is closed, idle for PingIdle, or MaxPingsPerStream frames were
// answered. Nothing else is ever read or written, so there is no decoder to
// trip over: a short read is simply the end of the stream.
package discovery
