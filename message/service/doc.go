// Package service is the node's part "messages" (package message is its
// pure core): conversations between this cell and its contacts, over
// Double Ratchet sessions (package ratchet) between this device and
// each device of the contact's cell, delivered directly on
// /exopeer/msg/1.0.0 and recorded in each cell's chain as exo.message
// entities (store.MessageSchema), so that every device of both cells
// has the conversation, encrypted at rest under its own cell's key.
//
// # Sending
//
// Send records the message (state "sent") in this cell's chain (the
// write overlaps the first device's session step and write; no frame
// leaves before both are on disk), then tries the contact's devices, those connected first, until one
// acknowledges; then it records the state "delivered". For each device
// it uses the newest session held with it, or makes one (one handshake
// at a time per device: messages sent at once to a device with no
// session wait for it and share that session): it connects to
// the device first if it is not connected (its peerstore addresses, else
// those the Finder finds), so that the device itself answers for its
// verified prekey bundle (prekey.Fetch asks a connected device, else
// reads its DHT record, which serves a device that is offline or one
// just started whose record is not stored yet), ratchet.Initiate (PQXDH when
// the bundle has an ML-KEM key), the initial header kept with the
// session until an answer confirms it, so that every message until then
// travels as an initial message (a device that lost the first one can
// still open the session; one that has it opens the message with it).
// The session's state after Encrypt is on disk before the frame leaves. A
// refusal drops the session used and one new handshake is tried. The
// envelope carries this cell's signed device list (contact/service's
// DeviceList) while it is news to the device: of a higher version than
// the list it acknowledged a message carrying, or of that version with
// the cell's mailbox key where the acknowledged one had none (the upgrade
// of a list an older binary signed, which contact.Newer takes; its
// version alone would never send it again). The device's record keeps
// both (Stored state); TestListUpgradeSent.
//
// Frames go out pipelined (package message, # Frames): each remote device
// has a pool of at most MaxStreamsPerDevice streams, each with at most
// message.Window frames in flight; a delivery takes one of the device's
// MaxDeliveriesPerDevice slots before its ratchet step, then the least
// loaded stream (a new one while each has 4 or more in flight and there
// are fewer than MaxStreamsPerDevice, since a stream's answers come in
// order and a slow one holds back those after it), writes its
// frame whole under the stream's lock and waits for the answer, which
// the stream's one reader goroutine hands to the deliveries in the order
// of their frames. A stream that breaks (reset, end, an answer late past
// Config.Timeout, a protocol error) fails its waiting deliveries; each
// is sealed again and tried once more. A stream with nothing in flight
// for Config.IdleTimeout is closed, as are a device's streams when its
// cache entry is evicted and all of them at Close. If no
// device acknowledges, Send returns ErrUnreachable and the message stays
// "sent": pending, the courier's to deliver.
//
// # The courier: any device of the cell delivers
//
// A pending message (an exo.message of this cell, out, in the state
// "sent") is delivered by whichever device of the cell is online, over
// that device's own sessions, to whichever device of the contact's cell
// is reachable. Start starts one goroutine, the courier (Close waits for
// it), which runs a pass at start, when a pending message is recorded
// (a store watch on the state, of the pending message written last, so
// that each new one changes the watched page: this device's or, through
// the chain, another's), when a device connects to this host (libp2p's network
// notifications) or a message comes in from a device, and when a
// contact's retry is due; at most one pass a second (CourierGap: the
// wake-ups meanwhile make one pass). A pass reads one pending message of the cell
// (a store query on the state; more if those first are being delivered
// by this device's Sends, which it leaves alone) and, if there is one, for each contact
// not in backoff at most CourierPerContact of its pending messages
// (state and conversation, in the conversation's order: one contact's
// backlog hides no other's), and tries them oldest first, stopping at
// the first that no device of the contact acknowledges. Each is sealed again from its record (ID, author device,
// sent time, seq from the order key, text): message.Envelope with the
// author apart from this device, the courier (version 3 when they
// differ), so that the receiving cell records it under its author's
// order key. The delivery path is Send's (sessions, streams, the
// session's state on disk before the frame leaves); on the
// acknowledgement the courier records "delivered" (any device may: the
// store's last write wins, and every device agrees).
//
// Backoff is per contact: Config.CourierBackoff (5 s) after a failed
// try, doubled at each failure up to Config.CourierMaxBackoff (10 min);
// the next try is brought forward to the next pass when a device of the
// contact connects to this host or sends it a message, at most once per
// PokeGap (30 s) and keeping the delay, so that a device reconnecting
// at will but never acknowledging gets few tries (the devices noted
// between two passes are at most MaxPokes; past it, since strangers can
// connect from fresh peer IDs at will, only the contacts with a device
// connected inbound are brought forward); it is reset when a Send to
// the contact is acknowledged; dropped when the contact has
// nothing pending. A failed Send starts it. The author device tries its
// own messages at once (not those a Send of its own is delivering); a
// device with the roster's mailbox role tries a message another device
// wrote Config.MailboxGrace (5 s) after its sent time, the others
// Config.CourierGrace (1 min) after it, so that normally the author
// delivers, else the mailbox device, and one device only. Two devices
// that deliver one message anyway make one record on each side (the
// entity is the message's); the receiver counts the second as a
// duplicate (Courier().Duplicates). The state each device keeps is
// bounded by the contacts with pending messages (one backoff entry
// each), MaxPokes devices, and the Sends under way.
//
// # Receiving
//
// A stream is answered with a refusal, and nothing is read or recorded,
// unless its remote peer is on the current device list of one of the
// cell's contacts. Its frames are read up to message.Window ahead of the
// answers, each handled in a goroutine of its own under Config.Timeout
// (the list checked again for each), and answered in their order (a
// refusal answers its frame only, but one for a peer no longer on any
// contact's current list ends the stream: nothing more of it is read).
// Each frame (at most message.MaxFrameBody) is opened by the sessions
// held with that device, newest first; an initial message
// no session opens is answered on the prekeys (prekey.Accept:
// ratchet.Respond under their lock, stored if it succeeds), and its
// header's Ed25519 key must be the stream's peer's. The envelope must be
// the contact's cell's and the stream's device's; a device list it
// carries replaces an older one held (contact/service.UpdateDevices),
// and is ignored when it is older (a current device whose cell's store
// lags: the device is on the list held, so its message stands). The
// message is then recorded (state "delivered", idempotent by its entity
// ID) while the session (made the newest) is written, and it is
// acknowledged only once both are on disk. Any failure is a refusal with
// no detail; one before the message opens leaves the sessions, the
// prekeys and the chain unchanged, one after spends the message's key,
// no more.
//
// # Sessions in memory, writes shared
//
// The sessions are kept in memory (two bounds on the devices not in use:
// at most MaxCachedDevices of them and MaxCachedBytes bytes of their
// records, each counted at its stored length and recounted at each step;
// while over either, the least recently used whose state is on disk is
// evicted; the datastore's records are written by the service only). A
// device's lock is held for the ratchet step only (Encrypt, or Decrypt /
// Respond), and each step takes a new version of the device's record,
// and recounts its size. The write
// follows outside the lock, one at a time per device, each writing the
// newest state held: a writer whose version is on disk already returns at
// once, so the messages stepped while one write is under way share the
// next (group commit). A frame leaves, and an acknowledgement goes, only
// once the state that produced it (or a newer one) is on disk, so a
// restart never uses again a message key that went out. After an
// acknowledgement the record is written only if it changed (a session
// confirmed, a device list acknowledged; if that write fails, the
// message is delivered all the same, and the state on disk, which sends
// the header or the list again, is safe to go on from). The sender writes a message's
// record without reading it first (its ID is fresh) and gives its trait
// Created (the time it was first recorded), so the store reads nothing
// to keep it; the receiver reads first (a message may come again).
//
// # Stored state
//
// In the node's datastore, one key per remote device,
// /messages/sessions/<peer ID>: version (1) = 2; the version of this
// cell's device list the device acknowledged (8); flags (1): bit 0 set
// when that list carried the mailbox key, the others 0; the number of
// sessions (1, at most MaxSessions = 4), newest first, each: this device's id for
// it (8, random), the length of its pending initial header (2) and the
// header, the length of the session (4) and ratchet's encoding of it. A
// record whose frame is corrupt, or a session inside that does not
// decode, is dropped with a log line: the next message makes a new
// session. A record of version 1, the layout before the flags (written
// by an older binary), reads with the flags 0, and is written again as
// version 2 (an older binary takes a version 2 record as corrupt, and
// makes new sessions). /messages/counter holds the device's counter's lease, written
// before any message uses it: the highest sent time it covers (8, Unix
// ms; the clock plus 1 s when it was taken) and the highest seq (8; 1,000
// past the last). Sent times and seqs are handed out from memory until
// either runs out. A restart resumes from both (sent times no lower, seqs
// above), so seq never repeats and sent never goes back (a record of the
// earlier layout, the last sent time and seq, reads the same way).
//
// # Shared files
//
// SendFile shares one of the cell's files (its capability, name, size
// and media type) with a contact: it records the share first
// (Files.ShareWith: an exo.share entity, so that every device of the
// cell, after restarts too, serves the blob's blocks to the devices on
// the contact's current device list and to nobody else; see
// blob/service), then sends a message as Send does, whose envelope
// carries the file (package message, # Shared files: versions 5 and 6)
// and whose record (Message.File) keeps it, so that a pending one is
// delivered by the courier with its file like any other. The text is
// the file's name unless given. A public blob needs no share.
//
// The receiving device checks the attachment as part of the envelope (a
// capability that does not parse is refused as a malformed envelope:
// nothing is recorded), records the message, then the file
// (Files.Received: an exo.file entity derived from the contact's cell key
// and the blob's root, so that a file shared twice, or recorded by two
// devices, is one; its name "name (2)" if the cell has one of that name),
// before it acknowledges: a file not recorded has the message refused and
// sent again later (the message's record is idempotent). Every device of
// the cell then sees the file in its files, and the blob service fetches
// it by its policy, from the contact's devices as well as the cell's
// (blocks.SessionOptions.Peers: only that contact's current devices are
// asked), with progress (File.Held) and resuming after a restart (the
// fetch pin); past the cell's budget for one contact's files
// (blob/service Config.ShareBudget, 4 GiB) it is only offered, fetched
// once pinned by hand; past its number of files (Config.MaxSharedFiles,
// 1,000) the message is taken and the file listed in it only. Without
// Options.Files (no files part), SendFile
// fails with ErrNoFiles and a received file is recorded in its message
// only.
//
// # Bounds
//
// A frame's length is checked before its body is allocated; a stream
// is read at most message.Window = 32 frames ahead of its answers, and a
// device's streams at most MaxFramesInPerDevice = 128 frames together
// (2 MiB of bodies; without it 16 streams × 32 would be 8 MiB), and all
// devices' at most Config.MaxFramesIn = 1,024 (16 MiB: a contact's cell
// may list 64 devices, and a node has many contacts); a frame
// is handled under Config.Timeout, past which the stream is reset; a
// stream on which no frame came and no answer went for twice
// Config.IdleTimeout, none unanswered, ends, as does one whose frame
// stopped midway that long; a peer on no contact's current
// list (a device its cell removed) is refused before anything is read,
// so it holds no stream for that time (TestUnlistedPeerHoldsNoStream);
// the resource manager bounds the inbound streams of each peer on the
// protocol, 16 at once by default (network.resources.protocol_peer_streams,
// peer/resources.go, TestResourceLimitsPerProtocol), and this device
// opens at most MaxStreamsPerDevice = 4 to one device, each with at most
// message.Window frames in flight; sessions are
// kept only with devices of contacts, at most MaxSessions each; the
// cache holds at most MaxCachedDevices devices no call is using, and at
// most MaxCachedBytes bytes of their records (each counted at its stored
// length, ratchet.Session.Size, updated at each step: a contact's device
// can fill a session with ratchet.MaxSkippedKeys skipped keys, so the
// device bound alone would allow hundreds of MB); those in use are never
// evicted: it is over its bounds by the calls and the inbound streams
// under way (a stream holds its device's entry while it is open, so that
// its frames count against MaxFramesInPerDevice), at most MaxSessions
// sessions each, then back; an evicted device's outbound streams are
// closed. Failing a device whose state is on disk, it evicts one whose
// last write failed: its memory is ahead of its disk only by steps no
// frame and no acknowledgement left from.
package service
