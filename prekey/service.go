package prekey

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/ratchet"
)

// Records is where bundles are published and looked up: the node's DHT
// (*dht.DHT), whose records are signed by their owner and republished.
// Its methods are called concurrently and block until done or ctx ends.
type Records interface {
	PutRecord(ctx context.Context, name string, value []byte) error
	GetRecord(ctx context.Context, owner peer.ID, name string) ([]byte, error)
}

// Options is what a Service is built from.
type Options struct {
	// Host serves Protocol and asks connected peers on it. Required.
	Host host.Host
	// Key is the device's Ed25519 key (the host's): it signs the bundle.
	// Required.
	Key crypto.PrivKey
	// Datastore keeps the prekey state under StateKey. Required.
	Datastore ds.Datastore
	// Records publishes the bundle and finds other devices'. Required.
	Records Records
	// Config tunes the service; zero means defaults.
	Config Config
	// Logger receives the service's log; nil discards it.
	Logger *slog.Logger
}

var (
	// ErrNotStarted is returned before Start.
	ErrNotStarted = errors.New("prekey: not started")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("prekey: closed")
	// ErrWrongPeer is a bundle signed by another device than the one
	// asked for: a peer answering for someone else.
	ErrWrongPeer = errors.New("prekey: bundle of another device")
)

// Service is the device's prekeys: the private state on disk, the signed
// bundle published on the DHT and served on Protocol, its maintenance
// (rotation, replenishment), and other devices' bundles, fetched and
// cached. New starts nothing; Start loads (or makes) the state, serves,
// publishes and starts the maintenance loop; Close stops it. Its methods
// are safe for concurrent use.
type Service struct {
	h       host.Host
	self    peer.ID
	signer  ed25519.PrivateKey
	store   ds.Datastore
	records Records
	cfg     Config
	rand    io.Reader
	now     func() time.Time
	log     *slog.Logger
	cache   *cache
	rate    *serveRate // answers on Protocol per asker

	mu      sync.Mutex // guards the fields below and keys' use
	keys    *ratchet.Prekeys
	seq     uint64
	bundle  *ratchet.Bundle
	enc     []byte // bundle's encoding, what Protocol serves
	started bool
	closed  bool
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	stats   Stats

	wake chan struct{} // a change to publish or replenish; capacity 1
	wg   sync.WaitGroup
}

// Stats counts what a Service did, for tests and status.
type Stats struct {
	// Sequence is the current bundle's sequence number; OneTime its
	// one-time prekeys.
	Sequence uint64
	OneTime  int
	// Published is the sequence number last stored on the DHT (0: none
	// yet).
	Published uint64
	// Served counts the bundles served on Protocol; Throttled the
	// requests refused as their asker's past ServeBurst (serverate.go).
	Served, Throttled uint64
	// Direct and FromDHT count the bundles fetched each way; Refused the
	// answers and records refused (malformed, or another device's).
	Direct, FromDHT, Refused uint64
}

// New checks o and returns a Service that has started nothing.
func New(o Options) (*Service, error) {
	if o.Host == nil || o.Key == nil || o.Datastore == nil || o.Records == nil {
		return nil, errors.New("prekey: Options.Host, Key, Datastore and Records are required")
	}
	if o.Key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("prekey: key is %v, want Ed25519", o.Key.Type())
	}
	raw, err := o.Key.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("prekey: Ed25519 key: %d bytes, %v", len(raw), err)
	}
	self, err := peer.IDFromPrivateKey(o.Key)
	if err != nil {
		return nil, fmt.Errorf("prekey: %w", err)
	}
	cfg := o.Config.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		h: o.Host, self: self, signer: ed25519.PrivateKey(raw), store: o.Datastore, records: o.Records,
		cfg: cfg, rand: ambient.RandOr(cfg.Rand), now: ambient.NowOr(cfg.Now), log: log,
		cache: newCache(cfg.CacheSize), rate: newServeRate(), wake: make(chan struct{}, 1),
	}, nil
}

// Start loads the stored prekey state, or on the first start makes one
// (NewPrekeys, then Config.OneTime one-time prekeys) and stores it; then
// it serves Protocol and starts the maintenance loop, which publishes the
// bundle on the DHT at once. A stored state that does not decode is an
// error wrapping ErrCorruptState: nothing is replaced. ctx bounds the
// start only.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("prekey: Start called twice or after Close")
	}
	seq, keys, found, err := loadState(ctx, s.store)
	if err != nil {
		return err
	}
	if !found {
		if keys, err = ratchet.NewPrekeys(s.rand, s.now().Unix()); err != nil {
			return fmt.Errorf("prekey: %w", err)
		}
		if _, err := keys.Replenish(s.rand, s.cfg.OneTime); err != nil {
			return fmt.Errorf("prekey: %w", err)
		}
		seq = 1
		if err := saveState(ctx, s.store, seq, keys); err != nil {
			return err
		}
		s.log.Info("prekeys made", "oneTime", keys.OneTimeCount())
	}
	if err := s.setLocked(seq, keys); err != nil {
		return err
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.h.SetStreamHandler(Protocol, s.serve)
	s.wg.Add(1)
	go s.loop(s.ctx)
	return nil
}

// Close stops serving and the maintenance loop, and waits for them.
// Idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	s.h.RemoveStreamHandler(Protocol)
	s.cancel()
	s.wg.Wait()
	return nil
}

// setLocked makes keys with seq the current state and signs its bundle.
func (s *Service) setLocked(seq uint64, keys *ratchet.Prekeys) error {
	b, err := keys.Bundle(s.signer, seq)
	if err != nil {
		return fmt.Errorf("prekey: %w", err)
	}
	enc, _ := b.MarshalBinary() // never fails
	s.keys, s.seq, s.bundle, s.enc = keys, seq, b, enc
	s.stats.Sequence, s.stats.OneTime = seq, keys.OneTimeCount()
	return nil
}

// changeLocked runs fn on the state; if fn returns nil, it stores the
// state with the next sequence number, then signs the new bundle. If fn
// fails or the store does, the state is as it was and the error is
// returned.
func (s *Service) changeLocked(ctx context.Context, fn func(k *ratchet.Prekeys) error) error {
	before := encodeState(s.seq, s.keys)
	restore := func() {
		_, keys, err := decodeState(before)
		if err != nil {
			panic(fmt.Sprintf("prekey: the state just encoded does not decode: %v", err))
		}
		s.keys = keys
	}
	if err := fn(s.keys); err != nil {
		restore()
		return err
	}
	seq := s.seq + 1
	if err := saveState(ctx, s.store, seq, s.keys); err != nil {
		restore()
		return err
	}
	return s.setLocked(seq, s.keys)
}

// Accept runs fn on the device's prekey state, under the service's lock,
// with the service's clock's now (Unix seconds): the messaging service
// answers an initial message in fn (ratchet.RespondSecret, which consumes
// a one-time prekey and remembers the ephemeral key). If fn returns nil,
// the state is stored (synced) before Accept returns, so that the caller
// may then acknowledge, the bundle served is re-signed, and the
// maintenance loop is woken to replenish and republish. If fn returns an
// error, or storing fails, the state is as it was before fn, and Accept
// returns the error. fn must not keep k nor call the Service. It blocks
// on the datastore.
func (s *Service) Accept(ctx context.Context, fn func(k *ratchet.Prekeys, now int64) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case !s.started:
		return ErrNotStarted
	}
	now := s.now().Unix()
	if err := s.changeLocked(ctx, func(k *ratchet.Prekeys) error { return fn(k, now) }); err != nil {
		return err
	}
	s.poke()
	return nil
}

// poke wakes the maintenance loop.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Bundle returns the device's current bundle (nil before Start). It is
// shared: the caller must not change it.
func (s *Service) Bundle() *ratchet.Bundle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundle
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// loop is the maintenance loop: it rotates the signed prekey when due,
// replenishes the one-time prekeys below the low-water mark, stores the
// state, and then publishes the bundle on the DHT; it sleeps until the
// next rotation, a change, a store held back, or CheckInterval. It is
// the only caller of publish, so one store at most is under way; the
// next starts no sooner than PublishInterval after one that succeeded
// (changes meanwhile are coalesced: the latest bundle goes), or than the
// backoff after one that failed.
func (s *Service) loop(ctx context.Context) {
	defer s.wg.Done()
	retry := time.Duration(0) // the wait after the last failed store; 0: it did not fail
	timer := time.NewTimer(0)
	defer timer.Stop()
	held := time.NewTimer(0) // while it runs, no store starts
	held.Stop()
	defer held.Stop()
	var gate <-chan time.Time // held.C while a store is held back, else nil
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		case <-gate:
			gate = nil
		}
		s.maintain(ctx)
		if gate == nil && s.unpublished() {
			if err := s.publish(ctx); err != nil {
				retry = min(max(2*retry, s.cfg.RetryInterval), s.cfg.CheckInterval)
				s.log.Warn("prekey bundle not stored on the DHT", "err", err, "retryIn", retry)
				held.Reset(retry)
			} else {
				retry = 0
				held.Reset(s.cfg.PublishInterval)
			}
			gate = held.C
		}
		timer.Reset(min(s.cfg.CheckInterval, s.untilRotation()))
	}
}

// unpublished reports whether the current bundle is not on the DHT yet.
func (s *Service) unpublished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq != s.stats.Published
}

// maintain rotates and replenishes, and stores what changed.
func (s *Service) maintain(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	rotate := s.keys.RotationDue(now)
	refill := s.keys.OneTimeCount() < s.cfg.LowWater
	if !rotate && !refill {
		return
	}
	err := s.changeLocked(ctx, func(k *ratchet.Prekeys) error {
		if rotate {
			if err := k.Rotate(s.rand, now); err != nil {
				return err
			}
		}
		if refill {
			if _, err := k.Replenish(s.rand, s.cfg.OneTime); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Left as it was: the next wake tries again.
		s.log.Error("prekeys not renewed", "err", err, "rotate", rotate, "replenish", refill)
		return
	}
	s.log.Info("prekeys renewed", "seq", s.seq, "rotated", rotate, "oneTime", s.keys.OneTimeCount())
}

// publish stores the current bundle on the DHT. The DHT keeps
// republishing what it was given, even after a failed first store.
func (s *Service) publish(ctx context.Context) error {
	s.mu.Lock()
	seq, enc := s.seq, s.enc
	s.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	if err := s.records.PutRecord(pctx, RecordName, enc); err != nil {
		return err
	}
	s.mu.Lock()
	s.stats.Published = max(s.stats.Published, seq)
	s.mu.Unlock()
	return nil
}

// untilRotation is the time left before the signed prekey is due for
// rotation on the service's clock, at least a second.
func (s *Service) untilRotation() time.Duration {
	s.mu.Lock()
	due := time.Unix(s.bundle.Signed.Created+ratchet.RotationPeriod, 0)
	s.mu.Unlock()
	return max(due.Sub(s.now()), time.Second)
}

// serve answers one request on Protocol with the current bundle, from
// memory. Any error resets the stream.
func (s *Service) serve(st network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = st.Reset()
		return
	}
	s.wg.Add(1)
	ctx := s.ctx
	s.mu.Unlock()
	defer s.wg.Done()
	// Close ends a stream still under way at once.
	defer context.AfterFunc(ctx, func() { _ = st.Reset() })()
	_ = st.SetDeadline(ambient.Deadline(s.cfg.Timeout))
	if err := readRequest(st); err != nil {
		s.log.Debug("prekey request refused", "peer", st.Conn().RemotePeer(), "err", err)
		_ = st.Reset()
		return
	}
	if !s.rate.allow(st.Conn().RemotePeer()) {
		s.log.Debug("prekey request refused: asked too often", "peer", st.Conn().RemotePeer())
		s.count(func(c *Stats) { c.Throttled++ })
		_ = st.Reset()
		return
	}
	s.mu.Lock()
	answer := encodeAnswer(s.enc)
	s.stats.Served++
	s.mu.Unlock()
	if _, err := st.Write(answer); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}
