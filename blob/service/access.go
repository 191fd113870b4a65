package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blocks"
)

// MaxShare is the most peers one blob is shared with.
const MaxShare = 256

// access is who may read which blob blocks besides the cell's members:
// anyone the blocks of public blobs, given peers the blocks of blobs
// shared with them. It holds the CIDs of the blocks this node holds of
// those blobs (so it is bounded by what the node holds), rebuilt from the
// datastore's records and the store's blocks whenever a record changes
// and after each collection.
type access struct {
	load   sync.Mutex // serialises loadAccess: no older rebuild stored last
	mu     sync.RWMutex
	public map[cid.Cid]struct{}
	shared map[cid.Cid]map[peer.ID]struct{}
	// contacts is the contact shares the sets were built with: root to
	// the devices of the contacts it is shared with (share.go).
	contacts map[cid.Cid][]peer.ID
}

func (a *access) init() {
	a.public = make(map[cid.Cid]struct{})
	a.shared = make(map[cid.Cid]map[peer.ID]struct{})
}

// Records in the service's datastore.
var (
	publicPrefix   = ds.NewKey("/public") // /public/<root>: a public blob
	sharePrefix    = ds.NewKey("/share")  // /share/<root>/<peer>: a blob shared with a peer
	overridePrefix = ds.NewKey("/override")
)

// MayRead makes the Service a blocks.Owner: it lets p read c when c is a
// blob block (raw or dag-pb codec) and p is a current member of the
// node's cell, or c is a block of a public blob, or of a blob shared with
// p. It takes a read lock and no other: safe for concurrent use, cheap.
func (s *Service) MayRead(p peer.ID, c cid.Cid) bool {
	if t := c.Type(); t != cid.Raw && t != cid.DagProtobuf {
		return false
	}
	if ro := s.cell.Roster(); ro != nil && ro.Has(p) && ro.Has(s.h.ID()) {
		return true
	}
	s.acl.mu.RLock()
	defer s.acl.mu.RUnlock()
	if _, ok := s.acl.public[c]; ok {
		return true
	}
	_, ok := s.acl.shared[c][p]
	return ok
}

// MayAsk makes the Service a blocks.Asker: this node may send p its wants
// for c when c is a blob block (raw or dag-pb codec) and p and this node
// are current members of the node's cell, or c is a block of a public
// blob it holds or fetches (the public set; a public blob's fetch lets
// anyone be asked for what it wants: blocks.SessionOptions.Public). The
// devices of a contact that shared a blob with the cell are asked by the
// fetch's session (blocks.SessionOptions.Peers, shared.go). Same cost and
// locking as MayRead.
func (s *Service) MayAsk(p peer.ID, c cid.Cid) bool {
	if t := c.Type(); t != cid.Raw && t != cid.DagProtobuf {
		return false
	}
	if ro := s.cell.Roster(); ro != nil && ro.Has(p) && ro.Has(s.h.ID()) {
		return true
	}
	s.acl.mu.RLock()
	defer s.acl.mu.RUnlock()
	_, ok := s.acl.public[c]
	return ok
}

var (
	_ blocks.Owner = (*Service)(nil)
	_ blocks.Asker = (*Service)(nil)
)

// Share lets peers read the blob under root from this node, from now on
// and after a restart (this node only: ShareWith shares with a contact's
// devices on every device of the cell). A blob is shared with at most
// MaxShare peers. It blocks on the datastore.
func (s *Service) Share(ctx context.Context, root cid.Cid, peers []peer.ID) error {
	if _, err := s.live(); err != nil {
		return err
	}
	had, err := s.sharedWith(ctx, root)
	if err != nil {
		return err
	}
	b, err := s.d.Batch(ctx)
	if err != nil {
		return fmt.Errorf("blobs: share: %w", err)
	}
	for _, p := range peers {
		if had[p] {
			continue
		}
		if len(had) >= MaxShare {
			return fmt.Errorf("blobs: share %s: already shared with %d peers, the most", root, MaxShare)
		}
		had[p] = true
		if err := b.Put(ctx, sharePrefix.ChildString(root.String()).ChildString(p.String()), nil); err != nil {
			return fmt.Errorf("blobs: share: %w", err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("blobs: share: %w", err)
	}
	return s.loadAccess(ctx)
}

// sharedWith returns the peers root is shared with.
func (s *Service) sharedWith(ctx context.Context, root cid.Cid) (map[peer.ID]bool, error) {
	res, err := s.d.Query(ctx, query.Query{Prefix: sharePrefix.ChildString(root.String()).String(), KeysOnly: true})
	if err != nil {
		return nil, fmt.Errorf("blobs: shares: %w", err)
	}
	defer res.Close()
	out := make(map[peer.ID]bool)
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("blobs: shares: %w", r.Error)
		}
		if id, err := peer.Decode(ds.NewKey(r.Key).BaseNamespace()); err == nil {
			out[id] = true
		}
	}
	return out, nil
}

// markPublic records root as a public blob, and serves the blocks of it
// that the node holds to anyone, but for those of its private blobs (see
// loadAccess).
func (s *Service) markPublic(ctx context.Context, root cid.Cid) error {
	if err := s.d.Put(ctx, publicPrefix.ChildString(root.String()), nil); err != nil {
		return fmt.Errorf("blobs: mark public: %w", err)
	}
	return s.loadAccess(ctx)
}

// servePublic adds c, a block of a public blob being fetched, to those
// served to anyone.
func (s *Service) servePublic(c cid.Cid) {
	s.acl.mu.Lock()
	defer s.acl.mu.Unlock()
	s.acl.public[c] = struct{}{}
}

// loadAccess rebuilds the public and shared sets from the records and
// the blocks the node holds. A "public" DAG is whatever its maker linked:
// one may link to blocks of the cell's private blobs (their CIDs known to
// a removed member, or to a peer one blob was shared with), so the
// blocks of the DAGs pinned and not public are left out of the public
// set, and those of the DAGs pinned and not shared with a peer out of
// what is shared with it (sharedSet).
func (s *Service) loadAccess(ctx context.Context) error {
	s.acl.load.Lock()
	defer s.acl.load.Unlock()
	res, err := s.d.Query(ctx, query.Query{Prefix: publicPrefix.String(), KeysOnly: true})
	if err != nil {
		return fmt.Errorf("blobs: load public blobs: %w", err)
	}
	defer res.Close()
	publicRoots := make(map[cid.Cid]bool)
	var gone []ds.Key
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("blobs: load public blobs: %w", r.Error)
		}
		root, err := cid.Decode(ds.NewKey(r.Key).BaseNamespace())
		if err != nil {
			continue
		}
		if has, err := s.bs.Has(ctx, root); err == nil && !has {
			gone = append(gone, ds.NewKey(r.Key))
			continue
		}
		publicRoots[root] = true
	}
	// Collected: their records go too (a fetch makes one again).
	for _, k := range gone {
		if err := s.d.Delete(ctx, k); err != nil {
			return fmt.Errorf("blobs: drop public blob %s: %w", k.BaseNamespace(), err)
		}
	}
	pinned, err := s.pinnedRoots(ctx)
	if err != nil {
		return err
	}
	entries := entriesOf(pinned)
	// owners of the blocks of the pinned DAGs not public, read once.
	var owners map[cid.Cid][]cid.Cid
	ownersOf := func() (map[cid.Cid][]cid.Cid, error) {
		if owners != nil {
			return owners, nil
		}
		var err error
		owners, err = s.privateOwners(ctx, pinned, publicRoots)
		return owners, err
	}
	public := make(map[cid.Cid]struct{})
	for root := range publicRoots {
		cs, err := s.localBlocks(ctx, root)
		if err != nil {
			return err
		}
		for _, c := range cs {
			public[c] = struct{}{}
		}
	}
	if len(public) > 0 {
		own, err := ownersOf()
		if err != nil {
			return err
		}
		for c := range public {
			if len(own[c]) > 0 {
				delete(public, c)
			}
		}
	}
	res2, err := s.d.Query(ctx, query.Query{Prefix: sharePrefix.String(), KeysOnly: true})
	if err != nil {
		return fmt.Errorf("blobs: load shares: %w", err)
	}
	defer res2.Close()
	shares := make(map[cid.Cid][]peer.ID)
	for r := range res2.Next() {
		if r.Error != nil {
			return fmt.Errorf("blobs: load shares: %w", r.Error)
		}
		parts := strings.Split(strings.TrimPrefix(r.Key, sharePrefix.String()+"/"), "/")
		if len(parts) != 2 {
			continue
		}
		root, err1 := cid.Decode(parts[0])
		p, err2 := peer.Decode(parts[1])
		if err1 != nil || err2 != nil {
			continue
		}
		shares[root] = append(shares[root], p)
	}
	contacts, err := s.contactShares(ctx)
	if err != nil {
		// Fail closed: a share revoked or a device removed since the
		// last read must not keep its access; none is served until a
		// read succeeds (the next refresh tries again).
		s.log.Info("blobs: contact shares not read, none served", "err", err)
		contacts = nil
	}
	for root, ps := range contacts {
		shares[root] = append(shares[root], ps...)
	}
	shared := make(map[cid.Cid]map[peer.ID]struct{})
	if len(shares) > 0 {
		own, err := ownersOf()
		if err != nil {
			return err
		}
		if err := s.sharedSet(ctx, shares, entries, own, shared); err != nil {
			return err
		}
	}
	s.acl.mu.Lock()
	defer s.acl.mu.Unlock()
	s.acl.public, s.acl.shared, s.acl.contacts = public, shared, contacts
	return nil
}

// privateOwners maps each block of the DAGs pinned and not public that
// the node holds (localBlocks) to the pinned roots whose DAG holds it. A
// folder's entries are pinned roots of their own ("dir:"), so theirs are
// mapped to them, not to the folder.
func (s *Service) privateOwners(ctx context.Context, pinned map[cid.Cid][]string, public map[cid.Cid]bool) (map[cid.Cid][]cid.Cid, error) {
	out := make(map[cid.Cid][]cid.Cid)
	for root := range pinned {
		if public[root] {
			continue
		}
		cs, err := s.localBlocks(ctx, root)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if o := out[c]; len(o) == 0 || o[len(o)-1] != root {
				out[c] = append(o, root)
			}
		}
	}
	return out, nil
}

// sharedSet fills shared (block to the peers that may read it) from
// shares (root to the peers it is shared with): a peer may read the
// blocks of the trees (treeBlocks) of the roots shared with it but for
// those of the cell's pinned private DAGs (owners) not shared with it:
// a shared DAG, made by someone else, may link to the cell's private
// blocks. A shared folder's entries count as shared with the folder.
// Peers are grouped by the roots shared with them, each group's trees
// walked once.
func (s *Service) sharedSet(ctx context.Context, shares map[cid.Cid][]peer.ID, entries map[cid.Cid][]cid.Cid, owners map[cid.Cid][]cid.Cid, shared map[cid.Cid]map[peer.ID]struct{}) error {
	rootsOf := make(map[peer.ID][]cid.Cid)
	for root, ps := range shares {
		for _, p := range ps {
			if !slices.Contains(rootsOf[p], root) {
				rootsOf[p] = append(rootsOf[p], root)
			}
		}
	}
	type group struct {
		roots []cid.Cid
		peers []peer.ID
	}
	groups := make(map[string]*group)
	for p, roots := range rootsOf {
		slices.SortFunc(roots, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
		var k strings.Builder
		for _, r := range roots {
			k.WriteString(r.KeyString())
		}
		g := groups[k.String()]
		if g == nil {
			g = &group{roots: roots}
			groups[k.String()] = g
		}
		g.peers = append(g.peers, p)
	}
	for _, g := range groups {
		keep := make(map[cid.Cid]bool)
		var add func(cid.Cid, int)
		add = func(r cid.Cid, depth int) {
			if keep[r] || depth > maxFolderDepth {
				return
			}
			keep[r] = true
			for _, e := range entries[r] {
				add(e, depth+1)
			}
		}
		for _, r := range g.roots {
			add(r, 0)
		}
		for _, root := range g.roots {
			cs, err := s.treeBlocks(ctx, root, entries)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if slices.ContainsFunc(owners[c], func(o cid.Cid) bool { return !keep[o] }) {
					continue
				}
				m := shared[c]
				if m == nil {
					m = make(map[peer.ID]struct{}, len(g.peers))
					shared[c] = m
				}
				for _, p := range g.peers {
					m[p] = struct{}{}
				}
			}
		}
	}
	return nil
}

// sharedRoot reports whether root is a blob shared with peers or
// contacts (its root is always in the shared set).
func (s *Service) sharedRoot(root cid.Cid) bool {
	s.acl.mu.RLock()
	defer s.acl.mu.RUnlock()
	_, ok := s.acl.shared[root]
	return ok
}

// treeBlocks is localBlocks of root and, for a folder, of the entries
// pinned as its own (see dirs.go), down.
func (s *Service) treeBlocks(ctx context.Context, root cid.Cid, entries map[cid.Cid][]cid.Cid) ([]cid.Cid, error) {
	out, err := s.localBlocks(ctx, root)
	if err != nil {
		return nil, err
	}
	for _, e := range entries[root] {
		cs, err := s.treeBlocks(ctx, e, entries)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// localBlocks returns the CIDs of the blocks of the DAG under root that
// the node holds (and of the leaves its held nodes link to, held or not:
// a leaf is named by its parent, and serving what is not held tells
// nothing). It reads only the held dag-pb nodes, never the network.
func (s *Service) localBlocks(ctx context.Context, root cid.Cid) ([]cid.Cid, error) {
	var out []cid.Cid
	level := []cid.Cid{root}
	for len(level) > 0 {
		var next []cid.Cid
		for _, c := range level {
			out = append(out, c)
			if c.Type() != cid.DagProtobuf {
				continue
			}
			b, err := s.bs.Get(ctx, c)
			if errors.Is(err, blocks.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("blobs: read %s: %w", c, err)
			}
			kids, err := blob.Children(b)
			if err != nil {
				return nil, fmt.Errorf("blobs: %s: %w", c, err)
			}
			next = append(next, kids...)
		}
		level = next
	}
	return out, nil
}
