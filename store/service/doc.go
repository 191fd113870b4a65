// Package service is the store part of a node: it writes mutations to the
// cell's chain, follows the chain into the index, and answers reads (Get,
// Query, Watch) from the node's own index or from a store member's.
//
// # Writes
//
// Put and Delete build a store.Transaction, check it whole (caps, form,
// every document against its schema in the node's registry) and append its
// encoding as one chain entry. Nothing is appended for a refused write.
// Writes work offline: the chain takes them, and every store node indexes
// them once they arrive.
//
// # Roles
//
// A node whose own roster entry has cell.RoleStore (and that has a
// directory for it, Config.Dir) keeps an index of its cell's chain,
// Dir/<cell id>/: a SQLite database (package store/index). The index is
// opened when there is something to index or to read, not when the node
// starts, so that a node with an empty store starts fast and small. A node
// without the role sends its reads to a store member of its cell.
package service
