package blobdisk

import "time"

// Crash stops d as a kill would (no final sync, no clean mark).
func (d *Disk) Crash() { d.crash() }

// State is the StateFile's content, for the tests.
type State = syncState

// SetScrubRetry sets how long a failed scrub waits before it is tried
// again (before Start).
func (d *Disk) SetScrubRetry(w time.Duration) { d.retry = w }
