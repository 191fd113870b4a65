package dht

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p-kad-dht/amino"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Mode is the role of this node in the WAN routing table.
type Mode int

const (
	// ModeAuto is a server while the node's reachability (DHT.SetReachability,
	// from AutoNAT v2) is public and a client otherwise (also while it is
	// unknown or never set, as on a simulator or a LAN without AutoNAT).
	ModeAuto Mode = iota
	// ModeServer always answers DHT queries and is added to other peers'
	// routing tables.
	ModeServer
	// ModeClient only queries; other peers do not route through it.
	ModeClient
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeServer:
		return "server"
	case ModeClient:
		return "client"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ErrInvalidConfig is wrapped by every error of Config validation.
var ErrInvalidConfig = errors.New("dht: invalid config")

// ErrBadBootstrap is wrapped by ParseBootstrap errors.
var ErrBadBootstrap = errors.New("dht: bad bootstrap address")

// Config configures a DHT. The zero Config is valid: zero durations mean
// their defaults, the mode is ModeAuto, and the LAN table is off (unlike
// DefaultConfig, which turns it on).
type Config struct {
	// Mode is the role in the WAN table (or in the only table when LAN is
	// false). Zero is ModeAuto.
	Mode Mode

	// LAN runs a second routing table beside the WAN one, as Kubo does
	// (kad-dht's dual DHT): the WAN table keeps only public addresses and
	// peers, the LAN table (protocol /exopeer/lan/kad/1.0.0, always in
	// server mode) keeps only private, non-loopback ones. With LAN false a
	// single table is built with no address, query or routing-table
	// filters: the set-up for loopback tests and the simulator. Default
	// true.
	LAN bool

	// Bootstrap peers are dialled at Start and Bootstrap, and again by
	// kad-dht whenever the routing table runs empty. Each needs a peer ID
	// and at least one address (see ParseBootstrap). Default: none.
	Bootstrap []peer.AddrInfo

	// BootstrapFunc, if not nil, gives more bootstrap peers, read each
	// time kad-dht looks for some (its routing table ran empty): the node
	// gives its cell's members and contacts last seen with a public
	// address (discovery's known table). They join Bootstrap for kad-dht
	// only; Start and DHT.Bootstrap dial Bootstrap alone (discovery dials
	// the known peers itself). It must be safe for concurrent use and not
	// block on the network.
	BootstrapFunc func() []peer.AddrInfo

	// RecordTTL is how long a record we publish stays valid: its expiry is
	// the publication time plus RecordTTL. At most MaxRecordTTL. Zero
	// means the default, 24h.
	RecordTTL time.Duration

	// RepublishInterval is how often our records are re-signed with a new
	// expiry and stored again, and our provided keys announced again. It
	// must be shorter than RecordTTL and than the 48h for which DHT peers
	// keep provider records (amino.DefaultProvideValidity). A failed
	// republish is retried after an eighth of this interval. Zero means
	// the default, 12h.
	RepublishInterval time.Duration

	// OpTimeout bounds each republish or re-provide operation of the
	// background republisher. Zero means the default, 1 minute.
	OpTimeout time.Duration

	// BucketSize is the Kademlia k. Zero means kad-dht's default, 20.
	BucketSize int

	// Concurrency is the Kademlia alpha, the number of queries in flight
	// per lookup. Zero means kad-dht's default, 10.
	Concurrency int

	// Now is the clock of record expiry and republishing; nil: the real
	// clock. kad-dht keeps its own clock and randomness.
	Now func() time.Time
}

// DefaultConfig returns the configuration of a node on the internet: auto
// mode, a LAN table beside the WAN table, 24h records republished every
// 12h, no bootstrap peers.
func DefaultConfig() Config {
	return Config{
		Mode:              ModeAuto,
		LAN:               true,
		RecordTTL:         24 * time.Hour,
		RepublishInterval: 12 * time.Hour,
		OpTimeout:         time.Minute,
	}
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.RecordTTL == 0 {
		c.RecordTTL = d.RecordTTL
	}
	if c.RepublishInterval == 0 {
		c.RepublishInterval = d.RepublishInterval
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = d.OpTimeout
	}
	return c
}

// validate rejects nonsense in a Config whose defaults are applied.
func (c Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("dht: "+format+": %w", append(args, ErrInvalidConfig)...)
	}
	switch {
	case c.Mode < ModeAuto || c.Mode > ModeClient:
		return bad("unknown mode %d", int(c.Mode))
	case c.RecordTTL < 0 || c.RecordTTL > MaxRecordTTL:
		return bad("RecordTTL %v is not within (0, %v]", c.RecordTTL, MaxRecordTTL)
	case c.RepublishInterval < 0 || c.RepublishInterval >= c.RecordTTL:
		return bad("RepublishInterval %v must be positive and shorter than RecordTTL %v", c.RepublishInterval, c.RecordTTL)
	case c.RepublishInterval >= amino.DefaultProvideValidity:
		return bad("RepublishInterval %v must be shorter than the provider record validity %v", c.RepublishInterval, amino.DefaultProvideValidity)
	case c.OpTimeout < 0:
		return bad("negative OpTimeout %v", c.OpTimeout)
	case c.BucketSize < 0 || c.Concurrency < 0:
		return bad("negative BucketSize %d or Concurrency %d", c.BucketSize, c.Concurrency)
	}
	for i, ai := range c.Bootstrap {
		if ai.ID == "" || len(ai.Addrs) == 0 {
			return bad("bootstrap peer %d needs a peer ID and an address", i)
		}
	}
	return nil
}

// ParseBootstrap parses multiaddrs of the form
// /ip4/198.51.100.7/tcp/4001/p2p/12D3KooW... (any transport, /dns4 and
// /dns6 included; the DNS name is resolved when dialled). Entries of the same
// peer are merged, in the order first seen. An entry that is not a
// multiaddr, or lacks its /p2p/ part, is an error naming it. Empty input
// gives an empty result.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := make(map[peer.ID]int)
	for i, s := range addrs {
		a, err := ma.NewMultiaddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("dht: bootstrap entry %d %q: %v: %w", i, s, err, ErrBadBootstrap)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a) // fails only without /p2p/
		if err != nil {
			return nil, fmt.Errorf("dht: bootstrap entry %d %q: needs a /p2p/<peer ID> part: %w", i, s, ErrBadBootstrap)
		}
		if len(ai.Addrs) == 0 {
			return nil, fmt.Errorf("dht: bootstrap entry %d %q: needs an address before /p2p/: %w", i, s, ErrBadBootstrap)
		}
		if j, ok := index[ai.ID]; ok {
			out[j].Addrs = append(out[j].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}
