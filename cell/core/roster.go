package core

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Role is what a member does for its cell. A member may have several.
type Role uint8

// The roles. Admin holds the cell key and signs rosters; the others say
// which services a member offers to the rest of its cell.
const (
	RoleAdmin Role = 1 << iota
	RoleChain
	RoleStore
	RoleRelay
	RoleMailbox
	AllRoles = RoleAdmin | RoleChain | RoleStore | RoleRelay | RoleMailbox
)

// roleNames names each role, in the order String lists them.
var roleNames = []string{"admin", "chain", "store", "relay", "mailbox"}

// String lists the roles as "admin,chain".
func (r Role) String() string {
	var out []string
	for i, name := range roleNames {
		if r&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return strings.Join(out, ",")
}

// ParseRoles reads a comma-separated list of role names.
func ParseRoles(s string) (Role, error) {
	var r Role
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		i := slices.Index(roleNames, f)
		if i < 0 {
			return 0, fmt.Errorf("cell: unknown role %q (roles: %s)", f, strings.Join(roleNames, ", "))
		}
		r |= 1 << i
	}
	return r, nil
}

// Limits of a roster, checked by the decoder and by Sign.
const (
	MaxMembers   = 1024
	MaxFormer    = 4096
	MaxLast      = 8 // CIDs of a former member's last entries (more than one: a fork)
	maxCIDLen    = 128
	MaxNameLen   = 64
	MaxRosterLen = 1 << 20
	maxGrantLen  = 256
	maxHistory   = 64 << 10
	BoxKeyLen    = 32
)

// Member is one node on the roster.
type Member struct {
	Peer  peer.ID
	Name  string
	Roles Role
	Added time.Time // to the second
	// BoxKey is the member's X25519 public key: epoch secrets are sealed
	// to it (HPKE), so that only this member can open its grant.
	BoxKey [BoxKeyLen]byte
	// Grant is the current epoch's secret sealed to BoxKey.
	Grant []byte
}

// Former is a node removed from the cell. It may have written chain
// entries in the key epochs before Until, up to its cut-off; it can read
// nothing from Until on.
type Former struct {
	Peer  peer.ID
	Until uint64 // the first key epoch the node was excluded from
	Cutoff
}

// Cutoff is where a removed member's chain entries end: Seq is the highest
// sequence number of its that the cell accepts, and Last the CIDs of its
// entries with that number (one, or several if it forked), sorted by bytes.
// Seq 0 (and no Last): the cell accepts none of its entries. The chain
// refuses every entry of the member past the cut-off, whatever its epoch.
type Cutoff struct {
	Seq  uint64
	Last []cid.Cid
}

// Roster is the signed list of a cell's members. The cell key signs it;
// versions only grow. Each version names the key epoch in force and carries
// that epoch's secret sealed to every member, and History: every earlier
// epoch's secret, encrypted under the current one, so that a member holding
// the current secret can read everything the cell wrote before. Former
// lists the nodes removed, with the epoch each was removed in, so that what
// they wrote before stays attributable (see CanAuthor).
type Roster struct {
	Cell    ed25519.PublicKey // the cell key; it identifies the cell
	Name    string            // the cell's name, for people
	Version uint64
	Epoch   uint64
	Issued  time.Time // to the second
	Members []Member  // sorted by peer ID, unique
	Former  []Former  // sorted by peer ID, unique, none of them in Members
	History []byte
	Sig     []byte // Ed25519 by Cell over the encoding of everything above
}

// Errors of roster checks.
var (
	ErrBadRoster       = errors.New("cell: malformed roster")
	ErrBadSignature    = errors.New("cell: roster signature does not verify")
	ErrOtherCell       = errors.New("cell: roster of another cell")
	ErrStaleRoster     = errors.New("cell: roster is not newer than the one held")
	ErrNotMember       = errors.New("cell: not a member of the cell")
	ErrNotAdmin        = errors.New("cell: this node does not hold the cell key")
	ErrNoCell          = errors.New("cell: this node is in no cell (make one with `exopeer cell create NAME` or join one with `exopeer cell join CODE`)")
	ErrAlreadyInCell   = errors.New("cell: this node is already in a cell")
	errMemberNotSorted = errors.New("members not sorted by peer ID or not unique")
	errFormerNotSorted = errors.New("former members not sorted by peer ID or not unique")
)

// ID is a short, stable name of the cell: the first 8 bytes of SHA-256 of
// the cell key, in hex. It is shown to people and used as the gossip tag;
// it never goes to the DHT.
func (r *Roster) ID() string { return fmt.Sprintf("%x", r.Tag()) }

// Tag is the cell's 8-byte tag.
func (r *Roster) Tag() [8]byte { return CellTag(r.Cell) }

// CellTag is the 8-byte tag of a cell key.
func CellTag(cell ed25519.PublicKey) [8]byte {
	h := sha256.Sum256(append([]byte("exopeer cell tag\x00"), cell...))
	return [8]byte(h[:8])
}

// Member returns the entry of id, if on the roster.
func (r *Roster) Member(id peer.ID) (Member, bool) {
	i, ok := slices.BinarySearchFunc(r.Members, id, func(m Member, id peer.ID) int {
		return strings.Compare(string(m.Peer), string(id))
	})
	if !ok {
		return Member{}, false
	}
	return r.Members[i], true
}

// Has reports whether id is on the roster.
func (r *Roster) Has(id peer.ID) bool {
	_, ok := r.Member(id)
	return ok
}

// FormerOf returns the Former entry of id, if it was removed and is not a
// member again.
func (r *Roster) FormerOf(id peer.ID) (Former, bool) {
	i, ok := r.formerIndex(id)
	if !ok {
		return Former{}, false
	}
	return r.Former[i], true
}

// formerIndex finds id in Former, or where it would go.
func (r *Roster) formerIndex(id peer.ID) (int, bool) {
	return slices.BinarySearchFunc(r.Former, id, func(f Former, id peer.ID) int {
		return strings.Compare(string(f.Peer), string(id))
	})
}

// CanAuthor reports whether id may have written something in key epoch
// epoch: true for a current member (any role, any epoch), and for a former
// member in the epochs before its Until; false for every other node. The
// chain uses it to decide whether an entry's author may write in the epoch
// the entry names. It judges by this roster only: a newer roster may add
// or remove members.
func (r *Roster) CanAuthor(id peer.ID, epoch uint64) bool {
	if r.Has(id) {
		return true
	}
	f, ok := r.FormerOf(id)
	return ok && epoch < f.Until
}

// Cutoff returns the cut-off of id, if it is a former member: the chain
// accepts none of its entries past it (chain.Roster).
func (r *Roster) Cutoff(id peer.ID) (seq uint64, last []cid.Cid, ok bool) {
	f, ok := r.FormerOf(id)
	if !ok {
		return 0, nil, false
	}
	return f.Seq, f.Last, true
}

const rosterMagic = "EXR2"

// sigContext separates roster signatures from every other Ed25519
// signature made with the cell key.
const sigContext = "exopeer roster v1\x00"

// Encode returns the roster's wire form: the signed body, then the
// signature. See doc.go for the layout.
func (r *Roster) Encode() []byte {
	b := r.body()
	b = binary.AppendUvarint(b, uint64(len(r.Sig)))
	return append(b, r.Sig...)
}

// body encodes everything the signature covers.
func (r *Roster) body() []byte {
	b := []byte(rosterMagic)
	b = appendBytes(b, r.Cell)
	b = appendBytes(b, []byte(r.Name))
	b = binary.AppendUvarint(b, r.Version)
	b = binary.AppendUvarint(b, r.Epoch)
	b = binary.AppendVarint(b, r.Issued.Unix())
	b = binary.AppendUvarint(b, uint64(len(r.Members)))
	for _, m := range r.Members {
		b = appendBytes(b, []byte(m.Peer))
		b = appendBytes(b, []byte(m.Name))
		b = append(b, byte(m.Roles))
		b = binary.AppendVarint(b, m.Added.Unix())
		b = append(b, m.BoxKey[:]...)
		b = appendBytes(b, m.Grant)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Former)))
	for _, f := range r.Former {
		b = appendBytes(b, []byte(f.Peer))
		b = binary.AppendUvarint(b, f.Until)
		b = binary.AppendUvarint(b, f.Seq)
		b = binary.AppendUvarint(b, uint64(len(f.Last)))
		for _, c := range f.Last {
			b = appendBytes(b, c.Bytes())
		}
	}
	return appendBytes(b, r.History)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Sign checks the roster and signs it with the cell's private key.
func (r *Roster) Sign(key ed25519.PrivateKey) error {
	if !bytes.Equal(key.Public().(ed25519.PublicKey), r.Cell) {
		return fmt.Errorf("%w: signing key is not the cell key", ErrNotAdmin)
	}
	if err := r.check(); err != nil {
		return err
	}
	r.Sig = ed25519.Sign(key, append([]byte(sigContext), r.body()...))
	return nil
}

// Verify checks the roster's form and its signature by its own cell key.
// Whether that is the expected cell is the caller's check.
func (r *Roster) Verify() error {
	if err := r.check(); err != nil {
		return err
	}
	if len(r.Sig) != ed25519.SignatureSize || !ed25519.Verify(r.Cell, append([]byte(sigContext), r.body()...), r.Sig) {
		return ErrBadSignature
	}
	return nil
}

// check validates everything but the signature.
func (r *Roster) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadRoster, fmt.Sprintf(format, a...))
	}
	switch {
	case len(r.Cell) != ed25519.PublicKeySize:
		return bad("cell key is %d bytes", len(r.Cell))
	case !ValidName(r.Name):
		return bad("cell name %q is empty, too long or not printable UTF-8", r.Name)
	case r.Version == 0 || r.Epoch == 0:
		return bad("version and epoch start at 1")
	case len(r.Members) == 0:
		return bad("no members")
	case len(r.Members) > MaxMembers:
		return bad("%d members, more than %d", len(r.Members), MaxMembers)
	case len(r.Former) > MaxFormer:
		return bad("%d former members, more than %d", len(r.Former), MaxFormer)
	case len(r.History) > maxHistory:
		return bad("history of %d bytes", len(r.History))
	}
	admins := 0
	for i, m := range r.Members {
		if i > 0 && r.Members[i-1].Peer >= m.Peer {
			return bad("%v", errMemberNotSorted)
		}
		if _, err := peer.IDFromBytes([]byte(m.Peer)); err != nil {
			return bad("member %d: peer ID: %v", i, err)
		}
		if !ValidName(m.Name) {
			return bad("member %s: name %q is empty, too long or not printable UTF-8", m.Peer, m.Name)
		}
		if m.Roles&^AllRoles != 0 {
			return bad("member %s: unknown roles %#x", m.Peer, uint8(m.Roles))
		}
		if len(m.Grant) == 0 || len(m.Grant) > maxGrantLen {
			return bad("member %s: grant of %d bytes", m.Peer, len(m.Grant))
		}
		if m.Roles&RoleAdmin != 0 {
			admins++
		}
	}
	if admins == 0 {
		return bad("no admin")
	}
	for i, f := range r.Former {
		if i > 0 && r.Former[i-1].Peer >= f.Peer {
			return bad("%v", errFormerNotSorted)
		}
		if _, err := peer.IDFromBytes([]byte(f.Peer)); err != nil {
			return bad("former member %d: peer ID: %v", i, err)
		}
		if r.Has(f.Peer) {
			return bad("%s is both a member and a former member", f.Peer)
		}
		if f.Until == 0 || f.Until > r.Epoch {
			return bad("former member %s: until epoch %d, outside 1 to %d", f.Peer, f.Until, r.Epoch)
		}
		if err := f.Cutoff.check(); err != nil {
			return bad("former member %s: %v", f.Peer, err)
		}
	}
	return nil
}

// check validates a cut-off: Last is empty for Seq 0, else holds 1 to
// MaxLast CIDs sorted by bytes, unique.
func (c Cutoff) check() error {
	switch {
	case c.Seq == 0 && len(c.Last) > 0:
		return errors.New("cut-off at sequence number 0 with last entries")
	case c.Seq > 0 && len(c.Last) == 0:
		return fmt.Errorf("cut-off at sequence number %d without its entries", c.Seq)
	case len(c.Last) > MaxLast:
		return fmt.Errorf("%d last entries, more than %d", len(c.Last), MaxLast)
	}
	for i, l := range c.Last {
		if !l.Defined() {
			return errors.New("undefined last entry")
		}
		if i > 0 && bytes.Compare(c.Last[i-1].Bytes(), l.Bytes()) >= 0 {
			return errors.New("last entries not sorted by bytes or not unique")
		}
	}
	return nil
}

// ValidName reports whether s may name a member or a cell: 1 to
// MaxNameLen bytes of UTF-8 holding no control character (C0, DEL, C1),
// no bidi control (embeddings, overrides, isolates, marks) and no line or
// paragraph separator, so that a name printed in a list cannot change how
// the rest of the line, or the lines after it, look.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameLen || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) ||
			unicode.In(c, unicode.Zl, unicode.Zp) {
			return false
		}
	}
	return true
}

// DecodeRoster parses a roster's wire form and checks its form and its
// signature. Any error wraps ErrBadRoster or ErrBadSignature.
func DecodeRoster(b []byte) (*Roster, error) {
	if len(b) > MaxRosterLen {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRoster, len(b), MaxRosterLen)
	}
	d := decoder{b: b}
	switch string(d.raw(len(rosterMagic))) {
	case rosterMagic:
	case "EXR1":
		return nil, fmt.Errorf("%w: a roster in the form before cut-offs (EXR1), which this version no longer reads: its former members carry no cut-off", ErrBadRoster)
	default:
		return nil, fmt.Errorf("%w: not a roster (bad magic)", ErrBadRoster)
	}
	r := &Roster{}
	r.Cell = ed25519.PublicKey(d.bytes(ed25519.PublicKeySize))
	r.Name = string(d.bytes(MaxNameLen))
	r.Version = d.uvarint()
	r.Epoch = d.uvarint()
	r.Issued = time.Unix(d.varint(), 0)
	n := d.uvarint()
	if n > MaxMembers {
		return nil, fmt.Errorf("%w: %d members, more than %d", ErrBadRoster, n, MaxMembers)
	}
	for range n {
		if d.err != nil {
			break
		}
		var m Member
		m.Peer = peer.ID(d.bytes(128))
		m.Name = string(d.bytes(MaxNameLen))
		if rb := d.raw(1); len(rb) == 1 {
			m.Roles = Role(rb[0])
		}
		m.Added = time.Unix(d.varint(), 0)
		copy(m.BoxKey[:], d.raw(BoxKeyLen))
		m.Grant = d.bytes(maxGrantLen)
		r.Members = append(r.Members, m)
	}
	n = d.uvarint()
	if n > MaxFormer {
		return nil, fmt.Errorf("%w: %d former members, more than %d", ErrBadRoster, n, MaxFormer)
	}
	for range n {
		if d.err != nil {
			break
		}
		var f Former
		f.Peer = peer.ID(d.bytes(128))
		f.Until = d.uvarint()
		f.Seq = d.uvarint()
		if k := d.uvarint(); k > MaxLast {
			d.fail("%d last entries, more than %d", k, MaxLast)
		} else {
			for range k {
				b := d.bytes(maxCIDLen)
				if d.err != nil {
					break
				}
				c, err := cid.Cast(b)
				if err != nil {
					d.fail("last entry: %v", err)
					break
				}
				f.Last = append(f.Last, c)
			}
		}
		r.Former = append(r.Former, f)
	}
	r.History = d.bytes(maxHistory)
	bodyLen := d.off
	r.Sig = d.bytes(ed25519.SignatureSize)
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRoster, d.err)
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadRoster, len(b)-d.off)
	}
	if err := r.Verify(); err != nil {
		return nil, err
	}
	// The encoding is canonical: a roster re-encodes to the very bytes it
	// came from, so that equal versions are equal bytes.
	if !bytes.Equal(r.body(), b[:bodyLen]) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrBadRoster)
	}
	return r, nil
}

// decoder reads the roster encoding; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format+" at byte %d", append(a, d.off)...)
	}
}

func (d *decoder) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail("truncated")
		return nil
	}
	v := d.b[d.off : d.off+n]
	d.off += n
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// bytes reads a length-prefixed field of at most max bytes, as a copy.
func (d *decoder) bytes(max int) []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(max) {
		d.fail("field of %d bytes, more than %d", n, max)
		return nil
	}
	return bytes.Clone(d.raw(int(n)))
}
