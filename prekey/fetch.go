package prekey

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/ratchet"
)

// Fetch returns the newest verified bundle of device id: asked directly
// on Protocol if the host is connected to id, else (or if that fails)
// looked up on the DHT. A bundle is taken only if it verifies
// (ratchet.VerifyBundle) and is signed by id's own key (else
// ErrWrongPeer): a peer cannot answer for another. The newest bundle of
// each device is cached, and Fetch never returns an older one than it
// returned before: if what it finds is not newer, it returns the cached
// one. A cached bundle whose signed prekey is past its grace period
// (Stale) is not held to: what Fetch finds replaces it, whatever its
// sequence (a device restored from a backup, for one). The bundle
// returned is shared: the caller must not change it. It blocks until
// done or ctx ends.
func (s *Service) Fetch(ctx context.Context, id peer.ID) (*ratchet.Bundle, error) {
	if err := s.running(); err != nil {
		return nil, err
	}
	if id == s.self {
		return s.Bundle(), nil
	}
	var direct error
	if s.h.Network().Connectedness(id) == network.Connected {
		b, err := s.fetchDirect(ctx, id)
		if err == nil {
			s.count(func(c *Stats) { c.Direct++ })
			return s.cache.keep(id, b, s.now().Unix()), nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("prekey: fetch %s: %w", id, err)
		}
		direct = err
		s.log.Debug("prekey bundle not fetched directly", "peer", id, "err", err)
	}
	data, err := s.records.GetRecord(ctx, id, RecordName)
	if err != nil {
		return nil, fmt.Errorf("prekey: fetch %s: %w", id, errors.Join(direct, err))
	}
	b, err := verify(id, data)
	if err != nil {
		s.count(func(c *Stats) { c.Refused++ })
		return nil, fmt.Errorf("prekey: fetch %s from the DHT: %w", id, errors.Join(direct, err))
	}
	s.count(func(c *Stats) { c.FromDHT++ })
	return s.cache.keep(id, b, s.now().Unix()), nil
}

// Cached returns the newest bundle of id that Fetch verified, or nil (nil
// too once it is Stale). It is shared: the caller must not change it.
func (s *Service) Cached(id peer.ID) *ratchet.Bundle { return s.cache.get(id, s.now().Unix()) }

// Stale reports whether b's signed prekey is past its grace period at now
// (Unix seconds): made RotationPeriod + GracePeriod ago or more. Its
// device, which rotates it after RotationPeriod and answers the previous
// one for GracePeriod more, refuses an initial message to it.
func Stale(b *ratchet.Bundle, now int64) bool {
	return now-b.Signed.Created >= ratchet.RotationPeriod+ratchet.GracePeriod
}

func (s *Service) running() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case !s.started:
		return ErrNotStarted
	}
	return nil
}

func (s *Service) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// fetchDirect asks id for its bundle on Protocol and verifies it.
func (s *Service) fetchDirect(ctx context.Context, id peer.ID) (*ratchet.Bundle, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	st, err := s.h.NewStream(network.WithAllowLimitedConn(network.WithNoDial(ctx, "prekeys of a connected peer"), "prekeys"), id, Protocol)
	if err != nil {
		return nil, err
	}
	defer context.AfterFunc(ctx, func() { _ = st.Reset() })()
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	if err := writeRequest(st); err != nil {
		_ = st.Reset()
		return nil, err
	}
	if err := st.CloseWrite(); err != nil {
		_ = st.Reset()
		return nil, err
	}
	data, err := readAnswer(st)
	if err != nil {
		_ = st.Reset()
		if errors.Is(err, ErrProtocol) {
			s.count(func(c *Stats) { c.Refused++ })
		}
		return nil, err
	}
	_ = st.Close()
	b, err := verify(id, data)
	if err != nil {
		s.count(func(c *Stats) { c.Refused++ })
		return nil, err
	}
	return b, nil
}

// verify decodes and verifies a bundle said to be id's.
func verify(id peer.ID, data []byte) (*ratchet.Bundle, error) {
	b, err := ratchet.VerifyBundle(data)
	if err != nil {
		return nil, err
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(b.SigningKey[:])
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", ratchet.ErrBadBundle)
	}
	if !id.MatchesPublicKey(pub) {
		return nil, ErrWrongPeer
	}
	return b, nil
}

// cache keeps the newest verified bundle of the devices last fetched, at
// most max of them, the least recently used evicted first; one Stale at
// the time asked is as good as none. It is safe for concurrent use.
type cache struct {
	mu  sync.Mutex
	max int
	ll  *list.List // of *cacheEntry, most recent first
	m   map[peer.ID]*list.Element
}

type cacheEntry struct {
	id peer.ID
	b  *ratchet.Bundle
}

func newCache(max int) *cache {
	return &cache{max: max, ll: list.New(), m: map[peer.ID]*list.Element{}}
}

// keep records b as id's bundle unless the one held is as new or newer
// and not Stale at now, and returns the one held after.
func (c *cache) keep(id peer.ID, b *ratchet.Bundle, now int64) *ratchet.Bundle {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok {
		c.ll.MoveToFront(e)
		ent := e.Value.(*cacheEntry)
		if b.Replaces(ent.b) || Stale(ent.b, now) {
			ent.b = b
		}
		return ent.b
	}
	c.m[id] = c.ll.PushFront(&cacheEntry{id: id, b: b})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*cacheEntry).id)
	}
	return b
}

// get returns id's bundle, or nil if none is held or it is Stale at now
// (then it is dropped).
func (c *cache) get(id peer.ID, now int64) *ratchet.Bundle {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return nil
	}
	if b := e.Value.(*cacheEntry).b; !Stale(b, now) {
		c.ll.MoveToFront(e)
		return b
	}
	c.ll.Remove(e)
	delete(c.m, id)
	return nil
}

// len returns how many bundles are held.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
