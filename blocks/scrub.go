package blocks

import "github.com/exopeer/exopeer/blocks/blobdisk"

// scrubber is a blob datastore that may have lost writes to a crash and
// scrubs them (blobdisk.Disk).
type scrubber interface {
	Scrub() (blobdisk.ScrubStats, <-chan struct{})
	AckRecheck(gen uint64) error
}

// doneScrub is the answer of a Store whose blob datastore needs no scrub.
var doneScrub = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Scrub reports the scrub of the blob datastore after an unclean stop
// (blobdisk.Disk) and a channel closed once it is done; for any other
// datastore, nothing to scrub and a closed channel. After a scrub of an
// unclean stop, blocks written shortly before it may be gone (deleted as
// damaged, or never on disk): whoever keeps DAGs whole checks them again.
func (s *Store) Scrub() (blobdisk.ScrubStats, <-chan struct{}) {
	if sc, ok := s.blobs.(scrubber); ok && s.split {
		return sc.Scrub()
	}
	return blobdisk.ScrubStats{Done: true}, doneScrub
}

// AckRecheck tells the blob datastore that the DAGs kept whole were
// checked again after its scrub (blobdisk.Disk.AckRecheck); gen is the
// ScrubStats.Recheck that asked. For any other datastore it does nothing.
func (s *Store) AckRecheck(gen uint64) error {
	if sc, ok := s.blobs.(scrubber); ok && s.split {
		return sc.AckRecheck(gen)
	}
	return nil
}
