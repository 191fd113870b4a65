package blob

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Entry is one entry of a directory.
type Entry struct {
	Name string
	Size int64 // plaintext bytes; for a subdirectory, the sum of its files'
	Cap  Capability
}

// Bounds of a directory; past them, ImportDir fails and ReadDir says
// ErrMalformed.
const (
	// MaxNameLen is the longest entry name, in bytes.
	MaxNameLen = 255
	// MaxDirEntries is the most entries of one directory.
	MaxDirEntries = 1 << 16
	// maxListing bounds the plaintext of an encrypted listing: every
	// entry at its largest (name, size, CID, key).
	maxListing = 1 + binary.MaxVarintLen64 + MaxDirEntries*(2+MaxNameLen+binary.MaxVarintLen64+1+1+64+KeySize)
	// maxDirDepth bounds the nesting of directories ImportDir follows and
	// ReadDir sums sizes through.
	maxDirDepth = 64
)

// listingVersion is the first byte of an encrypted listing.
const listingVersion = 1

// Entry flags in an encrypted listing.
const (
	flagDir    = 1 << 0
	flagPublic = 1 << 1
)

// checkName reports whether name may be an entry's: UTF-8, 1 to 255
// bytes, no '/' nor NUL, not "." or "..".
func checkName(name string) error {
	switch {
	case name == "" || len(name) > MaxNameLen:
		return fmt.Errorf("name of %d bytes: %w", len(name), ErrMalformed)
	case name == "." || name == "..":
		return fmt.Errorf("name %q: %w", name, ErrMalformed)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q: %w", name, ErrMalformed)
	}
	return nil
}

// encodeListing encodes entries (sorted by name, bytewise, unique) as the
// plaintext of an encrypted listing, version 1 (see the package doc):
//
//	version (1 byte, 1) ‖ uvarint count ‖ count × entry
//	entry = uvarint len ‖ name ‖ uvarint size ‖ flags (1 byte) ‖
//	        uvarint len ‖ root CID (binary) ‖ key (32 bytes, absent if public)
func encodeListing(entries []Entry) ([]byte, error) {
	if len(entries) > MaxDirEntries {
		return nil, fmt.Errorf("%d entries, at most %d: %w", len(entries), MaxDirEntries, ErrMalformed)
	}
	b := []byte{listingVersion}
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for i, e := range entries {
		if err := checkName(e.Name); err != nil {
			return nil, err
		}
		if i > 0 && entries[i-1].Name >= e.Name {
			return nil, fmt.Errorf("names %q, %q not sorted and unique: %w", entries[i-1].Name, e.Name, ErrMalformed)
		}
		if e.Size < 0 {
			return nil, fmt.Errorf("size %d: %w", e.Size, ErrMalformed)
		}
		b = binary.AppendUvarint(b, uint64(len(e.Name)))
		b = append(b, e.Name...)
		b = binary.AppendUvarint(b, uint64(e.Size))
		var f byte
		if e.Cap.Dir {
			f |= flagDir
		}
		if e.Cap.Public {
			f |= flagPublic
		}
		b = append(b, f)
		c := e.Cap.Root.Bytes()
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
		if !e.Cap.Public {
			b = append(b, e.Cap.Key[:]...)
		}
	}
	return b, nil
}

// decodeListing decodes an encrypted listing's plaintext; anything but
// what encodeListing makes is ErrMalformed.
func decodeListing(b []byte) ([]Entry, error) {
	if len(b) > maxListing {
		return nil, fmt.Errorf("listing of %d bytes: %w", len(b), ErrMalformed)
	}
	if len(b) == 0 || b[0] != listingVersion {
		return nil, fmt.Errorf("listing version: %w", ErrMalformed)
	}
	r := bytes.NewReader(b[1:])
	uv := func(what string, limit uint64) (uint64, error) {
		before := r.Len()
		v, err := binary.ReadUvarint(r)
		// Only the shortest encoding: one listing, one byte string.
		if err != nil || v > limit || before-r.Len() != len(binary.AppendUvarint(nil, v)) {
			return 0, fmt.Errorf("listing: %s: %w", what, ErrMalformed)
		}
		return v, nil
	}
	n, err := uv("count", MaxDirEntries)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, min(n, uint64(len(b)/8)))
	for i := uint64(0); i < n; i++ {
		var e Entry
		l, err := uv("name length", MaxNameLen)
		if err != nil {
			return nil, err
		}
		name := make([]byte, l)
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, fmt.Errorf("listing: name: %w", ErrMalformed)
		}
		e.Name = string(name)
		if err := checkName(e.Name); err != nil {
			return nil, fmt.Errorf("listing: %w", err)
		}
		if i > 0 && out[i-1].Name >= e.Name {
			return nil, fmt.Errorf("listing: names not sorted and unique: %w", ErrMalformed)
		}
		size, err := uv("size", 1<<62)
		if err != nil {
			return nil, err
		}
		e.Size = int64(size)
		f, err := r.ReadByte()
		if err != nil || f&^(flagDir|flagPublic) != 0 {
			return nil, fmt.Errorf("listing: flags: %w", ErrMalformed)
		}
		e.Cap.Dir, e.Cap.Public = f&flagDir != 0, f&flagPublic != 0
		cl, err := uv("CID length", 64)
		if err != nil {
			return nil, err
		}
		cb := make([]byte, cl)
		if _, err := io.ReadFull(r, cb); err != nil {
			return nil, fmt.Errorf("listing: CID: %w", ErrMalformed)
		}
		c, err := cid.Cast(cb)
		if err != nil {
			return nil, fmt.Errorf("listing: CID: %v: %w", err, ErrMalformed)
		}
		// The same rules as a capability's root, and canonical bytes.
		if _, err := parseRoot(c.String()); err != nil || !bytes.Equal(c.Bytes(), cb) {
			return nil, fmt.Errorf("listing: CID %s: %w", c, ErrMalformed)
		}
		e.Cap.Root = c
		if !e.Cap.Public {
			if _, err := io.ReadFull(r, e.Cap.Key[:]); err != nil {
				return nil, fmt.Errorf("listing: key: %w", ErrMalformed)
			}
		}
		out = append(out, e)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("listing: %d bytes after the entries: %w", r.Len(), ErrMalformed)
	}
	return out, nil
}

// ImportDir imports the tree of fsys (from ".") into dst: each regular
// file a blob (ImportFile with o), each directory a listing blob of its
// entries (Cap.Dir). Encrypted: the listing is sealed like a file with the
// HKDF info "exopeer blob v1 dir", under o.Key if given (the top listing
// only: every file gets its own key), else a key derived from the listing
// with o.Secret, else a random one. Public: plain UnixFS directories, as
// Kubo's `ipfs add -r` makes them (up to its sharding threshold). The
// returned Size is the sum of the files' sizes; Blocks and Bytes count
// everything put. o.Progress reports the files' bytes imported so far.
// Anything but regular files and directories (symlinks, devices) is an
// error.
func ImportDir(ctx context.Context, fsys fs.FS, dst BlockPutter, o ImportOptions) (Imported, error) {
	var total Imported
	base := int64(0)
	progress := o.Progress
	return importDir(ctx, fsys, ".", dst, o, o.Key, 0, &total, &base, progress)
}

func importDir(ctx context.Context, fsys fs.FS, dir string, dst BlockPutter, o ImportOptions, key *Key, depth int, total *Imported, base *int64, progress func(int64)) (Imported, error) {
	if depth > maxDirDepth {
		return Imported{}, fmt.Errorf("blob: %s: directories nested deeper than %d", dir, maxDirDepth)
	}
	des, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return Imported{}, fmt.Errorf("blob: %w", err)
	}
	if len(des) > MaxDirEntries {
		return Imported{}, fmt.Errorf("blob: %s: %d entries, at most %d", dir, len(des), MaxDirEntries)
	}
	slices.SortFunc(des, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	entries := make([]Entry, 0, len(des))
	tsizes := make([]uint64, 0, len(des))
	fo := o
	fo.Key = nil
	var size int64
	for _, de := range des {
		p := path.Join(dir, de.Name())
		if err := checkName(de.Name()); err != nil {
			return Imported{}, fmt.Errorf("blob: %s: %w", p, err)
		}
		var im Imported
		switch {
		case de.IsDir():
			im, err = importDir(ctx, fsys, p, dst, o, nil, depth+1, total, base, progress)
		case de.Type().IsRegular():
			im, err = importFSFile(ctx, fsys, p, dst, fo, base, progress)
		default:
			err = fmt.Errorf("blob: %s: not a regular file nor a directory (%v)", p, de.Type())
		}
		if err != nil {
			return Imported{}, err
		}
		entries = append(entries, Entry{Name: de.Name(), Size: im.Size, Cap: im.Cap})
		tsizes = append(tsizes, im.tsize)
		size += im.Size
		if !de.IsDir() { // a subdirectory counted its own
			total.Blocks += im.Blocks
			total.Bytes += im.Bytes
		}
	}
	var im Imported
	if o.Public {
		im, err = putPublicDir(ctx, dst, entries, tsizes)
	} else {
		im, err = putListing(ctx, dst, entries, o, key)
	}
	if err != nil {
		return Imported{}, err
	}
	total.Blocks += im.Blocks
	total.Bytes += im.Bytes
	im.Size = size
	if depth == 0 {
		im.Blocks, im.Bytes = total.Blocks, total.Bytes
	}
	return im, nil
}

// importFSFile imports one file of fsys, its progress after base.
func importFSFile(ctx context.Context, fsys fs.FS, p string, dst BlockPutter, o ImportOptions, base *int64, progress func(int64)) (Imported, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return Imported{}, fmt.Errorf("blob: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Imported{}, fmt.Errorf("blob: %w", err)
	}
	if progress != nil {
		b := *base
		o.Progress = func(n int64) { progress(b + n) }
	}
	var im Imported
	if ra, ok := f.(io.ReaderAt); ok {
		im, err = ImportFile(ctx, ra, st.Size(), dst, o)
	} else if o.Secret != nil && !o.Public {
		return Imported{}, fmt.Errorf("blob: %s: %w", p, ErrNeedSize)
	} else {
		im, err = Import(ctx, f, dst, o)
	}
	if err != nil {
		return Imported{}, fmt.Errorf("blob: %s: %w", p, err)
	}
	*base += im.Size
	return im, nil
}

// putListing seals the listing of entries as a blob (key: key, else
// derived from the listing with o.Secret, else random).
func putListing(ctx context.Context, dst BlockPutter, entries []Entry, o ImportOptions, key *Key) (Imported, error) {
	plain, err := encodeListing(entries)
	if err != nil {
		return Imported{}, fmt.Errorf("blob: %w", err)
	}
	var k Key
	switch {
	case key != nil:
		k = *key
	case o.Secret != nil:
		h, err := HashContent(ctx, bytes.NewReader(plain), int64(len(plain)))
		if err != nil {
			return Imported{}, err
		}
		k = DeriveKey(o.Secret, h)
	default:
		if k, err = NewKey(o.Rand); err != nil {
			return Imported{}, err
		}
	}
	lo := ImportOptions{Workers: o.Workers}
	im, err := importStream(ctx, bytes.NewReader(plain), dst, lo, k, infoDir)
	if err != nil {
		return Imported{}, err
	}
	im.Cap.Dir = true
	return im, nil
}

// putPublicDir makes the UnixFS directory node of entries, as boxo's basic
// directory (uio.NewDirectory) does with CIDv1.
func putPublicDir(ctx context.Context, dst BlockPutter, entries []Entry, tsizes []uint64) (Imported, error) {
	nd := ft.EmptyDirNode()
	if err := nd.SetCidBuilder(cidPrefix); err != nil {
		return Imported{}, err
	}
	tsize := uint64(0)
	for i, e := range entries {
		if err := nd.AddRawLink(e.Name, &ipld.Link{Name: e.Name, Size: tsizes[i], Cid: e.Cap.Root}); err != nil {
			return Imported{}, fmt.Errorf("blob: %w", err)
		}
		tsize += tsizes[i]
	}
	raw := nd.RawData()
	if len(raw) > maxBlock {
		return Imported{}, fmt.Errorf("blob: a public directory node of %d bytes (too many entries for one block)", len(raw))
	}
	b, err := blockformat.NewBlockWithCid(raw, nd.Cid())
	if err != nil {
		return Imported{}, err
	}
	if err := dst.PutMany(ctx, []blockformat.Block{b}); err != nil {
		return Imported{}, fmt.Errorf("blob: put: %w", err)
	}
	return Imported{Cap: Capability{Root: b.Cid(), Public: true, Dir: true}, Blocks: 1, Bytes: int64(len(raw)), tsize: tsize + uint64(len(raw))}, nil
}

// ReadDir lists the directory c. Encrypted: it reads and opens the
// listing (ErrWrongKey, ErrMalformed). Public: it reads the UnixFS
// directory node and the roots of its entries (one GetBlocks per level),
// for their types and sizes, down through subdirectories to sum their
// sizes. ErrNotDir if c is not a directory.
func ReadDir(ctx context.Context, g BlockGetter, c Capability) ([]Entry, error) {
	if !c.Dir {
		return nil, ErrNotDir
	}
	if c.Public {
		budget := maxPublicTree
		return readPublicDir(ctx, g, c.Root, 0, &budget)
	}
	r, err := openStream(ctx, g, c, ReaderOptions{Prefetch: -1}, infoDir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Size() > maxListing {
		return nil, fmt.Errorf("blob: listing of %d bytes: %w", r.Size(), ErrMalformed)
	}
	plain := make([]byte, r.Size())
	if _, err := r.ReadAt(plain, 0); err != nil && err != io.EOF {
		return nil, err
	}
	es, err := decodeListing(plain)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return es, nil
}

// maxPublicTree bounds the entries ReadDir of a public directory reads,
// subdirectories included (to sum their sizes).
const maxPublicTree = 1 << 20

// readPublicDir lists a UnixFS directory, reading at most *budget entries
// of the tree under it.
func readPublicDir(ctx context.Context, g BlockGetter, root cid.Cid, depth int, budget *int) ([]Entry, error) {
	if depth > maxDirDepth {
		return nil, fmt.Errorf("blob: directories nested deeper than %d: %w", maxDirDepth, ErrMalformed)
	}
	bs, err := g.GetBlocks(ctx, []cid.Cid{root})
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if err := checkBlocks(bs, []cid.Cid{root}); err != nil {
		return nil, err
	}
	links, err := dirLinks(bs[0])
	if err != nil {
		return nil, err
	}
	if *budget -= len(links); *budget < 0 {
		return nil, fmt.Errorf("blob: a public tree of more than %d entries: %w", maxPublicTree, ErrMalformed)
	}
	out := make([]Entry, len(links))
	// The entries' roots, for their sizes and types, a batch at a time:
	// a root may be a leaf of up to 2 MiB (maxBlock), and the entries may
	// all name the same one.
	for from := 0; from < len(links); from += dirBatch {
		batch := links[from:min(len(links), from+dirBatch)]
		cs := make([]cid.Cid, len(batch))
		for i, l := range batch {
			cs[i] = l.Cid
		}
		kids, err := g.GetBlocks(ctx, cs)
		if err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
		if err := checkBlocks(kids, cs); err != nil {
			return nil, err
		}
		for i, l := range batch {
			e := &out[from+i]
			*e = Entry{Name: l.Name, Cap: Capability{Root: l.Cid, Public: true}}
			n, err := decodeFileNode(kids[i])
			switch {
			case err == nil:
				e.Size = int64(n.total)
			case errors.Is(err, ErrIsDir):
				e.Cap.Dir = true
			default:
				return nil, err
			}
		}
	}
	for i := range out {
		if !out[i].Cap.Dir {
			continue
		}
		sub, err := readPublicDir(ctx, g, out[i].Cap.Root, depth+1, budget)
		if err != nil {
			return nil, err
		}
		for _, e := range sub {
			out[i].Size += e.Size
		}
	}
	return out, nil
}

// dirBatch is how many entries' roots readPublicDir asks for at once.
const dirBatch = 64

// dirLinks returns the links of a plain UnixFS directory node, checking
// their names; a HAMT-sharded directory is not read (ErrMalformed).
func dirLinks(b blockformat.Block) ([]*ipld.Link, error) {
	if b.Cid().Type() != cid.DagProtobuf {
		return nil, fmt.Errorf("blob: %s: %w", b.Cid(), ErrNotDir)
	}
	if len(b.RawData()) > maxBlock {
		return nil, fmt.Errorf("blob: %s: %w", b.Cid(), ErrMalformed)
	}
	pn, err := dag.DecodeProtobuf(b.RawData())
	if err != nil {
		return nil, fmt.Errorf("blob: %s: %v: %w", b.Cid(), err, ErrMalformed)
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		return nil, fmt.Errorf("blob: %s: %v: %w", b.Cid(), err, ErrMalformed)
	}
	if fsn.Type() != ft.TDirectory {
		return nil, fmt.Errorf("blob: %s (UnixFS type %v): %w", b.Cid(), fsn.Type(), ErrNotDir)
	}
	links := pn.Links()
	if len(links) > MaxDirEntries {
		return nil, fmt.Errorf("blob: %s: %d entries: %w", b.Cid(), len(links), ErrMalformed)
	}
	for _, l := range links {
		if err := checkName(l.Name); err != nil {
			return nil, fmt.Errorf("blob: %s: %w", b.Cid(), err)
		}
	}
	return links, nil
}
