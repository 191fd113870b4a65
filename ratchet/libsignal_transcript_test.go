package ratchet

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// protobuf is the fields of a protocol buffer message, as much of the
// encoding as libsignal's messages use: varints and byte strings.
type protobuf struct {
	bytes map[int][]byte
	ints  map[int]uint64
}

func readProtobuf(t *testing.T, b []byte) protobuf {
	t.Helper()
	m := protobuf{bytes: map[int][]byte{}, ints: map[int]uint64{}}
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("protobuf: bad key at %x", b)
		}
		b = b[n:]
		v, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("protobuf: bad varint at %x", b)
		}
		b = b[n:]
		switch field := int(key >> 3); key & 7 {
		case 0:
			m.ints[field] = v
		case 2:
			if v > uint64(len(b)) {
				t.Fatalf("protobuf: field %d of %d bytes, %d left", field, v, len(b))
			}
			m.bytes[field], b = b[:v], b[v:]
		default:
			t.Fatalf("protobuf: wire type %d", key&7)
		}
	}
	return m
}

// whisperMessage is libsignal's SignalMessage (WhisperMessage) of session
// version 3: the byte 0x33, a protobuf (1 ratchet key, 2 counter, 3
// previous counter, 4 ciphertext), then 8 bytes of MAC.
type whisperMessage struct {
	raw        []byte
	ratchet    []byte // without its 0x05
	counter    uint32
	ciphertext []byte
}

func readWhisperMessage(t *testing.T, b []byte) whisperMessage {
	t.Helper()
	if len(b) < 9 || b[0] != 0x33 {
		t.Fatalf("not a version 3 WhisperMessage: %x", b)
	}
	pb := readProtobuf(t, b[1:len(b)-8])
	r := pb.bytes[1]
	if len(r) != 33 || r[0] != 0x05 {
		t.Fatalf("WhisperMessage's ratchet key %x", r)
	}
	return whisperMessage{raw: b, ratchet: r[1:], counter: uint32(pb.ints[2]), ciphertext: pb.bytes[4]}
}

// preKeyWhisperMessage is libsignal's PreKeySignalMessage of version 3:
// 0x33, then a protobuf (2 base key, 3 identity key, 4 the
// WhisperMessage; the key IDs and registration ID are not KDF inputs).
func readPreKeyWhisperMessage(t *testing.T, b []byte) (base, identity []byte, m whisperMessage) {
	t.Helper()
	if len(b) < 1 || b[0] != 0x33 {
		t.Fatalf("not a version 3 PreKeyWhisperMessage: %x", b)
	}
	pb := readProtobuf(t, b[1:])
	base, identity = pb.bytes[2], pb.bytes[3]
	if len(base) != 33 || base[0] != 0x05 || len(identity) != 33 || identity[0] != 0x05 {
		t.Fatalf("PreKeyWhisperMessage's keys %x, %x", base, identity)
	}
	return base[1:], identity, readWhisperMessage(t, pb.bytes[4])
}

// openWhisperMessage opens m with the chain whose first chain key is ck,
// as libsignal does, and checks that its text is want: the message key
// of index m.counter (kdfCK), expanded to 80 bytes (messageKeys: cipher
// key, MAC key, IV); the MAC is HMAC-SHA-256 under the MAC key of the
// sender's then the receiver's identity key (0x05-prefixed) then the
// message's bytes before the MAC, cut to 8 bytes; the ciphertext is
// AES-256-CBC with PKCS#7 padding; the plaintext a PushMessageContent
// (body in field 1), then 0x80, then zero bytes.
func openWhisperMessage(t *testing.T, ck [32]byte, m whisperMessage, sender, receiver, want []byte) {
	t.Helper()
	var mk [32]byte
	for range m.counter + 1 {
		ck, mk = kdfCK(&ck)
	}
	keys := messageKeys(libsignalParams.Message, &mk, 80)
	mac := hmac.New(sha256.New, keys[32:64])
	mac.Write(sender)
	mac.Write(receiver)
	mac.Write(m.raw[:len(m.raw)-8])
	if got := mac.Sum(nil)[:8]; !bytes.Equal(got, m.raw[len(m.raw)-8:]) {
		t.Fatalf("message %d's MAC is %x, want %x: the MAC key differs", m.counter, m.raw[len(m.raw)-8:], got)
	}
	block, err := aes.NewCipher(keys[0:32])
	if err != nil {
		t.Fatal(err)
	}
	ct := m.ciphertext
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		t.Fatalf("ciphertext of %d bytes", len(ct))
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, keys[64:80]).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(pt[len(pt)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		t.Fatalf("message %d: bad PKCS#7 padding: the cipher key differs (%x)", m.counter, pt)
	}
	pt = bytes.TrimRight(pt[:len(pt)-pad], "\x00")
	if len(pt) == 0 || pt[len(pt)-1] != 0x80 {
		t.Fatalf("message %d: no 0x80 terminator: the IV or the cipher key differs (%x)", m.counter, pt)
	}
	wantEqual(t, "text", readProtobuf(t, pt[:len(pt)-1]).bytes[1], want)
}

// checkTranscript follows both sides of libsignal-protocol-javascript's
// conversation: every message opens with the keys that kdf.go's
// functions derive with libsignal's parameters, through X3DH with a
// one-time prekey (DH4), three DH ratchet steps (kdfRK) and chains of
// two messages (kdfCK, messageKeys).
func checkTranscript(t *testing.T, v *libsignalVector) {
	aIK, aBase := v.get(t, "alice_identity_private", 32), v.get(t, "alice_base_private", 32)
	aR1, aR2 := v.get(t, "alice_ratchet_private_1", 32), v.get(t, "alice_ratchet_private_2", 32)
	bIK, bSPK := v.get(t, "bob_identity_private", 32), v.get(t, "bob_signed_prekey_private", 32)
	bOPK, bR1 := v.get(t, "bob_one_time_prekey_private", 32), v.get(t, "bob_ratchet_private_1", 32)

	// The bundle Alice fetched is Bob's keys.
	wantEqual(t, "bob_identity_public", v.public(t, "bob_identity_public"), x25519Public(t, bIK))
	wantEqual(t, "bob_signed_prekey_public", v.public(t, "bob_signed_prekey_public"), x25519Public(t, bSPK))
	wantEqual(t, "bob_one_time_prekey_public", v.public(t, "bob_one_time_prekey_public"), x25519Public(t, bOPK))
	bobID := append([]byte{0x05}, x25519Public(t, bIK)...)

	base, aliceID, mA := readPreKeyWhisperMessage(t, v.get(t, "message_a", 0))
	wantEqual(t, "message A's base key", base, x25519Public(t, aBase))
	wantEqual(t, "message A's identity key", aliceID[1:], x25519Public(t, aIK))
	wantEqual(t, "message A's ratchet key", mA.ratchet, x25519Public(t, aR1))

	// X3DH, DH1..DH4 in the X3DH specification's order, from each side.
	bob := handshakeKDF(libsignalParams.Handshake, 64,
		x25519(t, bSPK, aliceID[1:]), x25519(t, bIK, base), x25519(t, bSPK, base), x25519(t, bOPK, base))
	alice := handshakeKDF(libsignalParams.Handshake, 64,
		x25519(t, aIK, x25519Public(t, bSPK)), x25519(t, aBase, bobID[1:]),
		x25519(t, aBase, x25519Public(t, bSPK)), x25519(t, aBase, x25519Public(t, bOPK)))
	wantEqual(t, "Alice's X3DH output", alice, bob)
	rk := [32]byte(bob[0:32])

	// Alice's first sending chain: Bob's first ratchet key is his signed
	// prekey. A and B are its messages 0 and 1.
	rk, ck, _ := kdfRK(libsignalParams.Root, &rk, x25519(t, bSPK, mA.ratchet))
	openWhisperMessage(t, ck, mA, aliceID, bobID, v.get(t, "text_a", 0))
	baseB, _, mB := readPreKeyWhisperMessage(t, v.get(t, "message_b", 0))
	wantEqual(t, "message B's base key", baseB, base)
	openWhisperMessage(t, ck, mB, aliceID, bobID, v.get(t, "text_b", 0))

	// Bob's DH ratchet step: his new ratchet key against Alice's.
	rk, ck, _ = kdfRK(libsignalParams.Root, &rk, x25519(t, bR1, mA.ratchet))
	mC := readWhisperMessage(t, v.get(t, "message_c", 0))
	wantEqual(t, "message C's ratchet key", mC.ratchet, x25519Public(t, bR1))
	openWhisperMessage(t, ck, mC, bobID, aliceID, v.get(t, "text_c", 0))
	mD := readWhisperMessage(t, v.get(t, "message_d", 0))
	openWhisperMessage(t, ck, mD, bobID, aliceID, v.get(t, "text_d", 0))

	// Alice's: her second ratchet key against Bob's.
	mE := readWhisperMessage(t, v.get(t, "message_e", 0))
	wantEqual(t, "message E's ratchet key", mE.ratchet, x25519Public(t, aR2))
	_, ck, _ = kdfRK(libsignalParams.Root, &rk, x25519(t, aR2, x25519Public(t, bR1)))
	openWhisperMessage(t, ck, mE, aliceID, bobID, v.get(t, "text_e", 0))
}
