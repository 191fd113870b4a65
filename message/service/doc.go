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
// it uses the newest session held with it that this run of the service
// made (# Restored datastores), or makes one (one handshake
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
// A pending message (an exo.message of this cell, out, in a state
// Pending reports: "sent" or "stored") is delivered by whichever device of the cell is online, over
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
// A pending record that makes no valid envelope (a text over MaxText, a
// negative sent time: written by another device or an older version)
// can never be delivered: the courier records it "undeliverable" (no
// longer pending; Courier().Undeliverable counts them), so that no
// number of them at the head of a conversation hides the later
// messages.
//
// # Receipts
//
// States are in states.go: a message out moves sent → stored →
// delivered → read, a message in is delivered then read, undeliverable
// is apart; a record is replaced only forward (Advances), so that news
// older than the record (an acknowledgement after the read receipt)
// never takes it back.
//
// A person reads a conversation up to a point, not one message at a
// time: Read(name, upTo), upTo an order key (empty: the conversation's
// last message in: the cell's own may sort later with its clock ahead),
// records "read" each message in at or before it that is
// "delivered", paging through the conversation's delivered messages in
// its order, ReadPage (64) a query and each message its own write, so
// that a conversation of any length makes no giant write. It then
// writes the conversation's read marker, an exo.read entity
// (store.ReadSchema, message.ReadEntityOf: one per conversation, the
// same on every device of the cell): the order key read up to (never
// lowered by this device) and the receipt's state: "sent" (due), or
// "off" when read receipts are off for the contact.
//
// The courier sends the receipts due at each pass before the pending
// messages (ReceiptsPerPass = 64 markers at most a pass, the latest
// written first; a backoff of its own per contact, as the messages':
// 5 s doubling to 10 min, brought forward when a device of the contact
// connects or sends): one receipt per conversation (message.Receipt,
// sealed on the message sessions in place of an envelope, with no
// device list, on the delivery path of Send, acknowledged by its ID),
// covering everything read so far. On the acknowledgement it records
// the marker "delivered" unless another device of the cell read
// further meanwhile (its marker stays due). A marker due waits in the
// chain while no device of the contact is reachable, and any device of
// the cell delivers it (two that do are harmless). A receipt that
// cannot be sealed, or a marker that does not decode, is skipped.
//
// The receiving device checks a receipt as it checks an envelope (the
// stream's device on the current list of the contact the receipt's cell
// key names, the recipient cell its own) and records "read" each of its
// cell's messages out to that contact at or before the key in the
// state delivered, paged as Read pages; then it acknowledges. A message
// still pending (sent, stored) is left so: the key orders it before a
// message the contact read, but it may never have reached the contact
// (written by another device, or its delivery failing), and "read" would
// end its delivery. But a key the contact's receipts cover is kept on
// disk (only forward, before the receipt is acknowledged, of one adding
// of the contact: one removed and added again starts with none), and a
// message out at or before it that goes "delivered" later (an ack
// through the mailbox after the receipt) is recorded "read" (looked at
// before and after the write: a receipt between the two found it
// pending); TestReceiptOfStoredMessage, TestReceiptKeyOfEarlierAdding.
// A receipt covers only the messages that exist when it comes: the key
// kept is not the one it names but that of the last message out to the
// contact pending (sent or stored) at or before it then (a delivered
// one is marked by the receipt itself; none pending keeps nothing new),
// so that a receipt whose key is ahead of this cell's clock (a device of
// the contact, or of this cell, with its clock ahead, or a contact
// lying) does not make "read" every message written after it
// (TestReceiptKeyAfterMessage, TestReceiptKeyCovers). It is found with a
// query per pending state of the conversation, the last first, limit
// 1; one past the receipt's key pages on (ReadPage a query) through
// this cell's own pending messages past it only, at most
// Config.MaxPendingPerContact (the order key is a keyword: the index
// has no range on it). The edge left: a message written after the
// receipt came by a device of this cell whose clock is behind can sort
// at or before a message that was pending then, and is recorded "read"
// when it is acknowledged. And a message another device of this cell
// wrote before the receipt came, not yet in this device's store then,
// is not covered: acknowledged later, it stays "delivered".
// A stored key that does not read is none.
// A device keeps, per contact, where the
// last receipt it applied stopped (its key and the page): one up to no
// later key marks nothing, a later one goes on from that page, so that
// a contact sending receipts in a loop does not have every unread
// message in of the conversation paged through each time (the query
// cannot tell a message in from one out), and one cut short by
// Config.Timeout goes on, sent again, from the page it stopped at; the
// first after a restart pages from the start. Only that contact's conversation is touched, so a
// bystander (refused before anything is read) or another contact
// (its receipt names its own cell, or is refused) can mark nothing. A
// receipt for messages already read, or up to a key past every
// message, marks nothing new; one whose marks do not finish within
// Config.Timeout is refused and sent again later, and goes on from
// what is not read yet.
//
// With receipts off for a contact (contact/service SetReceipts,
// exo.contact receipts_off), Read records the marker "off", and the
// courier records a marker still due "off" unsent: the contact's cell
// gets nothing, and sees its messages "delivered" exactly as when they
// are not read yet, so it cannot tell "off" from "not read yet". Turned
// on again, the next read sends a receipt up to its key, which covers
// the messages read before.
//
// The inbox (Inbox, Latest) watches the latest messages by modification
// time, so a message whose state changes (delivered → read on the
// sender when the receipt comes) moves to the top of the watched page,
// and the watch sends it again with its new state.
//
// # Blind mailboxes
//
// When two cells are never online together, messages go through blind
// mailboxes: DHT records only the pair can find, read and write
// (message/mailbox/doc.go has every byte; docs/architecture.md,
// "Blind mailboxes", has every rule, bound and refusal of this shell,
// and the DHT costs). They are on when the service has Options.Mailbox
// (the node's DHT) and Options.MailboxKeys (this cell's mailbox private
// keys), and only with a contact whose current device list has a
// mailbox key. "sent" and "stored" are both pending (Pending): a stored
// message is still tried directly, and every state write goes forward
// only (Advances).
//
// Writing (mailbox_write.go). When a courier pass finds no device of a
// contact acknowledging (deliverPending), the device leaves that
// message and the later ones, at most MailboxWriteMax a pass, in the
// slots of the current epoch, sealed as a direct delivery would be
// (sealFor), skipping what the day's slots hold already, and records
// "stored" what they were seen to hold.
//
// Reading (mailbox_read.go, mailbox_poll.go). A goroutine (runMailbox;
// Close waits for it) polls the contacts with a mailbox key: the whole
// window of mailbox.ReadEpochs every Config.MailboxFullPoll (its time on
// disk, /messages/mailboxwhole), in between the current epoch of each
// contact whose steady poll is due, at Config.MailboxPoll doubling up to
// Config.MailboxPollMax (pollState.step, the pure rule). Frames for this
// device go through the receive path as if they came on a stream from
// their sealing device; the slot is written back without what was taken
// and an ack (mailbox.Ack) goes the other way; an ack makes a message
// "delivered" only once mailbox.VerifyAck passes, its device is on the
// contact's current list and the message is this cell's to that contact.
// Records this device put are put again each poll after 24 h (MaxRePuts).
//
// Keys (heldkey.go, pickKeys). Per contact, the key of this cell's that
// the contact was seen to hold (/messages/mailboxkey, # Stored state),
// which the writer uses and the reader polls with the keys a list
// carried since and those of the last 7 days, at most MaxMailboxKeys.
//
// Bounds: MailboxReadMax records and MailboxReadBytes per contact and
// key a poll, MaxContactRecords contacts' poll intervals, MaxSeenDevices
// devices seen between rounds, MaxRefusedFrames refused frames
// remembered. Mailbox() counts lookups, puts, messages stored, frames
// received and messages acked, what was refused (Refused, by reason),
// the refused frames removed from their slot (Dropped) and those not
// handed to the receive path again (Skipped).
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
// # Removed devices
//
// A device that no contact's current device list names any more (its
// cell signed a newer list without it, or the contact was removed) has
// its sessions dropped as soon as this device's store, caught up with
// the chain, holds that list (a removed contact's a second read later,
// below; removal.go, sweep.go): its record is deleted, its cache entry taken out and
// marked gone (a call holding it fails at its next step or write), its
// outbound streams closed for good (their waiting deliveries fail, and
// no delivery opens or writes on one after) and its inbound streams
// stopped (the frames read are refused, then they end). One goroutine,
// the sweeper (sweep.go; Close waits for it), compares the devices the
// contacts name with those held, in the cache and on disk (at most
// 1,024 dropped a round, round after round; nothing when the devices
// named are those of its last complete sweep, since sessions are made
// and stored only with named devices), at Start, when a message brought
// a newer list (contact/service.UpdateDevices), when the store's
// exo.contact entities change (a watch of the contact written last: a
// newer list, taken by this device or, through the chain, another, is
// such a write) and every SweepEvery (1 min: a contact removed on
// another device, if it was not the last written, changes no watched
// page). A sweep that cannot read the contacts drops nothing.
//
// The contacts must come from an index caught up with the chain: a
// reindex empties the index (and fires the watch) before it applies the
// chain again, and so does a cut-off's renumbering; an index opened
// fresh (an upgrade's rebuild, a node just given the store role) starts
// empty. The contacts read meanwhile name few devices or none. So the
// sweeper reads the store's status (store/service.Service.Status, if
// the Store has it) before and after the contacts, and postpones the
// sweep, dropping nothing, unless both say the index is caught up (no
// arrival behind, at least one applied, no fewer than at the first
// read, the same role); it then sweeps again SweepRetry (5 s) later, or
// at the next event. A reindex done wholly between the two status reads
// goes unseen, and a store member that answers a node's reads says
// nothing of its index; so a drop is made at once only when it is sure:
// the device was named at the last complete sweep, and each contact of
// that sweep is read again with its list at the same version or newer
// (a newer list without the device: no index behind the chain holds a
// newer list than it had). Every other drop (a contact removed, a list
// older, a device whose sessions were made since the last complete
// sweep, any drop of a run's first sweep) waits for a second read, at
// least SweepRetry later, that names the same devices. A removed
// contact's sessions therefore go some 5 s after the removal is read.
// Every delivery and every frame received checks the list again once
// the device's entry is held, so a delivery that read the older list (a
// Send or the courier under way) seals nothing and writes no record;
// nothing more is sent to the device, and nothing accepted from it.
//
// # Restored datastores
//
// A datastore restored from an older copy holds sessions behind their
// peers: sealing from them would use message keys that went out for
// other plaintexts. Nothing in the datastore tells such a copy from a
// clean restart's (any marker in it is copied with it), and the chain
// records neither which session sealed a message nor the courier's
// deliveries. So no run of the service seals with a session an earlier
// run made (restore.go): each run draws a random run ID at New, stored
// with every session it makes; a session of another run opens messages
// but seals none, and the first message to a device after each start
// makes one new session (a handshake), which the peer takes as the
// newest and answers on. Only the first session with a device takes one
// of its one-time prekeys: a handshake with a device this one holds a
// session with already uses its last-resort prekey
// (ratchet.InitiateLastResort; the peer's replay guard refuses the same
// initial message again: it keeps the ephemeral keys of last-resort
// handshakes per initiating device, 64 per device and 1,024 devices per
// signed prekey, and never refuses a handshake for being full. A
// recorded handshake opens again, and pushes live sessions out as the
// device's newest, only after 64 newer handshakes of the same device or
// 1,024 other devices under the same signed prekey: the service answers
// only its contacts' devices, at most 64 per contact, so that takes 16
// colluding contacts, or one that signs 16 lists of new devices;
// TestLastResortReplayRefusedForGood. A crash-looping device is never
// cut off), so that a restart loop spends none of the
// peer's one-time prekeys (TestRestartsKeepOneTimePrekeys). A peer that writes to a
// restored device on a session whose later ratchet keys it lacks is
// refused, drops that session and makes a new one, so its message is
// delivered once. The residual risks: the prekeys' store, restored
// too, offers again one-time prekeys already used (X3DH's ephemeral
// keys keep the sessions apart), and its older replay guard would accept
// again a last-resort handshake recorded after the copy; the counter, restored, resumes its
// seqs above the clock's milliseconds × 1,000 (# Stored state), which
// is above those used after the copy unless the clock went back or a
// run sent more than 1,000 messages a millisecond; and messages this
// device recorded after the copy are gone from its chain unless another
// device of its cell holds them.
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
// to keep it; it reads it once before "delivered", which a read receipt
// applied meanwhile must not take back (Advances); the receiver reads
// first (a message may come again). A message in is received when its
// cell first recorded it: the store keeps a trait's earliest Created
// (store's package doc), and a record read shows it as Received, so two
// devices that record it apart (one from a mailbox, the other later from
// the sender's courier) show the first's time once their chains merge.
//
// # Stored state
//
// In the node's datastore, one key per remote device,
// /messages/sessions/<peer ID>: version (1) = 2; the version of this
// cell's device list the device acknowledged (8); flags (1): bit 0 set
// when that list carried the mailbox key, the others 0 (a record with
// another bit set is corrupt); the number of sessions (1, at most
// MaxSessions = 4), newest first, each: this device's id for it (8,
// random), the run of the service that made it (8, # Restored
// datastores), the length of its pending initial header (2) and the
// header, the length of the session (4) and ratchet's encoding of it. A
// record whose frame is corrupt, or a session inside that does not
// decode, is dropped with a log line: the next message makes a new
// session. A record of version 1, the layout before the flags and the
// runs (written by an older binary: version (1) = 1, the list's version
// (8), the number of sessions (1), each: id (8), header length (2) and
// header, session length (4) and session), reads with the flags 0 and
// its sessions of no run (the zero run, which no run is: they open
// messages, never seal), and is written again as version 2 (an older
// binary takes a version 2 record as corrupt, and makes new sessions).
// /messages/mailboxkey/<cell key hex> holds the mailbox key of this cell
// the contact was seen to hold (# Blind mailboxes, Keys): version (1) =
// 1, the contact's Added time (8, Unix ms, two's complement) and the
// X25519 public key (32).
// /messages/receipt/<cell key hex> holds the key a contact's receipts
// cover (# Receipts: the last message out pending at or before a
// receipt's key when it came, the highest so far): version (1) = 2, the contact's Added time (8, Unix ms,
// two's complement), the key's length (1) and the order key (a record of
// version 1, without the Added time, reads as none).
// At most MaxContactRecords such records of each kind are held in
// memory (one dropped is read again from disk); on disk there is one
// per contact that sent a receipt covering a pending message.
// /messages/mailboxwhole holds when this device last polled the whole
// window of blind mailboxes (# Blind mailboxes, Reading): version (1) =
// 1 and the time (8, Unix ms, two's complement); one that does not
// decode reads as none (the next poll is whole).
// /messages/counter holds the device's counter's lease, written before
// any message uses it: the highest sent time it covers (8, Unix
// ms; the clock plus 1 s when it was taken) and the highest seq (8; 1,000
// past the last). Sent times and seqs are handed out from memory until
// either runs out. A restart resumes from both (sent times no lower, seqs
// above, and seqs no lower than the clock's Unix milliseconds × 1,000,
// so that a counter restored from an older copy does not hand out again
// the seqs used after the copy: with the lease's sent floor they made
// the same order keys), so seq never repeats and sent never goes back (a
// record of the earlier layout, the last sent time and seq, reads the
// same way).
//
// # Shared files
//
// SendFile shares one of the cell's files (its capability, name, size
// and media type) with a contact: past the pending quota it refuses
// with ErrTooManyPending before sharing anything; else it records the
// share first
// (Files.ShareWith: an exo.share entity, so that every device of the
// cell, after restarts too, serves the blob's blocks to the devices on
// the contact's current device list and to nobody else; see
// blob/service), then sends a message as Send does, whose envelope
// carries the file (package message, # Shared files: versions 5 and 6)
// and whose record (Message.File) keeps it, so that a pending one is
// delivered by the courier, or left in a blind mailbox (sealed again
// from the record), with its file like any other. The text is
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
// devices' frames being read or handled at most Config.MaxFramesIn =
// 1,024 (16 MiB: a contact's cell may list 64 devices, and a node has
// many contacts). A frame takes its device's token and its node slot
// only once its header has arrived, so an idle stream holds neither,
// and its body must follow within Config.IdleTimeout (else the stream
// is reset, the slot freed); the node's slots are shared fairly
// (fairslots.go) among the keys of the devices sending, each key the
// set of contacts whose lists name the device: a key takes a slot only
// while it holds fewer than the slots divided among the keys holding or
// waiting for one and one more, so that one contact alone holds at
// most half and, while others wait, the slots it frees go to them
// (TestIdleFloodLeavesSlots, TestFairSlotsShare); a frame handled
// leaves that bound (its answer waits for its turn holding only its
// stream's and device's tokens), and so
// does a frame the quotas slow, which holds one of at most MaxFramesIn
// slowed places instead, at most MaxSlowedPerContact = 32 of them per
// contact cell (another 16 MiB at most, 512 KiB per contact; past
// either, busy at once), so that one contact's slowed frames do not
// keep the other contacts' frames from being read
// (TestSlowedHoldsNoNodeSlots, TestSlowedBounded); a frame
// is handled under Config.Timeout, past which the stream is reset; a
// stream on which no frame came and no answer went for twice
// Config.IdleTimeout, none unanswered, ends, as does one whose frame's
// header stopped midway that long (reset), and one whose frame's body
// did not follow its header within Config.IdleTimeout is reset
// (TestHeaderOnly); a peer on no contact's current
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
//
// Quotas (quota.go, the pure rule; quotain.go, quotasend.go). Only the
// devices on a contact's current list deliver (above), and the
// envelope must be that contact's cell's. Each contact cell, all its
// devices together, has a token bucket of messages (Config.InRate a
// second, InBurst) and one of frame bytes (InBytesRate, InBytesBurst):
// a message over either is slowed, its answer held until the bucket
// holds its cost (the sender's window fills, so it sends no faster;
// a slowed place held, see above), and refused when that wait would
// pass Config.MaxSlow or no slowed place is free (at most
// Timeout/2: the frame is answered in time). A contact's bytes of the
// day (UTC) are bounded by MaxInBytesPerContactPerDay and all contacts'
// by MaxInBytesPerDay: past either, refused until the next day. A
// message the quotas refuse is answered busy (message.KindBusy), not
// refused: nothing is recorded, the sender keeps its session (it is
// good: the frame was not opened), its message stays pending and its
// courier backs off. The day's counts survive a
// restart: /messages/quota/contact/<cell key hex> and /messages/quota/node
// each hold the day (8, Unix days) and the bytes leased (8), written
// ahead of the count by a 64th of the budget (at least 64 KiB), before
// the message is admitted, so that a restart resumes from no less; a
// record that does not decode is logged and counted from 0; one that
// cannot be read or written refuses the message. admit holds the quotas' lock across those
// reads and writes (a contact's record read once, a lease written about
// 64 times a day per contact and for the node): a slow datastore then
// delays every contact's admission, but only at those moments, and the
// lock keeps a lease ahead of every count it covers (two admissions of
// one contact cannot both pass the budget while a write is under way).
// At most
// MaxQuotaEntries contacts' states are held, the one looked at least
// recently dropped past it (its count read back from its record). The
// charge is taken before the frame is opened, so that a frame that does
// not open is charged too; when several contacts' lists name the device,
// each of them is charged (a cell that lists another contact's device
// pays for that device's frames, its own loss; the real contact pays
// only for its own device's, so the listing spends none of its quota); a
// frame charged then refused for another reason stays charged. admit is the
// rule as a function, for the blind mailbox's reader. Service.Quota
// counts each slowdown and each refusal by reason. Sending: Send refuses
// with ErrTooManyPending, recording nothing, while this cell holds
// MaxPendingPerContact messages to the contact not delivered (sent or
// stored, by any of its devices; at most message.MaxText bytes each, so
// the bytes too are bounded); Sends under way at once may pass it by as
// many as they are.
package service
