package mailbox

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/exopeer/exopeer/message"
)

var update = flag.Bool("update", false, "rewrite the known-answer vectors in testdata/")

// katVectors computes the known-answer vectors of the file
// testdata/vectors.txt from fixed inputs.
func katVectors(t *testing.T) string {
	t.Helper()
	cellA := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x11}, 32)).Public().(ed25519.PublicKey)
	cellB := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x22}, 32)).Public().(ed25519.PublicKey)
	boxA, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x33}, 32))
	if err != nil {
		t.Fatal(err)
	}
	boxB, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x44}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const epoch, index, seq = 20454, 1, 7
	nonce := bytes.Repeat([]byte{0x55}, chacha20poly1305.NonceSizeX)
	devA, devB := device(0x88), device(0x99)
	in := []Entry{
		Frame(message.ID(bytes.Repeat([]byte{0x66}, message.IDSize)), devA, devB, []byte("first frame")),
		Frame(message.ID(bytes.Repeat([]byte{0x77}, message.IDSize)), devB, devA, []byte("second frame")),
	}
	// An ack in A → B: device A of cell A recorded a message cell B sent.
	ack, err := Ack(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x88}, 32)), cellA, cellB, message.ID(bytes.Repeat([]byte{0xaa}, message.IDSize)))
	if err != nil {
		t.Fatal(err)
	}
	in = append(in, ack)
	p, err := PairSecret(boxA, cellA, cellB, boxB.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSlot(p, cellA, cellB, epoch, index)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Seal(in, seq, bytes.NewReader(nonce))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("# Known-answer vectors of blind mailboxes (see doc.go).\n")
	b.WriteString("# Made by TestKnownAnswer (go test ./message/mailbox -run KnownAnswer -update)\n")
	b.WriteString("# at the version that introduced them, and checked against doc.go by\n")
	b.WriteString("# TestDerivationSpec. Cell keys are Ed25519 from the seeds; mailbox keys\n")
	b.WriteString("# are the X25519 private keys given; entries are sealed from cell A to B.\n")
	b.WriteString("# An entry is: kind 1, message ID, sealing device, target device, frame,\n")
	b.WriteString("# or kind 2 (an ack), message ID, acknowledging device (of cell A, for a\n")
	b.WriteString("# message from cell B), its Ed25519 signature (hex; the devices are the\n")
	b.WriteString("# peer IDs of the Ed25519 device seeds).\n")
	line := func(k string, v any) { fmt.Fprintf(&b, "%s: %v\n", k, v) }
	line("cell-a-seed", strings.Repeat("11", 32))
	line("cell-b-seed", strings.Repeat("22", 32))
	line("cell-a", hex.EncodeToString(cellA))
	line("cell-b", hex.EncodeToString(cellB))
	line("mailbox-a-private", hex.EncodeToString(boxA.Bytes()))
	line("mailbox-b-private", hex.EncodeToString(boxB.Bytes()))
	line("mailbox-a-public", hex.EncodeToString(boxA.PublicKey().Bytes()))
	line("mailbox-b-public", hex.EncodeToString(boxB.PublicKey().Bytes()))
	line("pair", hex.EncodeToString(p[:]))
	line("epoch", epoch)
	line("index", index)
	line("slot-peer-id", s.Peer())
	line("record-key", s.RecordKey())
	line("value-key", hex.EncodeToString(s.aead[:]))
	line("seq", seq)
	line("nonce", hex.EncodeToString(nonce))
	line("device-a-seed", strings.Repeat("88", 32))
	line("device-b-seed", strings.Repeat("99", 32))
	for i, e := range in {
		if e.Kind == KindAck {
			line(fmt.Sprintf("entry-%d", i), fmt.Sprintf("%d %x %x %x", e.Kind, e.ID[:], []byte(e.From), e.Sig))
			continue
		}
		line(fmt.Sprintf("entry-%d", i), fmt.Sprintf("%d %x %x %x %x", e.Kind, e.ID[:], []byte(e.From), []byte(e.To), e.Frame))
	}
	line("value", hex.EncodeToString(v))
	return b.String()
}

// TestKnownAnswer pins the derivations and the value's format: a change to
// any label, the order of the bound keys, the AD, the padding or the
// entry list changes testdata/vectors.txt. Regenerate with -update only
// for a new version.
func TestKnownAnswer(t *testing.T) {
	got := katVectors(t)
	path := filepath.Join("testdata", "vectors.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("vectors changed:\n%s\nwant:\n%s", got, want)
	}
}

// TestDerivationSpec recomputes the vectors' pair secret, slot and value
// as doc.go describes them, with the standard library and x/crypto only,
// and opens the frozen value.
func TestDerivationSpec(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "vectors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{}
	for l := range strings.Lines(string(want)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ": "); ok && !strings.HasPrefix(k, "#") {
			kv[k] = v
		}
	}
	h := func(k string) []byte {
		b, err := hex.DecodeString(kv[k])
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return b
	}
	a, err := ecdh.X25519().NewPrivateKey(h("mailbox-a-private"))
	if err != nil {
		t.Fatal(err)
	}
	bPub, err := ecdh.X25519().NewPublicKey(h("mailbox-b-public"))
	if err != nil {
		t.Fatal(err)
	}
	shared, err := a.ECDH(bPub)
	if err != nil {
		t.Fatal(err)
	}
	cellA, cellB := h("cell-a"), h("cell-b")
	// The file's inputs are what they say they are: cell keys from their
	// seeds, mailbox public keys from their private keys.
	for _, c := range []struct{ pub, seed string }{{"cell-a", "cell-a-seed"}, {"cell-b", "cell-b-seed"}} {
		if !bytes.Equal(h(c.pub), ed25519.NewKeyFromSeed(h(c.seed)).Public().(ed25519.PublicKey)) {
			t.Fatalf("%s is not the key of %s", c.pub, c.seed)
		}
	}
	for _, c := range []string{"a", "b"} {
		k, err := ecdh.X25519().NewPrivateKey(h("mailbox-" + c + "-private"))
		if err != nil || !bytes.Equal(k.PublicKey().Bytes(), h("mailbox-"+c+"-public")) {
			t.Fatalf("mailbox-%s-public is not the key of its private key: %v", c, err)
		}
	}
	if kv["epoch"] != "20454" || kv["index"] != "1" || kv["seq"] != "7" || !bytes.Equal(h("value")[:24], h("nonce")) {
		t.Fatal("the file's epoch, index, seq or nonce is not the one computed here")
	}
	lo, hi, loPub, hiPub := cellA, cellB, h("mailbox-a-public"), h("mailbox-b-public")
	if bytes.Compare(cellA, cellB) > 0 {
		lo, hi, loPub, hiPub = cellB, cellA, h("mailbox-b-public"), h("mailbox-a-public")
	}
	info := "exopeer mailbox pair v1\x00" + string(lo) + string(hi) + string(loPub) + string(hiPub)
	pair, err := hkdf.Key(sha256.New, shared, nil, info, 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pair, h("pair")) {
		t.Fatalf("pair %x, file %x", pair, h("pair"))
	}
	slotInfo := func(label string) string {
		b := append([]byte(label+"\x00"), cellA...)
		b = append(b, cellB...)
		b = binary.BigEndian.AppendUint64(b, 20454)
		return string(binary.BigEndian.AppendUint32(b, 1))
	}
	valueKey, _ := hkdf.Key(sha256.New, pair, nil, slotInfo("exopeer mailbox value v1"), 32)
	if !bytes.Equal(valueKey, h("value-key")) {
		t.Fatalf("value key %x, file %x", valueKey, h("value-key"))
	}
	seed, _ := hkdf.Key(sha256.New, pair, nil, slotInfo("exopeer mailbox owner v1"), 32)
	s, err := NewSlot(Pair(pair), cellA, cellB, 20454, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Owner().Raw()
	if err != nil || !bytes.Equal(raw, ed25519.NewKeyFromSeed(seed)) {
		t.Fatalf("slot owner is not Ed25519 from the derived seed: %v", err)
	}
	// The record key from the owner seed alone: "/exo/" ‖ base58btc of the
	// identity multihash of the libp2p public key protobuf (type 1,
	// Ed25519) ‖ "/mailbox" (dht/doc.go, doc.go).
	ownerPub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	pid := base58(append([]byte{0x00, 36, 0x08, 0x01, 0x12, 32}, ownerPub...))
	key := "/exo/" + pid + "/mailbox"
	if kv["slot-peer-id"] != pid || kv["record-key"] != key || s.RecordKey() != key {
		t.Fatalf("record key: spec %q, file %q (peer %q), code %q", key, kv["record-key"], kv["slot-peer-id"], s.RecordKey())
	}
	ad := binary.BigEndian.AppendUint16([]byte("exopeer mailbox ad v1\x00"), uint16(len(key)))
	ad = binary.BigEndian.AppendUint64(append(ad, key...), 7)
	aead, err := chacha20poly1305.NewX(valueKey)
	if err != nil {
		t.Fatal(err)
	}
	v := h("value")
	pt, err := aead.Open(nil, v[:24], v[24:], ad)
	if err != nil {
		t.Fatalf("the frozen value does not open as doc.go says: %v", err)
	}
	list := []byte{3, 3}
	for _, e := range []string{kv["entry-0"], kv["entry-1"], kv["entry-2"]} {
		f := strings.Split(e, " ")
		if len(f) != 5 && (len(f) != 4 || f[0] != "2") {
			t.Fatalf("entry %q: want 5 fields, or 4 for an ack", e)
		}
		hb := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
		list = append(list, f[0][0]-'0')
		list = append(list, hb(f[1])...)
		if f[0] == "2" { // an ack: kind, ID, device, signature
			// The signature is device A's over the label, the
			// acknowledging cell (A), the cell the message came from
			// (B) and the ID.
			signed := append([]byte("exopeer mailbox ack v1\x00"), cellA...)
			signed = append(append(signed, cellB...), hb(f[1])...)
			pub := ed25519.NewKeyFromSeed(h("device-a-seed")).Public().(ed25519.PublicKey)
			if hex.EncodeToString(append([]byte{0x00, 36, 0x08, 0x01, 0x12, 32}, pub...)) != f[2] || !ed25519.Verify(pub, signed, hb(f[3])) {
				t.Fatalf("the ack %q is not device A's signature as doc.go says", e)
			}
			list = append(append(list, byte(len(hb(f[2])))), hb(f[2])...)
			list = append(list, hb(f[3])...)
			continue
		}
		for _, p := range []string{f[2], f[3]} {
			list = append(append(list, byte(len(hb(p)))), hb(p)...)
		}
		list = binary.BigEndian.AppendUint16(list, uint16(len(hb(f[4]))))
		list = append(list, hb(f[4])...)
	}
	// The devices are the peer IDs of their seeds: the identity multihash
	// of the libp2p public key protobuf (Ed25519).
	for _, d := range []struct{ seed, field string }{{"device-a-seed", strings.Fields(kv["entry-0"])[2]}, {"device-b-seed", strings.Fields(kv["entry-0"])[3]}} {
		pub := ed25519.NewKeyFromSeed(h(d.seed)).Public().(ed25519.PublicKey)
		if hex.EncodeToString(append([]byte{0x00, 36, 0x08, 0x01, 0x12, 32}, pub...)) != d.field {
			t.Fatalf("%s's peer ID is not %s", d.seed, d.field)
		}
	}
	if len(v) != 1024 || len(pt) != 1024-40 || !bytes.Equal(pt[:len(list)], list) || bytes.Count(pt[len(list):], []byte{0}) != len(pt)-len(list) {
		t.Fatalf("the plaintext is not the doc's entry list padded to 984 bytes: %x", pt)
	}
}

// base58 is Bitcoin's base58 alphabet encoding (a peer ID's text form),
// written out here so the spec test does not use the code it checks.
func base58(b []byte) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := new(big.Int).SetBytes(b)
	var out []byte
	for mod, radix := new(big.Int), big.NewInt(58); n.Sign() > 0; {
		n.DivMod(n, radix, mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	slices.Reverse(out)
	return string(out)
}
