package service

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/store"
)

// maxNameTries bounds the names tried for a shared file whose name the
// cell's files have already ("a (2).txt", "a (3).txt", ...).
const maxNameTries = 100

// Finder finds the addresses of a device this host knows none of (the
// DHT). *dht.DHT has it.
type Finder interface {
	FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error)
}

// SharedEntity is the entity of the file of root that the contact of
// cell key from shared with the cell: derived from both, so that the
// share recorded by any device of the cell, or shared again, is one file.
func SharedEntity(from ed25519.PublicKey, root cid.Cid) store.EntityID {
	h := sha256.New()
	h.Write([]byte("exopeer shared file entity v1\x00"))
	h.Write(from)
	h.Write(root.Bytes())
	return store.EntityID(h.Sum(nil)[:16])
}

// Received records a file that the contact of cell key from shared with
// the cell (a message's attachment) as one of the cell's files, unless
// it is recorded already: an exo.file entity (SharedEntity) named name,
// or "name (2)" and so on if the cell has a file of that name. Its
// blocks are fetched, by the policy, from the contact's devices as well
// as the cell's; past Config.ShareBudget of the contact's files, it is
// recorded as offered and fetched only when pinned by hand (PinFile).
// A name taken never fails it (freeName): a failure would leave the
// message unacknowledged and its sender's courier sending it forever.
// Past Config.MaxSharedFiles of the contact's files it records nothing
// and fails with ErrTooManyFiles. It blocks on the store.
func (s *Service) Received(ctx context.Context, from ed25519.PublicKey, c blob.Capability, name, media string, size int64) (File, error) {
	if _, err := s.live(); err != nil {
		return File{}, err
	}
	if len(from) != ed25519.PublicKeySize {
		return File{}, fmt.Errorf("blobs: shared by a cell key of %d bytes", len(from))
	}
	if size < 0 {
		return File{}, fmt.Errorf("blobs: shared file of %d bytes", size)
	}
	id := SharedEntity(from, c.Root)
	fs, err := s.listFiles(ctx)
	if err != nil {
		return File{}, err
	}
	fromHex := hex.EncodeToString(from)
	taken := make(map[string]bool, len(fs))
	count := 0
	for _, f := range fs {
		if f.ID == id {
			return f, nil
		}
		taken[f.Name] = true
		if f.From == fromHex {
			count++
		}
	}
	if count >= s.cfg.MaxSharedFiles {
		return File{}, fmt.Errorf("blobs: %d files shared by %s, the most: %w", count, fromHex[:16], ErrTooManyFiles)
	}
	name = freeName(name, id, taken)
	used := s.contactUsed(ctx, fs, fromHex, id)
	f := File{
		ID: id, Name: name, Size: size, MediaType: media, Cap: c,
		AddedBy: s.h.ID().String(), Added: s.cfg.Now().UTC().Truncate(time.Millisecond),
		From: fromHex, Offered: used+size > s.cfg.ShareBudget,
	}
	doc, err := json.Marshal(fileDoc{Name: f.Name, Size: f.Size, Media: f.MediaType, Cap: f.Cap.String(), By: f.AddedBy, Added: f.Added, From: f.From, Offered: f.Offered})
	if err != nil {
		return File{}, err
	}
	if _, err := s.ents.Put(ctx, id, []store.Trait{{Type: FileType, Doc: doc}}); err != nil {
		return File{}, fmt.Errorf("blobs: record shared file %s: %w", name, err)
	}
	s.kickFollower()
	return f, nil
}

// freeName returns name, or the first "base (n)ext" not taken (n up to
// maxNameTries), else "base (tag)ext" with tag the first 8, 16 or 32 hex
// digits of the file's entity id (each file's own), each cut to keep it
// within blob.MaxNameLen. It never fails: if even the 32-digit name is
// taken (someone named a file so), that name is returned, and the two
// files are told apart by their IDs (File's ErrAmbiguous).
func freeName(name string, id store.EntityID, taken map[string]bool) string {
	if !taken[name] {
		return name
	}
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	if base == "" {
		base, ext = name, ""
	}
	for n := 2; n <= maxNameTries; n++ {
		if cand := withTag(base, ext, strconv.Itoa(n)); !taken[cand] {
			return cand
		}
	}
	tag := id.String()
	cand := ""
	for _, n := range []int{8, 16, len(tag)} {
		cand = withTag(base, ext, tag[:min(n, len(tag))])
		if !taken[cand] {
			break
		}
	}
	return cand
}

// withTag returns "base (tag)ext", its base cut (at a rune) to keep it
// within blob.MaxNameLen; "(tag)" alone if ext leaves no room.
func withTag(base, ext, tag string) string {
	suffix := " (" + tag + ")" + ext
	if len(suffix) >= blob.MaxNameLen {
		base, suffix = "", "("+tag+")"
	}
	for len(base)+len(suffix) > blob.MaxNameLen {
		_, size := utf8.DecodeLastRuneInString(base)
		base = base[:len(base)-size]
	}
	return base + suffix
}

// sharers returns the devices of the contacts that shared root with the
// cell (the From of its files), connected to as far as they can be:
// a fetch of root may ask them (blocks.SessionOptions.Peers), and no
// other peer outside the cell. None when the service has no Contacts or
// no file of root came from a contact.
func (s *Service) sharers(ctx context.Context, root cid.Cid) []peer.ID {
	if s.cons == nil {
		return nil
	}
	fs, err := s.listFiles(ctx)
	if err != nil {
		return nil
	}
	from := make(map[string]bool)
	for _, f := range fs {
		if f.From != "" && f.Cap.Root.Equals(root) {
			from[f.From] = true
		}
	}
	if len(from) == 0 {
		return nil
	}
	devs, err := s.cons.ShareDevices(ctx)
	if err != nil {
		s.log.Info("blobs: devices of the sharing contacts", "err", err)
		return nil
	}
	var out []peer.ID
	for cell := range from {
		out = append(out, devs[cell]...)
	}
	// Connected to at once: each within reachTimeout.
	var wg sync.WaitGroup
	for _, p := range out {
		wg.Go(func() {
			if err := s.reach(ctx, p); err != nil {
				s.log.Debug("blobs: sharing device not reached", "peer", p, "err", err)
			}
		})
	}
	wg.Wait()
	return out
}

// reach connects to p if it is not connected: through the peerstore's
// addresses, else those the Finder finds. It blocks until connected,
// failed, or 10 s pass.
func (s *Service) reach(ctx context.Context, p peer.ID) error {
	if s.h.Network().Connectedness(p) == network.Connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	var errs []error
	if len(s.h.Peerstore().Addrs(p)) > 0 {
		err := s.h.Connect(ctx, peer.AddrInfo{ID: p})
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if s.finder == nil {
		return errors.Join(append(errs, errors.New("no address"))...)
	}
	ai, err := s.finder.FindPeer(ctx, p)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	return s.h.Connect(ctx, ai)
}

// reachTimeout bounds one connection to a sharing device.
const reachTimeout = 10 * time.Second
