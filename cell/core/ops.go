package core

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The roster operations below are pure: the clock comes in as now, and
// keys are the caller's. The service stores and spreads what they return.

// Founder describes the node that creates a cell.
type Founder struct {
	Peer   peer.ID
	Name   string
	BoxKey [BoxKeyLen]byte
}

// NewCell creates a cell: a fresh cell key, the secret of epoch 1 (both
// from rand), and roster version 1 with the founder as its only member,
// with every role.
func NewCell(name string, f Founder, now time.Time, rand io.Reader) (*Roster, ed25519.PrivateKey, *Keys, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cell: cell key: %w", err)
	}
	keys := NewKeys(pub)
	secret, err := NewSecret(rand)
	if err != nil {
		return nil, nil, nil, err
	}
	keys.Add(1, secret)
	r := &Roster{Cell: pub, Name: name, Version: 1, Epoch: 1, Issued: now.Truncate(time.Second)}
	m := Member{Peer: f.Peer, Name: f.Name, Roles: AllRoles, Added: r.Issued, BoxKey: f.BoxKey}
	if err := r.grant(&m, keys, rand); err != nil {
		return nil, nil, nil, err
	}
	r.Members = []Member{m}
	if err := r.Sign(priv); err != nil {
		return nil, nil, nil, err
	}
	return r, priv, keys, nil
}

// grant seals the roster's current epoch secret to m, with an ephemeral
// key read from rand.
func (r *Roster) grant(m *Member, keys *Keys, rand io.Reader) error {
	s, ok := keys.Secret(r.Epoch)
	if !ok {
		return fmt.Errorf("%w %d", ErrNoKey, r.Epoch)
	}
	g, err := sealGrant(rand, m.BoxKey, r.Cell, r.Epoch, []byte(m.Peer), s)
	if err != nil {
		return err
	}
	m.Grant = g
	return nil
}

// next returns a copy of r as the start of the next version.
func (r *Roster) next(now time.Time) *Roster {
	n := *r
	n.Version++
	n.Issued = now.Truncate(time.Second)
	if n.Issued.Before(r.Issued) {
		n.Issued = r.Issued // a clock set back must not make versions look older
	}
	n.Members = slices.Clone(r.Members)
	n.Former = slices.Clone(r.Former)
	n.Sig = nil
	return &n
}

// WithMember returns the next roster version with m added (its Added time
// set to now) and granted the current epoch's secret. Adding a member does
// not change the epoch: the newcomer may read what the cell wrote before.
// A former member added again leaves Former: it is a member like any other.
func (r *Roster) WithMember(m Member, keys *Keys, key ed25519.PrivateKey, now time.Time, rand io.Reader) (*Roster, error) {
	if r.Has(m.Peer) {
		return nil, fmt.Errorf("cell: %s is already a member", m.Peer)
	}
	n := r.next(now)
	if i, ok := n.formerIndex(m.Peer); ok {
		n.Former = slices.Delete(n.Former, i, i+1)
	}
	m.Added = n.Issued
	if err := n.grant(&m, keys, rand); err != nil {
		return nil, err
	}
	n.Members = append(n.Members, m)
	slices.SortFunc(n.Members, func(a, b Member) int { return strings.Compare(string(a.Peer), string(b.Peer)) })
	if err := n.Sign(key); err != nil {
		return nil, err
	}
	return n, nil
}

// Without returns the next roster version without id, in a new epoch: a
// fresh secret, from rand, added to keys, is granted to every remaining member, and
// the history now carries every earlier secret. The removed node holds none
// of it, so it reads nothing encrypted from this epoch on. It is listed in
// Former with the new epoch as Until and cut as its cut-off (replacing what
// an earlier removal recorded): what it wrote up to the cut-off stays its
// own, nothing after, whatever epoch it names.
func (r *Roster) Without(id peer.ID, cut Cutoff, keys *Keys, key ed25519.PrivateKey, now time.Time, rand io.Reader) (*Roster, error) {
	m, ok := r.Member(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotMember, id)
	}
	if m.Roles&RoleAdmin != 0 && r.admins() == 1 {
		return nil, fmt.Errorf("cell: %s is the cell's only admin", id)
	}
	cut.Last = slices.Clone(cut.Last)
	slices.SortFunc(cut.Last, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	if err := cut.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRoster, err)
	}
	n := r.next(now)
	n.Epoch++
	secret, err := NewSecret(rand)
	if err != nil {
		return nil, err
	}
	keys.Add(n.Epoch, secret)
	n.Members = slices.DeleteFunc(n.Members, func(m Member) bool { return m.Peer == id })
	if i, ok := n.formerIndex(id); ok {
		n.Former[i] = Former{Peer: id, Until: n.Epoch, Cutoff: cut}
	} else {
		n.Former = slices.Insert(n.Former, i, Former{Peer: id, Until: n.Epoch, Cutoff: cut})
	}
	for i := range n.Members {
		if err := n.grant(&n.Members[i], keys, rand); err != nil {
			return nil, err
		}
	}
	h, err := keys.sealHistory(n.Epoch, rand)
	if err != nil {
		return nil, err
	}
	n.History = h
	if err := n.Sign(key); err != nil {
		return nil, err
	}
	return n, nil
}

func (r *Roster) admins() int {
	n := 0
	for _, m := range r.Members {
		if m.Roles&RoleAdmin != 0 {
			n++
		}
	}
	return n
}

// Accept takes a verified roster as self's: it opens self's grant of the
// roster's epoch into keys and, with it, the history of earlier epochs.
func (r *Roster) Accept(self peer.ID, box BoxKey, keys *Keys) error {
	m, ok := r.Member(self)
	if !ok {
		return fmt.Errorf("%w: %s is not on roster version %d", ErrNotMember, self, r.Version)
	}
	if m.BoxKey != box.Public() {
		return fmt.Errorf("cell: roster version %d lists another box key for this node", r.Version)
	}
	s, err := box.openGrant(m.Grant, r.Cell, r.Epoch, []byte(self))
	if err != nil {
		return err
	}
	keys.Add(r.Epoch, s)
	return keys.openHistory(r.Epoch, r.History)
}
