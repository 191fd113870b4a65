package service

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/exopeer/exopeer/cell"
)

// maxPublishedKeys bounds the epochs an exo.devices document records the
// publication of (the latest; one more per device removed).
const maxPublishedKeys = 32

// publishedKey is an epoch whose mailbox key the cell's lists carried,
// and when a list first carried it.
type publishedKey struct {
	Epoch uint64    `json:"epoch"`
	Since time.Time `json:"since"`
}

// readKeys reads an exo.devices document's keys if they are what addKey
// writes (epochs growing, at most maxPublishedKeys), else nil: a document
// another device or binary wrote wrong records nothing, and its list
// stands.
func readKeys(raw json.RawMessage) []publishedKey {
	var ks []publishedKey
	if len(raw) == 0 || json.Unmarshal(raw, &ks) != nil || len(ks) > maxPublishedKeys {
		return nil
	}
	for i := 1; i < len(ks); i++ {
		if ks[i].Epoch <= ks[i-1].Epoch {
			return nil
		}
	}
	return ks
}

// addKey returns ks with epoch as the newest published at now, unless it
// is already the newest; the oldest are dropped past maxPublishedKeys.
// Epochs past epoch (the list being written carries epoch's key, so no
// list carried theirs: a document another device wrote wrong) are
// dropped. ks is not changed.
func addKey(ks []publishedKey, epoch uint64, now time.Time) []publishedKey {
	for len(ks) > 0 && ks[len(ks)-1].Epoch > epoch {
		ks = ks[:len(ks)-1]
	}
	if n := len(ks); n > 0 && ks[n-1].Epoch == epoch {
		return ks
	}
	ks = append(slices.Clone(ks), publishedKey{Epoch: epoch, Since: now})
	if len(ks) > maxPublishedKeys {
		ks = ks[len(ks)-maxPublishedKeys:]
	}
	return ks
}

// MailboxKey is one of the cell's X25519 mailbox keys (one per key
// epoch, cell/core Secret.MailboxKey), with when the cell's device lists
// carried it: a contact writes the pair's blind mailboxes with the key
// of the newest list of the cell it holds (package message/mailbox).
type MailboxKey struct {
	Epoch   uint64
	Private *ecdh.PrivateKey
	// Current: the key of the roster's epoch, which the next list
	// carries.
	Current bool
	// Since is when a list of the cell first carried the key (recorded in
	// the cell's exo.devices document by the admin that signed it); zero
	// when none did as far as that record goes (a contact then never had
	// it, unless the record dropped it: at most maxPublishedKeys are
	// kept).
	Since time.Time
	// Until is when a list first carried a newer key (the Since of the
	// next published one): from then on a contact that holds that list
	// writes with the newer key. Zero while no newer key was published.
	Until time.Time
}

// MailboxKeys returns the cell's mailbox keys of every epoch whose
// secret the node holds (every epoch of the cell: the roster carries
// the earlier ones' secrets), oldest first, for the reader of the cell's
// blind mailboxes: which of them a contact may still write with is the
// caller's rule. The private keys are the caller's. An error when the
// node is in no cell or the cell's device list cannot be read. It
// blocks on the store; safe for concurrent use.
func (s *Service) MailboxKeys(ctx context.Context) ([]MailboxKey, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	r, err := s.roster()
	if err != nil {
		return nil, err
	}
	keys := s.cell.Keys()
	if keys == nil {
		return nil, cell.ErrNoCell
	}
	o, err := s.heldOwn(ctx, r)
	if err != nil {
		return nil, err
	}
	since := make(map[uint64]time.Time, len(o.keys))
	for _, k := range o.keys {
		since[k.Epoch] = k.Since
	}
	var out []MailboxKey
	for _, e := range keys.Epochs() {
		sec, _ := keys.Secret(e)
		k := MailboxKey{Epoch: e, Private: sec.MailboxKey(r.Cell), Current: e == r.Epoch, Since: since[e]}
		for _, p := range o.keys {
			if p.Epoch > r.Epoch {
				break // no list of this roster's carried it: not what an admin wrote
			}
			if p.Epoch > e {
				k.Until = p.Since
				break
			}
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("contact: mailbox keys: %w", cell.ErrNoKey)
	}
	return out, nil
}

// MailboxKey returns the contact's mailbox public key of its device
// list held (its cell's current epoch's, as far as this cell knows), or
// contact.ErrNoMailbox when that list carries none (signed by an older
// binary, or before its cell published one).
func (c Contact) MailboxKey() (*ecdh.PublicKey, error) { return c.Devices.MailboxKey() }
