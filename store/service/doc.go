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
// them once they arrive. On a store node a write returns once its entry is
// in the index, so that the node reads its own writes. Concurrent writes
// are committed in groups (commit.go): those that arrive while a commit is
// under way share the next one: one chain entry holding each write's
// transaction (a batch, store.EncodeBatch; each transaction still checked
// and skipped alone by every index), one synced write and one catch-up of
// the index for all; a lone write is committed at once, in an entry of
// its own.
// The index does not validate again the documents of the service's own
// recent entries (by CID, at most 512), which Put validated against the
// same registry; every other entry it validates (commit.go).
//
// # The follower
//
// A node whose own roster entry has cell.RoleStore (and that has a
// directory for it, Config.Dir) keeps an index of its cell's chain,
// Dir/<cell id>/: a SQLite database (package store/index). The index is
// opened when there is something to index or to read, not when the node
// starts, so that a node with an empty store starts fast and small. One
// goroutine keeps it caught up: on each of the chain's signals (and at
// start, on a kick, every Config.Poll) it checks that the chain's arrival
// Next-1 still has the CID of the index's checkpoint, and before each
// batch that the arrival before it is the one applied last (a removal's
// cut-off renumbers arrivals, even between two batches: then the index is
// emptied and the chain applied again) and applies the arrivals the index
// lacks, in batches of Config.Batch (read in chunks of ReadChunk, a batch
// ending early once its payloads reach Config.BatchBytes, so that large
// entries do not fill memory), one index transaction each. A restart
// resumes from the checkpoint on disk. When the node leaves its cell, or
// loses the role, the index is closed; in another cell, that cell's is
// opened.
//
// # Roles and the remote path
//
// A store node serves its index to its cell's members over package
// store/remote. A node without the role sends each read to a store member
// of its roster, in a deterministic order (the one that answered last,
// then connected ones, then the others, by peer ID; those that failed
// lately last), moving on when one cannot be reached, and reports
// ErrNoStoreMember when none can. Answers and errors are the same as a
// local index's (store.ErrQuery and store.ErrNotFound survive the wire;
// a member's answer too large for the protocol is an answer too). A
// watch whose member goes away is set up again on another, and its
// consumer gets the difference between the page it held and the new
// member's first page as changes; it ends when the node leaves its cell
// (a store member ends the watches of a member removed from the cell).
//
// # Types' versions
//
// TypesVersion tells a caller that keeps what it read (the contacts'
// cache) whether anything of some trait types changed: on a node whose
// reads its own index answers, that index's TypesVersion, read from
// memory; elsewhere false (a store member's index cannot be asked
// cheaply), and the caller reads again each time.
package service
