package chain

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrPastCutoff refuses an entry of a removed author past its cut-off: the
// removal fixed the last entries of that author the cell keeps, and
// nothing it signs later gets in, whatever epoch it names. A member that
// relays such an entry may simply not know of the removal yet: it is not
// at fault.
var ErrPastCutoff = errors.New("chain: entry of a removed author past its cut-off")

// PastCutoff reports whether r refuses e's author from e on: e's author
// was removed, and e's sequence number is past the cut-off, or at it but
// not one of the entries the cut-off names.
func PastCutoff(e *Entry, r Roster) bool {
	return pastCutoff(e.Author, e.Seq, e.CID(), r)
}

func pastCutoff(author peer.ID, seq uint64, c cid.Cid, r Roster) bool {
	last, lastCIDs, ok := r.Cutoff(author)
	switch {
	case !ok || seq < last:
		return false
	case seq > last:
		return true
	}
	return !slices.ContainsFunc(lastCIDs, c.Equals)
}

// checkCutoff is Verify's check of the cut-off.
func checkCutoff(e *Entry, r Roster) error {
	if PastCutoff(e, r) {
		return fmt.Errorf("%w: %s, sequence number %d", ErrPastCutoff, e.Author, e.Seq)
	}
	return nil
}

// checkParentEpochs is State.Add's rule that an entry's epoch is at least
// the highest epoch among its parents: an author who knows of an epoch
// writes in it, so a removed author cannot put an entry in an old epoch
// after entries of the epoch that excluded it.
func (s *State) checkParentEpochs(e *Entry) error {
	for _, p := range e.Parents {
		if pm := s.metas[p]; pm.Epoch > e.Epoch {
			return fmt.Errorf("%w: epoch %d below its parent %s's %d", ErrBadLink, e.Epoch, p, pm.Epoch)
		}
	}
	return nil
}

// Last returns the highest sequence number held of author and the CIDs of
// its entries with that number (several if it forked), sorted: the
// cut-off a removal of author records. 0 and nil if none is held.
func (s *State) Last(author peer.ID) (uint64, []cid.Cid) {
	a := s.authors[author]
	if a == nil || len(a.seqs) == 0 {
		return 0, nil
	}
	n := uint64(len(a.seqs))
	return n, SortCIDs(slices.Clone(a.seqs[n-1]))
}

// BeyondCutoff reports whether the chain holds an entry that r refuses
// as past its author's cut-off, among the entries of authors.
func (s *State) BeyondCutoff(r Roster, authors []peer.ID) bool {
	for _, id := range authors {
		a := s.authors[id]
		if a == nil {
			continue
		}
		last, _, ok := r.Cutoff(id)
		if !ok {
			continue
		}
		for seq := last; seq <= uint64(len(a.seqs)); seq++ {
			if seq == 0 {
				continue
			}
			for _, c := range a.seqs[seq-1] {
				if pastCutoff(id, seq, c, r) {
					return true
				}
			}
		}
	}
	return false
}
