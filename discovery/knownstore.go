package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

// knownStore is the known table's shell: the pure table (knownTable) and
// the datastore under KnownPrefix it mirrors.
type knownStore struct {
	mu sync.Mutex // guards t and orders the writes
	d  ds.Datastore
	t  *knownTable
}

func newKnownStore(d ds.Datastore, member func(peer.ID) bool) *knownStore {
	if d == nil {
		return nil
	}
	t := newKnownTable()
	t.member = member
	return &knownStore{d: namespace.Wrap(d, ds.NewKey(KnownPrefix)), t: t}
}

// loadKnown reads the table from the datastore and returns the peers to
// dial. An entry that does not decode, has expired, whose signed peer
// record does not verify or is not its peer's, or that is evicted to keep
// MaxKnown, is deleted (the first kinds with a warning): nothing in the
// datastore is trusted that a check could refuse.
func (s *Service) loadKnown(ctx context.Context) ([]peer.AddrInfo, error) {
	k := s.known
	if k == nil {
		return nil, nil
	}
	res, err := k.d.Query(ctx, query.Query{})
	if err != nil {
		return nil, fmt.Errorf("discovery: read the known peers: %w", err)
	}
	type loaded struct {
		id  peer.ID
		row knownRow
	}
	var (
		good []loaded
		drop []ds.Key
	)
	now := s.now()
	for r := range res.Next() {
		if r.Error != nil {
			_ = res.Close()
			return nil, fmt.Errorf("discovery: read the known peers: %w", r.Error)
		}
		key := ds.NewKey(r.Key)
		id, row, err := checkKnown(key, r.Value)
		if err == nil && knownExpired(row.seen, now) {
			err = fmt.Errorf("last seen %v, over %v ago", row.seen, KnownMaxAge)
		}
		if err != nil {
			s.log.Warn("known peer dropped", "key", key, "err", err)
			drop = append(drop, key)
			continue
		}
		if row.seen.After(now) {
			row.seen = now // ages from now; written stays, so the next sighting rewrites it
		}
		good = append(good, loaded{id, row})
	}
	if err := res.Close(); err != nil {
		return nil, fmt.Errorf("discovery: read the known peers: %w", err)
	}
	// Booked oldest first: put never evicts the entry it books, so each
	// entry booked must be the newest yet for the eviction to take the
	// oldest of all, whatever order the datastore answered in.
	slices.SortFunc(good, func(a, b loaded) int {
		if c := a.row.seen.Compare(b.row.seen); c != 0 {
			return c
		}
		return cmpString(string(a.id), string(b.id))
	})
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, l := range good {
		for _, ev := range k.t.put(l.id, l.row) {
			drop = append(drop, ds.NewKey(ev.String()))
		}
	}
	for _, key := range drop {
		if err := k.d.Delete(ctx, key); err != nil {
			s.log.Warn("known peer not deleted", "key", key, "err", err)
		}
	}
	out := make([]peer.AddrInfo, 0, len(k.t.rows))
	for id, row := range k.t.rows {
		out = append(out, peer.AddrInfo{ID: id, Addrs: row.addrs})
	}
	return out, nil
}

// checkKnown decodes one stored entry and verifies its record, if any:
// the envelope's signature, that it holds a peer record, and that both
// the signing key and the record name the peer of the key.
func checkKnown(key ds.Key, value []byte) (peer.ID, knownRow, error) {
	id, err := peer.Decode(key.BaseNamespace())
	if err != nil {
		return "", knownRow{}, fmt.Errorf("key is not a peer ID: %w", err)
	}
	e, err := decodeKnown(value)
	if err != nil {
		return "", knownRow{}, err
	}
	if len(e.Record) == 0 {
		return id, rowOf(e, e.Addrs), nil
	}
	addrs, err := recordAddrs(id, e.Record)
	if err != nil {
		return "", knownRow{}, err
	}
	return id, rowOf(e, addrs), nil
}

// recordAddrs verifies a marshalled signed peer record of id and returns
// its addresses, at most MaxKnownAddrs of them.
func recordAddrs(id peer.ID, b []byte) ([]ma.Multiaddr, error) {
	env, rec, err := record.ConsumeEnvelope(b, peer.PeerRecordEnvelopeDomain)
	if err != nil {
		return nil, fmt.Errorf("signed peer record: %w", err)
	}
	pr, ok := rec.(*peer.PeerRecord)
	if !ok {
		return nil, fmt.Errorf("signed record is a %T, not a peer record", rec)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signed peer record: %w", err)
	}
	if signer != id || pr.PeerID != id {
		return nil, fmt.Errorf("signed peer record of %s, signed by %s, kept for %s", pr.PeerID, signer, id)
	}
	return pr.Addrs[:min(len(pr.Addrs), MaxKnownAddrs)], nil
}

// noteKnown books a peer identified as an exopeer node, with its signed
// peer record (may be nil) and listen addresses, if Config.Interesting
// accepts it, and deletes its entry if Interesting says it no longer is
// of interest. Its entry is written unless an entry with the same
// addresses was written less than KnownDebounce ago, or one with other
// addresses less than KnownMinWrite ago (then the change is kept in
// memory, pending, for flushKnown). Entries evicted or expired on the way
// are deleted.
func (s *Service) noteKnown(id peer.ID, env *record.Envelope, addrs []ma.Multiaddr) {
	k := s.known
	if k == nil || s.cfg.Interesting == nil {
		return
	}
	switch s.cfg.Interesting(id) {
	case InterestYes:
	case InterestNo:
		s.forgetKnown(id)
		return
	default:
		return
	}
	var rec []byte
	if env != nil {
		if b, err := env.Marshal(); err == nil && len(b) <= MaxKnownRecord {
			if ra, err := recordAddrs(id, b); err == nil {
				rec, addrs = b, ra
			}
		}
	}
	e := newKnown(rec, addrs, anyPublic(addrs), s.now())
	rowAddrs := e.Addrs
	if len(e.Record) > 0 {
		rowAddrs = addrs[:min(len(addrs), MaxKnownAddrs)]
	}
	row := rowOf(e, rowAddrs)
	if len(row.addrs) == 0 {
		return // nothing to dial it by
	}
	e.Public = row.public
	row.owner = s.ownerOf(id)

	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.t.due(id, row) {
		if old := k.t.rows[id]; k.t.changed(id, row) {
			// In memory at once; on disk when KnownMinWrite has passed.
			row.written, row.pending = old.written, encodeKnown(e)
		} else {
			row.written = old.written
		}
		// The peer is in the table: only its owner's cap may evict.
		s.deleteKnown(k.t.put(id, row))
		return
	}
	s.writeKnown(id, row, encodeKnown(e), row.seen)
}

// ownerOf is the contact id is a device of (Config.Owner), "" for a
// member or without Owner.
func (s *Service) ownerOf(id peer.ID) string {
	if s.cfg.Owner == nil || (s.cfg.Member != nil && s.cfg.Member(id)) {
		return ""
	}
	return s.cfg.Owner(id)
}

// deleteKnown deletes the entries of ids from the datastore. k.mu is
// held.
func (s *Service) deleteKnown(ids []peer.ID) {
	for _, id := range ids {
		if err := s.known.d.Delete(s.ctx, ds.NewKey(id.String())); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("known peer not deleted", "peer", id, "err", err)
		}
	}
}

// writeKnown writes the entry of id, value, books row as written at at,
// and deletes the entries evicted or expired. k.mu is held.
func (s *Service) writeKnown(id peer.ID, row knownRow, value []byte, at time.Time) {
	k := s.known
	if err := k.d.Put(s.ctx, ds.NewKey(id.String()), value); err != nil {
		s.log.Warn("known peer not written", "peer", id, "err", err)
		return
	}
	s.log.Debug("known peer written", "peer", id, "addrs", row.addrs, "public", row.public)
	row.written, row.pending = at, nil
	k.t.clamp(at)
	s.deleteKnown(append(k.t.put(id, row), k.t.expired(at)...))
}

// forgetKnown deletes the entry of id, a peer Interesting no longer
// accepts (InterestNo: never on a failed read).
func (s *Service) forgetKnown(id peer.ID) {
	k := s.known
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.t.rows[id]; !ok {
		return
	}
	delete(k.t.rows, id)
	if err := k.d.Delete(s.ctx, ds.NewKey(id.String())); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("known peer not deleted", "peer", id, "err", err)
		return
	}
	s.log.Info("known peer no longer of the cell or a contact: deleted", "peer", id)
}

// sweepKnown, at each ping round, deletes the entries of the peers
// Interesting says are no longer of interest (a device removed from the
// cell, a deleted contact's), books the owner of those it accepts (an
// entry loaded has none; a device may move to another contact), evicting
// past MaxKnownPerContact, and writes the changes pending (KnownMinWrite)
// that are due.
func (s *Service) sweepKnown() {
	k := s.known
	if k == nil {
		return
	}
	k.mu.Lock()
	ids := make([]peer.ID, 0, len(k.t.rows))
	for id := range k.t.rows {
		ids = append(ids, id)
	}
	k.mu.Unlock()
	if s.cfg.Interesting != nil {
		for _, id := range ids {
			if s.ctx.Err() != nil {
				return
			}
			switch s.cfg.Interesting(id) {
			case InterestNo:
				s.forgetKnown(id)
			case InterestYes:
				s.ownKnown(id, s.ownerOf(id))
			case InterestUnknown:
				// No roster yet, or the contacts unreadable: so for the
				// others too; one slow read a round, not one per entry.
				s.flushKnown()
				return
			}
		}
	}
	s.flushKnown()
}

// ownKnown books owner as the owner of id's entry, if it has one, and
// deletes the entries its owner's cap evicts.
func (s *Service) ownKnown(id peer.ID, owner string) {
	k := s.known
	k.mu.Lock()
	defer k.mu.Unlock()
	row, ok := k.t.rows[id]
	if !ok || row.owner == owner {
		return
	}
	row.owner = owner
	s.deleteKnown(k.t.put(id, row))
}

// flushKnown writes the pending changes that are due.
func (s *Service) flushKnown() {
	k := s.known
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := s.now()
	for _, id := range k.t.pendingDue(now) {
		row := k.t.rows[id]
		s.writeKnown(id, row, row.pending, now)
	}
}

// KnownQueue bounds the identified peers waiting for knownLoop; past it a
// peer is left to the next ping round.
const KnownQueue = 64

// queueKnown keeps the signed peer record of a peer just identified as
// an exopeer node (go-libp2p's identify verifies it, takes its addresses
// and drops it: the peerstore does not keep it) and hands the peer to
// knownLoop, without blocking: the event loop must not wait on
// Config.Interesting (the contacts may be read from a store member).
func (s *Service) queueKnown(ev event.EvtPeerIdentificationCompleted) {
	if s.known == nil {
		return
	}
	if ev.SignedPeerRecord != nil {
		s.mu.Lock()
		if e := s.peers[ev.Peer]; e != nil {
			e.record = ev.SignedPeerRecord
		}
		s.mu.Unlock()
	}
	select {
	case s.noteq <- ev.Peer:
	default:
	}
}

// knownLoop books the peers identified (queueKnown) in the known table.
func (s *Service) knownLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case id := <-s.noteq:
			s.noteConnected(id)
		case id := <-s.lostq:
			s.lostKnown(id)
		}
	}
}

// noteConnected books an identified exopeer peer as noteKnown does, with
// the record queueKnown kept and the addresses the peerstore holds. A peer identified before it became
// interesting (the inviter, before the roster that names it arrived) is
// so booked at the next ping round, and the entry of a peer that stays
// connected is kept fresh.
func (s *Service) noteConnected(id peer.ID) {
	if s.known == nil {
		return
	}
	var env *record.Envelope
	s.mu.Lock()
	if e := s.peers[id]; e != nil {
		env = e.record
	}
	s.mu.Unlock()
	s.noteKnown(id, env, s.h.Peerstore().Addrs(id))
}

// BootstrapPeers returns the DHT's bootstrap peers from the known table:
// up to KnownBootstrap of the cell's members and contacts' devices last
// seen with a public address, most recently seen first, those only that
// Interesting accepts (InterestYes). An entry it cannot judge
// (InterestUnknown: the roster not read yet, or the contacts unreadable,
// as on a thin device that reaches no store member) is not offered: it
// may be a device removed from the cell or a deleted contact's, and the
// members, which the roster in memory judges, are what the DHT needs to
// find the cell again. From the first Unknown on, entries are judged by
// Config.Member alone (memory), so one slow read at most. Empty without a
// table. Safe for concurrent use.
func (s *Service) BootstrapPeers() []peer.AddrInfo {
	k := s.known
	if k == nil {
		return nil
	}
	k.mu.Lock()
	cands := k.t.bootstrap(s.now(), MaxKnown)
	k.mu.Unlock()
	out := make([]peer.AddrInfo, 0, min(KnownBootstrap, len(cands)))
	unknown := s.cfg.Interesting == nil
	for _, c := range cands {
		if len(out) == KnownBootstrap {
			break
		}
		if !unknown {
			v := s.cfg.Interesting(c.ID)
			if v == InterestYes {
				out = append(out, c)
				continue
			}
			unknown = v == InterestUnknown
			if !unknown {
				continue
			}
		}
		if s.cfg.Member != nil && s.cfg.Member(c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// KnownUnknownRedial is how long after it was last seen an entry that
// Config.Interesting cannot judge (InterestUnknown) is still redialled
// when lost: a device removed from the cell, or a deleted contact's,
// whose removal this node cannot read (no store member reachable), is
// not redialled for the 90 days the entry is kept.
const KnownUnknownRedial = 7 * 24 * time.Hour

// keepKnown reports whether id came from the known table and is to be
// redialled, with back-off, whenever it is lost (and never forgotten for
// failing): Config.Interesting accepts it, or cannot judge it and the
// table saw it within KnownUnknownRedial. Interesting is called outside
// the service's locks, never by the event loop.
func (s *Service) keepKnown(id peer.ID) bool {
	s.mu.Lock()
	e := s.peers[id]
	has := e != nil && e.has(SourceKnown)
	s.mu.Unlock()
	if !has || s.cfg.Interesting == nil {
		return false
	}
	switch s.cfg.Interesting(id) {
	case InterestYes:
		return true
	case InterestUnknown:
		return s.knownRecent(id)
	default:
		return false
	}
}

// knownRecent reports whether the table saw id within KnownUnknownRedial.
func (s *Service) knownRecent(id peer.ID) bool {
	k := s.known
	if k == nil {
		return false
	}
	now := s.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.t.rows[id]
	return ok && now.Sub(r.seen) <= KnownUnknownRedial
}

// lostKnown judges a known peer the event loop saw lost (disconnected):
// redialled with back-off if keepKnown says so, forgotten otherwise,
// unless it came back, is being dialled or is ignored meanwhile.
func (s *Service) lostKnown(id peer.ID) {
	keep := s.keepKnown(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.peers[id]
	if e == nil || e.exopeer || e.dialing || e.wantDial {
		return
	}
	if keep {
		e.wantDial = true
		e.nextDial = s.now().Add(s.backoff(e.failures + 1))
		s.kick(s.wake)
		return
	}
	if !s.now().Before(e.ignoredUntil) {
		delete(s.peers, id)
	}
}

// knownAddrs returns the known table's addresses of id, for dial to put
// back in the peerstore: the table's were put there at Start with
// peerstore.AddressTTL, and a known peer is redialled longer than that.
func (s *Service) knownAddrs(id peer.ID) []ma.Multiaddr {
	k := s.known
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.t.rows[id].addrs)
}
