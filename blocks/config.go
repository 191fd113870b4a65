package blocks

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
)

// protocolPrefix is put in front of bitswap's protocol IDs.
const protocolPrefix protocol.ID = "/exopeer"

// ProtocolID is the only protocol the exchange registers and dials:
// bitswap 1.2.0 under the /exopeer prefix, never the public IPFS bitswap.
// The host's resource manager limits streams per protocol (see Exchange).
const ProtocolID protocol.ID = "/exopeer/ipfs/bitswap/1.2.0"

// ErrInvalidConfig is wrapped by every error of Config validation.
var ErrInvalidConfig = errors.New("blocks: invalid config")

// Config configures an Exchange. The zero Config is valid: it fetches from
// connected peers only, with the default provider search delay, and logs
// nothing.
type Config struct {
	// ProviderFinder, if not nil, is asked for peers that have a block
	// when connected peers have not supplied it within
	// ProviderSearchDelay (a later issue plugs the DHT in here). It must be
	// safe for concurrent use. Nil: blocks come from connected peers only.
	ProviderFinder routing.ContentDiscovery

	// ProviderSearchDelay is how long a fetch waits for connected peers to
	// supply a block before it asks ProviderFinder and broadcasts its wants
	// again; bitswap backs the interval off while the fetch stays idle.
	// Must not be negative. Zero means the default, 1s.
	ProviderSearchDelay time.Duration

	// BlockstoreWorkers is how many goroutines read the block store to
	// answer peers' wants. Zero means the default, 8. (boxo's default,
	// 128, suits a public gateway, not a personal node, and costs 128
	// goroutines per node in the simulator.)
	BlockstoreWorkers int

	// TaskWorkers is how many goroutines send blocks to peers, and how
	// many process incoming wants. Zero means the default, 4.
	TaskWorkers int

	// JunkLimit is how many blocks that no fetch wanted a peer may send
	// (bitswap drops them, after hashing them) within CutOff of the first
	// one counted before it is cut off for CutOff: its connections closed
	// and its messages ignored. Zero means
	// the default, 64; must not be negative.
	JunkLimit int

	// CutOff is how long a peer that sent junk stays cut off. Zero means
	// the default, 10 minutes; must not be negative.
	CutOff time.Duration

	// Now is the clock of cut-offs. Nil: the real clock.
	Now func() time.Time

	// Logger receives the exchange's own log records (bitswap logs through
	// go-log). Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration for a production node: no
// provider finder yet, a 1s provider search delay, 8 block store workers
// and 4 task workers, peers cut off for 10 minutes after 64 junk blocks,
// no logger.
func DefaultConfig() Config {
	return Config{ProviderSearchDelay: time.Second, BlockstoreWorkers: 8, TaskWorkers: 4, JunkLimit: 64, CutOff: 10 * time.Minute}
}

// validate rejects settings that make no sense.
func (c Config) validate() error {
	if c.BlockstoreWorkers < 0 || c.TaskWorkers < 0 {
		return fmt.Errorf("%w: BlockstoreWorkers %d and TaskWorkers %d must not be negative", ErrInvalidConfig, c.BlockstoreWorkers, c.TaskWorkers)
	}
	if c.JunkLimit < 0 || c.CutOff < 0 {
		return fmt.Errorf("%w: JunkLimit %d and CutOff %v must not be negative", ErrInvalidConfig, c.JunkLimit, c.CutOff)
	}
	if c.ProviderSearchDelay < 0 {
		return fmt.Errorf("%w: ProviderSearchDelay %v is negative", ErrInvalidConfig, c.ProviderSearchDelay)
	}
	return nil
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ProviderSearchDelay == 0 {
		c.ProviderSearchDelay = d.ProviderSearchDelay
	}
	if c.BlockstoreWorkers == 0 {
		c.BlockstoreWorkers = d.BlockstoreWorkers
	}
	if c.TaskWorkers == 0 {
		c.TaskWorkers = d.TaskWorkers
	}
	if c.JunkLimit == 0 {
		c.JunkLimit = d.JunkLimit
	}
	if c.CutOff == 0 {
		c.CutOff = d.CutOff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
