// Package pin decides which blob blocks a node keeps: pins, holds, and the
// collection of everything else.
//
// A pin is a record in the node's datastore, under /blobpins/<root CID>,
// that keeps a blob's whole DAG (what of it is held locally) for as long
// as at least one of its reasons holds: "file:<entity>" for a file of the
// cell the pin policy keeps, "manual" for a blob the user added or pinned,
// "fetch" for a fetch under way, and so on. Pin adds a reason, Unpin
// removes one; the record goes with its last reason.
//
// A hold keeps blocks for the time of an import or a fetch, before their
// root is known or pinned ([Pins.Hold], [Pins.Holding]: an import writes
// through a Holding, a fetch gets through its Getter). A block must be
// held before it is written: a block written unheld while a collection
// runs, and not yet reachable from a pinned root when the collection
// marked, may be deleted. Holds live in memory only: a node that stops
// drops them, and a later collection frees the blocks of an import that
// never finished.
//
// [Pins.GC] collects in two phases. Mark: from every pinned root it walks
// the DAG through the blocks held locally (a block not stored is not
// fetched; below it nothing is known, so a partial DAG keeps what it has),
// decoding dag-pb nodes with boxo's merkledag to find their links; raw
// leaves are marked without being read. A stored node that is corrupt or
// does not decode is not followed: the sweep deletes it and what it alone
// linked, and the collection names its pinned root (GCStats.Damaged), no
// longer held whole. Sweep: it lists every blob block
// of the store and deletes, in batches, those neither marked nor held.
// Before each batch it marks from the roots pinned since the mark began,
// under the lock that Pin and Hold take, so that a block pinned or held
// while the collection runs is never deleted. The mark deletes nothing, so
// a collection that fails or is cancelled during it deletes nothing; one
// cancelled during the sweep has deleted only unreachable blocks. One
// collection runs at a time; another waits for it.
package pin
