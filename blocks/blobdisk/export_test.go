package blobdisk

// Crash stops d as a kill would (no final sync, no clean mark).
func (d *Disk) Crash() { d.crash() }

// State is the StateFile's content, for the tests.
type State = syncState
