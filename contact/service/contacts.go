package service

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// Contact is another cell this cell talks to: an entity with an
// exo.contact trait.
type Contact struct {
	ID store.EntityID
	// Name is what this cell calls the contact (unique among its
	// contacts); CardName the name on the contact's card.
	Name, CardName string
	// Devices is the contact's signed device list held: its cell key,
	// version and the devices that take messages for it.
	Devices *contact.DeviceList
	// Verified: someone of this cell compared the safety number.
	Verified bool
	// ReceiptsOff: this cell sends the contact no read receipts
	// (message/service); the default, false, sends them.
	ReceiptsOff bool
	AddedBy     string // peer ID of the node that added it
	Added       time.Time

	// lists: the versions of the device list its entity holds in traits
	// of their own, when read.
	lists []heldList
}

// Cell returns the contact's cell key.
func (c Contact) Cell() ed25519.PublicKey { return c.Devices.Cell }

// contactDoc is an exo.contact document.
type contactDoc struct {
	Name     string `json:"name"`
	Cell     string `json:"cell"`
	Version  uint64 `json:"version"`
	Devices  string `json:"devices"`
	CardName string `json:"card_name,omitempty"`
	Verified bool   `json:"verified"`
	// ReceiptsOff is absent (false) in documents of earlier versions.
	ReceiptsOff bool      `json:"receipts_off,omitempty"`
	By          string    `json:"by,omitempty"`
	Added       time.Time `json:"added"`
}

func contactEntity(key ed25519.PublicKey) store.EntityID {
	return entityOf("exopeer contact entity v1", key)
}

// decodeContact reads an entity's exo.contact trait and the newest valid
// device list it holds (bestList); false if it has no exo.contact trait
// that makes sense or no valid list of its cell (another writer's bad
// document: skipped).
func decodeContact(e store.Entity) (Contact, bool) {
	for _, t := range e.Traits {
		if t.Type != ContactType {
			continue
		}
		var d contactDoc
		if err := json.Unmarshal(t.Doc, &d); err != nil || !contact.ValidName(d.Name) {
			return Contact{}, false
		}
		l, lists := bestList(e, d.Devices)
		if l == nil {
			return Contact{}, false
		}
		return Contact{
			ID: e.ID, Name: d.Name, CardName: d.CardName, Devices: l,
			Verified: d.Verified, ReceiptsOff: d.ReceiptsOff, AddedBy: d.By, Added: d.Added, lists: lists,
		}, true
	}
	return Contact{}, false
}

// write stores c's exo.contact trait: its name, card name, verification
// and the device list it holds, which a read takes only if no newer one
// is held in a trait of its own (so a device holding an older list that
// renames or verifies the contact brings back no older list).
func (s *Service) write(ctx context.Context, c Contact) error {
	doc, err := json.Marshal(contactDoc{
		Name: c.Name, Cell: hex.EncodeToString(c.Cell()), Version: c.Devices.Version,
		Devices:  base64.StdEncoding.EncodeToString(c.Devices.Encode()),
		CardName: c.CardName, Verified: c.Verified, ReceiptsOff: c.ReceiptsOff, By: c.AddedBy, Added: c.Added,
	})
	if err != nil {
		return err
	}
	_, err = s.store.Put(ctx, c.ID, []store.Trait{{Type: ContactType, Doc: doc}})
	s.cache.drop() // even after an error: the write may be on the chain
	if err != nil {
		return fmt.Errorf("contact: write contact %q: %w", c.Name, err)
	}
	return nil
}

// List returns the cell's contacts, by name. They are read from the
// store once, then kept in memory while no commit touches a contact in
// this node's index (on a node whose own index answers its reads; on
// another, each call reads them). The slice is the caller's; the
// contacts' DeviceLists are shared: do not modify them.
func (s *Service) List(ctx context.Context) ([]Contact, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if _, err := s.roster(); err != nil {
		return nil, err
	}
	cs, err := s.contacts(ctx)
	if err != nil {
		return nil, err
	}
	return cs.copyList(), nil
}

// Get returns the contact named name, or ErrNoContact. It reads as List.
func (s *Service) Get(ctx context.Context, name string) (Contact, error) {
	if err := s.live(); err != nil {
		return Contact{}, err
	}
	if _, err := s.roster(); err != nil {
		return Contact{}, err
	}
	cs, err := s.contacts(ctx)
	if err != nil {
		return Contact{}, err
	}
	if i, ok := cs.byName[name]; ok {
		return cs.list[i], nil
	}
	return Contact{}, fmt.Errorf("%w: %q", ErrNoContact, name)
}

// Added is what Add did.
type Added struct {
	Contact Contact
	// New: the contact was not held before. Updated: it was, and the card
	// brought a newer device list or a new name. Neither: the card
	// changed nothing.
	New, Updated bool
}

// Add makes the cell of the card text a contact, named name (empty: the
// card's name). A card of a contact held replaces its device list if the
// card's is newer (contact.ErrStale if older, contact.ErrConflict if the
// same version differs) and renames it if name is given. It refuses this
// cell's own card (ErrSelf) and a name another contact has
// (ErrNameTaken); a card that does not parse or verify is one of package
// contact's errors.
func (s *Service) Add(ctx context.Context, text, name string) (Added, error) {
	if err := s.live(); err != nil {
		return Added{}, err
	}
	if _, err := s.roster(); err != nil {
		return Added{}, err
	}
	card, err := contact.ParseCard(text)
	if err != nil {
		return Added{}, err
	}
	return s.addCard(ctx, card, name)
}

// addCard is Add of a card read and verified.
func (s *Service) addCard(ctx context.Context, card *contact.Card, name string) (Added, error) {
	r, err := s.roster()
	if err != nil {
		return Added{}, err
	}
	if card.Cell().Equal(r.Cell) {
		return Added{}, ErrSelf
	}
	if name != "" && !contact.ValidName(name) {
		return Added{}, fmt.Errorf("%w: %q", contact.ErrBadName, name)
	}
	cs, err := s.List(ctx)
	if err != nil {
		return Added{}, err
	}
	id := contactEntity(card.Cell())
	var old *Contact
	for i := range cs {
		if cs[i].ID == id {
			old = &cs[i]
		}
	}
	if name == "" {
		name = card.Name
		if old != nil {
			name = old.Name
		}
	}
	for _, c := range cs {
		if c.Name == name && c.ID != id {
			return Added{}, fmt.Errorf("%w: %q", ErrNameTaken, name)
		}
	}
	if old != nil {
		replace, err := contact.Newer(old.Devices, card.Devices)
		if err != nil {
			return Added{}, fmt.Errorf("contact %q: %w", old.Name, err)
		}
		c := *old
		if replace {
			if err := s.writeList(ctx, c, card.Devices); err != nil {
				return Added{}, err
			}
			c.Devices, c.lists = card.Devices, []heldList{{listTrait(card.Devices.Version), card.Devices.Version}}
		}
		if c.Name == name && old.CardName == card.Name {
			return Added{Contact: c, Updated: replace}, nil
		}
		c.Name, c.CardName = name, card.Name
		if err := s.write(ctx, c); err != nil {
			return Added{}, err
		}
		return Added{Contact: c, Updated: true}, nil
	}
	c := Contact{
		ID: id, Name: name, CardName: card.Name, Devices: card.Devices,
		AddedBy: s.self.String(), Added: s.cfg.Now().UTC().Truncate(time.Millisecond),
	}
	if err := s.write(ctx, c); err != nil {
		return Added{}, err
	}
	// The cell uses contacts now: on an admin, its device list is kept
	// from here on.
	if _, err := s.publish(ctx); err != nil && !errors.Is(err, cell.ErrNotAdmin) {
		s.log.Warn("device list not signed", "err", err)
	}
	return Added{Contact: c, New: true}, nil
}

// Remove deletes the contact named name (ErrNoContact if there is none).
func (s *Service) Remove(ctx context.Context, name string) (Contact, error) {
	c, err := s.Get(ctx, name)
	if err != nil {
		return Contact{}, err
	}
	_, err = s.store.Delete(ctx, c.ID, nil)
	s.cache.drop()
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Contact{}, fmt.Errorf("%w: %q", ErrNoContact, name)
		}
		return Contact{}, fmt.Errorf("contact: remove %q: %w", name, err)
	}
	return c, nil
}

// Verify returns the contact named name with the safety number of this
// cell and its cell (contact.SafetyNumber); with confirm, it first marks
// the contact verified (a person compared the numbers).
func (s *Service) Verify(ctx context.Context, name string, confirm bool) (Contact, string, error) {
	r, err := s.roster()
	if err != nil {
		return Contact{}, "", err
	}
	c, err := s.Get(ctx, name)
	if err != nil {
		return Contact{}, "", err
	}
	n, err := contact.SafetyNumber(r.Cell, c.Cell())
	if err != nil {
		return Contact{}, "", err
	}
	if confirm && !c.Verified {
		c.Verified = true
		if err := s.write(ctx, c); err != nil {
			return Contact{}, "", err
		}
	}
	return c, n, nil
}

// SetReceipts turns read receipts to the contact named name on or off
// and returns the contact as held afterwards (no write if it is so
// already). With receipts off, this cell's devices send the contact no
// receipt: the contact cannot tell a message read from one not read yet.
func (s *Service) SetReceipts(ctx context.Context, name string, on bool) (Contact, error) {
	c, err := s.Get(ctx, name)
	if err != nil {
		return Contact{}, err
	}
	if c.ReceiptsOff == !on {
		return c, nil
	}
	c.ReceiptsOff = !on
	if err := s.write(ctx, c); err != nil {
		return Contact{}, err
	}
	return c, nil
}

// UpdateDevices replaces the device list held for the contact of l's
// cell with l when l is newer (contact.Newer), as a message carrying its
// sender cell's list does; l must have been verified. It returns the
// contact as held afterwards and whether it changed: ErrNoContact if the
// cell is no contact, contact.ErrStale if l is older than the one held,
// contact.ErrConflict if it differs with the same version.
func (s *Service) UpdateDevices(ctx context.Context, l *contact.DeviceList) (Contact, bool, error) {
	cs, err := s.List(ctx)
	if err != nil {
		return Contact{}, false, err
	}
	id := contactEntity(l.Cell)
	for _, c := range cs {
		if c.ID != id {
			continue
		}
		replace, err := contact.Newer(c.Devices, l)
		if err != nil {
			return Contact{}, false, fmt.Errorf("contact %q: %w", c.Name, err)
		}
		if !replace {
			return c, false, nil
		}
		if err := s.writeList(ctx, c, l); err != nil {
			return Contact{}, false, err
		}
		c.Devices, c.lists = l, []heldList{{listTrait(l.Version), l.Version}}
		return c, true, nil
	}
	return Contact{}, false, ErrNoContact
}
