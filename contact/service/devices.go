package service

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// The trait types of contacts and of the cell's device list
// (store.ContactSchema, store.DevicesSchema).
const (
	ContactType = "exo.contact"
	DevicesType = "exo.devices"
)

// devicesDoc is an exo.devices document.
type devicesDoc struct {
	Cell    string    `json:"cell"`
	Version uint64    `json:"version"`
	List    string    `json:"list"`
	By      string    `json:"by,omitempty"`
	Signed  time.Time `json:"signed,omitzero"`
	// Keys are the epochs whose mailbox keys the cell's lists carried
	// ([]publishedKey, read apart by readKeys so that a bad one hides
	// no list; absent in a document an older binary wrote).
	Keys json.RawMessage `json:"keys,omitempty"`
}

// entityOf is the entity of a cell's record: SHA-256 of purpose, 0 and
// the cell key, cut to 16 bytes. Derived, not random, so that two devices
// that write the same contact (or two admins the device list) write one
// entity, whose latest write wins.
func entityOf(purpose string, key ed25519.PublicKey) store.EntityID {
	h := sha256.New()
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(key)
	return store.EntityID(h.Sum(nil)[:16])
}

func devicesEntity(key ed25519.PublicKey) store.EntityID {
	return entityOf("exopeer devices entity v1", key)
}

// DeviceList returns the cell's own signed device list, as an admin
// signed it last. On an admin device whose roster moved past it, it signs
// a new one first. ErrNoDeviceList when none was signed yet.
func (s *Service) DeviceList(ctx context.Context) (*contact.DeviceList, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if _, err := s.roster(); err != nil {
		return nil, err
	}
	l, err := s.publish(ctx)
	if errors.Is(err, cell.ErrNotAdmin) || errors.Is(err, cell.ErrNoKey) {
		// No key to sign with (an admin without its epoch's secret: the
		// upkeep says so): the list held.
		l, err = s.heldList(ctx)
	}
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, ErrNoDeviceList
	}
	return l, nil
}

// heldList returns the cell's device list held in the store: nil if
// there is none (or none that verifies: it is logged). It is read once,
// then kept in memory while no commit touches the type in this node's
// index (as List's contacts).
func (s *Service) heldList(ctx context.Context) (*contact.DeviceList, error) {
	r, err := s.roster()
	if err != nil {
		return nil, err
	}
	o, err := s.heldOwn(ctx, r)
	return o.l, err
}

// heldOwn is heldList with the mailbox keys its document records.
func (s *Service) heldOwn(ctx context.Context, r *cell.Roster) (ownList, error) {
	o, err := s.own.get(ctx, func() (uint64, bool) {
		return s.store.TypesVersion(ctx, DevicesType)
	}, func(ctx context.Context) (ownList, error) {
		return s.readHeldList(ctx, r)
	})
	if err != nil {
		return ownList{}, err
	}
	if !o.cell.Equal(r.Cell) { // kept for the cell the node was in
		s.own.drop()
		return s.readHeldList(ctx, r)
	}
	return o, nil
}

// readHeldList reads the device list of cell r from the store.
func (s *Service) readHeldList(ctx context.Context, r *cell.Roster) (ownList, error) {
	none := ownList{cell: r.Cell}
	e, err := s.store.Get(ctx, devicesEntity(r.Cell), []string{DevicesType})
	if errors.Is(err, store.ErrNotFound) {
		return none, nil
	}
	if err != nil {
		return none, wrapStore("read the cell's device list", err)
	}
	for _, t := range e.Traits {
		if t.Type != DevicesType {
			continue
		}
		var d devicesDoc
		if err := json.Unmarshal(t.Doc, &d); err != nil {
			s.log.Warn("stored device list skipped", "err", err)
			return none, nil
		}
		b, err := base64.StdEncoding.DecodeString(d.List)
		if err != nil {
			s.log.Warn("stored device list skipped", "err", err)
			return none, nil
		}
		l, err := contact.DecodeDeviceList(b)
		if err != nil || !l.Cell.Equal(r.Cell) {
			s.log.Warn("stored device list skipped", "err", err)
			return none, nil
		}
		return ownList{cell: r.Cell, l: l, keys: readKeys(d.Keys)}, nil
	}
	return none, nil
}

// publish signs and stores a device list of the roster's members, with
// the mailbox key of the roster's epoch, if the list held is older than
// the roster, or of its version without a mailbox key (a list an older
// binary signed: the version 2 list replaces it, contact.Newer), and
// returns the list now held. cell.ErrNotAdmin on a device without the
// cell key.
func (s *Service) publish(ctx context.Context) (*contact.DeviceList, error) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	r, err := s.roster()
	if err != nil {
		return nil, err
	}
	if current(s.mine, r) {
		// Unless the list held (read from memory while the store has not
		// moved) lacks the key: a list without it stored over this
		// node's (a member's replay, an older binary's write) is signed
		// again.
		held, err := s.heldOwn(ctx, r)
		if err != nil || held.l == nil || held.l.Mailbox != nil {
			return s.mine, nil
		}
	}
	keys := s.cell.Keys()
	var l *contact.DeviceList
	var epoch uint64
	err = s.cell.WithCellKey(func(key ed25519.PrivateKey, r *cell.Roster) error {
		var sec cell.Secret
		ok := false
		if keys != nil {
			sec, ok = keys.Secret(r.Epoch)
		}
		if !ok {
			return fmt.Errorf("contact: mailbox key of epoch %d: %w", r.Epoch, cell.ErrNoKey)
		}
		ids := make([]peer.ID, 0, len(r.Members))
		for _, m := range r.Members {
			ids = append(ids, m.Peer)
		}
		l = contact.NewDeviceList(r.Cell, r.Version, ids)
		l.Mailbox = sec.MailboxKey(r.Cell).PublicKey().Bytes()
		epoch = r.Epoch
		return l.Sign(key)
	})
	if err != nil {
		return nil, err
	}
	held, err := s.heldOwn(ctx, r)
	if err != nil {
		// No store member answers: write the list anyway (a write
		// needs none), the same list for the same roster.
		s.log.Debug("device list held not read", "err", err)
		held = ownList{keys: s.mineKeys}
	} else if held.keys != nil {
		s.mineKeys = held.keys
	}
	if held.l != nil && (held.l.Version > l.Version || held.l.Version == l.Version && held.l.Mailbox != nil) {
		s.mine = held.l
		return held.l, nil
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	ks := addKey(held.keys, epoch, now)
	pub, err := json.Marshal(ks)
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(devicesDoc{
		Cell: hex.EncodeToString(l.Cell), Version: l.Version,
		List: base64.StdEncoding.EncodeToString(l.Encode()),
		By:   s.self.String(), Signed: now, Keys: pub,
	})
	if err != nil {
		return nil, err
	}
	_, err = s.store.Put(ctx, devicesEntity(l.Cell), []store.Trait{{Type: DevicesType, Doc: doc}})
	s.own.drop()
	if err != nil {
		return nil, fmt.Errorf("contact: write the cell's device list: %w", err)
	}
	s.log.Info("device list signed", "version", l.Version, "devices", len(l.Devices), "epoch", epoch)
	s.mine, s.mineKeys = l, ks
	return l, nil
}

// current says whether l, a list this node signed or found, needs no
// new one for roster r: of r's cell, not older than r, with a mailbox
// key.
func current(l *contact.DeviceList, r *cell.Roster) bool {
	return l != nil && l.Cell.Equal(r.Cell) && l.Version >= r.Version && l.Mailbox != nil
}

// Card returns this cell's card under name (empty: the cell's name on
// its roster).
func (s *Service) Card(ctx context.Context, name string) (*contact.Card, error) {
	r, err := s.roster()
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = r.Name
	}
	if !contact.ValidName(name) {
		return nil, fmt.Errorf("%w: %q", contact.ErrBadName, name)
	}
	l, err := s.DeviceList(ctx)
	if err != nil {
		return nil, err
	}
	return &contact.Card{Name: name, Devices: l}, nil
}
