// Package mailbox is the pure core of blind mailboxes: where a cell leaves
// encrypted envelopes for a contact cell when no device of the two is
// online at the same time, on DHT records that only the two cells can
// find, read or write. It derives the pair's secret and each slot's
// identity and keys, and seals and opens a slot's value. It has no I/O,
// clock, goroutines, logging or randomness of its own (pure_test.go
// checks): time and randomness are arguments. Writing, polling and
// emptying slots is message/service's.
//
// # Keys
//
// Each cell has an X25519 mailbox key per key epoch: the private key is
// the 32 bytes HKDF-SHA256(IKM = the epoch's cell secret, salt = the cell's
// Ed25519 key, info = "exopeer mailbox key v1") (cell/core
// Secret.MailboxKey). Every member device can compute it; a removed device
// cannot compute the next epoch's. Its public key travels to contacts in
// the cell's signed device list.
//
// The pair's secret (PairSecret), the same computed from either side:
//
//	shared = X25519(own mailbox private key, their mailbox public key)
//	         (refused if all zero: a low-order public key)
//	lo, hi = the two cells ordered by their Ed25519 keys, bytewise
//	pair   = HKDF-SHA256(IKM = shared, salt = empty,
//	                     info = "exopeer mailbox pair v1" 0x00
//	                            ‖ lo cell key (32) ‖ hi cell key (32)
//	                            ‖ lo mailbox key (32) ‖ hi mailbox key (32),
//	                     L = 32)
//
// Each slot (NewSlot) is named by its direction (from cell → to cell), its
// epoch and its index, and has two keys, each HKDF-SHA256(IKM = pair,
// salt = empty, info = label 0x00 ‖ from (32) ‖ to (32) ‖ epoch (8,
// big-endian) ‖ index (4, big-endian), L = 32):
//
//   - label "exopeer mailbox owner v1": the Ed25519 seed (RFC 8032) of the
//     slot's throwaway identity. Its libp2p peer ID owns the slot's record,
//     an ordinary exopeer DHT record (dht/doc.go) called "mailbox"
//     (RecordName): key "/exo/<slot peer ID>/mailbox", signed by the slot's
//     key (dht.SealRecord), checked by the DHT's Validator as any other.
//     Only the two cells can derive it, so only they can write the slot.
//   - label "exopeer mailbox value v1": the XChaCha20-Poly1305 key of the
//     record's value.
//
// The epoch is the Unix day (UTC): floor(Unix seconds / 86400), 0 before
// 1970 (Epoch). It is fixed, not configured: the two cells must name the
// same slots without talking. A day, not an hour: a record lives up to 7
// days (dht.MaxRecordTTL), and a reader looks at every epoch in which a
// live record may have been written, Epoch(now − 7 days) to Epoch(now), 8
// epochs (ReadEpochs); hourly epochs would make that 169. The price: a DHT
// node sees the same slot for up to a day, no longer. The index (0 to
// SlotsPerEpoch−1, 8) gives a direction more than one slot in a day: a
// writer fills index 0, then the next when one is full; a reader reads
// index 0, 1, ... and stops at the first slot not found, but in the
// oldest epoch it reads (ReadEveryIndex): there a slot written early in
// the day has expired while one written later has not, so it reads every
// index.
//
// # Value
//
// The record's value (Seal, Open) is
//
//	nonce (24, read from the rand given to Seal) ‖ XChaCha20-Poly1305 ciphertext and tag (16)
//
// of the padded entry list, under the slot's value key, with associated
// data
//
//	"exopeer mailbox ad v1" 0x00 ‖ uint16 length of the record key ‖ record key ‖ uint64 the record's sequence number
//
// (big-endian), so a value opens only in its own slot's record and at its
// own sequence number. Nonces are random, not counters: two writers (the
// sender's devices, the reader emptying the slot) may seal at the same
// sequence number. Anything that does not authenticate is ErrOpen, with
// no detail. The entry list, version 3, big-endian:
//
//	version (1) = 3
//	count (1): at most 64 (MaxEntries), 0 for a slot emptied by its reader
//	count times:
//	    kind (1): 1 a frame (KindFrame), 2 an ack (KindAck)
//	    message ID (16, message.ID): distinct within the list
//	    length (1): 1 to MaxPeerID (64), then a device's peer ID: for a
//	                frame, the device of the writing cell that sealed
//	                it; for an ack, the device of the writing cell that
//	                acknowledges
//	    for a frame:
//	        length (1): 1 to 64, then the peer ID of the device of the
//	                    reading cell the frame is for
//	        length (2): 1 to MaxFrame (16,193)
//	        frame (length): the frame (message/doc.go: an initial or session
//	                    frame) the sealing device would have delivered
//	                    directly to the target device
//	    for an ack:
//	        signature (64): Ed25519 (RFC 8032), by the acknowledging
//	                    device's libp2p key (the key its peer ID holds), of
//	                    "exopeer mailbox ack v1" 0x00 ‖ the writing
//	                    (acknowledging) cell's key (32) ‖ the reading cell's
//	                    key (32, the cell the message came from) ‖ message
//	                    ID (16): a device of the writing cell recorded the
//	                    message of that ID, which the reading cell sent (its
//	                    sender records it delivered and removes the ack)
//	zero bytes up to the padded length
//
// A frame names both devices because a frame is for one device's
// session: the reader hands it only to the target device, which checks
// that the sealing device is on the contact's device list and is the one
// whose session opens it, as for a frame on a stream from that device.
// An ack is signed because the pair's secret is not enough to vouch for
// a delivery: a device removed from either cell may still hold a mailbox
// key the pair uses (Bounds). Ack signs one, VerifyAck checks the
// signature against the peer ID's key (an Ed25519 one only); the reader
// also checks that the device is on the contact's current device list
// and that the message is one its cell sent to that contact (the shell's
// part). The decoder does not verify signatures. Version 1 (never
// released) had no kind and no devices; version 2 (never released) had
// unsigned acks of kind and ID only.
//
// The padded length is the smallest of 1, 2, 4, 8 and 16 KiB minus 40
// (nonce and tag) that holds the list (Buckets), so the value is 1, 2, 4,
// 8 or 16 KiB (16 KiB = dht.MaxValueSize, MaxValue): its length says which
// bucket, not how many entries. The decoder (DecodeEntries) refuses a
// length that is no bucket's, a larger bucket than needed, an unknown
// version, a count over 64, an unknown kind, a length of 0 or past the
// end, a peer ID that is not one (peer.IDFromBytes), an ack's signature
// cut short, a repeated ID and non-zero padding; every length is checked against what is left
// before it is read, and a value over 16 KiB is refused before anything.
//
// # Use
//
// The writer (any device of the sending cell) computes the pair's secret
// from its cell's mailbox key of the current epoch and the contact's
// latest one, the slot of (its cell → the contact, Epoch(now), index),
// reads the record (dht.OpenRecord gives value and sequence number), opens
// it (nothing found: no entries, sequence 0), appends its entries
// (Append: those not there yet, while they fit; the rest go to the next
// index), seals with sequence number + 1 and
// puts dht.SealRecord(slot.Owner(), RecordName, value, seq+1, now + 7
// days). A reader (any device of the receiving cell) does the same for
// (the contact → its cell) over ReadEpochs, records the entries it did not
// have (by message ID: a message recorded twice is recorded once), and
// writes the slot back at the next sequence number without the entries it
// recorded (Without). How often is the shell's (message/service doc.go,
// "Blind mailboxes", Reading): the whole of ReadEpochs hourly; in
// between, the current epoch (a writer writes no other; the one before
// too near its start, for a write after the last poll of it), of each
// contact at an interval that grows while its polls find nothing.
//
// A new key epoch of either cell changes the pair's secret, and two cells
// that never meet learn each other's new public key only through a slot.
// So a writer uses the contact's latest public key and, of its own cell's
// keys, the one of the newest device list the contact acknowledged (the
// cell keeps every epoch's secret; how it knows is the shell's:
// message/service doc.go, Keys), whose envelopes carry the newer list;
// and a reader computes the pair's secrets of each of its cell's keys
// that a writer may still use, with the contact's latest public key, and
// reads the slots of each: every key from that of the newest device list
// the contact acknowledged on, and every key in force at some time within
// the last 7 days (the key current 7 days ago, though its epoch began
// earlier, and those of the epochs begun since). Polling only the keys of
// epochs begun within the last 7 days would skip the key current until
// yesterday if its epoch began earlier, and with it what the contact
// wrote, rightly, before it learned the new key. Content stays the ratchet's to
// protect: a device removed from a cell that still derives an old slot
// reads only frames of sessions it is no part of. The DHT keeps the highest sequence number, so two writers at
// the same one lose one write: a writer reads the slot back after writing
// and appends again what is missing and not known delivered; a reader
// deduplicates by ID, so that costs a repeat, never a duplicate.
// kad-dht servers drop a value 48 h after they received it
// (MaxRecordAge), so the writing cell puts a slot again within that while
// it is not empty (the signed record as it is: no key is needed for that).
// The shell's DHT calls are dht.DHT.PutSigned and GetSigned.
//
// # Bounds
//
// A slot holds at most 64 entries and 16 KiB. The largest ack (MaxAck,
// a peer ID of 64 bytes) is 146 bytes, so 64 always fit; with an Ed25519
// device's peer ID (38 bytes) an ack is 120 bytes and 64 fit an 8 KiB
// value. The largest frame entry holds MaxFrame bytes of frame; a direction has at most 8
// slots a day, and a reader looks at 8 days: at most 64 records, 1 MiB,
// per contact and pair secret it polls (one, and one more for each other
// key of its cell the contact may still write with: Use), however much
// the contact writes. Only the pair can write a
// slot, but either cell can, and so can a device removed from either cell
// with a mailbox key it held (for the slots of the pair secrets made with
// it): such a writer can empty a slot, or sign it at sequence number
// 2^64−1 so that nobody can write it again; the sender then uses the next
// index, and what was lost is sent again (a message stays pending until it
// is acknowledged). It can read the message IDs of entries and copy an
// ack it saw, but an ack names its message and both cells under the
// acknowledging device's signature, so a copy acknowledges nothing else,
// and it cannot make an ack of a message the receiving cell never
// recorded without a current device's key. A device removed from the
// receiving cell still signs with its own key: its acks are refused once
// the sender holds the list without it, and accepted until then, the
// same window as for its other powers (below). It cannot read or forge
// what a later epoch's key protects.
//
// # What a DHT node learns
//
// A node storing or looking up a slot sees a record key naming a random
// peer ID that no other slot shares (another pair, direction, epoch or
// index gives an unrelated one), the name "mailbox" (so: an exopeer blind
// mailbox), a sequence number that grows with each write, an expiry, a
// value of 1 to 16 KiB and the peer IDs and addresses of the nodes that put
// or get it (kad-dht serves over connections authenticated as the
// sender's peer ID). It does not learn the cells, the devices' cells, the
// number of entries (within a bucket), their content, their message IDs
// or the devices that sealed, acknowledge or are the target of them
// (all inside the value);
// without one of the two cells' mailbox private keys it cannot derive a
// slot, link two slots, open a value or write one that the Validator
// accepts. What the peer IDs of writers and readers give away is what
// they give for rendezvous keys: the devices that talk to the slot's key.
// A device removed from a cell keeps the mailbox keys of the epochs it
// held, so it can read and write the slots of those epochs' pair secrets
// until the cell's next epoch changes the key and the contact has the new
// public key: it learns the message IDs, the peer IDs of the devices
// named, acks' signatures and the frames' sizes (not their content: the
// ratchet's), and can remove, replay or leave garbage entries. It cannot
// forge an ack: acks are signed by a device of the acknowledging cell
// (Value). A device removed from the acknowledging cell can sign acks
// with its own key, which the sender accepts only while the newest
// device list it holds of that cell still lists the device.
package mailbox
