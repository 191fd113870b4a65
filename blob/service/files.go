package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/store"
)

// FileType is the trait type of a file of the cell (store.FileSchema).
const FileType = "exo.file"

// DirMedia is the media type of a folder added as a file.
const DirMedia = "inode/directory"

// File is one of the cell's files: an entity with an exo.file trait.
type File struct {
	ID        store.EntityID
	Name      string // base name
	Size      int64  // plaintext bytes (a folder: its files' together)
	MediaType string
	Cap       blob.Capability
	AddedBy   string // peer ID of the node that added it
	Added     time.Time
	// From is the cell key (64 hex digits) of the contact that shared
	// it with the cell, empty for the cell's own file: its blocks are
	// fetched from that contact's devices too (shared.go).
	From string
	// Offered is a file shared by a contact over the cell's budget for
	// it (Config.ShareBudget): the policy does not fetch it; PinFile does.
	Offered bool
	// Pinned: this device keeps the blob (its policy or a PinFile).
	Pinned bool
	// Held is the bytes of the blob's blocks this device holds.
	Held int64
}

// MaxFiles bounds the files of a cell a node lists (and so holds in
// memory at once). Past it listing fails, and the follower changes no pin.
const MaxFiles = 200_000

// fileDoc is an exo.file document.
type fileDoc struct {
	Name  string    `json:"name"`
	Size  int64     `json:"size"`
	Media string    `json:"media,omitempty"`
	Cap   string    `json:"cap"`
	By    string    `json:"by,omitempty"`
	Added time.Time `json:"added"`
	// From and Offered: a file a contact shared (File); kept, not indexed.
	From    string `json:"from,omitempty"`
	Offered bool   `json:"offered,omitempty"`
}

// fileReason is the pin reason of a file kept by this device.
func fileReason(id store.EntityID) string { return "file:" + id.String() }

// AddFiles adds each path (a file, or a folder as a directory blob) as
// one of the cell's files, each its own exo.file entity, under a key
// derived from the cell's blob secret and the content. A file's name is
// its base name. Each file's blocks are held until its blob is pinned
// "file:<entity>" and its entity written: one whose import fails lists
// nothing (its blocks go at the next collection). It stops at the first
// failure and returns the files added before it with the error.
func (s *Service) AddFiles(ctx context.Context, paths []string, o AddOptions) ([]File, error) {
	if _, err := s.member(); err != nil {
		return nil, err
	}
	var out []File
	for _, path := range paths {
		name := filepath.Base(filepath.Clean(path))
		media := mediaOf(path)
		f, err := s.addFile(ctx, name, media, func(ctx context.Context, reason string) (blob.Imported, error) {
			return s.addPath(ctx, path, o, reason)
		})
		if err != nil {
			return out, fmt.Errorf("blobs: add %s: %w", path, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// AddFileReader adds what r holds as one of the cell's files named name
// (its base name is kept). A derived key needs two passes over the
// content: r is spooled to a file in Config.Spool first, removed after.
func (s *Service) AddFileReader(ctx context.Context, name string, r io.Reader, o AddOptions) (File, error) {
	if _, err := s.member(); err != nil {
		return File{}, err
	}
	name = filepath.Base(filepath.Clean("/" + strings.ReplaceAll(name, "\\", "/")))
	if name == "/" || name == "." || name == "" || len(name) > blob.MaxNameLen || !utf8.ValidString(name) {
		return File{}, fmt.Errorf("blobs: %q is not a file name (1 to %d bytes of UTF-8)", name, blob.MaxNameLen)
	}
	if o.Public {
		return s.addFile(ctx, name, mime.TypeByExtension(filepath.Ext(name)), func(ctx context.Context, reason string) (blob.Imported, error) {
			return s.importAs(ctx, reason, func(ctx context.Context, dst blob.BlockPutter) (blob.Imported, error) {
				return blob.Import(ctx, r, dst, s.importOptions(o, nil))
			})
		})
	}
	if err := os.MkdirAll(s.cfg.Spool, 0o700); err != nil {
		return File{}, fmt.Errorf("blobs: spool: %w", err)
	}
	sp, err := os.CreateTemp(s.cfg.Spool, spoolPattern)
	if err != nil {
		return File{}, fmt.Errorf("blobs: spool: %w", err)
	}
	defer os.Remove(sp.Name())
	defer sp.Close()
	if _, err := io.Copy(sp, r); err != nil {
		return File{}, fmt.Errorf("blobs: spool %s: %w", name, err)
	}
	if err := sp.Sync(); err != nil {
		return File{}, fmt.Errorf("blobs: spool: %w", err)
	}
	media := mime.TypeByExtension(filepath.Ext(name))
	if media == "" {
		media = sniff(sp)
	}
	return s.addFile(ctx, name, media, func(ctx context.Context, reason string) (blob.Imported, error) {
		return s.addPath(ctx, sp.Name(), o, reason)
	})
}

// spoolPattern names the files AddFileReader spools uploads to.
const spoolPattern = "exopeer-upload-*"

// cleanSpool removes the uploads a crash left in the spool, if the spool
// is the node's own (Config.Spool set): the system's temporary directory
// may hold another node's uploads under way.
func (s *Service) cleanSpool() {
	if s.cfg.Spool == os.TempDir() {
		return
	}
	left, _ := filepath.Glob(filepath.Join(s.cfg.Spool, spoolPattern))
	for _, f := range left {
		if err := os.Remove(f); err != nil {
			s.log.Warn("spool: leftover upload not removed", "file", f, "err", err)
		}
	}
}

// addFile imports through imp, pinned under the reason of a new entity,
// then writes that entity. If the write fails the pin is taken back.
func (s *Service) addFile(ctx context.Context, name, media string, imp func(ctx context.Context, reason string) (blob.Imported, error)) (File, error) {
	id, err := store.NewEntityID(s.cfg.Rand)
	if err != nil {
		return File{}, err
	}
	im, err := imp(ctx, fileReason(id))
	if err != nil {
		return File{}, err
	}
	if im.Cap.Dir {
		media = DirMedia
	}
	f := File{
		ID: id, Name: name, Size: im.Size, MediaType: media, Cap: im.Cap,
		AddedBy: s.h.ID().String(), Added: s.cfg.Now().UTC().Truncate(time.Millisecond),
		Pinned: true, Held: im.Bytes,
	}
	doc, err := json.Marshal(fileDoc{Name: f.Name, Size: f.Size, Media: f.MediaType, Cap: f.Cap.String(), By: f.AddedBy, Added: f.Added})
	if err == nil {
		_, err = s.ents.Put(ctx, id, []store.Trait{{Type: FileType, Doc: doc}})
	}
	if err != nil {
		if uerr := s.pins.Unpin(context.WithoutCancel(ctx), im.Cap.Root, fileReason(id)); uerr != nil {
			err = errors.Join(err, uerr)
		}
		s.unpinned()
		return File{}, fmt.Errorf("blobs: write file %s: %w", name, err)
	}
	s.kickFollower()
	return f, nil
}

// mediaOf guesses the media type of the file or folder at path: by its
// extension, else by its first 512 bytes.
func mediaOf(path string) string {
	if m := mime.TypeByExtension(filepath.Ext(path)); m != "" {
		return m
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		return ""
	}
	return sniff(f)
}

func sniff(f io.ReaderAt) string {
	var head [512]byte
	n, _ := f.ReadAt(head[:], 0)
	if n == 0 {
		return ""
	}
	return http.DetectContentType(head[:n])
}

// listFiles returns every file of the cell, newest first, without
// Pinned and Held.
func (s *Service) listFiles(ctx context.Context) ([]File, error) {
	if _, err := s.member(); err != nil {
		return nil, err
	}
	var out []File
	q := store.Query{Type: FileType, Order: "added", Limit: store.MaxLimit, Traits: []string{FileType}}
	for {
		pg, err := s.ents.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("blobs: list files: %w", err)
		}
		for _, h := range pg.Hits {
			if f, ok := decodeFile(h.Entity); ok {
				out = append(out, f)
			}
		}
		if len(out) > MaxFiles {
			return nil, fmt.Errorf("blobs: the cell has more than %d files: %w", MaxFiles, ErrTooManyFiles)
		}
		if pg.Next == "" {
			return out, nil
		}
		q.After = pg.Next
	}
}

// decodeFile reads an entity's exo.file trait; false if it has none that
// makes sense (another writer's bad capability or negative size:
// skipped, not listed).
func decodeFile(e store.Entity) (File, bool) {
	for _, t := range e.Traits {
		if t.Type != FileType {
			continue
		}
		var d fileDoc
		if err := json.Unmarshal(t.Doc, &d); err != nil {
			return File{}, false
		}
		c, err := blob.ParseCapability(d.Cap)
		if err != nil || d.Size < 0 {
			return File{}, false
		}
		return File{ID: e.ID, Name: d.Name, Size: d.Size, MediaType: d.Media, Cap: c, AddedBy: d.By, Added: d.Added, From: d.From, Offered: d.Offered}, true
	}
	return File{}, false
}

// Files returns every file of the cell, newest first, with whether this
// device keeps each and how much of it it holds. It reads the store (a
// store member's, on a thin member) and walks the held part of each DAG.
func (s *Service) Files(ctx context.Context) ([]File, error) {
	if _, err := s.live(); err != nil {
		return nil, err
	}
	fs, err := s.listFiles(ctx)
	if err != nil {
		return nil, err
	}
	pinned, err := s.pinnedRoots(ctx)
	if err != nil {
		return nil, err
	}
	entries := entriesOf(pinned)
	for i := range fs {
		if err := s.fill(ctx, &fs[i], pinned, entries); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

func (s *Service) fill(ctx context.Context, f *File, pinned map[cid.Cid][]string, entries map[cid.Cid][]cid.Cid) error {
	f.Pinned = false
	for _, r := range pinned[f.Cap.Root] {
		if r == fileReason(f.ID) {
			f.Pinned = true
		}
	}
	held, err := s.held(ctx, f.Cap.Root, entries)
	f.Held = held
	return err
}

// held returns the bytes of the blocks under root the node holds (with
// a folder's entries pinned as such).
func (s *Service) held(ctx context.Context, root cid.Cid, entries map[cid.Cid][]cid.Cid) (int64, error) {
	cs, err := s.treeBlocks(ctx, root, entries)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range cs {
		size, err := s.bs.Blockstore().GetSize(ctx, c)
		if errors.Is(err, blocks.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("blobs: size of %s: %w", c, err)
		}
		n += int64(size)
	}
	return n, nil
}

// File returns the file that nameOrCap names: a capability (the file
// with its root), an entity ID, or a name. A name that several files
// have is ErrAmbiguous, listing their IDs; none is ErrNoFile.
func (s *Service) File(ctx context.Context, nameOrCap string) (File, error) {
	if _, err := s.live(); err != nil {
		return File{}, err
	}
	fs, err := s.listFiles(ctx)
	if err != nil {
		return File{}, err
	}
	f, err := pick(fs, nameOrCap)
	if err != nil {
		return File{}, err
	}
	pinned, err := s.pinnedRoots(ctx)
	if err != nil {
		return File{}, err
	}
	return f, s.fill(ctx, &f, pinned, entriesOf(pinned))
}

// pick finds the file that nameOrCap names among fs (see File).
func pick(fs []File, nameOrCap string) (File, error) {
	if c, err := blob.ParseCapability(nameOrCap); err == nil {
		for _, f := range fs {
			if f.Cap.Root.Equals(c.Root) {
				return f, nil
			}
		}
		return File{}, fmt.Errorf("%w: none with root %s", ErrNoFile, c.Root)
	}
	if id, err := store.ParseEntityID(nameOrCap); err == nil {
		for _, f := range fs {
			if f.ID == id {
				return f, nil
			}
		}
	}
	var hits []File
	for _, f := range fs {
		if f.Name == nameOrCap {
			hits = append(hits, f)
		}
	}
	switch len(hits) {
	case 0:
		return File{}, fmt.Errorf("%w: %q", ErrNoFile, nameOrCap)
	case 1:
		return hits[0], nil
	}
	ids := make([]string, len(hits))
	for i, f := range hits {
		ids[i] = fmt.Sprintf("%s (%d bytes, added %s)", f.ID, f.Size, f.Added.Format(time.RFC3339))
	}
	return File{}, fmt.Errorf("%w: %q is %s; name one by its ID", ErrAmbiguous, nameOrCap, strings.Join(ids, ", "))
}

// RemoveFile deletes the file's entity: on every device of the cell, the
// follower then unpins its blob, whose blocks go at the next collection.
func (s *Service) RemoveFile(ctx context.Context, nameOrID string) error {
	f, err := s.File(ctx, nameOrID)
	if err != nil {
		return err
	}
	if _, err := s.ents.Delete(ctx, f.ID, nil); err != nil {
		return fmt.Errorf("blobs: remove %s: %w", f.Name, err)
	}
	if err := s.setOverride(ctx, f.ID, Policy); err != nil {
		return err
	}
	s.kickFollower()
	return nil
}

// PinFile keeps the file on this device whatever its policy (a
// device-local choice, kept in its datastore), and fetches it in the
// background.
func (s *Service) PinFile(ctx context.Context, nameOrID string) error {
	return s.override(ctx, nameOrID, Pinned)
}

// UnpinFile lets this device drop the file whatever its policy: its
// blocks go at the next collection (unless another file or pin holds
// the same blob).
func (s *Service) UnpinFile(ctx context.Context, nameOrID string) error {
	return s.override(ctx, nameOrID, Unpinned)
}

func (s *Service) override(ctx context.Context, nameOrID string, o Override) error {
	f, err := s.File(ctx, nameOrID)
	if err != nil {
		return err
	}
	if err := s.setOverride(ctx, f.ID, o); err != nil {
		return err
	}
	return s.reconcile(ctx)
}

func (s *Service) setOverride(ctx context.Context, id store.EntityID, o Override) error {
	k := overridePrefix.ChildString(id.String())
	var err error
	if o == Policy {
		err = s.d.Delete(ctx, k)
	} else {
		err = s.d.Put(ctx, k, []byte{byte(o)})
	}
	if err != nil {
		return fmt.Errorf("blobs: override %s: %w", id, err)
	}
	return nil
}
