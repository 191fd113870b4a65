package service

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/exopeer/exopeer/internal/ambient"
)

// The pin policies (Config.Policy).
const (
	// PolicyAll pins every file of the cell and fetches it in the
	// background.
	PolicyAll = "all"
	// PolicyNone pins no file: a file is fetched when it is opened, its
	// blocks kept until the next collection.
	PolicyNone = "none"
	// PolicyBudget pins the newest files whose sizes add up to at most
	// Config.PinBudget (see Choose).
	PolicyBudget = "budget"
)

// Config tunes a Service. Zero fields mean the defaults (DefaultConfig).
type Config struct {
	// Policy says which of the cell's files this device keeps: PolicyAll,
	// PolicyNone or PolicyBudget. Empty: PolicyAll.
	Policy string
	// PinBudget is, under PolicyBudget, the plaintext bytes of files the
	// device keeps, newest first. Required (> 0) with that policy, ignored
	// with the others.
	PinBudget int64
	// DiskBudget is the bytes of blob blocks past which the service
	// collects garbage by itself (after an import or a fetch, and every
	// Check); when the blocks kept are over it by themselves, not again
	// until more is stored or something is unpinned. 0: no automatic
	// collection.
	DiskBudget int64
	// Spool is the directory where AddFileReader keeps an upload that
	// needs two passes (a key derived from the content) while it is
	// imported; the file is removed after. `exopeer run`: <data dir>/spool.
	// Empty: os.TempDir().
	Spool string
	// Fetchers is how many files are fetched in the background at once.
	// Default 2.
	Fetchers int
	// Backoff is the wait before a failed background fetch is tried
	// again, doubled at each failure up to MaxBackoff. Defaults 5 s and
	// 5 min.
	Backoff, MaxBackoff time.Duration
	// Check is how often the service looks at the cell's files (besides
	// the store's watch, which sees the 1,000 files changed last) and at
	// the disk budget. Default 1 min.
	Check time.Duration
	// MaxPending bounds the roots waiting for a background fetch; past it
	// the newest wait for the next look. Default 10,000.
	MaxPending int
	// ShareBudget is the bytes of files one contact may share with the
	// cell that are fetched by themselves: past it, a shared file is
	// recorded as offered (File.Offered) and fetched only when pinned by
	// hand. Default 4 GiB.
	ShareBudget int64
	// MaxSharedFiles is the most files one contact may have shared with
	// the cell: past it, Received records no more of that contact's
	// (ErrTooManyFiles), so that a contact cannot fill the cell's list of
	// files (MaxFiles). Default 1,000.
	MaxSharedFiles int
	// Rand is the source of random blob keys and entity IDs. nil: the
	// system's.
	Rand io.Reader
	// Now is the clock of the files' added times and of the backoff. nil:
	// the real clock.
	Now func() time.Time
}

// DefaultConfig returns the defaults: every file pinned, no disk budget.
func DefaultConfig() Config {
	return Config{
		Policy:         PolicyAll,
		Spool:          os.TempDir(),
		Fetchers:       2,
		Backoff:        5 * time.Second,
		MaxBackoff:     5 * time.Minute,
		Check:          time.Minute,
		MaxPending:     10000,
		ShareBudget:    4 << 30,
		MaxSharedFiles: 1000,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Policy == "" {
		c.Policy = d.Policy
	}
	if c.Spool == "" {
		c.Spool = d.Spool
	}
	if c.Fetchers <= 0 {
		c.Fetchers = d.Fetchers
	}
	if c.Backoff <= 0 {
		c.Backoff = d.Backoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	if c.Check <= 0 {
		c.Check = d.Check
	}
	if c.MaxPending <= 0 {
		c.MaxPending = d.MaxPending
	}
	if c.ShareBudget <= 0 {
		c.ShareBudget = d.ShareBudget
	}
	if c.MaxSharedFiles <= 0 {
		c.MaxSharedFiles = d.MaxSharedFiles
	}
	c.Rand = ambient.RandOr(c.Rand)
	c.Now = ambient.NowOr(c.Now)
	return c
}

// Validate rejects nonsense with a message naming the setting. It checks
// c as given (zero fields are defaults, not errors).
func (c Config) Validate() error {
	var errs []error
	switch c.Policy {
	case "", PolicyAll, PolicyNone:
	case PolicyBudget:
		if c.PinBudget <= 0 {
			errs = append(errs, fmt.Errorf("blobs: policy %q needs a pin budget > 0 bytes (got %d)", c.Policy, c.PinBudget))
		}
	default:
		errs = append(errs, fmt.Errorf("blobs: policy %q is not one of all, none, budget", c.Policy))
	}
	if c.PinBudget < 0 {
		errs = append(errs, fmt.Errorf("blobs: pin budget %d is negative", c.PinBudget))
	}
	if c.MaxSharedFiles < 0 {
		errs = append(errs, fmt.Errorf("blobs: max shared files %d is negative", c.MaxSharedFiles))
	}
	if c.ShareBudget < 0 {
		errs = append(errs, fmt.Errorf("blobs: share budget %d is negative", c.ShareBudget))
	}
	if c.DiskBudget < 0 {
		errs = append(errs, fmt.Errorf("blobs: disk budget %d is negative", c.DiskBudget))
	}
	if c.Fetchers < 0 || c.Fetchers > 64 {
		errs = append(errs, fmt.Errorf("blobs: fetchers %d is not within 0 (default) to 64", c.Fetchers))
	}
	return errors.Join(errs...)
}
