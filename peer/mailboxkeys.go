package peer

import (
	"context"
	"crypto/ecdh"
	"errors"
	"slices"
	"time"

	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/message/mailbox"
	messageservice "github.com/exopeer/exopeer/message/service"
)

// mailboxKeys gives the messages this cell's mailbox private keys from
// the contacts' record of the keys the cell's device lists carried
// (contactservice.MailboxKeys), by message/mailbox doc.go's rule (Use):
// first the key a writer of this cell uses, the newest a list carried
// (a contact holds no newer one; the current epoch's if none did yet),
// then the others a contact may still write with, those a list carried
// that were in force within the last mailbox.Retention (not replaced by
// a newer one's list before), newest first; at most
// messageservice.MaxMailboxKeys in all.
type mailboxKeys struct{ cons *contactservice.Service }

var errNoMailboxKey = errors.New("peer: the cell has no mailbox key")

// MailboxKeys implements messageservice.MailboxKeys; it reads the store.
func (k mailboxKeys) MailboxKeys(ctx context.Context, now time.Time) ([]*ecdh.PrivateKey, error) {
	ks, err := k.cons.MailboxKeys(ctx)
	if err != nil {
		return nil, err
	}
	return pickMailboxKeys(ks, now)
}

// pickMailboxKeys is MailboxKeys' rule on ks, oldest first.
func pickMailboxKeys(ks []contactservice.MailboxKey, now time.Time) ([]*ecdh.PrivateKey, error) {
	ks = slices.Clone(ks)
	slices.SortFunc(ks, func(a, b contactservice.MailboxKey) int {
		switch {
		case a.Epoch > b.Epoch:
			return -1
		case a.Epoch < b.Epoch:
			return 1
		}
		return 0
	})
	w := slices.IndexFunc(ks, func(k contactservice.MailboxKey) bool { return !k.Since.IsZero() })
	if w < 0 {
		w = slices.IndexFunc(ks, func(k contactservice.MailboxKey) bool { return k.Current })
	}
	if w < 0 {
		return nil, errNoMailboxKey
	}
	out := []*ecdh.PrivateKey{ks[w].Private}
	for i, k := range ks {
		if len(out) >= messageservice.MaxMailboxKeys {
			break
		}
		if i == w || k.Since.IsZero() || (!k.Until.IsZero() && k.Until.Before(now.Add(-mailbox.Retention))) {
			continue
		}
		out = append(out, k.Private)
	}
	return out, nil
}
