package ratchet

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// ErrCorruptPrekeys is the error of a stored Prekeys that does not decode:
// it comes from the local disk, not from a peer.
var ErrCorruptPrekeys = errors.New("ratchet: corrupt prekeys")

const (
	// RotationPeriod is how long a signed prekey is current, in seconds
	// (a week): RotationDue says when to rotate.
	RotationPeriod = 7 * 24 * 3600
	// GracePeriod is how long the previous signed prekey still answers
	// initial messages after a rotation, in seconds (a week).
	GracePeriod = 7 * 24 * 3600
	// prekeysVersion is the version byte of Prekeys' encoding.
	prekeysVersion = 1
	// maxPrekeysSize bounds Prekeys' encoding (see doc.go).
	maxPrekeysSize = prekeysFixed + prekeysPrevious + MaxOneTimePrekeys*36 + MaxReplayGuardSize
	// prekeysFixed: version, identity, signed (id, created, key), the
	// previous flag, last resort (id, key), ML-KEM (id, seed), next
	// one-time id, the count, the guard's length.
	prekeysFixed    = 1 + 32 + (4 + 8 + 32) + 1 + (4 + 32) + (4 + mlkem.SeedSize) + 4 + 2 + 4
	prekeysPrevious = 4 + 8 + 8 + 32
)

// Prekeys is a device's private prekey state: the private halves of what
// its bundle publishes, the previous signed prekey for its grace period,
// and the replay guard. It is a value the shell stores
// (MarshalBinary) after every change: Respond consumes one-time prekeys.
// Its methods are not safe for concurrent use.
type Prekeys struct {
	identity   *ecdh.PrivateKey
	signed     signedPrivate
	previous   *signedPrivate // nil before the first rotation
	lastResort idPrivate
	kemID      uint32
	kemSeed    [mlkem.SeedSize]byte
	kem        *mlkem.DecapsulationKey1024 // from kemSeed
	oneTime    map[uint32]*ecdh.PrivateKey
	nextID     uint32 // the next one-time prekey's id
	seen       ReplayGuard
}

type signedPrivate struct {
	id      uint32
	created int64 // Unix seconds
	retired int64 // Unix seconds, when a rotation replaced it (previous only)
	key     *ecdh.PrivateKey
}

type idPrivate struct {
	id  uint32
	key *ecdh.PrivateKey
}

// prekeyFrom reads a private key's 32 bytes from rand.
func prekeyFrom(rand io.Reader) (*ecdh.PrivateKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("ratchet: reading randomness: %w", err)
	}
	return ecdh.X25519().NewPrivateKey(b[:])
}

// NewPrekeys makes a device's prekey state from rand: an identity key, a
// signed prekey (id 1) created at now (Unix seconds), a last-resort prekey
// (id 1), an ML-KEM-1024 key (id 1), and no one-time prekey (Replenish).
// It reads, in order, 32 bytes for the identity key, 32 for the signed
// prekey, 32 for the last-resort prekey and 64 for the ML-KEM seed.
func NewPrekeys(rand io.Reader, now int64) (*Prekeys, error) {
	k := &Prekeys{kemID: 1, nextID: 1, oneTime: map[uint32]*ecdh.PrivateKey{}}
	var err error
	if k.identity, err = prekeyFrom(rand); err != nil {
		return nil, err
	}
	k.signed = signedPrivate{id: 1, created: now}
	if k.signed.key, err = prekeyFrom(rand); err != nil {
		return nil, err
	}
	k.lastResort.id = 1
	if k.lastResort.key, err = prekeyFrom(rand); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rand, k.kemSeed[:]); err != nil {
		return nil, fmt.Errorf("ratchet: reading randomness: %w", err)
	}
	if k.kem, err = mlkem.NewDecapsulationKey1024(k.kemSeed[:]); err != nil {
		return nil, err
	}
	return k, nil
}

// IdentityPublic returns the device's identity X25519 public key.
func (k *Prekeys) IdentityPublic() [32]byte { return [32]byte(k.identity.PublicKey().Bytes()) }

// OneTimeCount returns how many one-time prekeys are left.
func (k *Prekeys) OneTimeCount() int { return len(k.oneTime) }

// Replenish adds one-time prekeys read from rand (32 bytes each), with the
// next ids, until there are target (at most MaxOneTimePrekeys). It returns
// how many it added; on error k is unchanged.
func (k *Prekeys) Replenish(rand io.Reader, target int) (int, error) {
	if target < 0 || target > MaxOneTimePrekeys {
		return 0, fmt.Errorf("ratchet: %d one-time prekeys, want 0 to %d", target, MaxOneTimePrekeys)
	}
	var fresh []*ecdh.PrivateKey
	for range target - len(k.oneTime) {
		key, err := prekeyFrom(rand)
		if err != nil {
			return 0, err
		}
		fresh = append(fresh, key)
	}
	for _, key := range fresh {
		for k.nextID == 0 || k.oneTime[k.nextID] != nil { // after 2^32 ids
			k.nextID++
		}
		k.oneTime[k.nextID] = key
		k.nextID++
	}
	return len(fresh), nil
}

// RotationDue reports whether the signed prekey is due for rotation at
// now (Unix seconds): RotationPeriod or more after it was created. A clock
// gone back (now before its creation) is not a reason to rotate.
func (k *Prekeys) RotationDue(now int64) bool {
	return now-k.signed.created >= RotationPeriod
}

// Rotate makes a new signed prekey (the next id, created at now) from 32
// bytes of rand; the current one becomes the previous, retired at now,
// and answers for GracePeriod more; the one before is dropped, with its
// replay set. On error k is unchanged.
func (k *Prekeys) Rotate(rand io.Reader, now int64) error {
	key, err := prekeyFrom(rand)
	if err != nil {
		return err
	}
	prev := k.signed
	prev.retired = now
	k.previous = &prev
	id := prev.id + 1
	if id == 0 {
		id = 1
	}
	k.signed = signedPrivate{id: id, created: now, key: key}
	k.seen.Keep(k.signed.id, prev.id)
	return nil
}

// signedByID returns the signed prekey with id that answers at now: the
// current one, or the previous one within its grace period.
func (k *Prekeys) signedByID(id uint32, now int64) *signedPrivate {
	switch {
	case id == k.signed.id:
		return &k.signed
	case k.previous != nil && id == k.previous.id && now-k.previous.retired < GracePeriod:
		return k.previous
	}
	return nil
}

// Bundle returns the public bundle of k with sequence seq, signed by
// signer, the device's Ed25519 key.
func (k *Prekeys) Bundle(signer ed25519.PrivateKey, seq uint64) (*Bundle, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ratchet: an Ed25519 private key has %d bytes, not %d", ed25519.PrivateKeySize, len(signer))
	}
	b := &Bundle{
		Sequence:   seq,
		SigningKey: [32]byte(signer.Public().(ed25519.PublicKey)),
		Identity:   k.IdentityPublic(),
		Signed: SignedPrekey{
			ID: k.signed.id, Created: k.signed.created,
			Key: [32]byte(k.signed.key.PublicKey().Bytes()),
		},
		LastResort: LastResortPrekey{ID: k.lastResort.id, Key: [32]byte(k.lastResort.key.PublicKey().Bytes())},
		KEM:        &KEMPrekey{ID: k.kemID, Key: [KEMKeySize]byte(k.kem.EncapsulationKey().Bytes())},
	}
	for _, id := range slices.Sorted(maps.Keys(k.oneTime)) {
		b.OneTime = append(b.OneTime, OneTimePrekey{ID: id, Key: [32]byte(k.oneTime[id].PublicKey().Bytes())})
	}
	b.sign(signer)
	return b, nil
}

// MarshalBinary encodes k (doc.go); it never fails.
func (k *Prekeys) MarshalBinary() ([]byte, error) {
	guard, _ := k.seen.MarshalBinary()
	out := make([]byte, 0, prekeysFixed+prekeysPrevious+36*len(k.oneTime)+len(guard))
	out = append(out, prekeysVersion)
	out = append(out, k.identity.Bytes()...)
	out = binary.BigEndian.AppendUint32(out, k.signed.id)
	out = binary.BigEndian.AppendUint64(out, uint64(k.signed.created))
	out = append(out, k.signed.key.Bytes()...)
	if k.previous == nil {
		out = append(out, 0)
	} else {
		out = append(out, 1)
		out = binary.BigEndian.AppendUint32(out, k.previous.id)
		out = binary.BigEndian.AppendUint64(out, uint64(k.previous.created))
		out = binary.BigEndian.AppendUint64(out, uint64(k.previous.retired))
		out = append(out, k.previous.key.Bytes()...)
	}
	out = binary.BigEndian.AppendUint32(out, k.lastResort.id)
	out = append(out, k.lastResort.key.Bytes()...)
	out = binary.BigEndian.AppendUint32(out, k.kemID)
	out = append(out, k.kemSeed[:]...)
	out = binary.BigEndian.AppendUint32(out, k.nextID)
	out = binary.BigEndian.AppendUint16(out, uint16(len(k.oneTime)))
	for _, id := range slices.Sorted(maps.Keys(k.oneTime)) {
		out = binary.BigEndian.AppendUint32(out, id)
		out = append(out, k.oneTime[id].Bytes()...)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(guard)))
	return append(out, guard...), nil
}

// UnmarshalBinary decodes what MarshalBinary made into k, replacing its
// contents; on error (wrapping ErrCorruptPrekeys, and ErrCorruptReplayGuard
// too if the guard is what is corrupt) k is unchanged.
func (k *Prekeys) UnmarshalBinary(data []byte) error {
	if len(data) < prekeysFixed || len(data) > maxPrekeysSize {
		return fmt.Errorf("%d bytes: %w", len(data), ErrCorruptPrekeys)
	}
	d := hsDecoder{b: data}
	if v := d.byte(); v != prekeysVersion {
		return fmt.Errorf("version %d: %w", v, ErrCorruptPrekeys)
	}
	n := Prekeys{oneTime: map[uint32]*ecdh.PrivateKey{}}
	x := func() *ecdh.PrivateKey {
		key, _ := ecdh.X25519().NewPrivateKey(d.take(32)) // any 32 bytes are a key
		return key
	}
	n.identity = x()
	n.signed = signedPrivate{id: d.uint32(), created: int64(d.uint64())}
	n.signed.key = x()
	switch d.byte() {
	case 0:
	case 1:
		n.previous = &signedPrivate{id: d.uint32(), created: int64(d.uint64()), retired: int64(d.uint64())}
		n.previous.key = x()
		if n.previous.id == n.signed.id {
			return fmt.Errorf("previous signed prekey id is the current one: %w", ErrCorruptPrekeys)
		}
	default:
		return fmt.Errorf("previous flag: %w", ErrCorruptPrekeys)
	}
	n.lastResort = idPrivate{id: d.uint32()}
	n.lastResort.key = x()
	n.kemID = d.uint32()
	d.copy(n.kemSeed[:])
	n.nextID = d.uint32()
	count := int(d.uint16())
	if d.bad || count > MaxOneTimePrekeys || len(d.b) < 36*count+4 {
		return fmt.Errorf("one-time prekeys: %w", ErrCorruptPrekeys)
	}
	last := uint32(0)
	for i := range count {
		id := d.uint32()
		if i > 0 && id <= last {
			return fmt.Errorf("one-time prekey ids not ascending: %w", ErrCorruptPrekeys)
		}
		last = id
		n.oneTime[id] = x()
	}
	if int(d.uint32()) != len(d.b) {
		return fmt.Errorf("replay guard length: %w", ErrCorruptPrekeys)
	}
	if err := n.seen.UnmarshalBinary(d.b); err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptPrekeys, err)
	}
	var err error
	if n.kem, err = mlkem.NewDecapsulationKey1024(n.kemSeed[:]); err != nil {
		return fmt.Errorf("ML-KEM seed: %w", ErrCorruptPrekeys)
	}
	*k = n
	return nil
}

// clone returns a copy of k that shares nothing k's methods change.
func (k *Prekeys) clone() *Prekeys {
	c := *k
	if k.previous != nil {
		prev := *k.previous
		c.previous = &prev
	}
	c.oneTime = maps.Clone(k.oneTime)
	c.seen = k.seen.clone()
	return &c
}
