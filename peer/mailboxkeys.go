package peer

import (
	"context"
	"crypto/ecdh"
	"errors"
	"time"

	"github.com/exopeer/exopeer/cell"
	messageservice "github.com/exopeer/exopeer/message/service"
)

// cellMailboxKeys gives the messages this cell's mailbox private keys
// (cell/core Secret.MailboxKey) from the epoch secrets the cell holds:
// the current epoch's first (a writer's), then the older ones held,
// newest first, at most messageservice.MaxMailboxKeys in all. The cell
// does not record when an epoch ended, so it gives the newest epochs
// rather than those in force within the last 7 days (message/mailbox
// doc.go, "Use"): a reader polls a key too many, never one too few
// unless the cell changed epoch more than three times in 7 days.
type cellMailboxKeys struct{ cell *cell.Service }

var errNoMailboxKey = errors.New("peer: the cell's mailbox key is not held")

// MailboxKeys implements messageservice.MailboxKeys; it does not block.
func (k cellMailboxKeys) MailboxKeys(context.Context, time.Time) ([]*ecdh.PrivateKey, error) {
	r := k.cell.Roster()
	keys := k.cell.Keys()
	if r == nil || keys == nil {
		return nil, errNoMailboxKey
	}
	cur, ok := keys.Secret(r.Epoch)
	if !ok {
		return nil, errNoMailboxKey
	}
	out := []*ecdh.PrivateKey{cur.MailboxKey(r.Cell)}
	epochs := keys.Epochs()
	for i := len(epochs) - 1; i >= 0 && len(out) < messageservice.MaxMailboxKeys; i-- {
		if epochs[i] >= r.Epoch {
			continue
		}
		if s, ok := keys.Secret(epochs[i]); ok {
			out = append(out, s.MailboxKey(r.Cell))
		}
	}
	return out, nil
}
