// Package chain is the pure core of a cell's chain: the replicated,
// signed, encrypted, append-only log where a person's data lives.
//
// It does no I/O, reads no clock, starts no goroutine and does not log
// (a test enforces its imports): randomness comes in as an argument, and
// the shell in package chain/replica stores entries and syncs them with the
// cell's other members.
//
// # Entries
//
// An entry is a dag-cbor map, stored as an IPLD block whose CID (v1,
// dag-cbor, sha2-256) hashes its encoding:
//
//	{
//	  "v":       1,
//	  "seq":     per-author sequence number, 1, 2, 3, ...
//	  "sig":     Ed25519 signature by the author (64 bytes)
//	  "cell":    the cell's Ed25519 public key (32 bytes)
//	  "clock":   Lamport clock: 1 + the largest clock of the parents
//	  "epoch":   the key epoch the payload is sealed in
//	  "author":  the author's peer ID (bytes)
//	  "parents": [links to the heads the author had seen, sorted, unique]
//	  "payload": 24-byte nonce || XChaCha20-Poly1305 ciphertext
//	}
//
// Only the canonical encoding (RFC 7049 key order, shortest integers) is
// accepted, so one entry has one CID. The signature covers the domain
// string "exopeer chain entry v1\x00" followed by the encoding of every
// field but "sig". The payload key is HKDF-SHA256(the epoch's cell secret,
// salt = cell key, info = "exopeer chain payload v1" || epoch as 8 bytes
// big-endian); the AEAD's additional data is the cell key, the author
// (length-prefixed), the sequence number and the epoch.
//
// An entry is accepted when it belongs to the cell, its author may write
// in its epoch (by the roster: a member, or a former member for the
// epochs before its removal), its signature holds, its payload decrypts,
// and its parents are all held with its clock one more than theirs and its
// author's previous entry among them. Entries from authors or epochs this
// node does not know yet are deferred, not stored; all other failures
// refuse the entry.
//
// # Forks
//
// Two entries of one author with one sequence number are a fork. A State
// holds at most MaxForkWidth (two) entries per author and sequence number:
// the first two it can accept stay in the chain, any further one is
// refused with ErrForked, and so are the entries waiting on it. ErrForked
// says nothing against the member that relayed the entry. A forked author
// is reported once (Ready.Forks); its evidence (State.Forks) is the two
// entries at its lowest forked sequence number, sorted by bytes, so nodes
// holding the same entries hold the same evidence. The author may go on
// on either kept branch and others may build on both, so two branches (a
// node restored from an old backup) end on every node after sync. With
// three or more, which two a node keeps depends on arrival order.
//
// # Waiting entries
//
// An entry whose parents are not all held waits for them, within Limits:
// a number of entries, and bytes overall and per author (an entry counts
// its encoding, which it holds once, plus a fixed overhead per entry and
// per parent). Past them it is dropped and counted (Ready.Dropped,
// Ready.DroppedAuthor); since a Vector names only what is held, sync
// brings it again. An entry whose parents are held joins at once.
//
// # Order
//
// Merging is the union of the DAGs. The order is by (clock, CID bytes):
// every parent's clock is below its children's, so it is a topological
// order, and it is the same on every node holding the same entries.
//
// # Sync
//
// Each node holds only entries whose parents it holds, and each author's
// entries link to the author's previous one, so a node's Vector (the
// highest sequence number held per author) names exactly what it holds.
// Nodes tell their cell their length and Vector in an Announce (gossip
// broadcast, and memberlist push/pull state):
//
//	"EXCA" | uvarint len(from) | from | uvarint length | partial (0 or 1) | vector
//	vector = uvarint n | n × (uvarint len(author) | author | uvarint seq | digest), authors sorted
//
// An author's digest (16 bytes; zero: not given) chains the author's entries
// up to seq: d(0) = 0, d(n) = SHA-256(d(n−1) || CIDs of sequence number n,
// sorted)[:16]. Equal digests mean equal sets of that author's entries;
// unequal ones at an equal seq reveal a fork that only one side knows.
//
// A node that sees a member ahead of it opens a stream and sends a Request
// with its own Vector:
//
//	"EXCQ" | uvarint length | vector
//
// The member answers, in one go, every entry the requester lacks in chain
// order (parents first), in frames, then a done frame:
//
//	frame = kind | uvarint len(body) | body
//	'E' entries: uvarint n | n × (uvarint len(block) | block)
//	'D' done:    uvarint the sender's chain length
//
// One round trip brings any number of entries. For an author whose digest
// differs from the requester's at the requester's seq, the answer holds all
// of that author's entries (the requester keeps what it lacks).
package chain
