// Package peer is the exopeer node: it builds every part on one libp2p host
// (the block store and bitswap exchange, the private DHT, peer discovery),
// owns their lifecycle, and serves the local control API that the CLI talks
// to.
//
// The network is injected: New takes a Network whose NewHost builds the
// libp2p host and whose NewLAN builds LAN discovery. `exopeer run` passes
// RealNetwork (real sockets, real mDNS); the simulator passes a simulated
// network and runs the very same Node. The node reads no global state and
// starts no goroutine before Start.
//
// What a node keeps between runs is its data dir (package datadir);
// NodeOptions turns an open data dir into a node's Options.
package peer
