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
	// initiating device (its Ed25519 signing key) and signed prekey. A device's
	// key past it makes the guard forget that device's own oldest key:
	// only the device's own handshakes (one per restart, message/service)
	// push its keys out, so a recorded handshake opens again only after
	// 64 newer ones of the same device under the same signed prekey.
	ReplayCapacity = 64
	// ReplayDevices is the most initiating devices a ReplayGuard remembers
	// keys of per signed prekey. A new device past it makes the guard
	// forget the device whose keys were added least recently (each Add
	// makes its device the most recent): a recorded handshake of a device
	// opens again only after 1,024 other devices handshook under the same
	// signed prekey (a contact lists at most 64 devices: 16 colluding
	// contacts). Nothing is ever refused for the guard being full.
	ReplayDevices = 1024
	// ReplaySets is the most signed prekeys a ReplayGuard remembers keys
	// for (the current one and the previous one); adding for another
	// forgets the oldest set.
	ReplaySets = 2
	// replayVersion is the version byte of a guard's encoding; version 1
	// (keys without their device, at most 1,024 per set) still decodes.
	replayVersion = 2
	// legacyCapacity is the most keys of a version 1 set, which decode
	// under legacyDevice.
	legacyCapacity = 1024
	// MaxReplayGuardSize is the largest encoded guard: 4,325,390 bytes
	// (about 4.1 MiB): per set, 1,024 devices of 64 keys each, one of
	// which may be a version 1 set's 1,024 legacy keys.
	MaxReplayGuardSize = 2 + ReplaySets*(4+2+ReplayDevices*(32+2+ReplayCapacity*32)+(legacyCapacity-ReplayCapacity)*32)
	// maxReplayGuardV1Size is the largest version 1 encoding.
	maxReplayGuardV1Size = 2 + ReplaySets*(4+2+legacyCapacity*32)
)

// legacyDevice is the device under which a version 1 guard's keys (whose
// devices it did not record) are kept: the zero key is of low order, no
// initiator's signing key (RespondSecret refuses it), and its keys are
// checked for every device.
var legacyDevice [32]byte

// capacity is the most keys kept for identity: ReplayCapacity, and a
// version 1 set's size for legacyDevice.
func capacity(identity [32]byte) int {
	if identity == legacyDevice {
		return legacyCapacity
	}
	return ReplayCapacity
}

// ReplayGuard is a bounded set of the ephemeral keys of the last-resort
// initial messages a responder accepted, per signed prekey id and
// initiating device: Respond refuses a last-resort initial message whose
// ephemeral key it holds for that device (a one-time one needs no guard:
// its one-time prekey is deleted when used). The zero value is empty
// and ready. It is a value the shell stores (inside Prekeys' encoding, or
// on its own with MarshalBinary).
type ReplayGuard struct {
	sets []replaySet // oldest first
}

// replaySet is the keys seen under one signed prekey, per device in the
// order of their last Add (least recent first), each device's keys
// oldest first.
type replaySet struct {
	id      uint32
	devices []replayDevice
}

type replayDevice struct {
	identity [32]byte
	keys     [][32]byte
	index    map[[32]byte]struct{}
}

func (g *ReplayGuard) set(id uint32) *replaySet {
	for i := range g.sets {
		if g.sets[i].id == id {
			return &g.sets[i]
		}
	}
	return nil
}

func (s *replaySet) find(identity [32]byte) int {
	for i := range s.devices {
		if s.devices[i].identity == identity {
			return i
		}
	}
	return -1
}

func (s *replaySet) device(identity [32]byte) *replayDevice {
	if i := s.find(identity); i >= 0 {
		return &s.devices[i]
	}
	return nil
}

// Seen reports whether key was added for device under signed prekey id
// (or is a version 1 guard's key under id).
func (g *ReplayGuard) Seen(id uint32, device, key [32]byte) bool {
	s := g.set(id)
	if s == nil {
		return false
	}
	for _, d := range []*replayDevice{s.device(device), s.device(legacyDevice)} {
		if d != nil {
			if _, ok := d.index[key]; ok {
				return true
			}
		}
	}
	return false
}

// Add remembers key of device under signed prekey id and makes device
// the most recent of that set. Past ReplayCapacity keys of device it
// forgets the device's oldest key; past ReplayDevices devices it forgets
// the least recent device; if the id is new and ReplaySets sets exist,
// it forgets the oldest set. It never refuses.
func (g *ReplayGuard) Add(id uint32, device, key [32]byte) {
	s := g.set(id)
	if s == nil {
		if len(g.sets) == ReplaySets {
			g.sets = slices.Delete(g.sets, 0, 1)
		}
		g.sets = append(g.sets, replaySet{id: id})
		s = &g.sets[len(g.sets)-1]
	}
	var d replayDevice
	if i := s.find(device); i >= 0 {
		d = s.devices[i]
		s.devices = slices.Delete(s.devices, i, i+1)
	} else {
		if len(s.devices) == ReplayDevices {
			s.devices = slices.Delete(s.devices, 0, 1)
		}
		d = replayDevice{identity: device, index: map[[32]byte]struct{}{}}
	}
	if _, ok := d.index[key]; !ok {
		if len(d.keys) == capacity(device) {
			delete(d.index, d.keys[0])
			d.keys = slices.Delete(d.keys, 0, 1)
		}
		d.keys = append(d.keys, key)
		d.index[key] = struct{}{}
	}
	s.devices = append(s.devices, d)
}

// Keep forgets the sets of every signed prekey id not in ids.
func (g *ReplayGuard) Keep(ids ...uint32) {
	g.sets = slices.DeleteFunc(g.sets, func(s replaySet) bool {
		return !slices.Contains(ids, s.id)
	})
}

// Len returns the number of keys remembered under id.
func (g *ReplayGuard) Len(id uint32) int {
	n := 0
	if s := g.set(id); s != nil {
		for _, d := range s.devices {
			n += len(d.keys)
		}
	}
	return n
}

// MarshalBinary encodes g (doc.go); it never fails.
func (g *ReplayGuard) MarshalBinary() ([]byte, error) {
	n := 2
	for _, s := range g.sets {
		n += 6
		for _, d := range s.devices {
			n += 34 + 32*len(d.keys)
		}
	}
	out := make([]byte, 0, n)
	out = append(out, replayVersion, byte(len(g.sets)))
	for _, s := range g.sets {
		out = binary.BigEndian.AppendUint32(out, s.id)
		out = binary.BigEndian.AppendUint16(out, uint16(len(s.devices)))
		for _, d := range s.devices {
			out = append(out, d.identity[:]...)
			out = binary.BigEndian.AppendUint16(out, uint16(len(d.keys)))
			for _, k := range d.keys {
				out = append(out, k[:]...)
			}
		}
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary made (or a version 1
// encoding, whose keys are kept for every device) into g, replacing its
// contents; on error (wrapping ErrCorruptReplayGuard) g is unchanged.
func (g *ReplayGuard) UnmarshalBinary(data []byte) error {
	if len(data) < 2 || len(data) > MaxReplayGuardSize {
		return fmt.Errorf("%d bytes: %w", len(data), ErrCorruptReplayGuard)
	}
	d := hsDecoder{b: data}
	v := d.byte()
	if v != 1 && v != replayVersion || v == 1 && len(data) > maxReplayGuardV1Size {
		return fmt.Errorf("version %d, %d bytes: %w", v, len(data), ErrCorruptReplayGuard)
	}
	nsets := int(d.byte())
	if nsets > ReplaySets {
		return fmt.Errorf("%d sets: %w", nsets, ErrCorruptReplayGuard)
	}
	var sets []replaySet
	for range nsets {
		s := replaySet{id: d.uint32()}
		for _, o := range sets {
			if o.id == s.id {
				return fmt.Errorf("set %d twice: %w", s.id, ErrCorruptReplayGuard)
			}
		}
		ndev := 1 // version 1: one count, the keys of no recorded device
		if v == replayVersion {
			ndev = int(d.uint16())
		}
		if d.bad || ndev > ReplayDevices {
			return fmt.Errorf("device count: %w", ErrCorruptReplayGuard)
		}
		for range ndev {
			dev := replayDevice{identity: legacyDevice}
			if v == replayVersion {
				d.copy(dev.identity[:])
			}
			n := int(d.uint16())
			if d.bad || n > capacity(dev.identity) || len(d.b) < 32*n || v == replayVersion && n == 0 {
				return fmt.Errorf("key count: %w", ErrCorruptReplayGuard)
			}
			if s.device(dev.identity) != nil {
				return fmt.Errorf("device twice: %w", ErrCorruptReplayGuard)
			}
			dev.keys = make([][32]byte, n)
			dev.index = make(map[[32]byte]struct{}, n)
			for i := range dev.keys {
				d.copy(dev.keys[i][:])
				if _, ok := dev.index[dev.keys[i]]; ok {
					return fmt.Errorf("key twice: %w", ErrCorruptReplayGuard)
				}
				dev.index[dev.keys[i]] = struct{}{}
			}
			if n > 0 {
				s.devices = append(s.devices, dev)
			}
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
		c.sets[i] = replaySet{id: s.id, devices: make([]replayDevice, len(s.devices))}
		for j, d := range s.devices {
			c.sets[i].devices[j] = replayDevice{identity: d.identity, keys: slices.Clone(d.keys), index: make(map[[32]byte]struct{}, len(d.keys))}
			for _, k := range d.keys {
				c.sets[i].devices[j].index[k] = struct{}{}
			}
		}
	}
	return c
}
