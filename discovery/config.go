package discovery

import (
	"errors"
	"fmt"
	"io"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Config tunes how peers are found and dialled. The zero value of a field
// means its default, as DefaultConfig gives it.
type Config struct {
	// Bootstrap lists peers dialled at start and redialled, with back-off,
	// whenever the connection to them is lost. Empty: none.
	Bootstrap []peer.AddrInfo

	// BackoffMin is the wait after the first failed dial of a peer; it
	// doubles after each further failure up to BackoffMax, with ±25% jitter.
	// Defaults: 1 s and 5 min (or BackoffMin, if that is longer).
	BackoffMin, BackoffMax time.Duration

	// MaxFailures is how many dials in a row may fail before a peer found on
	// the LAN or the DHT is forgotten (it comes back when found again).
	// Bootstrap and hand-added peers are never forgotten. Default 8.
	MaxFailures int

	// DialTimeout bounds one dial, identify included. Default 15 s.
	DialTimeout time.Duration

	// MaxConcurrentDials bounds the dials in flight. Default 8.
	MaxConcurrentDials int

	// PingInterval is how often the round-trip time to each connected
	// exopeer peer is measured. Default 30 s.
	PingInterval time.Duration

	// IdentifyGrace is how long a peer whose identify lacks exopeer's
	// protocols may take to announce them (by an identify push) before it
	// is judged foreign: a node that has just started may answer identify
	// before its handlers are all registered. Default 5 s.
	IdentifyGrace time.Duration

	// IgnoreFor is how long a peer that does not speak exopeer's protocols
	// is left alone before it may be dialled again. Default 1 h.
	IgnoreFor time.Duration

	// RendezvousEpoch is how long one rendezvous key stays in use before the
	// next epoch's key replaces it. Default 1 h.
	RendezvousEpoch time.Duration

	// RendezvousInterval is how often the providers of the current
	// rendezvous keys are looked up on the DHT. Default 1 min.
	RendezvousInterval time.Duration

	// RendezvousAdvertisers is, for the rendezvous of a closed group
	// (RendezvousMembers), how many members advertise it on the DHT in one
	// epoch: those ranked lowest for the epoch among the members connected
	// to each other. The others neither advertise nor look it up. Default 2.
	RendezvousAdvertisers int

	// Known is the datastore of the known table (KnownPrefix): the last
	// known addresses of the peers Interesting accepts, written when they
	// are identified and dialled when the service starts. nil: no table.
	Known ds.Datastore
	// Interesting says which peers the known table keeps, and which of
	// those loaded from it are redialled whenever lost: the cell's members
	// and the contacts' devices. InterestUnknown (the roster or the
	// contacts not read yet, or their read failed) keeps an entry and
	// redials it if seen within KnownUnknownRedial, but writes nothing and
	// offers it to the DHT only if Member names it; InterestNo deletes
	// it. nil: none. It must be safe for concurrent use and must not block
	// long; it is called outside the service's locks and never by the
	// event loop, and may read state built after the service (it is not
	// called before Start).
	Interesting func(peer.ID) Interest
	// Member says, from memory and at once, whether a peer is a member of
	// the node's cell: the known table evicts the entries of other peers
	// first. nil: no peer is.
	Member func(peer.ID) bool
	// Owner says which contact a peer Interesting accepts and Member does
	// not name is a device of (any string that tells contacts apart; ""
	// for none): the known table keeps at most MaxKnownPerContact
	// entries of one contact's devices. Called where Interesting is, and
	// like it. nil: no cap per contact.
	Owner func(peer.ID) string

	// Rand is the source of the back-off jitter and the ping payloads;
	// nil: the system's.
	Rand io.Reader
	// Now is the clock of back-offs, rendezvous epochs and connection
	// times; nil: the real clock. Deadlines are on the runtime's clock
	// (see internal/ambient).
	Now func() time.Time
}

// DefaultConfig returns the settings used by `exopeer run`.
func DefaultConfig() Config {
	return Config{
		BackoffMin:         time.Second,
		BackoffMax:         5 * time.Minute,
		MaxFailures:        8,
		DialTimeout:        15 * time.Second,
		MaxConcurrentDials: 8,
		PingInterval:       30 * time.Second,
		IdentifyGrace:      5 * time.Second,
		IgnoreFor:          time.Hour,
		RendezvousEpoch:    time.Hour,
		RendezvousInterval: time.Minute,

		RendezvousAdvertisers: 2,
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.BackoffMin, d.BackoffMin)
	set(&c.BackoffMax, max(d.BackoffMax, c.BackoffMin))
	set(&c.DialTimeout, d.DialTimeout)
	set(&c.PingInterval, d.PingInterval)
	set(&c.IdentifyGrace, d.IdentifyGrace)
	set(&c.IgnoreFor, d.IgnoreFor)
	set(&c.RendezvousEpoch, d.RendezvousEpoch)
	set(&c.RendezvousInterval, d.RendezvousInterval)
	if c.MaxFailures == 0 {
		c.MaxFailures = d.MaxFailures
	}
	if c.MaxConcurrentDials == 0 {
		c.MaxConcurrentDials = d.MaxConcurrentDials
	}
	if c.RendezvousAdvertisers == 0 {
		c.RendezvousAdvertisers = d.RendezvousAdvertisers
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"BackoffMin", c.BackoffMin}, {"BackoffMax", c.BackoffMax}, {"DialTimeout", c.DialTimeout},
		{"PingInterval", c.PingInterval}, {"IdentifyGrace", c.IdentifyGrace}, {"IgnoreFor", c.IgnoreFor},
		{"RendezvousEpoch", c.RendezvousEpoch}, {"RendezvousInterval", c.RendezvousInterval},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("discovery: %s is negative (%v)", f.name, f.v))
		}
	}
	if c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("discovery: BackoffMax (%v) is below BackoffMin (%v)", c.BackoffMax, c.BackoffMin))
	}
	if c.MaxFailures < 0 || c.MaxConcurrentDials < 0 || c.RendezvousAdvertisers < 0 {
		errs = append(errs, errors.New("discovery: MaxFailures, MaxConcurrentDials and RendezvousAdvertisers must not be negative"))
	}
	for i, b := range c.Bootstrap {
		if b.ID == "" || len(b.Addrs) == 0 {
			errs = append(errs, fmt.Errorf("discovery: bootstrap peer %d has no peer ID or no address", i))
		}
	}
	return errors.Join(errs...)
}

// Interest is Config.Interesting's verdict on a peer.
type Interest int8

const (
	// InterestUnknown: not known yet (the roster or the contacts are not
	// read yet, or their read failed).
	InterestUnknown Interest = iota
	// InterestYes: a member of the cell or a device of a contact.
	InterestYes
	// InterestNo: neither, as the roster and a successful read of the
	// contacts say.
	InterestNo
)
