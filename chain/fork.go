package chain

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Forks. An author that signs two entries with one sequence number has
// forked: a node restored from an old backup, or a member misbehaving. A
// State keeps the first two it can accept of each author and sequence
// number (both branches go on joining, so two branches converge on every
// node) and refuses any further one: k entries with one sequence number
// cost O(k), not O(k²), and the evidence kept stays two entries.

// MaxForkWidth is how many entries of one author with one sequence number
// a State keeps: two are proof of a fork, and a third is refused.
const MaxForkWidth = 2

// ErrForked refuses an entry of a forked author that would widen a fork
// past MaxForkWidth, and the entries built on it. The entry breaks no rule
// by itself, and the member that relayed it may be honest: it is not a
// reason to cut a member off.
var ErrForked = errors.New("chain: entry of a forked author past the two kept")

// Fork is evidence of a forked author: two entries of one author with one
// sequence number, the lowest at which the State holds two (sorted by
// bytes). Both stay in the chain; a forked author is reported once.
type Fork struct {
	Author peer.ID
	Seq    uint64
	CIDs   []cid.Cid
}

// widthFull reports whether the chain holds MaxForkWidth entries of
// author with sequence number seq already.
func (s *State) widthFull(author peer.ID, seq uint64) bool {
	a := s.authors[author]
	return a != nil && seq <= uint64(len(a.seqs)) && len(a.seqs[seq-1]) >= MaxForkWidth
}

// Held returns how many entries of author with sequence number seq the
// chain holds: at MaxForkWidth, Add refuses any other one (ErrForked), so
// a caller need not verify it first.
func (s *State) Held(author peer.ID, seq uint64) int {
	a := s.authors[author]
	if a == nil || seq == 0 || seq > uint64(len(a.seqs)) {
		return 0
	}
	return len(a.seqs[seq-1])
}

func (s *State) errForked(author peer.ID, seq uint64) error {
	return fmt.Errorf("%w: %d entries with sequence number %d held already", ErrForked, len(s.authors[author].seqs[seq-1]), seq)
}

// Forks returns the evidence of every forked author, sorted by author: the
// same on every node holding the same entries.
func (s *State) Forks() []Fork {
	out := slices.Clone(s.forks)
	for i := range out {
		out[i].CIDs = slices.Clone(out[i].CIDs)
	}
	slices.SortFunc(out, func(a, b Fork) int { return strings.Compare(string(a.Author), string(b.Author)) })
	return out
}
