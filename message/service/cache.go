package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The bounds of the sessions the service keeps in memory when no call is
// using them (sessionCache): both hold, the least recently used device
// out first.
const (
	// MaxCachedDevices bounds the devices held.
	MaxCachedDevices = 1024
	// MaxCachedBytes bounds the bytes held, each device's sessions
	// counted at the length of their stored form (ratchet.Session.Size):
	// a session keeps up to ratchet.MaxSkippedKeys skipped message keys
	// (some 136 KB) and a contact's device fills them at will, so
	// MaxCachedDevices devices alone would allow some 550 MB.
	MaxCachedBytes = 64 << 20
)

// sessionCache holds the sessions of the remote devices in memory, so
// that a message reads none from disk, and lets the messages with one
// device share their durable writes. The datastore's session records are
// written by this cache only.
//
// Bounds: at most max entries and maxBytes bytes (the sum of the
// entries' sizes, each its record's stored length) that no call uses; an
// entry in use is never evicted, so the map holds at most max entries
// plus the calls under way, and maxBytes bytes plus the records of the
// calls under way (at most MaxSessions sessions each); once they
// release, it evicts back within both bounds. An entry's size changes
// only while it is in use (on load from disk, on each step), and is
// taken off the sum on eviction. Eviction takes the least recently used
// entry whose state is on disk; failing that (its last write failed),
// the least recently used entry not in use: its memory is ahead of its
// disk only by steps whose write failed, so no frame left from them and
// no acknowledgement went for them, and the state on disk, read again,
// is safe to go on from.
type sessionCache struct {
	mu       sync.Mutex
	max      int // MaxCachedDevices
	maxBytes int // MaxCachedBytes
	m        map[peer.ID]*peerEntry
	bytes    int    // the sum of the entries' sizes
	tick     uint64 // the last use's number
	// evicted are the entries evicted whose streams are not closed yet:
	// closeEvicted closes them once c.mu is released.
	evicted []*peerEntry
}

// peerEntry is one remote device's sessions.
//
// mu is the device's lock: it is held for a ratchet step on rec, and
// each step that changes rec takes a new version (ver). The step's
// state is written after mu is released (persist), in version order,
// one write at a time (wmu): a writer writes the newest state held, so a
// writer whose version is already on disk returns at once, and the
// messages stepped meanwhile share one write.
type peerEntry struct {
	id      peer.ID
	users   int    // calls holding it; under sessionCache.mu
	lastUse uint64 // under sessionCache.mu
	size    int    // rec's size as counted in sessionCache.bytes; under sessionCache.mu

	mu     sync.Mutex
	loaded bool // rec is read from disk; under mu
	// gone is set once the device's sessions are dropped (removal.go):
	// no contact's list names it; nothing steps or writes rec any more.
	// Under mu, and set under wmu too.
	gone bool
	rec  peerRecord // under mu
	ver  atomic.Uint64

	wmu     sync.Mutex
	durable atomic.Uint64 // the version on disk; written under wmu

	// hs is held (a value in it) by the one call making a new session
	// with the device: the others wait for it and use that session, so
	// that messages sent at once to a device with none make one session
	// (and spend one of its one-time prekeys), not one each.
	hs chan struct{}
	// out holds a value per delivery under way to the device: at most
	// MaxDeliveriesPerDevice (slots.go); the entry is in use meanwhile, so
	// it is not evicted.
	out chan struct{}
	// pool is the device's outbound streams (pipe.go), closed when the
	// entry is evicted.
	pool streamPool
	// in holds a value per frame of the device read and not answered
	// yet, across its inbound streams: at most MaxFramesInPerDevice
	// (serve.go); each stream holds the entry while it is open.
	in chan struct{}
	// ins are the device's inbound streams being read (serve.go), under
	// imu; stopped when its sessions are dropped.
	imu sync.Mutex
	ins map[*inStream]struct{}
}

func newSessionCache() *sessionCache {
	return &sessionCache{max: MaxCachedDevices, maxBytes: MaxCachedBytes, m: make(map[peer.ID]*peerEntry)}
}

// acquire returns id's entry, made if need be, counted in use until
// release. It does not block on the device's lock.
func (c *sessionCache) acquire(id peer.ID) *peerEntry {
	c.mu.Lock()
	defer c.closeEvicted()
	defer c.mu.Unlock()
	c.tick++
	e := c.m[id]
	if e == nil {
		c.trimLocked(1)
		e = &peerEntry{
			id: id, hs: make(chan struct{}, 1), out: make(chan struct{}, MaxDeliveriesPerDevice),
			in: make(chan struct{}, MaxFramesInPerDevice),
		}
		c.m[id] = e
	}
	e.users++
	e.lastUse = c.tick
	return e
}

// release ends a use of e; past a bound, it evicts.
func (c *sessionCache) release(e *peerEntry) {
	c.mu.Lock()
	defer c.closeEvicted()
	defer c.mu.Unlock()
	e.users--
	c.trimLocked(0)
}

// trimLocked evicts entries not in use while the cache is past a bound,
// room entries to be added counted. c.mu must be held.
func (c *sessionCache) trimLocked(room int) {
	for (len(c.m)+room > c.max || c.bytes > c.maxBytes) && c.evictLocked() {
	}
}

// evictLocked evicts one entry not in use (see sessionCache); it
// reports whether there was one. c.mu must be held.
func (c *sessionCache) evictLocked() bool {
	var best, fallback *peerEntry
	for _, e := range c.m {
		if e.users > 0 {
			continue
		}
		if fallback == nil || e.lastUse < fallback.lastUse {
			fallback = e
		}
		if e.durable.Load() == e.ver.Load() && (best == nil || e.lastUse < best.lastUse) {
			best = e
		}
	}
	if best == nil {
		best = fallback
	}
	if best == nil {
		return false
	}
	delete(c.m, best.id)
	c.bytes -= best.size
	best.size = 0
	c.evicted = append(c.evicted, best)
	return true
}

// closeEvicted closes the streams of the entries evicted since its last
// call (no delivery uses them: the entries were not in use), outside
// c.mu. c.mu must not be held.
func (c *sessionCache) closeEvicted() {
	c.mu.Lock()
	gone := c.evicted
	c.evicted = nil
	c.mu.Unlock()
	for _, e := range gone {
		e.pool.closeAll()
	}
}

// ids returns the devices held.
func (c *sessionCache) ids() []peer.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]peer.ID, 0, len(c.m))
	for id := range c.m {
		out = append(out, id)
	}
	return out
}

// remove takes id's entry out of the cache, in use or not, and returns
// it (nil if none): the next acquire of id makes a new entry.
func (c *sessionCache) remove(id peer.ID) *peerEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil {
		return nil
	}
	delete(c.m, id)
	c.bytes -= e.size
	e.size = 0
	return e
}

// forget takes id's entry out of the cache if no call uses it (a device
// no contact names: its entry is not kept for it).
func (c *sessionCache) forget(id peer.ID) {
	c.mu.Lock()
	defer c.closeEvicted()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil && e.users == 0 {
		delete(c.m, id)
		c.bytes -= e.size
		e.size = 0
		c.evicted = append(c.evicted, e)
	}
}

// trackInbound counts in among e's inbound streams until the returned
// func is called; if e is gone, in is stopped at once.
func (e *peerEntry) trackInbound(in *inStream) func() {
	e.imu.Lock()
	defer e.imu.Unlock()
	if e.ins == nil {
		e.ins = make(map[*inStream]struct{})
	}
	e.ins[in] = struct{}{}
	e.mu.Lock()
	gone := e.gone
	e.mu.Unlock()
	if gone {
		in.stop()
	}
	return func() {
		e.imu.Lock()
		delete(e.ins, in)
		e.imu.Unlock()
	}
}

// stopInbound stops the reading of e's inbound streams: their frames
// read are answered (refused), then they end.
func (e *peerEntry) stopInbound() {
	e.imu.Lock()
	defer e.imu.Unlock()
	for in := range e.ins {
		in.stop()
	}
}

// len is the number of devices held.
func (c *sessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// resize counts e at its record's size now (peerRecord.size, a sum over
// at most MaxSessions sessions: no encoding). e.mu must be held, and e in
// use (acquired): an entry not in use may be evicted, and its size is
// taken off then; one taken out in use (remove) is counted no more. It
// takes c.mu under e.mu; nothing takes them the other way round.
func (c *sessionCache) resize(e *peerEntry) {
	n := e.rec.size()
	c.mu.Lock()
	if c.m[e.id] == e { // not taken out (remove) while in use
		c.bytes += n - e.size
		e.size = n
	}
	c.mu.Unlock()
}

// lockEntry takes e's lock, reading its record from disk the first time.
// On error the lock is not held.
func (s *Service) lockEntry(ctx context.Context, e *peerEntry) error {
	e.mu.Lock()
	if e.gone {
		e.mu.Unlock()
		return errRemoved
	}
	if e.loaded {
		return nil
	}
	r, err := s.loadRecord(ctx, e.id)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	e.rec, e.loaded = r, true
	s.cache.resize(e)
	return nil
}

// step takes a new version for a change of e.rec, and counts e at its
// new size. e.mu must be held, and e in use.
func (c *sessionCache) step(e *peerEntry) uint64 {
	c.resize(e)
	return e.ver.Add(1)
}

// persist returns once version v of e's record, or a newer one, is on
// disk. It blocks while another write of e is under way, then writes the
// newest state held (unless it is on disk already). e.mu must not be
// held.
func (s *Service) persist(ctx context.Context, e *peerEntry, v uint64) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.durable.Load() >= v {
		return nil
	}
	e.mu.Lock()
	if e.gone {
		e.mu.Unlock()
		return errRemoved
	}
	cur := e.ver.Load()
	r := e.rec
	if len(r.sessions) > MaxSessions {
		r.sessions = r.sessions[:MaxSessions]
	}
	b, err := r.encode()
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("message: store sessions: %w", err)
	}
	if err := s.ds.Put(ctx, sessionKey(e.id), b); err != nil {
		return fmt.Errorf("message: store sessions: %w", err)
	}
	if err := s.ds.Sync(ctx, sessionKey(e.id)); err != nil {
		return fmt.Errorf("message: store sessions: %w", err)
	}
	e.durable.Store(cur)
	return nil
}

// loadRecord returns the record of id on disk (empty if none). A
// corrupt record, or session, is dropped with a log line: a new
// handshake follows.
func (s *Service) loadRecord(ctx context.Context, id peer.ID) (peerRecord, error) {
	b, err := s.ds.Get(ctx, sessionKey(id))
	if errors.Is(err, ds.ErrNotFound) {
		return peerRecord{}, nil
	}
	if err != nil {
		return peerRecord{}, fmt.Errorf("message: load sessions: %w", err)
	}
	r, bad, err := decodeRecord(b)
	if err != nil {
		s.log.Warn("stored sessions corrupt: dropped, the next message makes a new one", "peer", id)
		return peerRecord{}, nil
	}
	if bad > 0 {
		s.log.Warn("stored session corrupt: dropped", "peer", id, "count", bad)
	}
	return r, nil
}
