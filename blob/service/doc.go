// Package service is the node's part "blobs": blobs (package blob) kept,
// fetched and served by a node, and the cell's files over them.
//
// # Blobs
//
// AddBlob and AddPath import a blob (package blob: sealed segments, a
// UnixFS DAG of raw leaves) through the exchange's PutOwn (stored without
// hashing again, announced), each block held (pin.Pins.Hold) until the
// root is pinned, so that a collection meanwhile keeps them and a failed
// import leaves only garbage. In a cell, keys are derived from the cell's
// blob secret and the content (the same file added on two devices is one
// blob); outside one they are random. Open reads a blob through one
// bitswap session, fetching the leaves under each read on demand: those
// blocks are stored unpinned, kept until the next collection. Fetch brings
// a whole DAG in (blob.Walk over one session), reporting bytes and blocks,
// per peer, and the totals once the DAG's structure is known; the root is
// pinned "fetch" while it runs, so an interrupted fetch keeps what it has
// and resumes (at the next start, too) without fetching it again.
//
// # Files
//
// A file of the cell is an entity with an exo.file trait (store.FileSchema:
// name, size, media, cap, by, added), written after its blob is imported
// and pinned: a failed import lists nothing. Names are base names;
// several files may share one, and File(name) is then ErrAmbiguous, naming
// each by its entity ID (which File takes too, as it takes a capability).
//
// # Folders
//
// An encrypted folder's listing names its entries only inside its
// ciphertext, so its DAG does not link them: the service pins each entry
// "dir:<folder root>" (down through subfolders) when it imports or
// fetches a folder, and takes those pins back once the folder's root is
// pinned no more (see dirs.go).
//
// # Pins and the policy
//
// Each device keeps the cell's files by its policy (Config.Policy): all,
// none (fetched when opened), or a budget (Choose: newest first while they
// fit; a file's size is its entity's until its root is held, then the
// root's: sizes.go). A device's own PinFile and UnpinFile override the policy; they are
// kept in its datastore, not in the store. The follower watches the
// store's exo.file entities (and looks again every Config.Check) and makes
// the pins "file:<entity id>" match Choose's answer, fetching kept files
// in the background (Config.Fetchers at once, a failed fetch tried again
// after a doubling backoff). A removed file loses its pins on every device
// and its blocks go at the next collection: by hand (GC), or by itself when
// the blob blocks pass Config.DiskBudget (checked after imports and
// fetches, and every Config.Check).
//
// # Serving
//
// The service is a blocks.Owner on the exchange's gate: a blob block (raw
// or dag-pb CID) is served to the current members of the node's cell, the
// blocks of public blobs to anyone (the CIDs of those the node holds, in
// memory, loaded at start), the blocks of a blob shared with given
// peers (Share, kept in the datastore) to those peers, and the blocks of a
// blob the cell shares with a contact (ShareWith) to the devices on that
// contact's current device list. Nothing else.
//
// # Shared with contacts
//
// ShareWith writes an exo.share entity (store.ShareSchema, one per
// contact and blob: ShareEntity), so every device of the cell serves the
// blob, after restarts too. Who may read what is precomputed, not looked
// up per request: at each change of the shares or of the contacts (the
// store's watches, and every Config.Check) the service reads the shares
// (at most MaxShares, the newest) and the contacts' current device
// lists (Options.Contacts) and, if they changed, rebuilds the block sets
// (loadAccess: for each shared root, the blocks of its DAG the node
// holds, found by reading its held dag-pb nodes, never the network). A
// request then costs one map lookup under a read lock; a rebuild costs a
// walk of the held internal nodes of every shared and public DAG and,
// when any blob is shared or public, of every pinned DAG.
//
// A shared or public DAG is whatever its maker linked (a contact's file
// shared on may link to the cell's private blocks, whose CIDs a removed
// member or a contact knows), so neither set holds a block of a pinned
// DAG that is not itself public (the public set), or not itself shared
// with the peer (the shared set: a shared folder's entries, pinned as
// its own, count as shared with it). The pinned DAGs are walked once per
// rebuild into a map of block to its pinned roots (memory: one entry per
// held block of the pinned private blobs), and the peers grouped by the
// roots shared with them, each group's trees walked once. A failed read
// of the contact shares fails closed: none is served until a read
// succeeds, so that a share revoked or a device removed keeps no access.
// A device the contact removes gets nothing more once the newer list is
// in the cell's store (it comes with the contact's next message).
//
// Received records a file a contact shared with the cell (message/service
// calls it when a message brings one) as an exo.file with From, the
// contact's cell key: SharedEntity, one per contact and blob, its name
// made unique among the cell's files. Fetch asks the devices of the
// contacts a root's files came from too (blocks.SessionOptions.Peers,
// connected first through the peerstore or Options.Finder): no other peer
// outside the cell is asked. Past Config.ShareBudget of one contact's
// files (4 GiB, counted in the blobs' true sizes where their roots are
// held, else in the sizes announced) a new one is recorded Offered:
// Choose keeps it only when pinned by hand. The size a contact announces
// may lie: the follower's fetch of a contact's file reads its true size
// from its root before it fetches any block under it, and a file larger
// or smaller than announced, or past the budget, is recorded Offered with
// its true size, and its fetch stops (offer.go). A name the cell has
// already is made unique ("a (2).txt", ..., then a tag of the file's
// entity ID), never refused, so that a message is always acknowledged.
// Past Config.MaxSharedFiles (1,000) of one contact's files, none more is
// recorded (ErrTooManyFiles), so that a contact cannot fill the cell's
// list (MaxFiles).
package service
