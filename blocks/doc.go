// Package blocks is the node's content-addressed block storage and block
// exchange.
//
// # Storage
//
// A [Store] keeps blocks in go-datastores, one record per block, keyed by
// the block's multihash (boxo's blockstore layout: the key is the base32
// of the multihash, so CIDs with the same hash share one record). Blob
// blocks (CIDs of codec raw or dag-pb: file leaves and UnixFS nodes) go
// to a datastore of their own ([NewStoreWith]; in a data dir a flatfs
// directory, one file per block, as Kubo keeps them: see README.md for the
// measurement behind that choice; written without an fsync per block and
// synced in the background by package blocks/blobdisk, whose scrub after
// an unclean stop [Store.Scrub] reports and whose request to check the
// DAGs again, kept until then, [Store.AckRecheck] acknowledges), at its root; every other block (the
// chain's dag-cbor entries) to the node's leveldb under the namespace
// /blocks. With a single datastore ([NewStore]) blob blocks are kept in it
// under /blobs, still apart, so that a collection of blob blocks never
// touches the chain. The store keeps a count of the blob blocks and their
// bytes ([Store.Usage]), made by one scan and then kept up to date by
// every write and delete.
//
// Every read is verified: the stored bytes are hashed again with the hash
// function named by the requested CID and compared with the CID's digest.
// A record that does not match gives an error wrapping [ErrCorrupt] that
// names the CID, never the wrong bytes; a fetch through a running
// [Exchange] ([Session.GetBlocks], [Exchange.Get]) instead deletes such a
// record and fetches the block again like a missing one, logged once with
// its CID. One read is not: what bitswap's
// server reads to send to a peer, which that peer hashes on receipt (a
// corrupt record arrives there as a block nobody wanted, dropped). Writes are verified the same way,
// so a block whose data does not match its CID is refused
// ([ErrInvalidBlock]), except through [Store.PutOwn], for blocks whose CID
// the caller has just computed from their data (an import hashes each
// block once). New content uses CIDv1, raw codec, sha2-256 ([NewBlock]);
// any CID with a hash function go-multihash knows is accepted.
//
// # Exchange and wire protocol
//
// An [Exchange] fetches missing blocks from connected peers with bitswap
// (boxo's implementation, protocol version 1.2.0) under a private protocol
// prefix:
//
//	/exopeer/ipfs/bitswap/1.2.0
//
// so it never speaks to the public IPFS network, and peers that do not run
// exopeer do not understand it. Only this protocol ID is registered; the
// legacy bitswap 1.0.0 and 1.1.0 IDs are not. On it, as in standard
// bitswap, each side sends varint-length-prefixed protobuf messages on
// streams it opens: a requester sends its wantlist updates (want-have,
// want-block and cancel entries for CIDs) on one long-lived stream per
// peer; a provider answers with HAVE / DONT_HAVE presences and block
// payloads (CID prefix plus data), each response message on a new stream
// and holding up to about 256 KiB of blocks. A received block is accepted
// only when its data hashes to a wanted CID (bitswap's message decoder
// computes each block's CID from its bytes: the one hash of a fetched
// block), and it is stored without hashing it again ([Store.PutOwn]). Bitswap learns its peers from libp2p connection events,
// so an exchange should be started before the host connects to peers
// (see [Exchange.Start]).
//
// Blocks are found among connected peers only, unless [Config]
// ProviderFinder supplies a content-routing system to ask for providers.
// The node plugs in [Providers], which asks the DHT only for the blocks of
// public blobs being fetched (tracked by the blob service with
// [Providers.Track]), and then for the providers of the blob's root (what
// holders of a public blob announce); for any other block it asks nobody,
// so no DHT query tells what private blob a node is fetching.
//
// # Sessions
//
// A [Session] fetches the blocks of one DAG: its [Session.GetBlocks]
// reads stored blocks locally and wants the missing ones a few at a time,
// each few in a bitswap session of its own, at most 16 blocks wanted at
// once (16 a session and 64 at once when the Gate lets it ask only one
// connected peer: nothing to spread then); each few goes to the peer that answers first, which spreads them
// over the peers that have them by how loaded their links are (one
// bitswap session for a whole DAG sent every want to the first peer that
// answered: exopeer-sim blob 1.0x from 3 seeders, against 2.8-2.9x and
// 92-96% of the links this way; see session.go). Boxo's session cannot be
// tuned into spreading: once it knows a peer it sends want-haves only to
// the peers it knows, and each want-block to one of them drawn in
// proportion to the blocks each delivered first (peerResponseTracker), so
// the first seeder keeps winning; its live-want limit (64) is a constant,
// and WithPeerBlockRequestFilter filters whom a server serves, not whom a
// client asks. Fetched blocks are stored as they arrive, so
// an interrupted fetch keeps them and a later one asks only for the rest.
// Bitswap's tracer sees every received message before bitswap's client
// does: from it the exchange learns which peer delivered each wanted
// block ([Session.Stats], SessionOptions.OnBlock), and counts, per peer,
// the blocks that no fetch wanted (or wanted a moment ago). A peer past
// [Config] JunkLimit such blocks within CutOff of the first (bitswap
// hashes each before it finds it unwanted) is cut off: its connections are closed and its messages are
// dropped before bitswap sees them until [Config] CutOff has passed. The
// maps of junk counts and cut-off peers are bounded (1024 peers each).
//
// # Who is served
//
// The exchange answers a peer's want only if the [Gate] lets that peer
// read the block ([Exchange.Gate]; owners register on it, and a block no
// owner vouches for is served to nobody). A refused want gets no answer
// at all: no block, no HAVE and no DONT_HAVE, even when the requester
// asked for DONT_HAVEs, so the silence is the same as for a block the
// node does not hold. The gate is asked when the want arrives and again
// for every block and block presence about to be sent, so a peer that
// loses its right gets nothing more, even for wants accepted earlier.
//
// # Who is asked
//
// The exchange's own wants (want-have broadcasts and want-blocks, sent on
// bitswap's long-lived stream per peer) go only to the peers the Gate's
// askers let it ask for each block ([Asker], [Gate.RegisterAsker]): the
// chain replica asks the cell's members for entries, the blob service the
// members for blob blocks and anyone for a public blob's, a session of a
// public blob ([SessionOptions] Public) anyone for the blocks it wants
// while it wants them, a session naming peers ([SessionOptions] Peers:
// the devices of a contact that shared a blob) those peers for the
// blocks it wants while it wants them, and [Providers] anyone for what it
// tracks. Every
// other want is dropped from the message before it leaves, and so is a
// cancel for a want that was not sent; a message left empty is not sent.
// A peer not asked does not answer: a want-have without answer keeps it
// out of the bitswap session, so fetches from the peers asked go as fast.
// With no asker registered, the exchange asks nobody.
package blocks
