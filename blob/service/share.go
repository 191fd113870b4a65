package service

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/store"
)

// ShareType is the trait type of a blob the cell shares with a contact
// (store.ShareSchema): every device of the cell serves the blob's blocks
// it holds to the devices on that contact's current device list.
const ShareType = "exo.share"

// MaxShares is the most contact shares a device reads into what it
// serves (the newest first); a cell past it serves the older ones no
// more until it removes some.
const MaxShares = 4096

// Contacts is what the service needs of the cell's contacts to serve
// shared blobs and fetch those shared with the cell. *contact/service
// has it through an adapter in package peer.
type Contacts interface {
	// ShareDevices returns the devices on each contact's current device
	// list, by the contact's cell key (64 hex digits). It may block on
	// the store; the map and slices are the caller's.
	ShareDevices(ctx context.Context) (map[string][]peer.ID, error)
}

// shareDoc is an exo.share document.
type shareDoc struct {
	Contact string    `json:"contact"` // the contact's cell key, 64 hex digits
	Root    string    `json:"root"`    // the blob's root CID
	By      string    `json:"by,omitempty"`
	Added   time.Time `json:"added"`
}

// ShareEntity is the entity of the share of root with the contact of
// cell key contact: derived from both, so that every device that shares
// it writes one entity.
func ShareEntity(contact ed25519.PublicKey, root cid.Cid) store.EntityID {
	h := sha256.New()
	h.Write([]byte("exopeer share entity v1\x00"))
	h.Write(contact)
	h.Write(root.Bytes())
	return store.EntityID(h.Sum(nil)[:16])
}

// ShareWith records in the cell's store that the cell shares the blob of
// c with the contact of cell key contact, and serves it to the contact's
// devices from now on: every device of the cell serves the blocks of it
// that it holds to the devices on the contact's current device list (a
// device the contact removes gets nothing more once the newer list is
// held), after a restart too. It blocks on the store.
func (s *Service) ShareWith(ctx context.Context, contact ed25519.PublicKey, c blob.Capability) error {
	if _, err := s.live(); err != nil {
		return err
	}
	if _, err := s.member(); err != nil {
		return err
	}
	if len(contact) != ed25519.PublicKeySize {
		return fmt.Errorf("blobs: share with a cell key of %d bytes", len(contact))
	}
	doc, err := json.Marshal(shareDoc{
		Contact: hex.EncodeToString(contact), Root: c.Root.String(),
		By: s.h.ID().String(), Added: s.cfg.Now().UTC().Truncate(time.Millisecond),
	})
	if err != nil {
		return err
	}
	if _, err := s.ents.Put(ctx, ShareEntity(contact, c.Root), []store.Trait{{Type: ShareType, Doc: doc}}); err != nil {
		return fmt.Errorf("blobs: share %s: %w", c.Root, err)
	}
	return s.refreshShares(ctx)
}

// contactShares returns the blobs the cell shares with contacts, each
// with the devices of its contacts (a contact no longer held shares
// nothing). Nil when the service has no Contacts.
func (s *Service) contactShares(ctx context.Context) (map[cid.Cid][]peer.ID, error) {
	if s.cons == nil {
		return nil, nil
	}
	if _, err := s.member(); err != nil {
		return nil, nil
	}
	devs, err := s.cons.ShareDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("blobs: contacts' devices: %w", err)
	}
	out := make(map[cid.Cid][]peer.ID)
	q := store.Query{Type: ShareType, Order: store.OrderModified, Limit: store.MaxLimit, Traits: []string{ShareType}}
	n := 0
	for n < MaxShares {
		pg, err := s.ents.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("blobs: shares: %w", err)
		}
		for _, h := range pg.Hits {
			n++
			root, contact, ok := decodeShare(h.Entity)
			if !ok {
				continue
			}
			for _, p := range devs[contact] {
				if !slices.Contains(out[root], p) {
					out[root] = append(out[root], p)
				}
			}
		}
		if pg.Next == "" {
			break
		}
		q.After = pg.Next
	}
	if n >= MaxShares {
		s.log.Warn("blobs: more contact shares than served", "max", MaxShares)
	}
	return out, nil
}

// decodeShare reads an exo.share trait; false if it makes no sense
// (another writer's bad document: skipped).
func decodeShare(e store.Entity) (cid.Cid, string, bool) {
	for _, t := range e.Traits {
		if t.Type != ShareType {
			continue
		}
		var d shareDoc
		if err := json.Unmarshal(t.Doc, &d); err != nil {
			return cid.Undef, "", false
		}
		root, err := cid.Decode(d.Root)
		if err != nil || (root.Type() != cid.Raw && root.Type() != cid.DagProtobuf) {
			return cid.Undef, "", false
		}
		if k, err := hex.DecodeString(d.Contact); err != nil || len(k) != ed25519.PublicKeySize {
			return cid.Undef, "", false
		}
		return root, d.Contact, true
	}
	return cid.Undef, "", false
}

// refreshShares reads the contact shares again and, if they changed,
// rebuilds who may read what (loadAccess). A failure fails closed: the
// contact shares served are dropped until a read succeeds.
func (s *Service) refreshShares(ctx context.Context) error {
	cs, err := s.contactShares(ctx)
	if err != nil {
		s.acl.mu.RLock()
		had := len(s.acl.contacts) > 0
		s.acl.mu.RUnlock()
		if had {
			return errors.Join(err, s.loadAccess(ctx))
		}
		return err
	}
	s.acl.mu.RLock()
	same := maps.EqualFunc(cs, s.acl.contacts, func(a, b []peer.ID) bool {
		return len(a) == len(b) && !slices.ContainsFunc(a, func(p peer.ID) bool { return !slices.Contains(b, p) })
	})
	s.acl.mu.RUnlock()
	if same {
		return nil
	}
	return s.loadAccess(ctx)
}

// followShares keeps the contact shares served in line with the store:
// a refresh after each change the store's watches of the shares and of
// the contacts (whose device lists change) report, and every
// Config.Check.
func (s *Service) followShares(ctx context.Context) {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.Check)
	defer tick.Stop()
	var shares, contacts <-chan store.WatchEvent
	stop := func() {}
	defer func() { stop() }()
	wait := watchRetry
	for {
		var retry <-chan time.Time
		if shares == nil && s.cons != nil {
			if _, err := s.member(); err == nil {
				wctx, cancel := context.WithCancel(ctx)
				a, err1 := s.ents.Watch(wctx, store.Query{Type: ShareType, Order: store.OrderModified, Limit: 1, Traits: []string{}})
				b, err2 := s.ents.Watch(wctx, store.Query{Type: "exo.contact", Order: store.OrderModified, Limit: 1, Traits: []string{}})
				if err := errors.Join(err1, err2); err != nil {
					cancel()
					s.log.Debug("blobs: no watch of the shares yet", "err", err, "again in", wait)
				} else {
					shares, contacts, stop, wait = a, b, cancel, watchRetry
				}
			}
			if shares == nil {
				retry = time.After(wait)
				wait = min(2*wait, s.cfg.Check)
			}
		}
		if err := s.refreshShares(ctx); err != nil && ctx.Err() == nil {
			s.log.Info("blobs: contact shares not refreshed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-retry:
		case <-tick.C:
		case _, ok := <-shares:
			if !ok {
				stop()
				shares, contacts = nil, nil
			}
		case _, ok := <-contacts:
			if !ok {
				stop()
				shares, contacts = nil, nil
			}
		}
	}
}
