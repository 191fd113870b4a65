package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// DeviceListType is the trait type of one version of a contact's signed
// device list, kept in the contact's entity beside its exo.contact trait
// under a trait ID of its own per version (listTrait). Not a registered
// schema: nothing queries it; it is read with its contact's entity.
const DeviceListType = "exo.contact.devices"

// listDoc is an exo.contact.devices document.
type listDoc struct {
	Cell    string `json:"cell"`
	Version uint64 `json:"version"`
	List    string `json:"list"`
	By      string `json:"by,omitempty"`
}

// listTraitPrefix starts the trait ID of every version of a contact's
// device list.
const listTraitPrefix = "devices."

// listTrait is the trait ID of version v of a contact's device list:
// one per version, so that two devices writing different versions never
// overwrite each other, and the same version, written twice, is one
// trait.
func listTrait(v uint64) store.TraitID {
	return store.TraitID(fmt.Sprintf("%s%020d", listTraitPrefix, v))
}

// decodeList reads a device list kept in a document's base64 field b64;
// nil if it does not decode or verify.
func decodeList(b64 string) *contact.DeviceList {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil
	}
	l, err := contact.DecodeDeviceList(b)
	if err != nil {
		return nil
	}
	return l
}

// heldList is a version of a contact's device list its entity holds in
// a trait of its own.
type heldList struct {
	id      store.TraitID
	version uint64
}

// bestList returns the newest of the valid lists of entity e's traits
// (the one in its exo.contact document, base64 in contactList, and each
// exo.contact.devices trait's) whose cell is the contact's, and the
// versions held in traits of their own. Of two different lists of one
// version (the cell key signed both), the version 2 list that adds the
// mailbox key to the same devices wins (contact.Newer); others are ordered
// by their encodings, so that every device picks the same one. nil if there is none.
func bestList(e store.Entity, contactList string) (*contact.DeviceList, []heldList) {
	var best *contact.DeviceList
	consider := func(l *contact.DeviceList) {
		if l == nil || contactEntity(l.Cell) != e.ID {
			return
		}
		if best == nil || l.Version > best.Version || l.Version == best.Version && sameVersionBetter(best, l) {
			best = l
		}
	}
	consider(decodeList(contactList))
	var held []heldList
	for _, t := range e.Traits {
		if t.Type != DeviceListType || !strings.HasPrefix(string(t.ID), listTraitPrefix) {
			continue
		}
		var d listDoc
		if err := json.Unmarshal(t.Doc, &d); err != nil {
			continue
		}
		l := decodeList(d.List)
		if l == nil || listTrait(l.Version) != t.ID {
			continue
		}
		consider(l)
		held = append(held, heldList{t.ID, l.Version})
	}
	return best, held
}

// sameVersionBetter says whether l, of best's version, is the better of
// the two: the version 2 list that contact.Newer lets replace best (the
// cell added its mailbox key) is; best, if it is that upgrade of l, stays;
// otherwise the smaller encoding is, so that every device picks the same.
func sameVersionBetter(best, l *contact.DeviceList) bool {
	if up, err := contact.Newer(best, l); err == nil && up {
		return true
	}
	if up, err := contact.Newer(l, best); err == nil && up {
		return false
	}
	return bytes.Compare(l.Encode(), best.Encode()) < 0
}

// writeList stores l, a newer device list of contact c, as a trait of
// its own, then deletes the older versions c's entity held when read
// (best effort: a list left behind is older, so never used again).
func (s *Service) writeList(ctx context.Context, c Contact, l *contact.DeviceList) error {
	doc, err := json.Marshal(listDoc{
		Cell: hex.EncodeToString(l.Cell), Version: l.Version,
		List: base64.StdEncoding.EncodeToString(l.Encode()), By: s.self.String(),
	})
	if err != nil {
		return err
	}
	_, err = s.store.Put(ctx, c.ID, []store.Trait{{Type: DeviceListType, ID: listTrait(l.Version), Doc: doc}})
	s.cache.drop()
	if err != nil {
		return fmt.Errorf("contact: write the device list of %q: %w", c.Name, err)
	}
	var older []store.TraitID
	for _, h := range c.lists {
		if h.version < l.Version {
			older = append(older, h.id)
		}
	}
	if len(older) > store.MaxOps {
		older = older[:store.MaxOps] // the rest goes with a later version
	}
	if len(older) > 0 {
		// ErrNotFound: another device deleted one already.
		_, err := s.store.Delete(ctx, c.ID, older)
		s.cache.drop()
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("older device lists not deleted", "entity", c.ID, "err", err)
		}
	}
	return nil
}
