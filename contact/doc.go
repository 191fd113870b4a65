// Package contact is the pure core of contacts: other cells a person
// talks to. It has no I/O, clock, goroutines, logging or randomness of its
// own (pure_test.go checks); the node's part that stores contacts is
// contact/service.
//
// # Device list
//
// A cell's device list names the devices (peer IDs) that take messages
// for the cell: the members of its roster. The cell key signs it; its
// version is the version of the roster it was made from, so a newer list
// has a higher version. Newer says whether a list replaces the one held:
// same cell key, higher version; the same version must be byte for byte
// the same list, or the "EXD2" list of the same devices replacing an
// "EXD1" one (below); two other different lists with one version mean the
// cell key signed both: ErrConflict; a lower one is refused (ErrStale). A device a
// newer list drops gets nothing more from the contacts that hold it.
//
// Wire form (uvarint: unsigned LEB128 as encoding/binary; bytes: a uvarint
// length, then the bytes):
//
//	"EXD1", or "EXD2" for a list with a mailbox key
//	bytes    cell key (32, Ed25519)
//	uvarint  version
//	uvarint  number of devices (1 to MaxDevices = 64)
//	bytes    peer ID (multihash bytes, at most 64), sorted by bytes, unique; per device
//	bytes    mailbox key (32, X25519): "EXD2" only
//	bytes    signature (64)
//
// The signature is Ed25519 by the cell key over "exopeer contact device
// list v1" || 0x00 || everything before the signature, for both forms (the
// signed bytes start with the magic, so neither form's signature covers
// the other's). The mailbox key is the cell's X25519 mailbox public key of
// its current key epoch (cell/core Secret.MailboxKey), from which a
// contact derives the pair's blind mailboxes (package message/mailbox). A
// list without one (DeviceList.Mailbox nil) is written as "EXD1", byte for
// byte as before the key existed, and both forms decode. Newer lets an
// "EXD2" list replace the "EXD1" list of the same version with the same
// devices (the cell added its key), and nothing else of the same version;
// that "EXD1" list, once the "EXD2" one is held, is older (ErrStale: a
// device of the cell that has not seen the upgrade still sends it). A
// cell's admin (contact/service) signs every list with the key of the
// roster's epoch, and signs an "EXD1" list it holds again at the same
// version with the key; a new epoch (a device removed) always comes with
// a new roster version, so its key goes out in a list of a higher
// version, never as a second "EXD2" list of one version (that would be
// ErrConflict).
//
// # Card
//
// A card is what a cell hands another to become its contact: a name its
// owner chose (1 to 64 bytes of UTF-8, no control or bidi-control
// characters, no leading or trailing space) and the device list (which
// carries the cell key). The name is not signed (the cell key signs only
// the device list): whoever passes a card on can change it, so it is a
// hint; the cell key, which the safety number shows, is the contact.
// Binary form:
//
//	"EXC1"
//	bytes    name (at most 64)
//	         the device list's wire form, to the end
//
// Text form: "exo-card:1:" then the base32 (RFC 4648 alphabet in lower
// case, no padding) of the binary card followed by a 4-byte checksum, the
// first 4 bytes of SHA-256("exopeer card checksum v1" || 0x00 || binary
// card). Readers ignore white space and case; a checksum that does not
// match is ErrChecksum (a mistyped or truncated card), an unknown version
// after "exo-card:" is ErrCardVersion. Every length is capped (MaxCardText,
// MaxCardLen, MaxDeviceListLen) before anything is allocated for it.
//
// # Invites by code
//
// Two cells exchange cards by a one-time code, the cell join's
// (cell/core.Code, NNNN-word-word-word: the nameplate names the meeting
// place, the three words are the password), with CPace
// (internal/cpace, CPACE-RISTR255-SHA512), so that a guessed code gets one
// online guess and nothing offline. The acceptor (who typed the code) is
// CPace's initiator, the inviter its responder; CI is "exopeer contact
// invite v1" || 0x00 || bytes(inviter peer ID) || bytes(acceptor peer
// ID), sid the nameplate (2 bytes, big-endian), no associated data. Over
// one stream, each message a frame (uvarint length, then the bytes):
//
//	acceptor -> inviter  hello:  "EXI1" || nameplate (2) || Ya (32)
//	inviter -> acceptor  reply:  0x00 || Yb (32) || tag_b (64)
//	                             or 0x01 alone: no open invite with that nameplate
//	acceptor -> inviter  proof:  tag_a (64) || AES-256-GCM(k1, acceptor's card)
//	inviter -> acceptor  final:  AES-256-GCM(k2, inviter's card)
//
// tag_a and tag_b are CPace's key-confirmation tags (each side's own
// message); the acceptor checks tag_b before it sends its card, the
// inviter checks tag_a before it opens it (a wrong one is ErrWrongCode,
// and counts against the invite). k1 || k2 = HKDF-SHA-512 (RFC 5869: no
// salt, ISK as the input key, info "exopeer contact invite card keys v1"),
// 64 bytes; each key seals one
// message, so the nonce is 12 zero bytes; the associated data is CI. The
// binary cards inside are verified as any card is, and each must name the
// peer that sent it (the one CI names for that side) on its device list,
// or it is refused with ErrNotOnCard (the inviter then sends no final
// message): a card taken by code is tied to a device of the cell it
// describes. A device of a cell not yet on the cell's signed list (it
// joined since an admin last signed it) therefore cannot exchange cards
// until the list names it.
//
// # Safety number
//
// Two people compare a safety number to know that each holds the other's
// true cell key. It is Signal's numeric fingerprint (libsignal's
// NumericFingerprintGenerator, version 0) over the two cells' Ed25519
// public keys:
//
//	fingerprint(key):
//	    h = SHA-512(0x00 0x00 || key || "exopeer-cell" || key)
//	    repeat 5199 times: h = SHA-512(h || key)      (5200 hashes in all)
//	    for i in 0..5: take h[5i:5i+5] as a big-endian 40-bit integer,
//	                   write it mod 100000 as 5 decimal digits
//	safety number(a, b) = fingerprint(x) || fingerprint(y)
//	    where x is whichever of a and b sorts first by bytes
//
// 60 digits, shown in 12 groups of 5; both sides compute the same number
// whichever side they are. Unlike Signal, the stable identifier is a
// constant (a cell has no phone number or account: its key is its
// identity) and the key is the raw 32-byte Ed25519 key (no 0x05 prefix).
// safety_test.go has known answers, and reproduces libsignal's published
// displayable fingerprint with its keys and identifiers.
package contact
