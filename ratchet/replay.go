package ratchet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrCorruptReplayGuard is the error of a stored replay guard that does not
// decode: it comes from the local disk, not from a peer.
var ErrCorruptReplayGuard = errors.New("ratchet: corrupt replay guard")

const (
	// ReplayCapacity is the most ephemeral keys a ReplayGuard remembers per
	// signed prekey; past it the oldest is forgotten.
	ReplayCapacity = 1024
	// ReplaySets is the most signed prekeys a ReplayGuard remembers keys
	// for (the current one and the previous one); adding for another
	// forgets the oldest set.
	ReplaySets = 2
	// replayVersion is the version byte of a guard's encoding.
	replayVersion = 1
	// MaxReplayGuardSize is the largest encoded guard: 65550 bytes.
	MaxReplayGuardSize = 2 + ReplaySets*(4+2+ReplayCapacity*32)
)

// ReplayGuard is a bounded set of the ephemeral keys of the initial
// messages a responder accepted, per signed prekey id: Respond refuses an
// initial message whose ephemeral key it holds. The zero value is empty
// and ready. It is a value the shell stores (inside Prekeys' encoding, or
// on its own with MarshalBinary).
type ReplayGuard struct {
	sets []replaySet // oldest first
}

// replaySet is the keys seen under one signed prekey, oldest first, and
// the same as a set.
type replaySet struct {
	id    uint32
	keys  [][32]byte
	index map[[32]byte]struct{}
}

func (g *ReplayGuard) set(id uint32) *replaySet {
	for i := range g.sets {
		if g.sets[i].id == id {
			return &g.sets[i]
		}
	}
	return nil
}

// Seen reports whether key was added under signed prekey id and not yet
// forgotten.
func (g *ReplayGuard) Seen(id uint32, key [32]byte) bool {
	s := g.set(id)
	if s == nil {
		return false
	}
	_, ok := s.index[key]
	return ok
}

// Add remembers key under signed prekey id. If the id's set is full its
// oldest key is forgotten; if the id is new and ReplaySets sets exist, the
// oldest set is forgotten.
func (g *ReplayGuard) Add(id uint32, key [32]byte) {
	s := g.set(id)
	if s == nil {
		if len(g.sets) == ReplaySets {
			g.sets = slices.Delete(g.sets, 0, 1)
		}
		g.sets = append(g.sets, replaySet{id: id, index: map[[32]byte]struct{}{}})
		s = &g.sets[len(g.sets)-1]
	}
	if _, ok := s.index[key]; ok {
		return
	}
	if len(s.keys) == ReplayCapacity {
		delete(s.index, s.keys[0])
		s.keys = slices.Delete(s.keys, 0, 1)
	}
	s.keys = append(s.keys, key)
	s.index[key] = struct{}{}
}

// Keep forgets the sets of every signed prekey id not in ids.
func (g *ReplayGuard) Keep(ids ...uint32) {
	g.sets = slices.DeleteFunc(g.sets, func(s replaySet) bool {
		return !slices.Contains(ids, s.id)
	})
}

// Len returns the number of keys remembered under id.
func (g *ReplayGuard) Len(id uint32) int {
	if s := g.set(id); s != nil {
		return len(s.keys)
	}
	return 0
}

// MarshalBinary encodes g (doc.go); it never fails.
func (g *ReplayGuard) MarshalBinary() ([]byte, error) {
	n := 2
	for _, s := range g.sets {
		n += 6 + 32*len(s.keys)
	}
	out := make([]byte, 0, n)
	out = append(out, replayVersion, byte(len(g.sets)))
	for _, s := range g.sets {
		out = binary.BigEndian.AppendUint32(out, s.id)
		out = binary.BigEndian.AppendUint16(out, uint16(len(s.keys)))
		for _, k := range s.keys {
			out = append(out, k[:]...)
		}
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary made into g, replacing its
// contents; on error (wrapping ErrCorruptReplayGuard) g is unchanged.
func (g *ReplayGuard) UnmarshalBinary(data []byte) error {
	if len(data) < 2 || len(data) > MaxReplayGuardSize {
		return fmt.Errorf("%d bytes: %w", len(data), ErrCorruptReplayGuard)
	}
	d := hsDecoder{b: data}
	if v := d.byte(); v != replayVersion {
		return fmt.Errorf("version %d: %w", v, ErrCorruptReplayGuard)
	}
	nsets := int(d.byte())
	if nsets > ReplaySets {
		return fmt.Errorf("%d sets: %w", nsets, ErrCorruptReplayGuard)
	}
	var sets []replaySet
	for range nsets {
		s := replaySet{id: d.uint32()}
		n := int(d.uint16())
		if d.bad || n > ReplayCapacity || len(d.b) < 32*n {
			return fmt.Errorf("set length: %w", ErrCorruptReplayGuard)
		}
		for _, o := range sets {
			if o.id == s.id {
				return fmt.Errorf("set %d twice: %w", s.id, ErrCorruptReplayGuard)
			}
		}
		s.keys = make([][32]byte, n)
		s.index = make(map[[32]byte]struct{}, n)
		for i := range s.keys {
			d.copy(s.keys[i][:])
			if _, ok := s.index[s.keys[i]]; ok {
				return fmt.Errorf("key twice: %w", ErrCorruptReplayGuard)
			}
			s.index[s.keys[i]] = struct{}{}
		}
		sets = append(sets, s)
	}
	if !d.done() {
		return fmt.Errorf("trailing bytes: %w", ErrCorruptReplayGuard)
	}
	g.sets = sets
	return nil
}

// clone returns a deep copy of g.
func (g *ReplayGuard) clone() ReplayGuard {
	c := ReplayGuard{sets: make([]replaySet, len(g.sets))}
	for i, s := range g.sets {
		c.sets[i] = replaySet{id: s.id, keys: slices.Clone(s.keys), index: make(map[[32]byte]struct{}, len(s.keys))}
		for _, k := range s.keys {
			c.sets[i].index[k] = struct{}{}
		}
	}
	return c
}
