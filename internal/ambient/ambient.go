// Package ambient is the one place where exopeer reads the real world's
// clock and randomness. Every part of a node takes a clock and a random
// source as inputs (peer.Options carries them); a part given none falls back
// on these. The simulator passes virtual time and a seeded source instead,
// so that one seed replays a whole run. A test (peer's TestNoAmbientReads)
// checks that no other package of the node reads crypto/rand or time.Now.
//
// Deadlines are the exception that proves the rule: the deadline of a
// stream, of a connection or of a memberlist call is a timer on the
// runtime's clock (virtual inside a testing/synctest bubble), which the
// library that honours it reads for itself. Deadline and Until compute
// them, so that a node given a clock of its own still times out right.
package ambient

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// Rand is the system's cryptographically secure random source.
var Rand io.Reader = rand.Reader

// Now returns the current time of the real clock.
func Now() time.Time { return time.Now() }

// RandOr returns r, or Rand if r is nil: the fallback of a part given no
// random source.
func RandOr(r io.Reader) io.Reader {
	if r == nil {
		return Rand
	}
	return r
}

// NowOr returns now, or Now if now is nil: the fallback of a part given no
// clock.
func NowOr(now func() time.Time) func() time.Time {
	if now == nil {
		return Now
	}
	return now
}

// Deadline returns the instant d from now on the runtime's clock: the
// deadline of a stream, a connection or a library call (which the library
// compares with its own reading of that clock), or a timestamp handed to
// memberlist (d = 0). It is a timer, not a reading of the node's clock.
func Deadline(d time.Duration) time.Time { return time.Now().Add(d) }

// Until returns the time left before the deadline t on the runtime's
// clock: a context's deadline, or one memberlist set, as a timer.
func Until(t time.Time) time.Duration { return time.Until(t) }

// ErrFork is returned by Fork when its source fails.
var ErrFork = errors.New("ambient: fork a random source")

// Fork returns a random source of its own for one part of a node (purpose
// names it), drawn from r. When r is Rand, Fork returns Rand: the system's
// source is safe for concurrent use, and the order of draws means nothing
// to it. Any other r (a simulation's seeded stream) is read once, for 32
// bytes that, hashed with purpose, key a ChaCha8 stream (math/rand/v2's
// cryptographically strong generator) made safe for concurrent use.
//
// The parts of a node draw from their own goroutines, in an order that
// scheduling decides; with a source per part, each part's values depend
// only on the order of its own draws, so that one seed replays them. r is
// read in the order of the Fork calls, which must be fixed: a node makes
// them while it starts.
func Fork(r io.Reader, purpose string) (io.Reader, error) {
	r = RandOr(r)
	if r == Rand {
		return Rand, nil
	}
	var key [32]byte
	if _, err := io.ReadFull(r, key[:]); err != nil {
		return nil, fmt.Errorf("%w for %s: %w", ErrFork, purpose, err)
	}
	seed := sha256.Sum256(append(key[:], purpose...))
	return &lockedReader{r: mrand.NewChaCha8(seed)}, nil
}

// lockedReader makes a reader safe for concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
