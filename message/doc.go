// Package message is the pure core of conversations between cells: the
// envelope a message carries inside a Double Ratchet session (package
// ratchet), the frames of the delivery protocol, the order of a
// conversation and the store entity a message is recorded as. It has no
// I/O, clock, goroutines, logging or randomness of its own (pure_test.go
// checks); the node's part "messages", which keeps the sessions and
// delivers, is message/service.
//
// # Envelope
//
// What the ratchet seals, version 2 (EnvelopeVersion) or 3
// (EnvelopeVersionCourier; 5 and 6 add a shared file, see # Shared
// files), big-endian, in this order:
//
//	version (1) = 2 or 3
//	message ID (16, random, drawn by the device that wrote it)
//	sender cell key (32, Ed25519)
//	recipient cell key (32, Ed25519): the cell the message is for
//	sender device: length (1, 1..64), peer ID bytes: the courier, the
//	  device that delivers it (the stream's)
//	version 3 only: author device: length (1, 1..64), peer ID bytes,
//	  not the sender device
//	sent (8): Unix milliseconds of the author device, >= 0
//	seq (8): the author device's counter of the messages it wrote
//	text: length (2, 1..MaxText = 4096), UTF-8
//	device list flag (1): 0, or 1 followed by length (2) and the sender
//	  cell's signed device list (package contact's wire form, at most
//	  contact.MaxDeviceListLen)
//
// and nothing after: at most MaxEnvelope bytes. DecodeEnvelope refuses a
// size over MaxEnvelope before reading, another version, a short or long
// encoding, a text that is empty, over the cap or not UTF-8, a device
// that is not a peer ID, a device list that does not verify, is another
// cell's, or does not name the sending device. The list travels when it
// changed since the sending device's last message to the receiving
// device; the receiver replaces the one it holds with it when it is newer
// (contact.Newer), and ignores it when it is older (the sending device
// is on the list it holds, or the stream was refused before it was read). The
// receiver refuses an envelope whose recipient cell is not its own: any
// cell can sign a list naming any peer ID, so a device may be on the
// lists of two cells, and a message sent to one must not be taken by
// the other as sent to it. (Version 1 had no recipient cell.)
//
// Version 2 is a message delivered by the device that wrote it (its
// author is the sender device); version 3 one delivered by another
// device of the same cell, a courier, for a device that wrote it and may
// be offline, or have left the cell since (its messages stay in the
// chain). An envelope has one encoding: a version 3 naming its sender
// device as author is refused. The author, sent time and seq are the
// message's place in the conversation (the order key), the same in
// both cells whichever device delivers it. The receiver checks the
// courier as it checks any sender device (on the current device list of
// the contact whose cell the envelope names, and the stream's device);
// the author it cannot check and does not need to: a courier speaks for
// its cell, which can write any message under any of its device IDs
// anyway, so a courier can lie about the author and sent time of a
// message of its own cell only, which is its cell's to say. A device
// removed from the cell cannot be a courier (it is not on the current
// list); a message it wrote before its removal is delivered by a device
// that is. Delivering a message again under another courier makes no
// second message: its entity is the cell's and the message ID's (see
// Exactly once).
//
// # Receipts
//
// A read receipt tells a cell that the conversation with it was read up
// to a place in its order. It is not a message: the ratchet seals it in
// place of an envelope, on the same sessions and frames (kind 1 or 2),
// and the receiver tells the two apart by the first byte. Version 4
// (ReceiptVersion), big-endian, in this order:
//
//	version (1) = 4
//	receipt ID (16, random, drawn by the sending device: the
//	  acknowledgement names it; it names no message)
//	sender cell key (32, Ed25519): the cell that read
//	recipient cell key (32, Ed25519): the cell whose messages were read
//	sender device: length (1, 1..64), peer ID bytes (the stream's)
//	read up to, the order key of the last message read:
//	  sent (8, Unix ms, >= 0), author device: length (1, 1..64), peer
//	  ID bytes, seq (8)
//
// and nothing after: at most MaxReceipt bytes (testdata/receipt.hex is
// a known answer). DecodeReceipt refuses a size over MaxReceipt, another
// version, a short or long encoding, a device or author that is not a
// peer ID, a negative time. An envelope decoder (DecodeEnvelope, and
// those of earlier versions) refuses a receipt as an unknown version, so
// an older receiver answers it with a refusal and records nothing.
//
// One receipt covers everything read up to its key, so a cell sends one
// per conversation however many messages were read, and a later one
// supersedes an earlier: the receiver marks "read" its own messages to
// the sending cell whose order key is at or before it (message/service,
// # Receipts). A receipt for messages already read, or up to a key that
// names no message, marks nothing new. The receiver checks the sender
// cell and device as for an envelope (the stream's device, on the
// current list of the contact the cell key names, the recipient its own
// cell), so only the conversation's contact can mark its messages read.
//
// # Shared files
//
// An envelope that shares a file (package blob's capability of it) is
// version 5 (EnvelopeVersionFile: version 2's fields) or 6
// (EnvelopeVersionFileCourier: version 3's fields), followed by the
// attachment (Attachment), big-endian:
//
//	capability: length (1, 1..MaxCapability = 256), the blob's
//	  capability in its text form, "exo://blob/..." (printable ASCII)
//	name: length (1, 1..MaxFileName = 255), UTF-8, a base name: no "/",
//	  "\", control character, not "." or ".."
//	size (8): the file's bytes, 0..MaxFileSize (2^50)
//	media type: length (1, 0..MaxMediaType = 127), printable ASCII
//	  and spaces
//
// and nothing after (testdata/attachment.hex is a known answer). Version
// 4 is a read receipt's. DecodeEnvelope refuses an attachment that
// breaks a rule as a malformed envelope; message/service parses the
// capability whole (package blob) and refuses the envelope if it does
// not parse. An older receiver refuses versions 5 and 6 as unknown: the
// sender takes the refusal as for any message and tries again later.
// The text of such a message is required as any message's (the share
// verb puts the file's name there).
//
// # Order
//
// A conversation's messages are ordered by their order key (OrderKey):
// the sent time (16 hex digits of the milliseconds), the author device's
// peer ID, the author's counter (16 hex digits), joined by ".". A cell's
// devices send with no coordination between them (they may not reach each
// other when one sends), so a cell-wide counter cannot be kept without a
// round of agreement; the key is instead the sender's order as each of its
// devices sees it: a device never sends a time lower than its previous
// message's (it takes the larger of its clock and the last time), and
// its counter breaks ties, so one device's messages are in the order it
// sent them; two devices' messages are in the order of their clocks, the
// order a person who moved from one device to the other saw. Every device
// of both cells sorts by the same key, so both cells show one order.
//
// # Frames
//
// Protocol, /exopeer/msg/1.0.0: the sender opens a stream and writes
// message frames on it; the receiver answers each with one answer
// frame. A frame is version (1) = 1, kind (1), body length (4), the body
// (at most MaxFrameBody = 16 KiB; its length is checked before anything
// is allocated for it):
//
//	1 initial    ratchet's initial header, then the first ratchet message
//	             (ratchet.ParseInitialHeader splits them); an observer
//	             sees the initiator's Ed25519 key (its peer ID), not its
//	             identity X25519 key, which the header seals
//	2 session    a ratchet message of a session under way
//	3 ack        the message ID (16) recorded by the receiving cell
//	4 refusal    empty: refused, with no detail (not a contact, a device
//	             not on its current list, a message that does not open, a
//	             bad envelope)
//	5 busy       empty: not now; the receiver's quotas (its rate for the
//	             sender's cell, a daily budget) turned the frame away
//	             before opening it: nothing was recorded and the session
//	             is as good as before (the sender keeps it, takes the
//	             message as not delivered, and tries again later, backing
//	             off, not at once)
//
// The sender writes only kinds 1 and 2, the receiver only 3 to 5. A
// refusal tells the sender its session may be lost (it drops it and
// makes a new one from the receiver's prekeys); busy does not, so that
// a receiver's quotas cost neither side a handshake nor the receiver a
// one-time prekey.
//
// A stream carries a sequence of exchanges, pipelined: the sender may
// write up to Window = 32 frames without waiting for their answers (no
// more until an answer comes), and the receiver answers every frame, in
// the order the frames came: an answer carries no tag, the sender
// matches it to its frame by order, and an acknowledgement still names
// the message ID, which the sender checks. A stream with one frame and
// its answer, then the end, is the simplest such sequence. The receiver
// reads no more than Window frames ahead of its answers (and, across a
// peer's streams, no more than its own bound on the frames it holds:
// 128 for this implementation); the rest wait in the transport, whose
// flow control pushes back on the sender. A refusal or busy answers one frame
// only: the frames after it are read and answered as usual, the stream
// goes on. A peer that is on no contact's current device list gets one
// refusal before anything is read, then the stream's end; one taken off
// every such list while its stream is open gets a refusal for its next
// frame, then the receiver reads no more of the stream, answers the
// frames it read, and ends it (the sender takes the frames not answered
// as not delivered).
//
// A side ends a stream in order by closing its writing half: the sender
// when it has had nothing in flight for its idle time (10 s here), the
// receiver, after answering what it read, once the sender closed its
// half or, with no frame unanswered, neither a frame came nor an answer
// went for twice the sender's idle time (so the sender, which counts its
// idle time from its last answer, not the receiver, ends an idle stream,
// and no frame crosses the receiver's close). A side resets the stream
// on a frame that breaks the protocol (another version, an unknown kind
// or one the other side does not write, a length over MaxFrameBody, a
// frame cut short, an answer no frame waits for), and the receiver on a
// frame it has not answered within its timeout (20 s here), the sender
// on an acknowledgement that names another message than its frame's
// (its answers no longer match its frames) and on a frame unanswered 20
// s after it was written: the frames of a reset stream not answered yet
// are not acknowledged. The sender takes them as not delivered and may
// send the message again, sealed anew (a message recorded anyway
// appears once, see Exactly once). A sender whose delivery gave up
// before its answer came (its caller cancelled) does not reset the
// stream for it: the answer is read and dropped.
//
// # Exactly once
//
// A message is recorded in each cell as one store entity whose ID is
// EntityOf(sender cell key, message ID): every device of a cell that
// records it (the sender's devices, the recipient device and, through the
// chain, the others) writes the same entity, so it appears once however
// many times it is delivered.
package message
