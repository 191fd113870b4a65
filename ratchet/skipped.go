package ratchet

import "iter"

// The bounds of skipped message keys (doc.go, "Double Ratchet").
const (
	// MaxSkip is the most message keys one header may make a session skip
	// in one receiving chain (the specification's MAX_SKIP): a header whose
	// N (or, on a DH step, whose PN) is more than MaxSkip past the chain's
	// next expected number is refused.
	MaxSkip = 1000
	// MaxSkippedKeys is the most skipped message keys a session keeps,
	// across all chains; past it, the oldest are dropped first.
	MaxSkippedKeys = 2000
)

// skippedKey is one entry of MKSKIPPED: the message key of message n of
// the receiving chain whose header key is hk.
type skippedKey struct {
	hk [32]byte
	n  uint32
	mk [32]byte
}

// skipKeys is SkipMessageKeysHE on values: it advances the receiving
// chain ck from number nr to until, appending each skipped message key
// (with header key hk) to keys. It reports false if until is more than
// MaxSkip past nr. With no receiving chain (hasCK false) it skips
// nothing, as the specification's does.
func skipKeys(keys []skippedKey, hk *[32]byte, ck *[32]byte, hasCK bool, nr *uint32, until uint32) ([]skippedKey, bool) {
	if uint64(*nr)+MaxSkip < uint64(until) {
		return keys, false
	}
	if !hasCK {
		return keys, true
	}
	for *nr < until {
		var mk [32]byte
		*ck, mk = kdfCK(ck)
		keys = append(keys, skippedKey{hk: *hk, n: *nr, mk: mk})
		*nr++
	}
	return keys, true
}

// findSkipped returns the index of the stored key of message n under
// header key hk, or -1.
func (s *Session) findSkipped(hk *[32]byte, n uint32) int {
	for i := range s.skipped {
		if s.skipped[i].n == n && s.skipped[i].hk == *hk {
			return i
		}
	}
	return -1
}

// dropSkipped removes stored key i (used: a message key opens one
// message only).
func (s *Session) dropSkipped(i int) {
	s.skipped[i] = skippedKey{}
	s.skipped = append(s.skipped[:i], s.skipped[i+1:]...)
}

// addSkipped stores keys after the others, then drops the oldest past
// MaxSkippedKeys.
func (s *Session) addSkipped(keys []skippedKey) {
	s.skipped = append(s.skipped, keys...)
	if over := len(s.skipped) - MaxSkippedKeys; over > 0 {
		clear(s.skipped[:over])
		s.skipped = append(s.skipped[:0], s.skipped[over:]...)
	}
}

// skippedHeaderKeys yields each distinct stored header key once, in the
// order stored, except skip (nil for none). A chain's keys are stored
// together (only the current receiving chain gets new ones, and the
// previous one's last come just before the next's first), so a key
// differs from the one before it exactly when it starts a chain.
func (s *Session) skippedHeaderKeys(skip *[32]byte) iter.Seq[*[32]byte] {
	return func(yield func(*[32]byte) bool) {
		for i := range s.skipped {
			hk := &s.skipped[i].hk
			if i > 0 && s.skipped[i-1].hk == *hk || skip != nil && *hk == *skip {
				continue
			}
			if !yield(hk) {
				return
			}
		}
	}
}

// trySkippedHeaders is the header part of TrySkippedMessageKeysHE: it
// tries each distinct stored header key once, except skip (the current
// receiving header key, already tried), and returns the first that
// opens msg's header.
func (s *Session) trySkippedHeaders(msg []byte, skip *[32]byte) ([32]byte, header, bool) {
	for hk := range s.skippedHeaderKeys(skip) {
		if h, ok := openHeader(newGCM(hk[:]), msg, &s.hdrBuf); ok {
			return *hk, h, true
		}
	}
	return [32]byte{}, header{}, false
}
