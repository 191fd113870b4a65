// Package ambient is the one place where exopeer reads the real world's
// clock and randomness. Every part of a node takes a clock and a random
// source as inputs (peer.Options carries them); a part given none falls back
// on these. The simulator passes virtual time and a seeded source instead,
// so that one seed replays a whole run. A test (peer's TestNoAmbientReads)
// checks that no other package of the node reads crypto/rand or time.Now.
package ambient

import (
	"crypto/rand"
	"io"
	"time"
)

// Rand is the system's cryptographically secure random source.
var Rand io.Reader = rand.Reader

// Now returns the current time of the real clock.
func Now() time.Time { return time.Now() }
