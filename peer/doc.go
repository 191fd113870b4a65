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
// A data dir (OpenDir) holds what a node keeps between runs: node.key (the
// Ed25519 identity, PKCS#8 PEM, mode 0600), config.toml (commented; unknown
// keys are errors), api.token (mode 0600), the leveldb datastore, the lock
// file that keeps a second node off the same dir, and, while the node runs,
// the api file with the control API's loopback address.
package peer
