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
// of Exopeer:
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
// With libsignal's strings ("WhisperText", "WhisperRatchet",
// "WhisperMessageKeys") and libsignal's lengths (64, 64, 80: HKDF's output
// is a prefix of any longer one), these functions reproduce the values
// published in libsignal's tests (libsignal_test.go).
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
// messages (ErrChainExhausted past them).
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
// sending chain needs HKs and DHr; a receiving chain needs DHr.
package ratchet
