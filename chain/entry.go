package chain

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

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

// Limits of an entry, checked by Decode and by Sign.
const (
	// MaxPayload is the largest plaintext an entry carries. Larger data
	// belongs in a blob, referenced from an entry.
	MaxPayload = 256 << 10
	// MaxParents bounds an entry's parents: the heads its author had seen.
	MaxParents = 1100
	// MaxEntrySize bounds an encoded entry.
	MaxEntrySize = MaxPayload + 128<<10
	// maxCounter keeps sequence numbers, clocks and epochs within the
	// non-negative integers of the IPLD data model.
	maxCounter = 1<<63 - 1
	// maxAuthorLen bounds a peer ID's bytes.
	maxAuthorLen = 128
)

// Version is the entry format this package writes and reads.
const Version = 1

// ErrMalformed means bytes are not a well-formed entry (or sync message).
var ErrMalformed = errors.New("chain: malformed")

// Entry is one record of a cell's chain. It is encoded as a dag-cbor map
// and stored as an IPLD block; its CID is the hash of that encoding.
//
// The author signs every field but Sig. Payload is sealed under a key
// derived from the cell secret of Epoch (see Seal), so only members of the
// cell in that epoch can read it.
type Entry struct {
	Cell    ed25519.PublicKey // the cell's key
	Author  peer.ID           // the member node that wrote it
	Seq     uint64            // 1 for the author's first entry, then +1
	Clock   uint64            // Lamport clock: 1 + the largest clock of Parents, 1 without parents
	Parents []cid.Cid         // the heads the author had seen, sorted by bytes, unique
	Epoch   uint64            // the key epoch Payload is sealed in
	Payload []byte            // nonce and AEAD ciphertext
	Sig     []byte            // Ed25519 by Author

	raw []byte  // the encoding, set by Sign and Decode
	id  cid.Cid // the hash of raw
}

// CID returns the entry's content identifier. It is undefined until the
// entry was made by Sign or Decode.
func (e *Entry) CID() cid.Cid { return e.id }

// Bytes returns the entry's dag-cbor encoding: the block stored under its
// CID. The caller must not modify it.
func (e *Entry) Bytes() []byte { return e.raw }

// Pos returns the entry's place in the chain's order.
func (e *Entry) Pos() Pos { return Pos{Clock: e.Clock, CID: e.id} }

// entry field names, in dag-cbor's canonical order (shorter first, then
// bytewise).
const (
	fV       = "v"
	fSeq     = "seq"
	fSig     = "sig"
	fCell    = "cell"
	fClock   = "clock"
	fEpoch   = "epoch"
	fAuthor  = "author"
	fParents = "parents"
	fPayload = "payload"
)

var cborEncoder = dagcbor.EncodeOptions{AllowLinks: true, MapSortMode: codec.MapSortMode_RFC7049}

// encode returns the dag-cbor encoding of e, without Sig when unsigned.
func (e *Entry) encode(withSig bool) ([]byte, error) {
	fields := int64(8)
	if withSig {
		fields++
	}
	n, err := qp.BuildMap(basicnode.Prototype.Map, fields, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, fV, qp.Int(Version))
		qp.MapEntry(ma, fSeq, qp.Int(int64(e.Seq)))
		if withSig {
			qp.MapEntry(ma, fSig, qp.Bytes(e.Sig))
		}
		qp.MapEntry(ma, fCell, qp.Bytes(e.Cell))
		qp.MapEntry(ma, fClock, qp.Int(int64(e.Clock)))
		qp.MapEntry(ma, fEpoch, qp.Int(int64(e.Epoch)))
		qp.MapEntry(ma, fAuthor, qp.Bytes([]byte(e.Author)))
		qp.MapEntry(ma, fParents, qp.List(int64(len(e.Parents)), func(la datamodel.ListAssembler) {
			for _, p := range e.Parents {
				qp.ListEntry(la, qp.Link(cidlink.Link{Cid: p}))
			}
		}))
		qp.MapEntry(ma, fPayload, qp.Bytes(e.Payload))
	})
	if err != nil {
		return nil, fmt.Errorf("chain: build entry: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(len(e.Payload) + len(e.Parents)*40 + 256)
	if err := cborEncoder.Encode(n, &buf); err != nil {
		return nil, fmt.Errorf("chain: encode entry: %w", err)
	}
	return buf.Bytes(), nil
}

// check verifies the limits and the shape of e's fields (not its
// signature, nor its place in a chain).
func (e *Entry) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w entry: "+format, append([]any{ErrMalformed}, args...)...)
	}
	switch {
	case len(e.Cell) != ed25519.PublicKeySize:
		return bad("cell key of %d bytes", len(e.Cell))
	case len(e.Author) == 0 || len(e.Author) > maxAuthorLen:
		return bad("author of %d bytes", len(e.Author))
	case e.Seq == 0 || e.Seq > maxCounter:
		return bad("sequence number %d", e.Seq)
	case e.Clock == 0 || e.Clock > maxCounter:
		return bad("clock %d", e.Clock)
	case e.Epoch > maxCounter:
		return bad("epoch %d", e.Epoch)
	case len(e.Parents) > MaxParents:
		return bad("%d parents", len(e.Parents))
	case len(e.Payload) < payloadOverhead || len(e.Payload) > MaxPayload+payloadOverhead:
		return bad("payload of %d bytes", len(e.Payload))
	case e.Sig != nil && len(e.Sig) != ed25519.SignatureSize:
		return bad("signature of %d bytes", len(e.Sig))
	case e.Seq > 1 && len(e.Parents) == 0:
		return bad("sequence number %d without parents", e.Seq)
	case len(e.Parents) == 0 && e.Clock != 1:
		return bad("clock %d without parents", e.Clock)
	}
	if _, err := e.Author.ExtractPublicKey(); err != nil {
		return bad("author %q is not a peer ID with an inline key: %v", e.Author, err)
	}
	for i, p := range e.Parents {
		if p.Prefix() != cidPrefix {
			return bad("parent %s is not a dag-cbor sha2-256 CIDv1", p)
		}
		if i > 0 && bytes.Compare(e.Parents[i-1].Bytes(), p.Bytes()) >= 0 {
			return bad("parents not sorted or not unique")
		}
	}
	return nil
}

// cidPrefix is the CID of every entry: v1, dag-cbor, sha2-256.
var cidPrefix = cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: 32}

// SortCIDs sorts cs by their bytes and drops duplicates, as an entry's
// parents must be; it returns the shortened slice.
func SortCIDs(cs []cid.Cid) []cid.Cid {
	slices.SortFunc(cs, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	return slices.CompactFunc(cs, func(a, b cid.Cid) bool { return a.Equals(b) })
}

// Decode parses an entry block. It accepts only the canonical encoding
// (the one Sign makes), so that one entry has one CID; it checks the
// fields' limits and shape but not the signature (see Verify).
func Decode(raw []byte) (*Entry, error) {
	if len(raw) > MaxEntrySize {
		return nil, fmt.Errorf("%w entry: %d bytes, limit %d", ErrMalformed, len(raw), MaxEntrySize)
	}
	if !lengthsFit(raw) {
		return nil, fmt.Errorf("%w entry: a length runs past the end", ErrMalformed)
	}
	nb := basicnode.Prototype.Map.NewBuilder()
	dec := dagcbor.DecodeOptions{AllowLinks: true, AllocationBudget: 4 * MaxEntrySize, MaxDepth: 4}
	if err := dec.Decode(nb, bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("%w entry: %v", ErrMalformed, err)
	}
	e, err := fromNode(nb.Build())
	if err != nil {
		return nil, err
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	if e.Sig == nil {
		return nil, fmt.Errorf("%w entry: no signature", ErrMalformed)
	}
	canon, err := e.encode(true)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, raw) {
		return nil, fmt.Errorf("%w entry: not in canonical dag-cbor", ErrMalformed)
	}
	e.raw = slices.Clone(raw)
	e.id, err = cidPrefix.Sum(e.raw)
	if err != nil {
		return nil, fmt.Errorf("chain: hash entry: %w", err)
	}
	return e, nil
}

// lengthsFit reports whether every byte string, text string, list and map
// of the CBOR item at the start of raw fits in the bytes that follow its
// header, with no indefinite lengths (dag-cbor has none). The CBOR decoder
// allocates what a header says before it reads: without this, a few bytes
// could make it allocate 32 MiB.
func lengthsFit(raw []byte) bool {
	for items := 1; items > 0; items-- {
		if len(raw) == 0 {
			return false
		}
		major, info := raw[0]>>5, raw[0]&31
		raw = raw[1:]
		n := uint64(info)
		switch {
		case info < 24:
		case info < 28:
			size := 1 << (info - 24)
			if len(raw) < size {
				return false
			}
			n = 0
			for _, b := range raw[:size] {
				n = n<<8 | uint64(b)
			}
			raw = raw[size:]
		default:
			return false
		}
		switch major {
		case 2, 3: // bytes, text
			if n > uint64(len(raw)) {
				return false
			}
			raw = raw[n:]
		case 4: // list
			if n > uint64(len(raw)) {
				return false
			}
			items += int(n)
		case 5: // map
			if n > uint64(len(raw)/2) {
				return false
			}
			items += 2 * int(n)
		case 6: // tag
			items++
		}
	}
	return true
}

func fromNode(n datamodel.Node) (*Entry, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w entry: "+format, append([]any{ErrMalformed}, args...)...)
	}
	if n.Length() != 9 {
		return nil, bad("%d fields, want 9", n.Length())
	}
	field := func(name string) datamodel.Node {
		v, err := n.LookupByString(name)
		if err != nil {
			return nil
		}
		return v
	}
	counter := func(name string) (uint64, error) {
		v := field(name)
		if v == nil {
			return 0, bad("no %q", name)
		}
		i, err := v.AsInt()
		if err != nil || i < 0 {
			return 0, bad("%q is not a non-negative integer", name)
		}
		return uint64(i), nil
	}
	byteField := func(name string) ([]byte, error) {
		v := field(name)
		if v == nil {
			return nil, bad("no %q", name)
		}
		b, err := v.AsBytes()
		if err != nil {
			return nil, bad("%q is not bytes", name)
		}
		return b, nil
	}
	var e Entry
	var err error
	v, err := counter(fV)
	if err != nil {
		return nil, err
	}
	if v != Version {
		return nil, bad("version %d, this node reads version %d", v, Version)
	}
	if e.Seq, err = counter(fSeq); err != nil {
		return nil, err
	}
	if e.Clock, err = counter(fClock); err != nil {
		return nil, err
	}
	if e.Epoch, err = counter(fEpoch); err != nil {
		return nil, err
	}
	if e.Cell, err = byteField(fCell); err != nil {
		return nil, err
	}
	author, err := byteField(fAuthor)
	if err != nil {
		return nil, err
	}
	e.Author = peer.ID(author)
	if e.Payload, err = byteField(fPayload); err != nil {
		return nil, err
	}
	if e.Sig, err = byteField(fSig); err != nil {
		return nil, err
	}
	parents := field(fParents)
	if parents == nil || parents.Kind() != datamodel.Kind_List {
		return nil, bad("%q is not a list", fParents)
	}
	if parents.Length() > MaxParents {
		return nil, bad("%d parents", parents.Length())
	}
	it := parents.ListIterator()
	for !it.Done() {
		_, p, err := it.Next()
		if err != nil {
			return nil, bad("parents: %v", err)
		}
		l, err := p.AsLink()
		if err != nil {
			return nil, bad("a parent is not a link")
		}
		cl, ok := l.(cidlink.Link)
		if !ok {
			return nil, bad("a parent is not a CID")
		}
		e.Parents = append(e.Parents, cl.Cid)
	}
	return &e, nil
}
