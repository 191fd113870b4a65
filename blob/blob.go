package blob

import (
	"context"
	"errors"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Sizes of the encrypted format, version 1 (see the package documentation).
const (
	// KeySize is the length of a blob key.
	KeySize = 32
	// SegmentSize is the plaintext of one sealed segment; the last segment
	// of a blob may be shorter (even empty).
	SegmentSize = 65520
	// TagSize is the AEAD tag that sealing adds to each segment.
	TagSize = 16
	// SealedSegmentSize is one full sealed segment: exactly 64 KiB, so that
	// leaves made of whole segments line up with segment boundaries.
	SealedSegmentSize = SegmentSize + TagSize

	// LeafSize is the ciphertext held by one leaf block of an encrypted
	// blob: 16 whole sealed segments. (Chosen from the storage and fetch
	// measurements; see blocks/README.md.)
	LeafSize = 16 * SealedSegmentSize
	// PublicLeafSize is the chunk size of public blobs: Kubo's default
	// (size-262144), so that `ipfs add --cid-version=1 --raw-leaves` gives
	// the same root CID for the same file.
	PublicLeafSize = 256 << 10
	// MaxLinks is the most links an internal node of the DAG holds: Kubo's
	// default (174).
	MaxLinks = 174
)

// Errors. Each is wrapped; errors.Is finds it.
var (
	// ErrWrongKey means a block that matched its CID did not decrypt under
	// the capability's key: the key is not the blob's (or the blob was not
	// made by this format with that key).
	ErrWrongKey = errors.New("blob: wrong key")
	// ErrMalformed means a block or a listing that matched its CID is not
	// what the format allows (a node that is not UnixFS, sizes that do not
	// add up, a ciphertext length no sealed stream has, a bad listing).
	ErrMalformed = errors.New("blob: malformed")
	// ErrCapability means a capability string does not parse.
	ErrCapability = errors.New("blob: bad capability")
	// ErrNotDir is the error for listing a capability that is not a
	// directory; ErrIsDir for reading one as a file.
	ErrNotDir = errors.New("blob: not a directory")
	ErrIsDir  = errors.New("blob: is a directory")
)

// A Key is the symmetric key of an encrypted blob.
type Key [KeySize]byte

// Capability is everything needed to read a blob: its root CID and, unless
// the blob is public, its key. Its text form is
//
//	exo://blob/<root CID, base32 CIDv1>#<key, base64url without padding>
//	exo://blob/<root CID>?dir#<key>      a directory
//	exo://blob/<root CID>                a public blob (no key)
//	exo://blob/<root CID>?dir            a public directory
type Capability struct {
	Root   cid.Cid
	Key    Key
	Public bool // no key: plain UnixFS
	Dir    bool // a directory
}

// BlockGetter is where a Reader and Walk get blocks. Every block it
// returns has been verified against its CID (blocks.Store and the
// exchange do that). It must be safe for concurrent use.
type BlockGetter interface {
	// GetBlocks returns the blocks for cs, in the order of cs, fetching
	// those missing together. It blocks until all are there or ctx ends.
	// It does not modify cs.
	GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error)
}

// BlockPutter is where Import writes blocks. It must be safe for
// concurrent use; Import calls it from several goroutines. It takes
// ownership of the blocks (and of the slice).
type BlockPutter interface {
	PutMany(ctx context.Context, bs []blockformat.Block) error
}
