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
// (dht.DHT.SetReachability).
//
// The node keeps the last known addresses of its cell's members and its
// contacts' devices across restarts (known.go): discovery's known table,
// in the node's datastore, for the peers Node.interesting accepts (read
// from the roster and the contacts when asked), dialled when the node
// starts; the public ones are also the DHT's bootstrap peers beside the
// configured list, so a node that met its cell once finds it again from
// any network with no bootstrap list.
//
// The network is injected: New takes a Network whose NewHost builds the
// libp2p host and whose NewLAN builds LAN discovery. `exopeer run` passes
// RealNetwork (real sockets, real mDNS); the simulator passes a simulated
// network and runs the very same Node. The node reads no global state and
// starts no goroutine before Start.
package peer
