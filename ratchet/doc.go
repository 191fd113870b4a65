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
package ratchet
