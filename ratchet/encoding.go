package ratchet

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorruptSession is UnmarshalBinary's error for bytes that are not a
// stored session of a version it reads. Stored sessions come from the
// local disk, not from a peer: the error says what is wrong.
var ErrCorruptSession = errors.New("ratchet: corrupt stored session")

// SessionVersion is the first byte of a stored session (MarshalBinary).
const SessionVersion = 0x01

// The flags byte of a stored session.
const (
	flagDHr  = 1 << iota // DHRr is set
	flagCKs              // CKs is set
	flagCKr              // CKr is set
	flagHKs              // HKs is set
	flagHKr              // HKr is set
	flagsAll = flagDHr | flagCKs | flagCKr | flagHKs | flagHKr
)

// skippedLen is the stored length of one skipped message key.
const skippedLen = 32 + 4 + 32

// Size returns the length of the session's stored form, the bytes
// MarshalBinary returns, without encoding it: a cheap measure of the
// session's size (most of it is its skipped message keys, up to
// MaxSkippedKeys). It is exact for a session MarshalBinary stores.
func (s *Session) Size() int {
	return 2 + 1 + len(s.root) + 1 + len(s.message) + 2 + len(s.ad) + 9*32 + 3*4 + 2 + len(s.skipped)*skippedLen
}

// MarshalBinary stores the session (doc.go, "Double Ratchet", for the
// layout). The bytes hold secret keys: the caller keeps them as such.
func (s *Session) MarshalBinary() ([]byte, error) {
	if len(s.root) > 255 || len(s.message) > 255 || len(s.ad) > MaxAD || len(s.skipped) > MaxSkippedKeys || s.dhs == nil {
		return nil, errors.New("ratchet: session not made by NewInitiator, NewResponder or UnmarshalBinary")
	}
	b := make([]byte, 0, s.Size())
	var flags byte
	for _, f := range []struct {
		set  bool
		flag byte
	}{{s.hasDHr, flagDHr}, {s.hasCKs, flagCKs}, {s.hasCKr, flagCKr}, {s.hasHKs, flagHKs}, {s.hasHKr, flagHKr}} {
		if f.set {
			flags |= f.flag
		}
	}
	b = append(b, SessionVersion, flags)
	b = append(append(b, byte(len(s.root))), s.root...)
	b = append(append(b, byte(len(s.message))), s.message...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.ad)))
	b = append(b, s.ad...)
	b = append(b, s.dhs.priv[:]...)
	for _, k := range []*[32]byte{&s.dhr, &s.rk, &s.cks, &s.ckr, &s.hks, &s.hkr, &s.nhks, &s.nhkr} {
		b = append(b, k[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, s.ns)
	b = binary.BigEndian.AppendUint32(b, s.nr)
	b = binary.BigEndian.AppendUint32(b, s.pn)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.skipped)))
	for i := range s.skipped {
		k := &s.skipped[i]
		b = append(b, k.hk[:]...)
		b = binary.BigEndian.AppendUint32(b, k.n)
		b = append(b, k.mk[:]...)
	}
	return b, nil
}

// decoder reads a stored session, remembering its first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = fmt.Errorf("%w: %s: %d bytes wanted, %d left", ErrCorruptSession, what, n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) key(k *[32]byte, what string) { copy(k[:], d.take(32, what)) }

func (d *decoder) u8(what string) int {
	if v := d.take(1, what); v != nil {
		return int(v[0])
	}
	return 0
}

func (d *decoder) u16(what string) int {
	if v := d.take(2, what); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if v := d.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// UnmarshalBinary restores a session stored by MarshalBinary. On an
// error (wrapping ErrCorruptSession) s is unchanged. It keeps no
// reference to data.
func (s *Session) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if v := d.u8("version"); d.err == nil && v != SessionVersion {
		return fmt.Errorf("%w: version %d, not %d", ErrCorruptSession, v, SessionVersion)
	}
	flags := byte(d.u8("flags"))
	if flags&^flagsAll != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrCorruptSession, flags)
	}
	var x Session
	x.hasDHr, x.hasCKs, x.hasCKr = flags&flagDHr != 0, flags&flagCKs != 0, flags&flagCKr != 0
	x.hasHKs, x.hasHKr = flags&flagHKs != 0, flags&flagHKr != 0
	x.root = string(d.take(d.u8("root info length"), "root info"))
	x.message = string(d.take(d.u8("message info length"), "message info"))
	x.ad = append([]byte{}, d.take(d.u16("ad length"), "ad")...)
	priv := d.take(32, "DHRs")
	for _, f := range []struct {
		k    *[32]byte
		what string
		set  bool
	}{{&x.dhr, "DHRr", x.hasDHr}, {&x.rk, "RK", true}, {&x.cks, "CKs", x.hasCKs}, {&x.ckr, "CKr", x.hasCKr},
		{&x.hks, "HKs", x.hasHKs}, {&x.hkr, "HKr", x.hasHKr}, {&x.nhks, "NHKs", true}, {&x.nhkr, "NHKr", true}} {
		d.key(f.k, f.what)
		if d.err == nil && !f.set && *f.k != [32]byte{} {
			return fmt.Errorf("%w: %s is not set but not zero", ErrCorruptSession, f.what)
		}
	}
	x.ns, x.nr, x.pn = d.u32("Ns"), d.u32("Nr"), d.u32("PN")
	n := d.u16("skipped count")
	if n > MaxSkippedKeys {
		return fmt.Errorf("%w: %d skipped keys, more than %d", ErrCorruptSession, n, MaxSkippedKeys)
	}
	if d.err == nil && len(d.b) != n*skippedLen {
		return fmt.Errorf("%w: %d bytes for %d skipped keys, not %d", ErrCorruptSession, len(d.b), n, n*skippedLen)
	}
	if d.err != nil {
		return d.err
	}
	if n > 0 {
		x.skipped = make([]skippedKey, n)
	}
	for i := range x.skipped {
		k := &x.skipped[i]
		d.key(&k.hk, "skipped header key")
		k.n = d.u32("skipped number")
		d.key(&k.mk, "skipped message key")
	}
	switch {
	case x.hasCKr != x.hasHKr:
		return fmt.Errorf("%w: a receiving chain without its header key, or the reverse", ErrCorruptSession)
	case x.hasCKs && !(x.hasHKs && x.hasDHr), x.hasCKr && !x.hasDHr:
		return fmt.Errorf("%w: a chain without the keys it needs", ErrCorruptSession)
	case x.hasDHr && !x.hasHKs: // the next Encrypt would seal its header under a zero key
		return fmt.Errorf("%w: the peer's ratchet key without a sending header key", ErrCorruptSession)
	}
	var err error
	if x.dhs, err = newDHPair(priv); err != nil {
		return fmt.Errorf("%w: DHRs: %w", ErrCorruptSession, err)
	}
	*s = x
	return nil
}
