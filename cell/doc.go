// Package cell is a node's membership of its cell: a person's own devices,
// joined with no server.
//
// It is the shell of package cell/core, the pure core that holds the
// roster, the keys, the invite codes and the join protocol as a state
// machine: the service reads and writes the streams, stores the roster,
// the keys and the invites in the datastore, runs gossip and hands every
// frame of a join to the core's machine, with the time and randomness of
// Options.Now and Options.Rand.
//
// # Identity and roster
//
// A cell is its Ed25519 cell key, made by `exopeer cell create` and kept
// only on the admin device that made it (it never leaves it: an invite
// cannot grant the admin role). The cell key signs the roster, the list of
// members; versions only grow, and a node refuses a roster that is not
// validly signed by its cell's key or not newer than the one it holds.
//
// Each roster names a key epoch. Every key the cell uses in an epoch is
// derived (HKDF-SHA-256, salted with the cell key) from that epoch's 32-byte
// secret: memberlist's gossip key, the key of data sealed with Keys.Seal,
// the DHT rendezvous secret of members, and the cell's X25519 mailbox key
// (Secret.MailboxKey: the 32 bytes derived with info "exopeer mailbox key
// v1" are the private key), from which package message/mailbox derives the
// blind mailboxes shared with each contact. The roster carries the epoch's
// secret sealed to each member's X25519 box key with HPKE (RFC 9180:
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, info binding
// cell, epoch and member), and History: the secrets of earlier epochs,
// AES-256-GCM under a key of the current one. Removing a member starts a
// new epoch whose secret only the remaining members can open; from then on
// gossip refuses the removed node and it reads nothing sealed in the new
// epoch. The roster keeps the removed node in its Former list, with that
// new epoch as Until (at most MaxFormer entries) and its cut-off: the
// highest sequence number of its chain entries the cell keeps, and the
// CIDs of its entries with that number (Roster.Cutoff). What it wrote in
// earlier epochs up to the cut-off stays attributable to it
// (Roster.CanAuthor); nothing past the cut-off is accepted, whatever epoch
// it names. A former member invited again leaves the list.
//
// Roster wire form (integers are uvarints unless said; "bytes" is a uvarint
// length then the bytes; the signature covers everything before it, after
// the context string "exopeer roster v1\x00"):
//
//	"EXR2" | bytes cell key (32) | bytes cell name | version | epoch |
//	varint issued (Unix s) | member count |
//	  per member, sorted by peer ID: bytes peer ID | bytes name |
//	  1 byte roles | varint added (Unix s) | 32 bytes box key | bytes grant |
//	former count |
//	  per former member, sorted by peer ID: bytes peer ID | until epoch |
//	  cut-off sequence number | count of last entries (at most 8) |
//	    per last entry, sorted by bytes: bytes CID |
//	bytes history | bytes signature (64)
//
// A former member is never also a member, and its until epoch is between 1
// and the roster's epoch; a cut-off at 0 has no last entries, any other
// has at least one. ("EXR1", the form before cut-offs, is refused.)
//
// The decoder accepts only the canonical form, so equal versions are equal
// bytes.
//
// # Join: invite code and PAKE
//
// `exopeer cell invite` prints a code such as 4721-apple-orbit-tundra. The
// four digits are the nameplate: they only name a meeting place (the
// rendezvous secret "exopeer invite v1\x00" || nameplate, blinded per hour
// by package discovery before it goes to the DHT; on a LAN, mDNS finds the
// inviter anyway). The three words (33 bits) are the password of a CPace
// run (package internal/cpace, draft-irtf-cfrg-cpace, ristretto255 and
// SHA-512), whose channel identifier binds both peer IDs that libp2p
// authenticated. An eavesdropper learns nothing; a peer with a wrong code
// can test one guess per run and cannot test guesses offline. A run counts
// as a failed attempt once the admin sends its CPace message, which it does
// only for a valid and fresh Ya (a replayed one is answered "bad message"
// and costs nothing), until the joiner proves the code. One remote peer
// may fail MaxAttempts (3) times, after which it is told "exhausted"; all
// peers together MaxInviteAttempts (20) times, after which the invite
// dies, as it does after its TTL (10 min). A thousand peer identities, or
// guessing the code (each attempt 1 in 2^33), can still void an invite;
// one bystander cannot.
//
// Since nameplates are public, any peer can answer a hello: the statuses
// of a reply, and the reply's tag, are hints to the joiner, which goes on
// asking every peer that speaks the protocol (16 at once) until its
// context ends. A peer that answered as if the code were wrong is not
// asked again. Only a welcome, which comes after the admin proved the
// code, is the admin's word.
//
// Admission is idempotent. A device already on the roster with the same
// box key is sent the current roster again, and the first device that
// proves the code is bound to the invite (once the roster that names it is
// stored): only it may use the invite again until it expires, and only
// while it is a member (removed, it is refused). So a joiner whose
// welcome was lost (it was cut off, or the admin crashed, after the admin
// took the roster that names it) completes the join by trying again, with
// the same code or a fresh one. Open invites are stored (store.go) and
// served again after the admin restarts.
//
// Join protocol, /exopeer/cell/join/1.0.0, frames of uvarint length and
// bytes, joiner J and admin A:
//
//	J→A hello:   0x01 | version (1) | nameplate (2, big-endian) | sid (16) | Ya (32)
//	A→J reply:   0x02 | status [| Yb (32) | tag of A (64)]
//	J→A confirm: 0x03 | tag of J (64) | AEAD(k_request; 0x01 | box key (32) | member name)
//	A→J welcome: 0x04 | status [| AEAD(k_welcome; signed roster with J on it)]
//
// Tags are CPace's explicit key confirmation; k_request and k_welcome are
// HKDF-SHA-512 of the CPace ISK with their own labels, used with
// AES-256-GCM. J checks A's tag before it sends anything; A checks J's tag
// before it signs anything. Statuses: 0 ok, 1 no such invite, 2 expired,
// 3 exhausted, 4 wrong code, 5 refused, 6 bad message, 7 internal error.
//
// Each reader takes only the frame it expects, at most its message's
// largest size (hello 52 bytes, reply 98, confirm 190, welcome a sealed
// roster: MaxRosterLen + 30; roster push or pull MaxRosterLen + 1, answer
// MaxRosterLen + 2); a longer frame resets the stream from its length
// alone. A frame's buffer grows as its bytes arrive. Only a frame that
// does not parse is a malformed message: a stream that fails mid-frame
// fails with its own error.
//
// A join attempt lasts at most 30 s, and a roster exchange at most 30 s
// to open its stream and 30 s after (the stream's deadline); each then
// fails with the deadline's error; only the end of the
// Join (for its attempts) or of the service resets them sooner, so the two
// never race at the deadline's instant.
//
// # Roster protocol
//
// /exopeer/cell/roster/1.0.0 moves rosters: a push (0x05 | roster) offers
// a new roster, adopted if valid and newer; a pull (0x06 | cell tag (8) |
// version (8, big-endian)) asks a member for a newer one, answered only to
// members. The answer is 0x07 | status [| roster]. Members gossip their
// roster version and epoch in memberlist metadata, so a member that missed
// a push pulls the new roster from whoever announces it.
//
// # Gossip
//
// Membership runs on hashicorp/memberlist over libp2p streams (package
// gossip): only peers on the current roster are spoken to or heard, each
// node's metadata is signed by its peer key, and the gossip key is the
// current epoch's. Other parts of the node (the chain, later blobs and
// presence) ride on it as topics of gossip (Options.Topics, a
// gossip.Topics registry that outlives each gossip the cell starts) and
// send with Service.Broadcast(topic, msg): their broadcasts and push/pull
// states travel as gossip's own, under the same key.
package cell
