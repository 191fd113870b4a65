// Package discovery finds other exopeer nodes and keeps the node connected to
// them.
//
// Peers come from four kinds of source, all behind one Service:
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
//   - addresses given by hand (`exopeer connect MULTIADDR`), and nodes that
//     connect to us (inbound).
//
// Every peer found is dialled with exponential back-off. Once connected and
// identified, a peer must speak exopeer's ping protocol; one that does not is
// disconnected and ignored for a while, so the node never spends itself on
// the public IPFS network or any other libp2p application sharing a LAN.
// A peer reached only through a relay that limits its circuits (libp2p's
// Limited connectedness) is still connected: it is pinged over that
// connection and kept.
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
