package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	contactservice "github.com/exopeer/exopeer/contact/service"
)

// rendezvous is the part of discovery the cell and contacts use to meet.
type rendezvous interface {
	Rendezvous(secret []byte)
	StopRendezvous(secret []byte)
}

// isInviteRendezvous reports whether secret is an invite's nameplate: a
// cell invite's or a contact invite's.
func isInviteRendezvous(secret []byte) bool {
	return cell.IsInviteRendezvous(secret) || contactservice.IsInviteRendezvous(secret)
}

// invWindows is the node's part "windows", on both sides of an invite
// window (see windowTopic):
//
//   - It stands between the cell and contacts and discovery's rendezvous:
//     while the node advertises at least one invite's nameplate (an open
//     invite, or one being accepted), it announces its window on the
//     cell's gossip, renews it every windowRenew, and closes it when the
//     last nameplate is withdrawn (the invite used, cancelled or expired).
//     The rendezvous calls only note the change (the cell calls them with
//     its lock held); Run announces.
//     Its own last announce is also its gossip push/pull state, so a relay
//     that joins or restarts learns it.
//   - It is the gossip topic's handler: the windows of members, checked
//     against their own keys, go to its table, which the relay's ACL reads.
type invWindows struct {
	rz        rendezvous
	store     ds.Datastore // holds the last issued (windowIssuedKey); nil: none
	key       crypto.PrivKey
	self      peer.ID
	now       func() time.Time
	announce  bool // false: the node only keeps others' windows
	broadcast func(topic string, msg []byte) error
	member    func(peer.ID) bool
	log       *slog.Logger
	tab       windowTable

	// poke asks Run to announce: the rendezvous calls come with the
	// cell's or contacts' lock held, under which gossip cannot be called.
	poke chan struct{}

	mu     sync.Mutex
	open   map[string]int // invite nameplates advertised, by secret: how many times
	own    []byte         // the last announce sent; nil before any
	last   time.Time      // its issued time
	loaded bool           // last was read from store
}

// windowIssuedKey holds the node's last window issued time, so that a
// node restarted with its clock set back still announces newer windows:
// relays take only an issued after the last they took.
var windowIssuedKey = ds.NewKey("/peer/window/issued")

// loadIssued reads the last issued time kept in store; a value that is
// not 8 bytes is ignored with a warning (the next announce overwrites it).
// errBadIssued is loadIssued's error for a stored value that cannot be
// one: it is overwritten by the next announce, not read again.
var errBadIssued = errors.New("peer: last window issued stored wrong")

func loadIssued(ctx context.Context, store ds.Datastore) (time.Time, error) {
	b, err := store.Get(ctx, windowIssuedKey)
	switch {
	case errors.Is(err, ds.ErrNotFound):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("peer: read last window issued: %w", err)
	case len(b) != 8:
		return time.Time{}, fmt.Errorf("%w: %d bytes, want 8", errBadIssued, len(b))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))), nil
}

func newInvWindows(rz rendezvous, store ds.Datastore, key crypto.PrivKey, now func() time.Time, announce bool,
	broadcast func(string, []byte) error, member func(peer.ID) bool, log *slog.Logger) (*invWindows, error) {
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &invWindows{rz: rz, store: store, key: key, self: self, now: now, announce: announce, broadcast: broadcast,
		member: member, log: log, poke: make(chan struct{}, 1), open: make(map[string]int)}, nil
}

// Rendezvous is discovery's; an invite's nameplate opens the window.
func (w *invWindows) Rendezvous(secret []byte) {
	w.rz.Rendezvous(secret)
	if !isInviteRendezvous(secret) {
		return
	}
	w.mu.Lock()
	w.open[string(secret)]++
	first := len(w.open) == 1 && w.open[string(secret)] == 1
	w.mu.Unlock()
	if first {
		w.wake()
	}
}

// StopRendezvous is discovery's; the last invite's nameplate withdrawn
// closes the window.
func (w *invWindows) StopRendezvous(secret []byte) {
	w.rz.StopRendezvous(secret)
	if !isInviteRendezvous(secret) {
		return
	}
	w.mu.Lock()
	n, ok := w.open[string(secret)]
	if n > 1 {
		w.open[string(secret)] = n - 1
	} else {
		delete(w.open, string(secret))
	}
	last := ok && len(w.open) == 0
	w.mu.Unlock()
	if last {
		w.wake()
	}
}

// wake asks Run to announce the window as it is then. It never blocks.
func (w *invWindows) wake() {
	select {
	case w.poke <- struct{}{}:
	default: // one is pending: it reads the state when it runs
	}
}

// send announces the window as it is now: open for windowLease while a
// nameplate is advertised, else closed. Its issued is the node's clock,
// or just after the last one sent (or stored, before a restart) if that
// is not after it.
func (w *invWindows) send(ctx context.Context) {
	if !w.announce {
		return
	}
	// The store is read outside mu: Rendezvous, called under the cell's
	// and contacts' locks, takes mu. loaded and last change only here,
	// on Run's goroutine.
	w.mu.Lock()
	load := !w.loaded && w.store != nil
	w.mu.Unlock()
	var last time.Time
	var err error
	if load {
		if last, err = loadIssued(ctx, w.store); err != nil {
			w.log.Warn("relay window: last issued time not read", "err", err)
		}
	}
	w.mu.Lock()
	if load {
		w.last = maxTime(w.last, last)
		// A read that failed (not a wrong value) is tried again at the
		// next announce: until then this one may be refused by relays
		// after a clock set back, and the next corrects it.
		w.loaded = err == nil || errors.Is(err, errBadIssued)
	}
	now := w.now()
	if !now.After(w.last) {
		now = w.last.Add(time.Nanosecond) // issued strictly grows
	}
	m := windowMsg{member: w.self, issued: now, until: now}
	if len(w.open) > 0 {
		m.until = now.Add(windowLease)
	}
	msg, err := signWindow(w.key, m)
	if err != nil {
		w.mu.Unlock()
		w.log.Warn("relay window not announced", "err", err)
		return
	}
	w.own, w.last = msg, now
	loaded := w.loaded
	w.mu.Unlock()
	if w.store != nil && loaded { // not over a stored value not read yet
		if err := w.store.Put(ctx, windowIssuedKey, binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))); err != nil {
			w.log.Warn("relay window: issued time not stored", "err", err)
		}
	}
	// Outside mu: gossip may call LocalState.
	if err := w.broadcast(windowTopic, msg); err != nil && !errors.Is(err, cell.ErrNoCell) {
		w.log.Warn("relay window not announced", "err", err)
	}
}

// Run announces the window when it opens or closes, and renews an open
// one, until ctx ends.
func (w *invWindows) Run(ctx context.Context) error {
	t := time.NewTicker(windowRenew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.poke:
			w.send(ctx)
		case <-t.C:
			w.mu.Lock()
			open := len(w.open) > 0
			w.mu.Unlock()
			if open {
				w.send(ctx)
			}
		}
	}
}

// HandleMessage is the topic's handler: a member's window, signed by it.
func (w *invWindows) HandleMessage(msg []byte) {
	m, err := openWindow(msg)
	if err != nil {
		w.log.Debug("relay window dropped", "err", err)
		return
	}
	if m.member == w.self || !w.member(m.member) {
		return
	}
	w.tab.put(m, w.now(), w.member)
}

// LocalState is the node's own last announce (gossip push/pull).
func (w *invWindows) LocalState() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.own
}

// MergeState takes a member's own announce.
func (w *invWindows) MergeState(buf []byte) { w.HandleMessage(bytes.Clone(buf)) }

// admit is relayACL's window: src may reach member dest through it now.
func (w *invWindows) admit(src, dest peer.ID) bool { return w.tab.admit(src, dest, w.now()) }

// holds is relayACL's held: src came in through dest's open window and
// may keep its circuit to dest.
func (w *invWindows) holds(src, dest peer.ID) bool { return w.tab.holds(src, dest, w.now()) }

// free is relayACL's: the slots with no circuit (live) are freed.
func (w *invWindows) free(live func(src, dest peer.ID) bool) { w.tab.free(live, w.now()) }

// windowBroadcast sends a window on the cell's gossip (ErrNoCell before
// gossip runs: the window then goes out as the node's push/pull state).
func (n *Node) windowBroadcast(topic string, msg []byte) error {
	if n.cell == nil {
		return cell.ErrNoCell
	}
	return n.cell.Broadcast(topic, msg)
}

// windowMember reports whether id is on the cell's roster now.
func (n *Node) windowMember(id peer.ID) bool {
	if n.cell == nil {
		return false
	}
	r := n.cell.Roster()
	return r != nil && r.Has(id)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
