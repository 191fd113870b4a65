package chain

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// twoEntries returns a cell and two entries of its first author: the
// first, and the second with the first and an entry of the second author
// as parents.
func twoEntries(t testing.TB) (*testCell, *Entry, *Entry) {
	t.Helper()
	c := newTestCell(t, 1, 2)
	s := NewState(c.key)
	e1 := c.append(t, s, c.authors[0], []byte("first"))
	c.append(t, s, c.authors[1], []byte("other"))
	e2 := c.append(t, s, c.authors[0], []byte("second"))
	return c, e1, e2
}

func TestWriteDecode(t *testing.T) {
	c, e1, e2 := twoEntries(t)
	for _, e := range []*Entry{e1, e2} {
		got, err := Decode(e.Bytes())
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if diff := cmp.Diff(e, got, cmpOpts, cmp.AllowUnexported(Entry{})); diff != "" {
			t.Errorf("Decode(Write) differs (-want +got):\n%s", diff)
		}
		if !got.CID().Equals(e.CID()) || !bytes.Equal(got.Bytes(), e.Bytes()) {
			t.Errorf("CID or Bytes differ")
		}
		if want, _ := cidPrefix.Sum(e.Bytes()); !e.CID().Equals(want) {
			t.Errorf("CID %s is not the hash of the encoding, %s", e.CID(), want)
		}
		if got.Pos() != (Pos{Clock: e.Clock, CID: e.CID()}) {
			t.Errorf("Pos = %v", got.Pos())
		}
	}
	if e2.Seq != 2 || e2.Clock != 3 || len(e2.Parents) != 2 || !slices.ContainsFunc(e2.Parents, e1.CID().Equals) {
		t.Errorf("second entry: seq %d clock %d parents %v", e2.Seq, e2.Clock, e2.Parents)
	}
	if e1.Author != c.authors[0].id || !bytes.Equal(e1.Cell, c.key) || e1.Epoch != testEpoch {
		t.Errorf("first entry: author %s cell %x epoch %d", e1.Author, e1.Cell, e1.Epoch)
	}
}

func TestVerify(t *testing.T) {
	c, e1, e2 := twoEntries(t)
	for want, e := range map[string]*Entry{"first": e1, "second": e2} {
		pt, err := Verify(e, c.key, c.roster, c.secret)
		if err != nil || string(pt) != want {
			t.Errorf("Verify = %q, %v; want %q", pt, err, want)
		}
		pt, err = Open(e, c.secret)
		if err != nil || string(pt) != want {
			t.Errorf("Open = %q, %v; want %q", pt, err, want)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	c, e1, _ := twoEntries(t)
	noSecrets := func(uint64) ([]byte, bool) { return nil, false }
	wrongSecret := func(uint64) ([]byte, bool) { return make([]byte, 32), true }
	onlyAuthor1 := testRoster{authors: map[peer.ID]bool{c.authors[1].id: true}, upTo: 5}
	epoch0 := testRoster{authors: c.roster.authors, upTo: 0}
	tests := []struct {
		name     string
		cell     []byte
		roster   Roster
		secrets  Secrets
		want     error
		deferred bool
	}{
		{"other cell", cellKey("other cell"), c.roster, c.secret, ErrOtherCell, false},
		{"not an author", c.key, onlyAuthor1, c.secret, ErrNotAuthor, true},
		{"epoch after the author's", c.key, epoch0, c.secret, ErrNotAuthor, true},
		{"unknown epoch", c.key, c.roster, noSecrets, ErrUnknownEpoch, true},
		{"wrong secret", c.key, c.roster, wrongSecret, ErrDecrypt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := Verify(e1, tt.cell, tt.roster, tt.secrets)
			if !errors.Is(err, tt.want) || pt != nil {
				t.Fatalf("Verify = %q, %v; want %v", pt, err, tt.want)
			}
			if Deferred(err) != tt.deferred {
				t.Errorf("Deferred(%v) = %v", err, !tt.deferred)
			}
		})
	}
	if Deferred(nil) || Deferred(ErrBadSignature) || !Deferred(fmt.Errorf("wrapped: %w", ErrUnknownEpoch)) {
		t.Error("Deferred is wrong")
	}
	if _, err := Open(e1, noSecrets); !errors.Is(err, ErrUnknownEpoch) {
		t.Errorf("Open without the secret: %v", err)
	}
	if _, err := Open(e1, wrongSecret); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open with a wrong secret: %v", err)
	}
}

// reencode returns the canonical encoding of a copy of e changed by
// mutate, with e's signature: it decodes, but the signature no longer
// holds unless mutate changed nothing signed.
func reencode(t testing.TB, e *Entry, mutate func(*Entry)) []byte {
	t.Helper()
	m := *e
	m.Parents = slices.Clone(e.Parents)
	m.Payload = slices.Clone(e.Payload)
	m.Sig = slices.Clone(e.Sig)
	mutate(&m)
	raw, err := m.encode(true)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return raw
}

func TestTamperedEntries(t *testing.T) {
	c, _, e2 := twoEntries(t)
	other := c.authors[1].id
	tests := []struct {
		name   string
		mutate func(*Entry)
		want   error
	}{
		{"seq", func(e *Entry) { e.Seq++ }, ErrBadSignature},
		{"clock", func(e *Entry) { e.Clock++ }, ErrBadSignature},
		{"epoch", func(e *Entry) { e.Epoch = 0 }, ErrBadSignature},
		{"parent replaced", func(e *Entry) { e.Parents[0] = fakeCID(0); SortCIDs(e.Parents) }, ErrBadSignature},
		{"parent added", func(e *Entry) { e.Parents = SortCIDs(append(e.Parents, fakeCID(0))) }, ErrBadSignature},
		{"parent dropped", func(e *Entry) { e.Parents = e.Parents[1:] }, ErrBadSignature},
		{"payload", func(e *Entry) { e.Payload[len(e.Payload)-1] ^= 1 }, ErrBadSignature},
		{"nonce", func(e *Entry) { e.Payload[0] ^= 1 }, ErrBadSignature},
		{"author", func(e *Entry) { e.Author = other }, ErrBadSignature},
		{"signature", func(e *Entry) { e.Sig[0] ^= 1 }, ErrBadSignature},
		{"cell", func(e *Entry) { e.Cell = cellKey("other cell") }, ErrOtherCell},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := reencode(t, e2, tt.mutate)
			e, err := Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if pt, err := Verify(e, c.key, c.roster, c.secret); !errors.Is(err, tt.want) {
				t.Errorf("Verify = %q, %v; want %v", pt, err, tt.want)
			}
		})
	}
	// Any bit flipped anywhere in an entry: it does not decode, or it does
	// not verify.
	raw := e2.Bytes()
	for i := range raw {
		for bit := range 8 {
			b := slices.Clone(raw)
			b[i] ^= 1 << bit
			e, err := Decode(b)
			if err != nil {
				continue
			}
			if pt, err := Verify(e, c.key, c.roster, c.secret); err == nil {
				t.Fatalf("byte %d bit %d flipped: Verify = %q, nil", i, bit, pt)
			}
		}
	}
}

// field is one key and value of a hand-built dag-cbor map.
type field struct {
	name string
	val  qp.Assemble
}

// entryFields returns e's fields, sorted as in its canonical encoding.
func entryFields(e *Entry) []field {
	parents := qp.List(int64(len(e.Parents)), func(la datamodel.ListAssembler) {
		for _, p := range e.Parents {
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: p}))
		}
	})
	return []field{
		{fV, qp.Int(Version)},
		{fSeq, qp.Int(int64(e.Seq))},
		{fSig, qp.Bytes(e.Sig)},
		{fCell, qp.Bytes(e.Cell)},
		{fClock, qp.Int(int64(e.Clock))},
		{fEpoch, qp.Int(int64(e.Epoch))},
		{fAuthor, qp.Bytes([]byte(e.Author))},
		{fParents, parents},
		{fPayload, qp.Bytes(e.Payload)},
	}
}

// encodeFields encodes fs as a dag-cbor map, in their order when not
// sorted.
func encodeFields(t testing.TB, fs []field, sorted bool) []byte {
	t.Helper()
	n, err := qp.BuildMap(basicnode.Prototype.Map, int64(len(fs)), func(ma datamodel.MapAssembler) {
		for _, f := range fs {
			qp.MapEntry(ma, f.name, f.val)
		}
	})
	if err != nil {
		t.Fatalf("BuildMap: %v", err)
	}
	opts := dagcbor.EncodeOptions{AllowLinks: true, MapSortMode: codec.MapSortMode_None}
	if sorted {
		opts.MapSortMode = codec.MapSortMode_RFC7049
	}
	var buf bytes.Buffer
	if err := opts.Encode(n, &buf); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes()
}

// withField returns fs with the value of name replaced, or fs without
// name if val is nil.
func withField(fs []field, name string, val qp.Assemble) []field {
	var out []field
	for _, f := range fs {
		if f.name != name {
			out = append(out, f)
		} else if val != nil {
			out = append(out, field{name, val})
		}
	}
	return out
}

func TestDecodeRefuses(t *testing.T) {
	_, e1, e2 := twoEntries(t)
	raw := e1.Bytes()
	// The canonical encoding starts with a map of 9 and "v": 1, then
	// "seq": 1 in one byte.
	if !bytes.HasPrefix(raw, []byte{0xa9, 0x61, 'v', 0x01, 0x63, 's', 'e', 'q', 0x01}) {
		t.Fatalf("unexpected encoding % x", raw[:9])
	}
	fs := entryFields(e2)
	reversed := slices.Clone(fs)
	slices.Reverse(reversed)
	parentsOf := func(cs ...cid.Cid) qp.Assemble {
		return qp.List(int64(len(cs)), func(la datamodel.ListAssembler) {
			for _, c := range cs {
				qp.ListEntry(la, qp.Link(cidlink.Link{Cid: c}))
			}
		})
	}
	rawCID := cid.NewCidV1(cid.Raw, e1.CID().Hash())
	sha3, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA3_256, MhLength: 32}.Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := e2.Parents[0], e2.Parents[1]
	tooMany := make([]cid.Cid, MaxParents+1)
	for i := range tooMany {
		tooMany[i] = fakeCID(uint64(i))
	}
	SortCIDs(tooMany)
	tests := []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"keys out of order", slices.Concat(raw[:1], raw[4:9], raw[1:4], raw[9:])},
		{"keys reversed", encodeFields(t, reversed, false)},
		{"non-minimal integer", slices.Concat(raw[:3], []byte{0x18, 0x01}, raw[4:])},
		{"duplicate key", slices.Concat([]byte{0xaa}, raw[1:], raw[1:4])},
		{"trailing byte", slices.Concat(raw, []byte{0})},
		{"two entries", slices.Concat(raw, raw)},
		{"truncated", raw[:len(raw)-1]},
		{"over MaxEntrySize", slices.Concat(raw, make([]byte, MaxEntrySize))},
		{"an integer", []byte{0x01}},
		{"a list", []byte{0x81, 0x01}},
		{"an empty map", []byte{0xa0}},
		{"unsigned encoding", mustEncode(t, e2, false)},
		{"field missing", encodeFields(t, withField(fs, fEpoch, nil), true)},
		{"field added", encodeFields(t, append(slices.Clone(fs), field{"extra", qp.Int(1)}), true)},
		{"field renamed", encodeFields(t, append(withField(fs, fEpoch, nil), field{"epoc", qp.Int(1)}), true)},
		{"version 2", encodeFields(t, withField(fs, fV, qp.Int(2)), true)},
		{"seq 0", encodeFields(t, withField(fs, fSeq, qp.Int(0)), true)},
		{"seq negative", encodeFields(t, withField(fs, fSeq, qp.Int(-2)), true)},
		{"seq a float", encodeFields(t, withField(fs, fSeq, qp.Float(2)), true)},
		{"seq a string", encodeFields(t, withField(fs, fSeq, qp.String("2")), true)},
		{"clock 0", encodeFields(t, withField(fs, fClock, qp.Int(0)), true)},
		{"epoch negative", encodeFields(t, withField(fs, fEpoch, qp.Int(-1)), true)},
		{"signature short", encodeFields(t, withField(fs, fSig, qp.Bytes(e2.Sig[:63])), true)},
		{"signature empty", encodeFields(t, withField(fs, fSig, qp.Bytes(nil)), true)},
		{"signature a string", encodeFields(t, withField(fs, fSig, qp.String(string(e2.Sig))), true)},
		{"cell key short", encodeFields(t, withField(fs, fCell, qp.Bytes(e2.Cell[:31])), true)},
		{"author empty", encodeFields(t, withField(fs, fAuthor, qp.Bytes(nil)), true)},
		{"author not a peer ID", encodeFields(t, withField(fs, fAuthor, qp.Bytes([]byte("not a peer"))), true)},
		{"author too long", encodeFields(t, withField(fs, fAuthor, qp.Bytes(make([]byte, maxAuthorLen+1))), true)},
		{"payload short", encodeFields(t, withField(fs, fPayload, qp.Bytes(e2.Payload[:payloadOverhead-1])), true)},
		{"payload long", encodeFields(t, withField(fs, fPayload, qp.Bytes(make([]byte, MaxPayload+payloadOverhead+1))), true)},
		{"parents a map", encodeFields(t, withField(fs, fParents, qp.Map(0, func(datamodel.MapAssembler) {})), true)},
		{"parents unsorted", encodeFields(t, withField(fs, fParents, parentsOf(p1, p0)), true)},
		{"parents repeated", encodeFields(t, withField(fs, fParents, parentsOf(p0, p0, p1)), true)},
		{"parent a raw CID", encodeFields(t, withField(fs, fParents, parentsOf(rawCID)), true)},
		{"parent sha3", encodeFields(t, withField(fs, fParents, parentsOf(sha3)), true)},
		{"parent bytes", encodeFields(t, withField(fs, fParents, qp.List(1, func(la datamodel.ListAssembler) {
			qp.ListEntry(la, qp.Bytes(p0.Bytes()))
		})), true)},
		{"too many parents", encodeFields(t, withField(fs, fParents, parentsOf(tooMany...)), true)},
		{"seq 2 without parents", encodeFields(t, withField(withField(fs, fParents, parentsOf()), fClock, qp.Int(1)), true)},
		{"clock 2 without parents", encodeFields(t, withField(withField(fs, fParents, parentsOf()), fSeq, qp.Int(1)), true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode(tt.raw)
			if !errors.Is(err, ErrMalformed) || e != nil {
				t.Fatalf("Decode = %v, %v; want ErrMalformed", e, err)
			}
			if tt.name == "keys out of order" || tt.name == "non-minimal integer" || tt.name == "keys reversed" {
				if !strings.Contains(err.Error(), "canonical") {
					t.Errorf("error %q does not say the encoding is not canonical", err)
				}
			}
		})
	}
	// The hand-built encoder agrees with the package's.
	if got := encodeFields(t, fs, true); !bytes.Equal(got, e2.Bytes()) {
		t.Errorf("encodeFields differs from the entry's encoding")
	}
}

func mustEncode(t testing.TB, e *Entry, withSig bool) []byte {
	t.Helper()
	b, err := e.encode(withSig)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteLimits(t *testing.T) {
	c := newTestCell(t, 2, 1)
	a := c.authors[0]
	first := Draft{Cell: c.key, Seq: 1, Clock: 1, Epoch: testEpoch}
	many := func(n int) []cid.Cid {
		cs := make([]cid.Cid, n)
		for i := range cs {
			cs[i] = fakeCID(uint64(i))
		}
		return SortCIDs(cs)
	}
	withParents := func(cs []cid.Cid) Draft { return Draft{Cell: c.key, Seq: 2, Clock: 2, Parents: cs, Epoch: testEpoch} }
	ok := []struct {
		name      string
		d         Draft
		plaintext []byte
	}{
		{"empty plaintext", first, nil},
		{"MaxPayload", first, make([]byte, MaxPayload)},
		{"MaxParents", withParents(many(MaxParents)), []byte("x")},
		{"both limits", withParents(many(MaxParents)), make([]byte, MaxPayload)},
		{"epoch 0", Draft{Cell: c.key, Seq: 1, Clock: 1}, nil},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			e := c.write(t, a, tt.d, tt.plaintext)
			got, err := Decode(e.Bytes())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			pt, err := Verify(got, c.key, c.roster, c.secret)
			if err != nil || !bytes.Equal(pt, tt.plaintext) {
				t.Fatalf("Verify: %d bytes, %v", len(pt), err)
			}
		})
	}
	unsorted := many(3)
	unsorted[0], unsorted[1] = unsorted[1], unsorted[0]
	bad := []struct {
		name      string
		d         Draft
		plaintext []byte
		malformed bool
	}{
		{"payload over MaxPayload", first, make([]byte, MaxPayload+1), false},
		{"parents over MaxParents", withParents(many(MaxParents + 1)), nil, true},
		{"parents unsorted", withParents(unsorted), nil, true},
		{"parents repeated", withParents(append(many(2), many(1)...)), nil, true},
		{"seq 0", Draft{Cell: c.key, Clock: 1}, nil, true},
		{"clock 0", Draft{Cell: c.key, Seq: 1}, nil, true},
		{"seq 2 without parents", Draft{Cell: c.key, Seq: 2, Clock: 1}, nil, true},
		{"clock 2 without parents", Draft{Cell: c.key, Seq: 1, Clock: 2}, nil, true},
		{"seq over the counters", Draft{Cell: c.key, Seq: 1 << 63, Clock: 2, Parents: many(1)}, nil, true},
		{"no cell key", Draft{Seq: 1, Clock: 1}, nil, true},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Write(tt.d, a.key, c.secrets[0], tt.plaintext, c.nonces)
			if err == nil || e != nil || errors.Is(err, ErrMalformed) != tt.malformed {
				t.Fatalf("Write = %v, %v", e, err)
			}
		})
	}
	if _, err := Write(first, a.key, c.secrets[0], nil, bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("Write with a short source of nonces succeeded")
	}
}

func TestSortCIDs(t *testing.T) {
	a, b, c := fakeCID(1), fakeCID(2), fakeCID(3)
	got := SortCIDs([]cid.Cid{c, a, b, a, c})
	want := []cid.Cid{a, b, c}
	slices.SortFunc(want, func(x, y cid.Cid) int { return bytes.Compare(x.Bytes(), y.Bytes()) })
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("SortCIDs (-want +got):\n%s", diff)
	}
	if got := SortCIDs(nil); len(got) != 0 {
		t.Errorf("SortCIDs(nil) = %v", got)
	}
}

// TestDecodeAllocation: a few bytes that declare a long string must not
// make Decode allocate that length (the CBOR decoder allocates what a
// header says before it reads): a sync frame of such blocks would cost
// gigabytes.
func TestDecodeAllocation(t *testing.T) {
	_, e1, _ := twoEntries(t)
	inputs := map[string][]byte{
		"text key of 32 MiB": slices.Concat([]byte{0xa9, 0x7a, 0x01, 0xff, 0xff, 0xff}, e1.Bytes()[1:]),
		"bytes of 32 MiB":    slices.Concat(e1.Bytes()[:9], []byte{0x63, 's', 'i', 'g', 0x5a, 0x01, 0xff, 0xff, 0xff}),
		"list of 2^32 items": slices.Concat([]byte{0x9a, 0xff, 0xff, 0xff, 0xff}, e1.Bytes()),
		"map of 2^32 pairs":  slices.Concat([]byte{0xba, 0xff, 0xff, 0xff, 0xff}, e1.Bytes()),
		"indefinite string":  slices.Concat([]byte{0xa9, 0x7f, 0x7a, 0x01, 0xff, 0xff, 0xff}, e1.Bytes()[1:]),
	}
	for name, raw := range inputs {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range 10 {
				if _, err := Decode(raw); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode: %v", err)
				}
			}
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("10 Decodes of %d bytes allocated %d MiB", len(raw), n>>20)
			}
		})
	}
}

// TestUnsignedMatchesEncoding: the signed bytes cut out of a decoded
// block are exactly the encoding without "sig", for sequence numbers of
// every CBOR integer width.
func TestUnsignedMatchesEncoding(t *testing.T) {
	c := newTestCell(t, 11, 1)
	a := c.authors[0]
	for _, seq := range []uint64{1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, maxCounter} {
		d := Draft{Cell: c.key, Seq: seq, Clock: seq, Epoch: 1, Parents: []cid.Cid{fakeCID(seq)}}
		e := c.write(t, a, d, []byte("payload"))
		got, err := Decode(e.Bytes())
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		body, err := got.encode(false)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte(signDomain), body...)
		if cut := got.unsigned(); !bytes.Equal(cut, want) {
			t.Fatalf("seq %d: unsigned() =\n%x\nwant\n%x", seq, cut, want)
		}
	}
}
