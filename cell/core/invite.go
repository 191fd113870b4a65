package core

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxInviteAttempts bounds Config.MaxInviteAttempts, and so what a stored
// invite may hold: every peer and every hello it remembers stands for one
// failed attempt.
const MaxInviteAttempts = 1000

// Invite is an open invitation on an admin. Its methods are pure (the
// clock comes in as now); it is not safe for concurrent use (the service
// holds its mutex).
//
// Attempts are booked as failures when the admin sends its CPace message,
// and taken back when the peer proves the code. A peer's bookings are
// bounded by the per-peer limit, everyone's by the invite's: byPeer and
// seen never hold more entries than failures, which never exceeds the
// invite's limit.
type Invite struct {
	Code     Code
	Roles    Role      // what it admits the joiner as
	Expires  time.Time // it admits no one after
	Failures int       // failed attempts, all peers
	Joiner   peer.ID   // once admitted: the only peer that may complete it (again)

	byPeer map[peer.ID]int             // failed attempts per remote peer
	seen   map[[pointLen]byte]struct{} // the CPace messages of the failed attempts
}

func NewInvite(code Code, roles Role, expires time.Time) *Invite {
	return &Invite{
		Code: code, Roles: roles, Expires: expires,
		byPeer: make(map[peer.ID]int), seen: make(map[[pointLen]byte]struct{}),
	}
}

// check says whether from may start a run now: StatusOK, or the status to
// answer. perPeer and total are the limits of failed attempts.
func (inv *Invite) check(from peer.ID, now time.Time, perPeer, total int) byte {
	switch {
	case now.After(inv.Expires):
		return StatusExpired
	case inv.Joiner != "" && inv.Joiner != from:
		return StatusNoInvite // used by another device
	case inv.Failures >= total, inv.byPeer[from] >= perPeer:
		return StatusExhausted
	}
	return StatusOK
}

// Dead reports whether the invite can admit no one any more.
func (inv *Invite) Dead(now time.Time, total int) bool {
	return now.After(inv.Expires) || inv.Failures >= total
}

// book counts a run in which the admin answers y, the peer's CPace
// message, as a failed attempt of from until it proves the code (settle).
// A message booked already is a replay: StatusBadMessage, and nothing is
// counted, because a replayed message tests no new guess.
func (inv *Invite) book(from peer.ID, y [pointLen]byte, now time.Time, perPeer, total int) byte {
	if st := inv.check(from, now, perPeer, total); st != StatusOK {
		return st
	}
	if _, replay := inv.seen[y]; replay {
		return StatusBadMessage
	}
	inv.Failures++
	inv.byPeer[from]++
	inv.seen[y] = struct{}{}
	return StatusOK
}

// settle takes back the failure booked for the run of from with message y:
// the peer proved the code.
func (inv *Invite) settle(from peer.ID, y [pointLen]byte) {
	if _, ok := inv.seen[y]; !ok {
		return
	}
	delete(inv.seen, y)
	inv.Failures--
	if inv.byPeer[from]--; inv.byPeer[from] <= 0 {
		delete(inv.byPeer, from)
	}
}

// An invite as the admin stores it, under /cell/invites/NNNN (integers are
// uvarints unless said; "bytes" is a uvarint length then the bytes):
//
//	"EXI1" | nameplate (2, big-endian) | 3 words (2 each, big-endian) |
//	1 byte roles | varint expires (Unix ns, > 0) | failures |
//	bytes joiner peer ID (empty: none) |
//	peer count | per peer, sorted by ID: bytes peer ID | failures |
//	message count | per message, sorted: 32 bytes
//
// The peers' failures add up to failures, which is also the number of
// messages. The decoder accepts only this canonical form.
const inviteMagic = "EXI1"

func (inv *Invite) Encode() []byte {
	b := []byte(inviteMagic)
	b = binary.BigEndian.AppendUint16(b, inv.Code.Nameplate)
	for _, w := range inv.Code.Words {
		b = binary.BigEndian.AppendUint16(b, w)
	}
	b = append(b, byte(inv.Roles))
	b = binary.AppendVarint(b, inv.Expires.UnixNano())
	b = binary.AppendUvarint(b, uint64(inv.Failures))
	b = appendBytes(b, []byte(inv.Joiner))
	ids := slices.Sorted(maps.Keys(inv.byPeer))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendBytes(b, []byte(id))
		b = binary.AppendUvarint(b, uint64(inv.byPeer[id]))
	}
	ys := slices.SortedFunc(maps.Keys(inv.seen), func(a, b [pointLen]byte) int { return bytes.Compare(a[:], b[:]) })
	b = binary.AppendUvarint(b, uint64(len(ys)))
	for _, y := range ys {
		b = append(b, y[:]...)
	}
	return b
}

// DecodeInvite decodes a stored invite.
func DecodeInvite(b []byte) (*Invite, error) {
	d := &decoder{b: b}
	if string(d.raw(len(inviteMagic))) != inviteMagic {
		d.fail("not an invite")
	}
	var c Code
	c.Nameplate = d.uint16()
	for i := range c.Words {
		c.Words[i] = d.uint16()
	}
	if d.err == nil && !c.Valid() {
		d.fail("invalid code")
	}
	var roles Role
	if rb := d.raw(1); len(rb) == 1 {
		roles = Role(rb[0])
	}
	if d.err == nil && (roles == 0 || roles&^AllRoles != 0 || roles&RoleAdmin != 0) {
		d.fail("roles %#x", uint8(roles))
	}
	ns := d.varint()
	if d.err == nil && ns <= 0 {
		// An invite is made after 1970; an expiry past 2262 (Unix
		// nanoseconds out of int64) would have wrapped to before it.
		d.fail("expiry %d ns: not after 1970, out of range", ns)
	}
	expires := time.Unix(0, ns)
	failures := d.count(MaxInviteAttempts)
	inv := NewInvite(c, roles, expires)
	inv.Failures = int(failures)
	if j := d.bytes(maxPeerIDLen); len(j) > 0 {
		inv.Joiner = d.peerID(j)
	}
	var sum uint64
	for i, n := uint64(0), d.count(failures); i < n && d.err == nil; i++ {
		id := d.peerID(d.bytes(maxPeerIDLen))
		k := d.count(failures)
		if d.err == nil && k == 0 {
			d.fail("peer with no failure")
		}
		inv.byPeer[id], sum = int(k), sum+k
	}
	for i, n := uint64(0), d.count(failures); i < n && d.err == nil; i++ {
		if y := d.raw(pointLen); len(y) == pointLen {
			inv.seen[[pointLen]byte(y)] = struct{}{}
		}
	}
	if d.err == nil && (sum != failures || uint64(len(inv.seen)) != failures) {
		d.fail("%d failures, %d by peer, %d messages", failures, sum, len(inv.seen))
	}
	// Only the canonical form: sorted, no duplicates, no trailing bytes.
	if d.err == nil && !bytes.Equal(inv.Encode(), b) {
		d.fail("not in canonical form")
	}
	if d.err != nil {
		return nil, d.err
	}
	return inv, nil
}

// maxPeerIDLen bounds a peer ID in the encodings of this package.
const maxPeerIDLen = 128

func (d *decoder) uint16() uint16 {
	if b := d.raw(2); len(b) == 2 {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// count reads a count of at most limit.
func (d *decoder) count(limit uint64) uint64 {
	n := d.uvarint()
	if d.err == nil && n > limit {
		d.fail("count %d over %d", n, limit)
		return 0
	}
	return n
}

// peerID checks that b is a peer ID.
func (d *decoder) peerID(b []byte) peer.ID {
	if d.err != nil {
		return ""
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		d.fail("peer ID: %v", err)
		return ""
	}
	return id
}
