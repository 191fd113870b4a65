package prekey

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/exopeer/exopeer/ratchet"
)

// Config tunes a Service. The zero value of a field means its default.
type Config struct {
	// OneTime is how many one-time prekeys the device keeps in its
	// bundle: 1 to ratchet.MaxOneTimePrekeys. Default 100.
	OneTime int
	// LowWater: once fewer than this many one-time prekeys are left, the
	// service makes new ones up to OneTime (and republishes). 1 to
	// OneTime. Default three quarters of OneTime.
	LowWater int
	// CacheSize bounds the other devices' bundles kept (the newest
	// verified one of each; the least recently used goes first). Default
	// 1024.
	CacheSize int
	// Timeout bounds one direct request on Protocol: the asker's wait for
	// the answer, and the server's for the request and for the answer's
	// write. Default 10 s.
	Timeout time.Duration
	// PublishTimeout bounds one store of the bundle on the DHT. Default
	// 1 min.
	PublishTimeout time.Duration
	// PublishInterval is the least time from the end of a store of the
	// bundle on the DHT that succeeded to the start of the next:
	// changes made meanwhile (an Accept per initial message) are
	// coalesced into one store of the latest bundle. Protocol always
	// serves the current one. Default 10 s.
	PublishInterval time.Duration
	// CheckInterval is the longest the maintenance loop sleeps; it also
	// wakes when the signed prekey is due for rotation and when one-time
	// prekeys were used. Default 1 h.
	CheckInterval time.Duration
	// RetryInterval is the first wait before a failed store on the DHT is
	// tried again (from the end of the failed one); it doubles up to
	// CheckInterval. Default 2 s: a node that has just started, before
	// its DHT knows any peer, publishes within seconds of its first
	// connections.
	RetryInterval time.Duration
	// Rand is where every private key comes from. nil: the system's
	// (the node passes a stream of its own, see peer.Options).
	Rand io.Reader
	// Now is the clock of the prekeys' creation and rotation times. nil:
	// the real clock.
	Now func() time.Time
}

// DefaultOneTime is the default number of one-time prekeys kept.
const DefaultOneTime = ratchet.MaxOneTimePrekeys

// DefaultConfig returns the defaults (Rand and Now nil).
func DefaultConfig() Config {
	return Config{
		OneTime: DefaultOneTime, LowWater: DefaultOneTime * 3 / 4, CacheSize: 1024,
		Timeout: 10 * time.Second, PublishTimeout: time.Minute, PublishInterval: 10 * time.Second,
		CheckInterval: time.Hour, RetryInterval: 2 * time.Second,
	}
}

// ErrConfig is a Config that makes no sense.
var ErrConfig = errors.New("prekey: bad config")

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.OneTime == 0 {
		c.OneTime = d.OneTime
	}
	if c.LowWater == 0 {
		c.LowWater = max(1, c.OneTime*3/4)
	}
	for _, f := range []struct{ v, d *int }{{&c.CacheSize, &d.CacheSize}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *time.Duration }{
		{&c.Timeout, &d.Timeout}, {&c.PublishTimeout, &d.PublishTimeout}, {&c.PublishInterval, &d.PublishInterval},
		{&c.CheckInterval, &d.CheckInterval}, {&c.RetryInterval, &d.RetryInterval},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	return c
}

// validate checks a Config with its defaults filled in.
func (c Config) validate() error {
	if c.OneTime < 1 || c.OneTime > ratchet.MaxOneTimePrekeys {
		return fmt.Errorf("%d one-time prekeys, want 1 to %d: %w", c.OneTime, ratchet.MaxOneTimePrekeys, ErrConfig)
	}
	if c.LowWater < 1 || c.LowWater > c.OneTime {
		return fmt.Errorf("low-water mark %d, want 1 to %d: %w", c.LowWater, c.OneTime, ErrConfig)
	}
	if c.CacheSize < 1 {
		return fmt.Errorf("cache size %d: %w", c.CacheSize, ErrConfig)
	}
	if c.Timeout < 0 || c.PublishTimeout < 0 || c.PublishInterval < 0 || c.CheckInterval < 0 || c.RetryInterval < 0 {
		return fmt.Errorf("negative duration: %w", ErrConfig)
	}
	return nil
}
