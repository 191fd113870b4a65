package discovery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The known table: the last known addresses of the peers the node cares
// about (Config.Interesting: its cell's members, its contacts' devices),
// kept in the node's datastore so that a restarted node, on any network,
// finds them again with no bootstrap list (see the package doc).
const (
	// MaxKnown bounds the entries of the table; past it the entry seen
	// longest ago is evicted.
	MaxKnown = 512
	// MaxKnownPerContact bounds the entries of the devices of one contact
	// (Config.Owner); past it that contact's device seen longest ago is
	// evicted, so that one contact's many devices cannot push the others'
	// entries out of the table.
	MaxKnownPerContact = 16
	// MaxKnownAddrs bounds the plain addresses kept for one peer.
	MaxKnownAddrs = 16
	// MaxKnownAddrLen bounds one address, in bytes.
	MaxKnownAddrLen = 256
	// MaxKnownRecord bounds a signed peer record, in bytes; a larger
	// one is not kept (the plain addresses are, instead).
	MaxKnownRecord = 4096
	// KnownDebounce is how long after a peer's entry was written an
	// identify of the same peer, with the same addresses, is not written
	// again.
	KnownDebounce = 10 * time.Minute
	// KnownMinWrite is how long after a peer's entry was written a change
	// of its addresses is not written (it is kept in memory, and written
	// when KnownMinWrite has passed): a peer whose addresses flap costs at
	// most a write a minute.
	KnownMinWrite = time.Minute
	// KnownMaxAge is how long after a peer was last seen its entry is
	// dropped.
	KnownMaxAge = 90 * 24 * time.Hour
	// KnownBootstrap bounds the known public peers offered to the DHT as
	// bootstrap peers (BootstrapPeers).
	KnownBootstrap = 8
)

// KnownPrefix is the datastore key under which the table lives: one key
// per peer, KnownPrefix/<peer ID>.
const KnownPrefix = "/discovery/known"

// knownVersion is the first byte of an encoded entry.
const knownVersion = 1

// ErrBadKnown is wrapped by every error of decodeKnown.
var ErrBadKnown = errors.New("discovery: bad known-peer entry")

// known is one entry of the table: what was last learnt of a peer.
type known struct {
	// Record is the peer's signed peer record (a marshalled envelope) as
	// identify gave it; nil if it gave none. When present, Addrs is empty:
	// the addresses are the record's, verified again on every load.
	Record []byte
	// Addrs are the peer's listen addresses, when there is no record.
	Addrs []ma.Multiaddr
	// Seen is when the peer was last identified.
	Seen time.Time
	// Public says the peer had a public address, not through a relay: a
	// candidate bootstrap peer for the DHT. Written for the record; on
	// load it is computed again from the addresses (rowOf).
	Public bool
}

// encodeKnown encodes e, version 1, integers big-endian:
//
//	offset  size  field
//	0       1     version, 0x01
//	1       8     last seen, int64 unix nanoseconds
//	9       1     flags: bit 0 public; the other bits are zero
//	10      2     r: length of the signed peer record, at most MaxKnownRecord; 0: none
//	12      r     the record (a marshalled libp2p envelope)
//	12+r    1     a: number of addresses, at most MaxKnownAddrs; 0 when r > 0
//	then a times: 2-byte length (1 to MaxKnownAddrLen), the multiaddr's bytes
//
// with nothing after. e must be within the bounds (newKnown makes it so).
func encodeKnown(e known) []byte {
	var b bytes.Buffer
	b.WriteByte(knownVersion)
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(e.Seen.UnixNano())))
	var flags byte
	if e.Public {
		flags |= 1
	}
	b.WriteByte(flags)
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(e.Record))))
	b.Write(e.Record)
	b.WriteByte(byte(len(e.Addrs)))
	for _, a := range e.Addrs {
		b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(a.Bytes()))))
		b.Write(a.Bytes())
	}
	return b.Bytes()
}

// decodeKnown decodes what encodeKnown wrote, strictly: every bound is
// checked, every address must parse, and nothing may follow. It does not
// verify the record (loadKnown does).
func decodeKnown(buf []byte) (known, error) {
	bad := func(format string, args ...any) (known, error) {
		return known{}, fmt.Errorf("discovery: known entry: "+format+": %w", append(args, ErrBadKnown)...)
	}
	if len(buf) < 12 {
		return bad("%d bytes, shorter than its header", len(buf))
	}
	if buf[0] != knownVersion {
		return bad("version %d", buf[0])
	}
	var e known
	e.Seen = time.Unix(0, int64(binary.BigEndian.Uint64(buf[1:9])))
	if buf[9]&^1 != 0 {
		return bad("unknown flags %#x", buf[9])
	}
	e.Public = buf[9]&1 != 0
	r := int(binary.BigEndian.Uint16(buf[10:12]))
	rest := buf[12:]
	if r > MaxKnownRecord {
		return bad("record of %d bytes, over %d", r, MaxKnownRecord)
	}
	if len(rest) < r+1 {
		return bad("truncated record")
	}
	if r > 0 {
		e.Record = bytes.Clone(rest[:r])
	}
	rest = rest[r:]
	n := int(rest[0])
	rest = rest[1:]
	switch {
	case n > MaxKnownAddrs:
		return bad("%d addresses, over %d", n, MaxKnownAddrs)
	case n > 0 && r > 0:
		return bad("both a record and plain addresses")
	}
	for i := range n {
		if len(rest) < 2 {
			return bad("address %d truncated", i)
		}
		l := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if l == 0 || l > MaxKnownAddrLen || len(rest) < l {
			return bad("address %d of %d bytes", i, l)
		}
		a, err := ma.NewMultiaddrBytes(rest[:l])
		if err != nil {
			return bad("address %d: %v", i, err)
		}
		e.Addrs = append(e.Addrs, a)
		rest = rest[l:]
	}
	if len(rest) > 0 {
		return bad("%d bytes after the addresses", len(rest))
	}
	return e, nil
}

// newKnown makes the entry for a peer identified at now, within the
// bounds: a record over MaxKnownRecord is not kept, and then the first
// MaxKnownAddrs plain addresses of at most MaxKnownAddrLen bytes are.
func newKnown(record []byte, addrs []ma.Multiaddr, public bool, now time.Time) known {
	e := known{Seen: now, Public: public}
	if len(record) > 0 && len(record) <= MaxKnownRecord {
		e.Record = record
		return e
	}
	for _, a := range addrs {
		if len(e.Addrs) == MaxKnownAddrs {
			break
		}
		if l := len(a.Bytes()); l > 0 && l <= MaxKnownAddrLen && !slices.ContainsFunc(e.Addrs, a.Equal) {
			e.Addrs = append(e.Addrs, a)
		}
	}
	return e
}

// knownRow is what the table holds in memory of one entry: enough to
// debounce, evict and choose bootstrap peers without reading the
// datastore.
type knownRow struct {
	seen    time.Time // last seen; never after the present (clamp)
	written time.Time // when the entry in the datastore was written
	public  bool
	addrs   []ma.Multiaddr // the record's or the plain ones
	sig     string         // the set of addresses: what a change is judged on
	// pending is the encoded entry of a change not yet written (at most
	// one a KnownMinWrite), nil when the datastore is current.
	pending []byte
	// owner is the contact the peer is a device of (Config.Owner), whose
	// entries are capped together (MaxKnownPerContact); "" for a member,
	// or not known yet (an entry loaded, until the peer is judged again).
	owner string
}

// rowOf returns the row of e, whose addresses are addrs (the record's,
// once verified, or e.Addrs), written at e.Seen. A change is judged on the
// set of addresses, in any order: a record signed again for the same
// addresses is no change. public is computed from addrs (anyPublic), the
// same rule on write and on load: the flag stored is not trusted.
func rowOf(e known, addrs []ma.Multiaddr) knownRow {
	bs := make([]string, 0, len(addrs))
	for _, a := range addrs {
		bs = append(bs, string(a.Bytes()))
	}
	slices.Sort(bs)
	bs = slices.Compact(bs)
	var sig []byte
	for _, b := range bs {
		sig = binary.BigEndian.AppendUint16(sig, uint16(len(b)))
		sig = append(sig, b...)
	}
	return knownRow{seen: e.Seen, written: e.Seen, public: anyPublic(addrs), addrs: addrs, sig: string(sig)}
}

// anyPublic reports whether addrs has a public address not through a
// relay.
func anyPublic(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if manet.IsPublicAddr(a) {
			if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err != nil {
				return true
			}
		}
	}
	return false
}

// knownTable is the pure core of the table: which entries to write, which
// to evict, which have expired, which bootstrap the DHT. Not safe for
// concurrent use.
type knownTable struct {
	rows map[peer.ID]knownRow
	// member says which peers are the cell's members, evicted last; nil:
	// none is.
	member func(peer.ID) bool
}

func newKnownTable() *knownTable { return &knownTable{rows: make(map[peer.ID]knownRow)} }

// clamp takes every entry last seen after now as seen now (a clock that
// was ahead, or set back since), so that it ages, expires and is evicted
// like the others.
func (t *knownTable) clamp(now time.Time) {
	for p, r := range t.rows {
		if r.seen.After(now) {
			r.seen = now
			t.rows[p] = r
		}
	}
}

// due reports whether row, just observed at its seen time, should be
// written now: the peer is new to the table, its entry was written in the
// future (the clock was set back since), its addresses or its being
// public changed (or a change is pending) and the entry was written
// KnownMinWrite ago or more, or it was written KnownDebounce ago or more.
func (t *knownTable) due(id peer.ID, row knownRow) bool {
	old, ok := t.rows[id]
	if !ok || old.written.After(row.seen) {
		return true
	}
	since := row.seen.Sub(old.written)
	if t.changed(id, row) {
		return since >= KnownMinWrite
	}
	return since >= KnownDebounce
}

// changed reports whether row differs from the entry written of id: in
// its addresses or its being public, or by a change still pending.
func (t *knownTable) changed(id peer.ID, row knownRow) bool {
	old, ok := t.rows[id]
	return !ok || old.sig != row.sig || old.public != row.public || old.pending != nil
}

// put books row for id and returns the peers evicted, never id itself:
// to keep row's owner within MaxKnownPerContact entries, that owner's
// device seen longest ago (ties: the lowest peer ID), members not counted;
// then to keep the table within MaxKnown, the one seen longest ago of
// those that are not the cell's members, or of the members when every
// entry is one.
func (t *knownTable) put(id peer.ID, row knownRow) (evicted []peer.ID) {
	t.rows[id] = row
	if row.owner != "" {
		for {
			var (
				oldest peer.ID
				n      int
			)
			for p, r := range t.rows {
				if r.owner != row.owner || (t.member != nil && t.member(p)) {
					continue
				}
				n++
				if p == id {
					continue
				}
				if o, ok := t.rows[oldest]; !ok || r.seen.Before(o.seen) || (r.seen.Equal(o.seen) && p < oldest) {
					oldest = p
				}
			}
			if n <= MaxKnownPerContact || oldest == "" {
				break
			}
			delete(t.rows, oldest)
			evicted = append(evicted, oldest)
		}
	}
	for len(t.rows) > MaxKnown {
		var (
			oldest       peer.ID
			oldestMember bool
		)
		for p, r := range t.rows {
			if p == id {
				continue
			}
			m := t.member != nil && t.member(p)
			if oldest == "" || (oldestMember && !m) {
				oldest, oldestMember = p, m
				continue
			}
			if m && !oldestMember {
				continue
			}
			if o := t.rows[oldest]; r.seen.Before(o.seen) || (r.seen.Equal(o.seen) && p < oldest) {
				oldest, oldestMember = p, m
			}
		}
		delete(t.rows, oldest)
		evicted = append(evicted, oldest)
	}
	return evicted
}

// pendingDue returns the peers whose pending change may be written at
// now (written KnownMinWrite ago or more, or in the future), sorted.
func (t *knownTable) pendingDue(now time.Time) []peer.ID {
	var out []peer.ID
	for p, r := range t.rows {
		if r.pending != nil && (now.Sub(r.written) >= KnownMinWrite || r.written.After(now)) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// expired removes and returns the peers last seen more than KnownMaxAge
// before now, sorted.
func (t *knownTable) expired(now time.Time) []peer.ID {
	t.clamp(now)
	var out []peer.ID
	for p, r := range t.rows {
		if knownExpired(r.seen, now) {
			out = append(out, p)
			delete(t.rows, p)
		}
	}
	slices.Sort(out)
	return out
}

func knownExpired(seen, now time.Time) bool { return now.Sub(seen) > KnownMaxAge }

// bootstrap returns up to n public peers of the table not expired at now,
// seen most recently first (ties: by peer ID).
func (t *knownTable) bootstrap(now time.Time, n int) []peer.AddrInfo {
	t.clamp(now)
	type cand struct {
		id  peer.ID
		row knownRow
	}
	var cs []cand
	for p, r := range t.rows {
		if r.public && len(r.addrs) > 0 && !knownExpired(r.seen, now) {
			cs = append(cs, cand{p, r})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if c := b.row.seen.Compare(a.row.seen); c != 0 {
			return c
		}
		return cmpString(string(a.id), string(b.id))
	})
	out := make([]peer.AddrInfo, 0, min(n, len(cs)))
	for _, c := range cs[:min(n, len(cs))] {
		out = append(out, peer.AddrInfo{ID: c.id, Addrs: slices.Clone(c.row.addrs)})
	}
	return out
}
