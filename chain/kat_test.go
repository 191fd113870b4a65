package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"golang.org/x/crypto/chacha20poly1305"
)

var update = flag.Bool("update", false, "rewrite the known-answer vectors in testdata/")

// katInputs are the known-answer vector's inputs: fixed keys, secret,
// nonce and fields, so that the entry's encoding and CID are fixed.
type katInputs struct {
	authorSeed, cellSeed, secret, nonce []byte
	seq, clock, epoch                   uint64
	parents                             []cid.Cid
	plaintext                           []byte
}

// katVector writes the known-answer entry.
func katVector(t testing.TB) (katInputs, *Entry) {
	t.Helper()
	in := katInputs{
		authorSeed: bytes.Repeat([]byte{0x11}, 32),
		cellSeed:   bytes.Repeat([]byte{0x22}, 32),
		secret:     bytes.Repeat([]byte{0x33}, 32),
		nonce:      bytes.Repeat([]byte{0x44}, chacha20poly1305.NonceSizeX),
		seq:        2,
		clock:      7,
		epoch:      3,
		parents:    SortCIDs([]cid.Cid{fakeCID(1), fakeCID(2)}),
		plaintext:  []byte("hello, chain"),
	}
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(in.authorSeed))
	if err != nil {
		t.Fatal(err)
	}
	cell := ed25519.NewKeyFromSeed(in.cellSeed).Public().(ed25519.PublicKey)
	d := Draft{Cell: cell, Seq: in.seq, Clock: in.clock, Parents: in.parents, Epoch: in.epoch}
	e, err := Write(d, key, in.secret, in.plaintext, bytes.NewReader(in.nonce))
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return in, e
}

// TestEntryKnownAnswer pins the entry format: a change to the encoding,
// the signed message or the payload's key or additional data changes the
// bytes of testdata/entry_v1.txt. Source: made by this package at the
// version that introduced it, and checked against the package
// documentation by TestEntrySpec; regenerate with -update only for a new
// format version.
func TestEntryKnownAnswer(t *testing.T) {
	in, e := katVector(t)
	var b strings.Builder
	b.WriteString("# Known-answer vector of a version 1 chain entry (see doc.go).\n")
	b.WriteString("# Made by TestEntryKnownAnswer (go test ./chain -run KnownAnswer -update)\n")
	b.WriteString("# and checked against doc.go by TestEntrySpec. Author and cell keys are\n")
	b.WriteString("# Ed25519 from the seeds; parents are sha2-256 dag-cbor CIDs of \"fake\" || uvarint(n).\n")
	line := func(k string, v any) { fmt.Fprintf(&b, "%s: %v\n", k, v) }
	line("author-seed", hex.EncodeToString(in.authorSeed))
	line("cell-seed", hex.EncodeToString(in.cellSeed))
	line("secret", hex.EncodeToString(in.secret))
	line("nonce", hex.EncodeToString(in.nonce))
	line("seq", in.seq)
	line("clock", in.clock)
	line("epoch", in.epoch)
	for _, p := range in.parents {
		line("parent", p)
	}
	line("plaintext", hex.EncodeToString(in.plaintext))
	line("author", e.Author)
	line("cell", hex.EncodeToString(e.Cell))
	line("payload", hex.EncodeToString(e.Payload))
	line("sig", hex.EncodeToString(e.Sig))
	line("cid", e.CID())
	line("entry", hex.EncodeToString(e.Bytes()))
	got := b.String()

	path := filepath.Join("testdata", "entry_v1.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("entry differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
	// The stored entry decodes and verifies.
	var raw []byte
	for l := range strings.Lines(string(want)) {
		if h, ok := strings.CutPrefix(strings.TrimSpace(l), "entry: "); ok {
			raw, _ = hex.DecodeString(h)
		}
	}
	d, err := Decode(raw)
	if err != nil {
		t.Fatalf("Decode of the stored entry: %v", err)
	}
	r := testRoster{authors: map[peer.ID]bool{d.Author: true}, upTo: in.epoch}
	secrets := func(epoch uint64) ([]byte, bool) { return in.secret, epoch == in.epoch }
	if pt, err := Verify(d, e.Cell, r, secrets); err != nil || !bytes.Equal(pt, in.plaintext) {
		t.Errorf("Verify of the stored entry = %q, %v", pt, err)
	}
}

// TestEntrySpec checks an entry against the format doc.go describes, with
// the standard library and go-ipld-prime only: the field order of the
// canonical map, the signed message, the payload key and its additional
// data.
func TestEntrySpec(t *testing.T) {
	in, e := katVector(t)
	nb := basicnode.Prototype.Map.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(e.Bytes())); err != nil {
		t.Fatal(err)
	}
	n := nb.Build()
	var keys []string
	rest := basicnode.Prototype.Map.NewBuilder()
	ma, err := rest.BeginMap(n.Length() - 1)
	if err != nil {
		t.Fatal(err)
	}
	for it := n.MapIterator(); !it.Done(); {
		k, v, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := k.AsString()
		keys = append(keys, ks)
		if ks == "sig" {
			continue
		}
		if err := ma.AssembleKey().AssignString(ks); err != nil {
			t.Fatal(err)
		}
		if err := ma.AssembleValue().AssignNode(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := ma.Finish(); err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"v", "seq", "sig", "cell", "clock", "epoch", "author", "parents", "payload"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys %q, want %q", keys, wantKeys)
	}
	lookup := func(name string) datamodel.Node {
		v, err := n.LookupByString(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	sig, _ := lookup("sig").AsBytes()
	cell, _ := lookup("cell").AsBytes()
	author, _ := lookup("author").AsBytes()
	payload, _ := lookup("payload").AsBytes()

	// The signature: Ed25519 over the domain and the map without "sig".
	var body bytes.Buffer
	if err := dagcbor.Encode(rest.Build(), &body); err != nil {
		t.Fatal(err)
	}
	msg := append([]byte("exopeer chain entry v1\x00"), body.Bytes()...)
	authorPub := ed25519.NewKeyFromSeed(in.authorSeed).Public().(ed25519.PublicKey)
	if !ed25519.Verify(authorPub, msg, sig) {
		t.Error("the signature does not cover the domain and the fields but sig")
	}
	if id, _ := peer.IDFromBytes(author); id != e.Author {
		t.Errorf("author %s, want %s", id, e.Author)
	}

	// The payload: XChaCha20-Poly1305 under HKDF-SHA256(secret, salt =
	// cell key, info = label || epoch), with the cell, the length-prefixed
	// author, seq and epoch as additional data.
	info := binary.BigEndian.AppendUint64([]byte("exopeer chain payload v1"), in.epoch)
	key, err := hkdf.Key(sha256.New, in.secret, cell, string(info), chacha20poly1305.KeySize)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	ad := slices.Concat(cell, binary.AppendUvarint(nil, uint64(len(author))), author)
	ad = binary.BigEndian.AppendUint64(ad, in.seq)
	ad = binary.BigEndian.AppendUint64(ad, in.epoch)
	if !bytes.Equal(payload[:len(in.nonce)], in.nonce) {
		t.Errorf("payload does not start with the nonce")
	}
	pt, err := aead.Open(nil, in.nonce, payload[len(in.nonce):], ad)
	if err != nil || !bytes.Equal(pt, in.plaintext) {
		t.Errorf("payload opens to %q, %v", pt, err)
	}

	// The CID: v1, dag-cbor, sha2-256 of the encoding.
	want := sha256.Sum256(e.Bytes())
	if p := e.CID().Prefix(); p.Version != 1 || p.Codec != cid.DagCBOR || p.MhType != mh.SHA2_256 || !bytes.HasSuffix(e.CID().Hash(), want[:]) {
		t.Errorf("CID %s is not CIDv1 dag-cbor sha2-256 of the encoding", e.CID())
	}
}
