// Package datadir is a node's data dir on disk: the node key (node.key,
// PKCS#8 PEM, 0600), the commented config file (config.toml), the control
// API's token and address files, the lock a running node holds, and the
// node's leveldb datastore.
//
// OpenDir creates what is missing (never overwriting a file), makes the dir
// private to its owner, takes the lock and opens everything; Close releases
// it. Files are written atomically (a temporary file, then a link or
// rename), so a crash leaves either the old file or the new one. Nothing
// here imports libp2p. The lock itself is internal/dirlock, which the
// control API's client shares to find a running node without importing
// this package (it imports go-multiaddr to check the config).
//
// Resolve lays the configuration's layers over each other in one place:
// the defaults, then config.toml, then EXOPEER_* environment variables,
// then command-line flags; it says which layer each setting came from.
package datadir
