package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/ratchet"
	"github.com/exopeer/exopeer/store"
	storeservice "github.com/exopeer/exopeer/store/service"
)

// Protocol is message delivery's libp2p protocol.
const Protocol = protocol.ID(message.Protocol)

// Sentinel errors.
var (
	// ErrUnreachable: no device of the contact's cell acknowledged; the
	// message is recorded as sent (pending), and the courier of any
	// device of this cell delivers it later.
	ErrUnreachable = errors.New("message: no device of the contact is reachable; the message is recorded as sent, not delivered yet, and will be retried")
	// ErrNoCell: this node is in no cell.
	ErrNoCell = errors.New("message: this node is in no cell")
	// ErrClosed is returned after Close, ErrNotStarted before Start.
	ErrClosed     = errors.New("message: service closed")
	ErrNotStarted = errors.New("message: service not started")
	// errRefused is a delivery the other device refused (no detail).
	errRefused = errors.New("message: refused by the contact's device")
	// errBusy is a delivery the other device's quotas turned away before
	// opening it (a busy answer): the session is kept, the message stays
	// pending and is not tried again at once.
	errBusy = errors.New("message: the contact's device is busy (over its quota for this cell); not delivered now")
)

// Contacts is what the service needs of the node's contacts.
// *contact/service.Service has it; each method blocks.
type Contacts interface {
	Get(ctx context.Context, name string) (contactservice.Contact, error)
	List(ctx context.Context) ([]contactservice.Contact, error)
	// ByDevice returns the contacts whose current device list names the
	// device (none: nil).
	ByDevice(ctx context.Context, id peer.ID) ([]contactservice.Contact, error)
	// DeviceList is this cell's own signed device list.
	DeviceList(ctx context.Context) (*contact.DeviceList, error)
	UpdateDevices(ctx context.Context, l *contact.DeviceList) (contactservice.Contact, bool, error)
}

// Prekeys is what the service needs of the node's prekeys.
// *prekey.Service has it; each method blocks.
type Prekeys interface {
	// Fetch returns the verified bundle of the device id.
	Fetch(ctx context.Context, id peer.ID) (*ratchet.Bundle, error)
	// Accept calls fn with the device's own prekeys under their lock and
	// stores them if fn returns nil.
	Accept(ctx context.Context, fn func(k *ratchet.Prekeys, now int64) error) error
	// View calls fn with them under their lock, to read only.
	View(fn func(k *ratchet.Prekeys) error) error
}

// Store is what the service needs of the node's store.
// *store/service.Service has it; each method blocks. The sweeper also
// reads its Status, if it has one (storeStatus, sweep.go).
type Store interface {
	Get(ctx context.Context, id store.EntityID, traits []string) (store.Entity, error)
	Put(ctx context.Context, e store.EntityID, traits []store.Trait) (storeservice.Written, error)
	Query(ctx context.Context, q store.Query) (store.Page, error)
	Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error)
}

// Finder finds the addresses of a device this host knows none of: the
// node's DHT (*dht.DHT). It blocks until found or ctx ends.
type Finder interface {
	FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error)
}

// Cell is what the service needs of the node's cell: its roster (nil
// in no cell). *cell.Service has it.
type Cell interface {
	Roster() *cell.Roster
}

// Config tunes a Service. Zero fields mean the defaults.
type Config struct {
	// Timeout bounds one delivery to one device: the stream's opening,
	// the message's write and the answer's wait (a frame unanswered
	// that long after its write resets the stream, even if its delivery
	// gave up before); and, on the receiving side, the handling
	// of a frame (its opening and record: past it the stream is reset)
	// and the write of each answer. The receiver reads a frame under
	// twice IdleTimeout. Default 20 s.
	Timeout time.Duration
	// IdleTimeout is how long a stream of Protocol to a device is kept
	// open with nothing in flight before this device closes it; the
	// receiving side closes a stream with no frame unanswered on which
	// no frame came and no answer went for twice as long (so that the
	// sender, not the receiver, ends an idle stream, and no frame
	// crosses the receiver's close). Default 10 s.
	IdleTimeout time.Duration
	// MaxFramesIn bounds the frames read from inbound streams of every
	// device and not answered yet (0: MaxFramesIn).
	MaxFramesIn int
	// CourierBackoff is the courier's first delay before it tries a
	// contact's pending messages again after no device of the contact
	// acknowledged; each failure doubles it, up to CourierMaxBackoff. A
	// device of the contact that connects or sends a message resets it.
	// Defaults 5 s and 10 min.
	CourierBackoff    time.Duration
	CourierMaxBackoff time.Duration
	// CourierGrace is how long after its sent time a device without the
	// mailbox role waits before it delivers a pending message another
	// device of its cell wrote; MailboxGrace the same for a device with
	// the mailbox role, so that it goes first and the author's own try
	// normally first of all. Defaults 1 min and 5 s (negative: 0).
	CourierGrace time.Duration
	MailboxGrace time.Duration
	// InRate and InBurst bound the messages in from one contact cell (all
	// its devices): InRate a second sustained, InBurst at once;
	// InBytesRate and InBytesBurst the same for their frames' bytes. A
	// message over them is slowed (its answer waits until the contact's
	// bucket holds its cost, so the sender's window fills), and refused
	// when that wait would be over MaxSlow. Defaults 5,000 a second and
	// 10,000; 32 MiB a second and 64 MiB (internal/loopbench's 2,000
	// messages a second are not slowed); an InRate that is not a
	// positive finite number is the default. A rate so small that a
	// message's wait passes what a time.Duration holds refuses it.
	InRate       float64
	InBurst      int
	InBytesRate  int64
	InBytesBurst int64
	// MaxSlow is the longest a slowed message's answer waits. Default
	// Timeout/4; at most Timeout/2, so that the frame is answered within
	// Timeout.
	MaxSlow time.Duration
	// MaxInBytesPerContactPerDay bounds the bytes of the messages taken
	// from one contact cell in a day (UTC), and MaxInBytesPerDay from all
	// of them; past either, its messages are refused until the next day.
	// The counts survive restarts. Defaults 256 MiB and 1 GiB.
	MaxInBytesPerContactPerDay int64
	MaxInBytesPerDay           int64
	// MaxPendingPerContact bounds the messages to one contact this cell
	// holds pending (sent or stored, not delivered): past it Send refuses
	// with ErrTooManyPending. Default 1,000 (4 MiB of text).
	MaxPendingPerContact int
	// MailboxPoll is the shortest interval at which a device reads the
	// blind mailboxes of the current epoch of a contact with a mailbox
	// key, MailboxPollMax the longest: each poll that finds nothing new
	// doubles a contact's interval up to MailboxPollMax; one that finds
	// something, a courier pass that finds the contact unreachable (read
	// then at once) or a device of the contact connecting brings it back
	// to MailboxPoll; with a device of the contact connected it is
	// MailboxPollMax, until none is (doc.go, "Blind mailboxes", Reading).
	// MailboxFullPoll is how often it reads the whole window of 8 epochs
	// of every contact (doc.go gives the DHT lookups each costs).
	// Defaults 1 min, 16 min and 1 h.
	MailboxPoll     time.Duration
	MailboxPollMax  time.Duration
	MailboxFullPoll time.Duration
	// Now is the clock of sent and received times. nil: the real clock.
	Now func() time.Time
	// Rand is the source of message IDs, ratchet keys and nonces. nil:
	// the system's.
	Rand io.Reader
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 20 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 10 * time.Second
	}
	if c.MaxFramesIn <= 0 {
		c.MaxFramesIn = MaxFramesIn
	}
	if c.CourierBackoff <= 0 {
		c.CourierBackoff = 5 * time.Second
	}
	if c.CourierMaxBackoff <= 0 {
		c.CourierMaxBackoff = 10 * time.Minute
	}
	c.CourierMaxBackoff = max(c.CourierMaxBackoff, c.CourierBackoff)
	switch {
	case c.CourierGrace == 0:
		c.CourierGrace = time.Minute
	case c.CourierGrace < 0:
		c.CourierGrace = 0
	}
	switch {
	case c.MailboxGrace == 0:
		c.MailboxGrace = 5 * time.Second
	case c.MailboxGrace < 0:
		c.MailboxGrace = 0
	}
	if !(c.InRate > 0) || math.IsInf(c.InRate, 1) { // also NaN
		c.InRate = 5000
	}
	if c.InBurst <= 0 {
		c.InBurst = 10000
	}
	if c.InBytesRate <= 0 {
		c.InBytesRate = 32 << 20
	}
	if c.InBytesBurst <= 0 {
		c.InBytesBurst = 64 << 20
	}
	c.InBytesBurst = max(c.InBytesBurst, message.MaxFrameBody) // one frame always fits
	if c.MaxSlow <= 0 {
		c.MaxSlow = c.Timeout / 4
	}
	c.MaxSlow = min(c.MaxSlow, c.Timeout/2)
	if c.MaxInBytesPerContactPerDay <= 0 {
		c.MaxInBytesPerContactPerDay = 256 << 20
	}
	if c.MaxInBytesPerDay <= 0 {
		c.MaxInBytesPerDay = 1 << 30
	}
	if c.MaxPendingPerContact <= 0 {
		c.MaxPendingPerContact = 1000
	}
	if c.MailboxPoll <= 0 {
		c.MailboxPoll = defaultMailboxPoll
	}
	if c.MailboxFullPoll <= 0 {
		c.MailboxFullPoll = defaultMailboxFullPoll
	}
	if c.MailboxPollMax <= 0 {
		c.MailboxPollMax = defaultMailboxPollMax
	}
	c.MailboxPollMax = max(c.MailboxPollMax, c.MailboxPoll)
	c.MailboxFullPoll = max(c.MailboxFullPoll, c.MailboxPoll)
	c.Now = ambient.NowOr(c.Now)
	c.Rand = ambient.RandOr(c.Rand)
	return c
}

// Options is what a Service is built from.
type Options struct {
	Host      host.Host
	Key       crypto.PrivKey // the device's Ed25519 key (the host's)
	Datastore ds.Datastore   // sessions and the device's counter
	Cell      Cell
	Contacts  Contacts
	Prekeys   Prekeys
	Store     Store
	// Finder finds devices not in the peerstore; nil: the peerstore only.
	Finder Finder
	// Files shares the cell's files with contacts (share.go); nil: no
	// file is shared, and a shared file received is recorded in its
	// message only.
	Files Files
	// Mailbox and MailboxKeys are the DHT and this cell's mailbox keys
	// for blind mailboxes (doc.go); either nil: no blind mailboxes.
	Mailbox     MailboxDHT
	MailboxKeys MailboxKeys
	Config      Config
	Logger      *slog.Logger
}

// Service is the node's part "messages": conversations with contacts,
// over Double Ratchet sessions with their devices, recorded in the
// cell's chain. Its methods are safe for concurrent use.
type Service struct {
	h      host.Host
	self   peer.ID
	signer ed25519.PrivateKey
	ds     ds.Datastore
	cell   Cell
	cons   Contacts
	prek   Prekeys
	store  Store
	finder Finder
	files  Files
	cfg    Config
	log    *slog.Logger

	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context // ends with Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// cache holds the sessions with each remote device, and its lock;
	// cmu guards counter, the device's counter.
	cache   *sessionCache
	cmu     sync.Mutex
	counter counter
	// smu makes a message's state read and write one step (advance),
	// striped by the entity ID's first byte.
	smu [16]sync.Mutex
	// mmu (one slot) makes a read marker's read and write one step
	// (markUpTo).
	mmu chan struct{}
	// rmu guards rand, which every goroutine draws from.
	rmu sync.Mutex
	// framesIn counts the frames read from inbound streams and not
	// answered yet (serve.go).
	framesIn atomic.Int64
	// slots holds a slot per frame of any inbound stream whose header
	// arrived and that is being read or handled, not slowed: at most
	// Config.MaxFramesIn, shared fairly among contacts (fairslots.go).
	slots *fairSlots

	// kmu guards courier, the courier's state (courier.go); wake wakes
	// its goroutine; ccount counts its work.
	kmu     sync.Mutex
	courier courierState
	// receipts is, per contact (cell key, hex) that sent one, where its
	// last read receipt applied stopped (receipts.go); guarded by kmu.
	receipts map[string]applied
	// rkeys is the key each contact's read receipts cover (receiptkey.go).
	rkeys  *contactRecords[receiptKey]
	wake   chan struct{}
	ccount courierCounts
	notify network.Notifiee

	// run names this run of the service (random, never zero): only the
	// sessions it makes seal (restore.go).
	run [8]byte

	// lists wakes the sweeper (sweep.go); sw is its own state.
	lists chan struct{}
	sw    sweepState

	// quota is the inbound quotas' state and counts (quotain.go).
	quota *quotas
	// pend is, per contact (cell key, hex), its pending messages as last
	// counted (quotasend.go); guarded by pmu.
	pmu  sync.Mutex
	pend map[string]pendingCount

	// Blind mailboxes (mailbox*.go): off if mdht or mkeys is nil.
	mdht   MailboxDHT
	mkeys  MailboxKeys
	mstate mailboxState
	mcount mailboxCounts
	// hkeys is, per contact, this cell's mailbox key it holds (heldkey.go).
	hkeys *contactRecords[heldKey]
}

// New returns a Service that has started nothing.
func New(o Options) (*Service, error) {
	if o.Host == nil || o.Key == nil || o.Datastore == nil || o.Cell == nil || o.Contacts == nil || o.Prekeys == nil || o.Store == nil {
		return nil, errors.New("message: Options.Host, Key, Datastore, Cell, Contacts, Prekeys and Store are required")
	}
	raw, err := o.Key.Raw()
	if err != nil || o.Key.Type() != crypto.Ed25519 || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("message: the key must be Ed25519 (%v)", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := o.Config.withDefaults()
	var run [8]byte
	if _, err := io.ReadFull(cfg.Rand, run[:]); err != nil {
		return nil, fmt.Errorf("message: random source: %w", err)
	}
	run[0] |= 1 // never the zero run of a record of layout 1
	return &Service{
		run: run,
		h:   o.Host, self: o.Host.ID(), signer: ed25519.PrivateKey(raw), ds: o.Datastore,
		cell: o.Cell, cons: o.Contacts, prek: o.Prekeys, store: o.Store, finder: o.Finder, files: o.Files,
		cfg: cfg, log: log.With("part", "messages"), cache: newSessionCache(),
		slots: newFairSlots(cfg.MaxFramesIn),
		quota: newQuotas(cfg),
		wake:  make(chan struct{}, 1), lists: make(chan struct{}, 1),
		mdht: o.Mailbox, mkeys: o.MailboxKeys,
		mstate: mailboxState{
			puts: map[string]rePut{}, wake: make(chan struct{}, 1), polls: map[string]pollState{}, seen: map[peer.ID]struct{}{},
		},
		courier: courierState{
			backoff: map[string]retry{}, rbackoff: map[string]retry{}, pokes: map[peer.ID]struct{}{}, sending: map[store.EntityID]struct{}{},
		},
		receipts: map[string]applied{},
		rkeys:    newReceiptKeys(), hkeys: newHeldKeys(),
		mmu: make(chan struct{}, 1),
	}, nil
}

// Start serves Protocol and starts the courier, which delivers this
// cell's pending messages (courier.go), and, with blind mailboxes, their
// reader (mailbox_read.go). ctx bounds nothing after it
// returns.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("message: Start called twice or after Close")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.h.SetStreamHandler(Protocol, s.serve)
	s.notify = s.notifee()
	s.h.Network().Notify(s.notify)
	s.wg.Add(2)
	go s.runCourier()
	go s.runSweeper()
	if s.mailboxOn() {
		s.wg.Add(1)
		go s.runMailbox()
	}
	return nil
}

// Close stops serving and the courier and waits for the deliveries
// under way and the courier's goroutine. Idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if started {
		s.h.RemoveStreamHandler(Protocol)
		s.h.Network().StopNotify(s.notify)
		s.cancel()
		s.wg.Wait()
	}
	return nil
}

// enter counts a call in, unless the service is not running.
func (s *Service) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case !s.started:
		return ErrNotStarted
	}
	s.wg.Add(1)
	return nil
}

// cellKey returns this cell's key.
func (s *Service) cellKey() (ed25519.PublicKey, error) {
	r := s.cell.Roster()
	if r == nil {
		return nil, ErrNoCell
	}
	return r.Cell, nil
}

// read fills b from the service's random source.
func (s *Service) read(b []byte) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return fmt.Errorf("message: random source: %w", err)
	}
	return nil
}

// lockedRand is the service's random source read under rmu.
type lockedRand struct{ s *Service }

func (r lockedRand) Read(p []byte) (int, error) {
	if err := r.s.read(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// pending is a write under way in a goroutine of its own (goDo); its
// caller waits for it before it returns, so Close, waiting for the
// caller, waits for it too.
type pending struct {
	done chan struct{}
	err  error // set before done is closed
}

// goDo runs fn in a new goroutine.
func goDo(fn func() error) *pending {
	p := &pending{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = fn()
	}()
	return p
}

// wait blocks until fn returned and returns its error; it may be called
// any number of times, from any goroutine.
func (p *pending) wait() error {
	<-p.done
	return p.err
}
