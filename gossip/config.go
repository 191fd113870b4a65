package gossip

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// GossipKeySize is the size of a cell's gossip key: an AES-256 key for
// memberlist's keyring.
const GossipKeySize = 32

// Config says which cell a Membership belongs to and how it behaves.
// Tag, Key, Allow, AppMeta and GossipKey are required; the rest may be left
// zero.
//
// The functions are called by memberlist's goroutines, some while it holds
// its internal lock: they must be safe for concurrent use, return quickly,
// and must not call Join, Leave, UpdateMeta, Refresh or Close (Members and
// Stats are fine).
type Config struct {
	// Tag names the cell on the wire: it opens every stream (see the
	// package documentation). It is sent only to allowed peers and need not
	// be secret; two cells must not share one.
	Tag [8]byte

	// Key is this node's libp2p private key, the one its host runs with. It
	// must be an Ed25519 key: it signs the node's metadata, and the others
	// check the signature against the public key in the peer ID.
	Key crypto.PrivKey

	// Allow reports whether a peer is on the cell's roster now. Traffic
	// from and to a peer it rejects is dropped, and such a peer is never
	// admitted as a member. Its answer may change: call Refresh when it
	// does. Called for every packet and stream, so it must be cheap.
	Allow func(peer.ID) bool

	// AppMeta returns the application's metadata for this node (a roster
	// version, say), at most MaxAppMeta bytes. It is signed and gossiped
	// with the node; it is read at Start and at every UpdateMeta.
	AppMeta func() []byte

	// CheckMeta, if not nil, is a further check of a peer's metadata, after
	// its signature was verified. An error keeps the peer out. app is only
	// valid during the call.
	CheckMeta func(id peer.ID, app []byte) error

	// GossipKey is the cell's current gossip key (GossipKeySize bytes). It
	// encrypts and authenticates every memberlist message: a node holding
	// another key cannot join. Rotate it with SetGossipKey.
	GossipKey []byte

	// Topics holds the riders on this gossip: each topic's Handler
	// receives the Broadcast messages of that topic from the cell's
	// members (this node's own excluded), and a StateHandler's state
	// travels in memberlist's push/pull exchanges. The handlers follow
	// the rules above. nil: an empty registry (Broadcast refuses every
	// topic).
	Topics *Topics

	// Timing tunes failure detection and gossip. Zero fields take the
	// values of DefaultTiming.
	Timing Timing

	// Logger receives this package's logs and, at debug level, memberlist's
	// own log lines. nil: discard.
	Logger *slog.Logger

	// Rand is the source of broadcast IDs and of the nonces of the suspect
	// messages this node makes on a lost connection; nil: the system's. memberlist
	// keeps its own randomness (which member to probe or gossip to, the
	// keyring's nonces).
	Rand io.Reader
	// Now is the clock of the metadata's sequence numbers and of the
	// members' Since and LastSeen; nil: the real clock. Deadlines are on the
	// runtime's clock (see internal/ambient), as memberlist's own are.
	Now func() time.Time
}

// Timing tunes memberlist (the first group of fields) and the transport
// under it. The zero value of a field means its default (DefaultTiming).
//
// The defaults suit a cell of a few to a few dozen devices spread over the
// internet, some behind relays: probes every 1 s with a 500 ms timeout (a
// relayed round trip can take a few hundred milliseconds, and each probe
// opens a stream each way; a late ack still counts until the end of the
// probe round, so a member whose round trip to every other is below the
// probe interval stays alive, and one above it, 1.2 s say, is declared
// dead, which the 2 s interval before issue 15 tolerated), suspicion for
// 3 probe intervals times log10(cell size) (at least 3 s, 5.1 s at 50 members, up to 6
// times that while nobody confirms), quick gossip (every 200 ms, to 3
// members, only when there is something to say) and a full state exchange
// every 30 s. A crashed member whose connections close is suspected at
// once by every member connected to it (see the package documentation,
// "Liveness") and declared failed after the shortest suspicion, 3–5 s; one
// that falls silent with its connections open, after its first failed
// probe and a suspicion, typically 5–10 s. (Until issue 15: probes every
// 2 s with a 1 s timeout and suspicion for 4 intervals, and a crash took
// 18–28 s to detect in a 50-member cell.)
type Timing struct {
	ProbeInterval           time.Duration // between two probes of this node; default 1 s
	ProbeTimeout            time.Duration // wait for a direct ack; default 500 ms, or three quarters of ProbeInterval if less; must be below ProbeInterval
	SuspicionMult           int           // suspicion timeout = SuspicionMult × max(1, log10(n)) × ProbeInterval; default 3
	SuspicionMaxTimeoutMult int           // upper bound of the suspicion timeout, as a multiple of it; default 6
	IndirectChecks          int           // members asked to probe on our behalf; default 3
	GossipInterval          time.Duration // between gossip rounds; default 200 ms
	GossipNodes             int           // members gossiped to per round; default 3
	GossipToTheDead         time.Duration // how long a dead member still gets gossip, to refute; default 30 s
	PushPullInterval        time.Duration // between full state exchanges with one member; default 30 s
	RetransmitMult          int           // a broadcast is sent RetransmitMult × log10(n+1) times; default 4

	// StreamTimeout bounds one stream exchange (memberlist's TCPTimeout)
	// and the read of a stream header. Default 10 s.
	StreamTimeout time.Duration
	// PacketTimeout bounds the delivery of one packet: opening its stream
	// (and dialling, if need be) and writing it. Default 5 s.
	PacketTimeout time.Duration
	// MaxPacketsInFlight bounds the packets being sent at once; beyond it
	// a packet is dropped, as a full UDP socket buffer would. Default 64.
	MaxPacketsInFlight int
	// KeyGrace is how long SetGossipKey keeps the previous key for
	// decryption. Default 1 min.
	KeyGrace time.Duration
	// LeaveTimeout bounds the leave that Close does first, and a Leave
	// whose context has no deadline. Default 2 s.
	LeaveTimeout time.Duration
	// SuspectAfter is how long a member that memberlist counts alive may
	// stay unheard by this node before Members reports it Suspect (see
	// StateSuspect). Default: SuspicionMult × ProbeInterval × (alive
	// members − 1), so at least twice the longest gap between two of our
	// probes of one member. Negative: never.
	SuspectAfter time.Duration
}

// DefaultTiming returns the timing used when Config.Timing is zero.
func DefaultTiming() Timing {
	return Timing{
		ProbeInterval:           time.Second,
		ProbeTimeout:            500 * time.Millisecond,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 6,
		IndirectChecks:          3,
		GossipInterval:          200 * time.Millisecond,
		GossipNodes:             3,
		GossipToTheDead:         30 * time.Second,
		PushPullInterval:        30 * time.Second,
		RetransmitMult:          4,
		StreamTimeout:           10 * time.Second,
		PacketTimeout:           5 * time.Second,
		MaxPacketsInFlight:      64,
		KeyGrace:                time.Minute,
		LeaveTimeout:            2 * time.Second,
	}
}

// withDefaults fills the zero fields of t from DefaultTiming.
func (t Timing) withDefaults() Timing {
	d := DefaultTiming()
	dur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	num := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	dur(&t.ProbeInterval, d.ProbeInterval)
	dur(&t.ProbeTimeout, min(d.ProbeTimeout, t.ProbeInterval*3/4))
	num(&t.SuspicionMult, d.SuspicionMult)
	num(&t.SuspicionMaxTimeoutMult, d.SuspicionMaxTimeoutMult)
	num(&t.IndirectChecks, d.IndirectChecks)
	dur(&t.GossipInterval, d.GossipInterval)
	num(&t.GossipNodes, d.GossipNodes)
	dur(&t.GossipToTheDead, d.GossipToTheDead)
	dur(&t.PushPullInterval, d.PushPullInterval)
	num(&t.RetransmitMult, d.RetransmitMult)
	dur(&t.StreamTimeout, d.StreamTimeout)
	dur(&t.PacketTimeout, d.PacketTimeout)
	num(&t.MaxPacketsInFlight, d.MaxPacketsInFlight)
	dur(&t.KeyGrace, d.KeyGrace)
	dur(&t.LeaveTimeout, d.LeaveTimeout)
	return t
}

func (t Timing) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", t.ProbeInterval}, {"ProbeTimeout", t.ProbeTimeout},
		{"GossipInterval", t.GossipInterval}, {"GossipToTheDead", t.GossipToTheDead},
		{"PushPullInterval", t.PushPullInterval}, {"StreamTimeout", t.StreamTimeout},
		{"PacketTimeout", t.PacketTimeout}, {"KeyGrace", t.KeyGrace}, {"LeaveTimeout", t.LeaveTimeout},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("gossip: Timing.%s must be positive (%v)", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"SuspicionMult", t.SuspicionMult}, {"SuspicionMaxTimeoutMult", t.SuspicionMaxTimeoutMult},
		{"IndirectChecks", t.IndirectChecks}, {"GossipNodes", t.GossipNodes},
		{"RetransmitMult", t.RetransmitMult}, {"MaxPacketsInFlight", t.MaxPacketsInFlight},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("gossip: Timing.%s must be positive (%d)", f.name, f.v))
		}
	}
	if t.ProbeTimeout >= t.ProbeInterval {
		errs = append(errs, fmt.Errorf("gossip: Timing.ProbeTimeout (%v) must be below ProbeInterval (%v)", t.ProbeTimeout, t.ProbeInterval))
	}
	return errors.Join(errs...)
}

// validate checks c; its Timing must already have its defaults.
func (c *Config) validate() error {
	var errs []error
	if c.Tag == ([8]byte{}) {
		errs = append(errs, errors.New("gossip: Config.Tag is zero"))
	}
	if c.Key == nil {
		errs = append(errs, errors.New("gossip: Config.Key is nil"))
	} else if c.Key.Type() != crypto.Ed25519 {
		errs = append(errs, fmt.Errorf("gossip: Config.Key is a %v key, not Ed25519", c.Key.Type()))
	}
	if c.Allow == nil {
		errs = append(errs, errors.New("gossip: Config.Allow is nil"))
	}
	if c.AppMeta == nil {
		errs = append(errs, errors.New("gossip: Config.AppMeta is nil"))
	}
	if len(c.GossipKey) != GossipKeySize {
		errs = append(errs, fmt.Errorf("gossip: Config.GossipKey has %d bytes, want %d", len(c.GossipKey), GossipKeySize))
	}
	errs = append(errs, c.Timing.validate())
	return errors.Join(errs...)
}
