// Package ratchet is the pure core of exopeer's end-to-end encrypted
// conversations: the X3DH and PQXDH handshakes and the Double Ratchet
// with header encryption, as Signal specifies them, with exopeer's
// parameters written here exactly enough to build a compatible
// implementation from this text alone.
//
// It is a pure core, in the style of etcd's raft: no goroutines, no
// clock, no network, no logging and no randomness of its own (every
// random byte comes from an io.Reader the caller passes). Its values
// (sessions, bundles) are versioned byte strings the caller stores and
// restores. TestPure checks this, transitively.
//
// Every failure to open a message or answer a handshake is ErrRefused,
// whatever the reason.
//
// # Notation
//
// X25519 is RFC 7748's function; DH(a, B) is X25519 of private key a and
// public key B, 32 bytes. A public key is encoded as its 32 bytes, with no
// type prefix (libsignal prefixes 0x05; its vectors are checked with the
// prefix where they have it). HKDF is RFC 5869 with SHA-256. || is
// concatenation. Integers are big-endian unless said.
//
// # Key derivation
//
// The KDFs (kdf.go), with the info strings of Params; exopeer's are those
// of Exopeer, in ASCII: Handshake "exopeer_X3DH_X25519_SHA-256_v1",
// PQHandshake "exopeer_PQXDH_X25519_SHA-256_ML-KEM-1024_v1", Root
// "exopeer_Ratchet_v1", Message "exopeer_MessageKeys_v1", InitialIdentity
// "exopeer_InitialIdentity_v1" (it seals the initial header's identity,
// below; libsignal has no counterpart).
//
//   - handshake: HKDF(salt = 32 zero bytes, ikm = F || DH1 || DH2 || DH3
//     [|| DH4] [|| SS], info = Params.Handshake or Params.PQHandshake),
//     96 bytes, cut into the first root key, the initiator's first sending
//     header key (shared_hka) and the responder's first next header key
//     (shared_nhkb). F is 32 bytes 0xFF.
//   - KDF_RK_HE(rk, dh): HKDF(salt = rk, ikm = dh, info = Params.Root),
//     96 bytes: the next root key, a chain key, a next header key.
//   - KDF_CK(ck): message key HMAC-SHA-256(ck, 0x01), next chain key
//     HMAC-SHA-256(ck, 0x02).
//   - message keys: HKDF(salt = 32 zero bytes, ikm = message key, info =
//     Params.Message), 44 bytes: an AES-256-GCM key, then its nonce.
//
// In the handshake, A is the initiator and B the responder; IK are their
// identity X25519 keys, EK_A A's ephemeral key, SPK_B and OPK_B B's
// signed and one-time prekeys. DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A,
// IK_B), DH3 = DH(EK_A, SPK_B), DH4 = DH(EK_A, OPK_B), present only if
// B's one-time prekey is used: the order of X3DH's specification
// (section 3.3) and libsignal's. SS is ML-KEM-1024's 32-byte shared
// secret, in PQXDH only. Every part is 32 bytes and their number is not
// encoded: the info string alone tells X3DH from PQXDH.
//
// The nonce is derived, not drawn: a message key must encrypt one
// plaintext only. A session state must therefore be stored after Encrypt
// before its ciphertext leaves: encrypting again from an older copy of
// the state would use a key and nonce twice (with AES-GCM, that reveals
// the XOR of the two plaintexts and the key's authentication key).
//
// With libsignal's strings ("WhisperText", "WhisperRatchet",
// "WhisperMessageKeys"; "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024"
// for PQXDH) and libsignal's lengths (64, 64, 80: HKDF's output is a
// prefix of any longer one), these functions reproduce the values
// published in the tests of libsignal, libsignal-protocol-c, -java and
// -javascript (testdata/libsignal.txt, with their sources;
// libsignal_test.go): the chain key of the handshake, KDF_CK's chain and
// message keys, and a whole conversation through three KDF_RK steps.
//
// # Handshakes and prekey bundles
//
// X3DH (Signal's X3DH specification) and PQXDH (Signal's PQXDH
// specification, with ML-KEM-1024 of FIPS 203, crypto/mlkem) between an
// initiator A and a responder B, over B's prekey bundle; bundle.go,
// prekeys.go, handshake.go, replay.go. Sizes are in bytes; ids are uint32
// and times int64 Unix seconds (two's complement), big-endian.
//
// Identity. A device's identity is its Ed25519 key (RFC 8032, the libp2p
// peer key); there is no XEdDSA: its identity X25519 key IK is signed by
// the Ed25519 key instead. Every Ed25519 signature is over a message that
// starts with a string saying what is signed (none a prefix of another):
//
//   - IK: "exopeer-identity-v1" || IK (32).
//   - signed prekey: "exopeer-signed-prekey-v1" || id (4) || created (8)
//     || SPK (32).
//   - last-resort prekey: "exopeer-last-resort-prekey-v1" || id (4) ||
//     LRK (32).
//   - ML-KEM key: "exopeer-mlkem1024-prekey-v1" || id (4) || ek (1568,
//     FIPS 203's encoding).
//   - bundle: "exopeer-bundle-v1" || the bundle's encoding up to its
//     final signature (so it covers every other signature).
//
// One-time prekeys have no signature of their own. Signal leaves them
// unsigned because its server hands them out one at a time; here the whole
// bundle is signed, as a DHT record under the peer ID, so they are
// authenticated by the bundle's signature at no cost (a signature each
// would add 64 bytes per key, for nothing more).
//
// Bundle, version 1 (BundleVersion), in this order: version (1) = 1;
// sequence (8), a newer bundle of the same Ed25519 key replaces an older;
// Ed25519 public key (32); IK (32); IK's signature (64); signed prekey id
// (4), created (8), SPK (32), signature (64); last-resort id (4), LRK
// (32), signature (64); ML-KEM flag (1): 0, or 1 followed by id (4), ek
// (1568), signature (64); count n of one-time prekeys (2), 0 <= n <= 100
// (MaxOneTimePrekeys); n times id (4) and OPK (32), ids strictly
// ascending; the bundle's signature (64). Its size is 412 + 1636 if it
// has an ML-KEM key + 36 n: at most 5648 (MaxBundleSize). DecodeBundle
// refuses a size outside 412..5648 before reading, another version, a
// flag other than 0 or 1, n > 100, ids not ascending and a length other
// than the one the count and flag give (so the encoding is canonical);
// Verify checks every signature (four, five with an ML-KEM key; the
// bundle's first) and that ek
// decodes (FIPS 203's modulus check). Every failure is ErrBadBundle,
// with its reason: the initiator answers nobody. exopeer's bundles always
// have an ML-KEM key; one without is valid and gets X3DH.
//
// Private state (Prekeys), version 1, in this order: version (1) = 1; the
// identity private key (32); the signed prekey's id (4), created (8),
// private key (32); a flag (1): 0, or 1 followed by the previous signed
// prekey's id (4), created (8), retired (8), private key (32); last-resort
// id (4), private key (32); ML-KEM id (4), seed (64: FIPS 203's d || z);
// the next one-time id (4); count n (2) <= 100, n times id (4) and private
// key (32), ids strictly ascending; the replay guard's encoding's length
// (4), then it. X25519 private keys are stored as the 32 bytes given to
// RFC 7748's function (it clamps). Its size is at most 4329234 bytes (a
// full replay guard; a few KiB in use); the
// decoder checks the bounds before allocating and refuses anything not
// canonical with ErrCorruptPrekeys (it comes from the disk, not a peer).
// NewPrekeys reads from its reader, in order, 32 bytes each for IK, the
// signed prekey (id 1), the last-resort prekey (id 1), then the 64-byte
// ML-KEM seed (id 1). Replenish reads 32 bytes per one-time prekey, with
// ids counting up from 1 (0 is skipped, and an id still held after 2^32
// of them), so a used id comes back only after 2^32 more. RotationDue(now)
// is now - created >= RotationPeriod (7 days); Rotate reads 32 bytes for
// the next signed prekey (id + 1), created at now; the old current one
// becomes the previous (retired at now), the old previous and its replay
// set are dropped. The previous signed prekey answers while now - retired
// < GracePeriod (7 days). The last-resort and ML-KEM keys are not rotated
// in version 1.
//
// The initiator (InitiateSecret) verifies B's bundle, then reads 32 bytes
// from its reader for its ephemeral key EK_A and, if the bundle has n > 0
// one-time prekeys, 4 more, r: it uses the one-time prekey at index r mod
// n (a random pick makes two initiators of one bundle collide less);
// with none it uses the last-resort prekey LRK, as InitiateLastResort
// does whatever the bundle has (and reads no r): for a new session with
// a device the initiator already had one with, so that such handshakes
// (message/service makes one per restart) spend none of B's one-time
// prekeys. Call the one used PK_B.
// With IK_A its identity key:
//
//	DH1 = DH(IK_A, SPK_B)  DH2 = DH(EK_A, IK_B)
//	DH3 = DH(EK_A, SPK_B)  DH4 = DH(EK_A, PK_B)
//
// and an all-zero DH output is refused. X3DH's Secret is the handshake KDF
// of DH1 || DH2 || DH3 || DH4 with info Params.Handshake. PQXDH (when the
// bundle has an ML-KEM key and the initiator does it): the caller
// encapsulates to ek (crypto/mlkem's Encapsulate in a shell: the core takes
// its result, the 32-byte shared key SS and the 1568-byte ciphertext, and
// draws no randomness for it), and the Secret is the KDF of DH1 || DH2 ||
// DH3 || DH4 || SS with info Params.PQHandshake. The associated data of
// the session is AD = "exopeer-ad-v1" || ED_A || IK_A || ED_B || IK_B
// (ED: each device's Ed25519 public key, IK: its identity X25519 public
// key; 13 + 128 bytes): binding the Ed25519 keys stops a device that
// signed someone else's identity X25519 key as its own from passing that
// person's session off as its own (an unknown key-share). B's first
// ratchet key pair is its signed prekey. testdata/x3dh.txt and testdata/pqxdh.txt hold every value of
// these steps for fixed keys.
//
// The initial message is the header then the first Double Ratchet message
// (ParseInitialHeader returns both). Header, version 2
// (InitialHeaderVersion; version 1, which carried IK_A in the clear, is
// refused), byte by byte, its clear part first:
//
//	length  field
//	1       version = 2
//	1       kind: 1 one-time, 2 last-resort
//	1       PQ flag: 0 or 1
//	32      ED_A, A's Ed25519 public key (its peer ID)
//	32      EK_A
//	4       SPK_B's id
//	4       PK_B's id
//	4       if PQ: the ML-KEM key's id
//	1568    if PQ: the ML-KEM ciphertext
//	112     sealed identity: AES-256-GCM(key, nonce, IK_A (32) || IK_A's
//	        signature (64, the identity message above), associated data =
//	        every byte above), 96 bytes of ciphertext, then the 16-byte tag
//
// 187 bytes, 1759 with PQ. The key and nonce are HKDF(salt = 32 zero
// bytes, ikm = DH3, info = Params.InitialIdentity =
// "exopeer_InitialIdentity_v1"), 44 bytes: the key (32), then the nonce
// (12). As Noise's IK pattern seals the initiator's static key, the
// responder computes DH3 = DH(SPK_B, EK_A) before it knows IK_A; DH3 is
// new with each EK_A, so a key seals one identity, and an observer of the
// links sees ED_A (the peer ID, which the transport names anyway) but not
// IK_A. The associated data binds every clear byte: a change of any of
// them makes the identity not open. The shell checks that A's Ed25519 key
// is a device it talks to.
//
// The responder (RespondSecret, given now) refuses with ErrRefused, and
// changes nothing, when: EK_A is not canonical (its top bit set, or u >=
// 2^255 - 19: X25519 reads it as another encoding of a key, which the
// replay guard would not know); the signed prekey id is neither the
// current one nor the previous one within its grace period; DH3 is zero;
// the sealed identity does not open; IK_A's signature does not verify
// under A's Ed25519 key; IK_A is B's own or is not canonical; the kind
// is last-resort and EK_A is in the replay guard under that signed prekey
// and A's Ed25519 key; the kind is one-time and B holds
// no one-time prekey of that id (never made, or used), or last-resort and
// the id is not B's; PQ and the ML-KEM id is not B's or the ciphertext is
// not 1568 bytes; a DH output is zero. (ML-KEM decapsulation never fails:
// a changed ciphertext gives another SS, so another Secret, and the first
// message does not open.) Otherwise it computes the same DHs from its side
// and, only then, deletes the one-time prekey used, or, for the
// last-resort kind, adds EK_A to the replay guard; the caller stores the
// state before it answers. A responder
// accepts X3DH when it offers ML-KEM too (an initiator may not do PQXDH);
// a downgrade needs an active attacker who breaks X25519 already.
//
// Replay guard. Without a server a one-time prekey can be taken by two
// initiators at once, and the last-resort prekey by any number. A
// one-time initial message is refused again because its prekey was
// deleted before the state was stored and answered (an id comes back
// only 2^32 one-time prekeys later): "one-time prekey id not held",
// TestRespondRefusesReplay. A last-resort one (every restart handshake,
// message/service) is refused again by the replay guard, which remembers
// the ephemeral keys of the last-resort initial messages B accepted, per
// signed prekey id (ReplaySets, 2: the current and the previous; a set
// for a new id forgets the oldest set) and per initiating device, named
// by its Ed25519 signing key (the key that signed IK_A, which the shell
// checks is the stream's peer: a device that makes many identity keys
// fills one entry). It never refuses for being full: at most
// ReplayCapacity (64) keys per device, a device's 65th key forgetting
// that device's own oldest; at most ReplayDevices (1024) devices per
// set, a new device past them forgetting the device whose keys were
// added least recently (each Add makes its device the most recent).
// Only the holder of a device's keys makes a handshake under them whose
// first message opens (Respond changes nothing when it does not open),
// so another device cannot push a device's keys out of its entry. The
// limit, honestly: a recorded last-resort initial message opens again
// (a duplicate session, which the shell takes as the device's newest)
// after 64 newer handshakes of the same device, or after 1,024 other
// devices handshook with B, under the same signed prekey (14 days at
// most); a contact lists at most 64 devices (contact.MaxDevices) and
// message/service answers only contacts' devices, so the second needs 16
// colluding contacts (or one contact that signs 16 lists of new devices
// in that time). After the signed prekey is gone every message
// under it is refused. TestLastResortReplayRefusedForGood,
// TestReplayGuardBounds, TestReplayGuardFloodOfIdentities. Encoding,
// version 2: version (1) = 2; the number of sets (1) <= 2; per set,
// oldest set first: signed prekey id (4), the number of devices (2) <=
// 1024; per device, least recently added first: its Ed25519 key (32),
// count (2), 1 to 64 (1 to 1024 for the zero key, below), the keys (32
// each), oldest first, distinct; devices distinct; at most 4,325,390
// bytes, about 4.1 MiB (MaxReplayGuardSize; a few KiB in use). Version 1
// (version 1, the number of sets, per set: id (4), count (2) <= 1024,
// keys; at most 65550 bytes) still decodes: its keys, whose devices it
// did not record, are kept under the zero key (of low order: Respond
// refuses it as an initiator's) and refused for every device; it is written
// as version 2. Anything else is ErrCorruptReplayGuard.
//
// # Double Ratchet
//
// The Double Ratchet with header encryption is the specification's
// section 4 (signal.org/docs/specifications/doubleratchet, revision 1,
// 2016-11-20): RatchetInitAliceHE is NewInitiator, RatchetInitBobHE is
// NewResponder, RatchetEncryptHE is Session.Encrypt, RatchetDecryptHE is
// Session.Decrypt. Its functions are:
//
//   - GENERATE_DH: an X25519 private key of 32 bytes read from the
//     caller's reader (RFC 7748 clamps them); its public key is 32 bytes.
//   - DH: X25519; an all-zero output (a public key of small order) is a
//     failure (refused).
//   - KDF_RK_HE(rk, dh): as above, with Params.Root: root key, chain key,
//     next header key, in that order.
//   - KDF_CK(ck): as above.
//   - ENCRYPT(mk, plaintext, AD'): AES-256-GCM (16-byte tag) with key
//     messageKeys(mk)[0:32] and nonce messageKeys(mk)[32:44] (Params.Message,
//     44 bytes): a message key seals one message, so its nonce is fixed.
//   - HENCRYPT(hk, header): AES-256-GCM with key hk, a 12-byte nonce read
//     from the caller's reader (a header key seals a whole chain), and the
//     message's version byte (0x01, one byte) as associated data.
//   - HEADER(dh, pn, n): dh's 32-byte public key || PN || N, each a
//     uint32, big-endian: 40 bytes.
//   - MAX_SKIP: MaxSkip = 1000.
//
// AD is the associated data the handshake makes, at most MaxAD = 65535
// bytes, given to both constructors, with Params (Root and Message at most
// 255 bytes each).
//
// A message is, byte by byte:
//
//	offset  length    field
//	0       1         version, 0x01
//	1       12        header nonce
//	13      56        sealed header: HENCRYPT(HKs, HEADER(DHs, PN, Ns)),
//	                  40 bytes of ciphertext, then the 16-byte tag
//	69      len(p)+16 sealed body: ENCRYPT(mk, p, AD || message[0:69]),
//	                  ciphertext, then the 16-byte tag
//
// so a message is MessageOverhead = 85 bytes longer than its plaintext p.
// Only the version byte is in the clear: the ratchet key and counters are
// in the sealed header.
//
// Initialization, from the handshake's Secret: the initiator reads its
// first ratchet key pair (32 bytes), and sets RK, CKs, NHKs =
// KDF_RK_HE(SK, DH(DHs, the responder's signed prekey)), HKs =
// shared_hka, NHKr = shared_nhkb; CKr, HKr and PN, Ns, Nr = 0 are unset or
// zero. The responder's ratchet key pair is its signed prekey pair, RK =
// SK, NHKs = shared_nhkb, NHKr = shared_hka, and it has no sending chain:
// it encrypts only after it has opened a message (ErrCannotSend before).
//
// The DH ratchet step's second half is taken when the session next
// sends, not when it receives (Decrypt takes no reader): on opening a
// header under NHKr, a session does PN = Ns, Ns = Nr = 0, HKs = NHKs,
// HKr = NHKr, DHr = the header's key, RK, CKr, NHKr = KDF_RK_HE(RK,
// DH(DHs, DHr)), and forgets CKs. The next Encrypt then reads a new
// ratchet key pair DHs (32 bytes) and sets RK, CKs, NHKs = KDF_RK_HE(RK,
// DH(DHs, DHr)). The values, and so the messages, are those of the
// specification's DHRatchetHE. A second header under NHKr before the
// session has sent (which an honest peer cannot make: its next step needs
// our next key) is refused.
//
// Encrypt reads from the caller's reader, in this order: the new ratchet
// private key (32 bytes) if a step's second half is due, then the header
// nonce (12 bytes). It then computes CKs, mk = KDF_CK(CKs), builds the
// message with N = Ns, and increments Ns. A chain holds at most 2^32 - 1
// messages, N = 0 to 2^32 - 2 (ErrChainExhausted past them); Decrypt
// refuses a header with N = 2^32 - 1 (Nr would wrap).
//
// Decrypt checks, in order, refusing (ErrRefused) at the first failure:
//
//  1. The message is at least 85 bytes and its first byte is 0x01.
//  2. If HKr is set and opens the header: if N < Nr, the stored skipped
//     key (HKr, N), if there is one, opens the body, and is deleted; else
//     the message is in the current chain (below, without a step). The
//     header's ratchet key is not compared with DHr, as in the
//     specification.
//  3. Else each distinct header key of the stored skipped keys, other
//     than HKr, in the order stored: the first that opens the header
//     names the stored key (hk, N); if there is one, it opens the body
//     and is deleted.
//  4. Else if NHKr opens the header: a DH step (refused if the session
//     has received a new ratchet key and not sent since).
//  5. Else refused.
//
// For a message in the current chain, or a step: with a step, first skip
// the current receiving chain to PN, then the step (above); then skip
// the (new) receiving chain to N; then CKr, mk = KDF_CK(CKr), Nr += 1, and
// mk opens the body. Skipping a chain to n is SkipMessageKeysHE: refused
// if Nr + MaxSkip < n; else, if the chain exists, while Nr < n: CKr, mk =
// KDF_CK(CKr), store (HKr, Nr, mk), Nr += 1. The order of the trials
// differs from the specification's (it tries the stored keys first); the
// result does not, since a header opens under one key only.
//
// Skipped keys are kept in the order they were made, oldest first, at
// most MaxSkippedKeys = 2000 across all chains: storing past it drops
// the oldest. A stored key opens one message and is then deleted, as is a
// message key of a chain once used, so an opened message (a replay, a
// duplicate) does not open again.
//
// Decrypt is transactional: if the body does not open (or anything
// before it fails), nothing of the session changes, skipped keys
// included; it is ErrRefused, whatever the reason.
//
// A stored session (MarshalBinary; UnmarshalBinary checks every length
// and refuses with ErrCorruptSession) is, byte by byte:
//
//	length    field
//	1         version, SessionVersion = 0x01
//	1         flags: 0x01 DHr set, 0x02 CKs set, 0x04 CKr set, 0x08 HKs
//	          set, 0x10 HKr set; other bits zero
//	1 + r     r, then Params.Root (r <= 255)
//	1 + m     m, then Params.Message (m <= 255)
//	2 + a     a (uint16), then AD
//	32        DHs, the private key
//	32 each   DHr, RK, CKs, CKr, HKs, HKr, NHKs, NHKr (all zero if unset)
//	4 each    Ns, Nr, PN (uint32)
//	2         k, the number of skipped keys (k <= 2000)
//	68 each   k skipped keys, oldest first: header key (32), N (uint32),
//	          message key (32)
//
// and nothing after. A receiving chain and HKr are set together; a
// sending chain needs HKs and DHr; a receiving chain needs DHr; DHr
// needs HKs. No flag
// says that a step's sending half is due: it is exactly when DHr is set
// and CKs is not (the next Encrypt steps; Decrypt refuses a header under
// NHKr). A responder that has opened nothing has neither.
package ratchet
