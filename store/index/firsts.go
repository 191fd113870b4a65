package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// firsts is what a trait's row keeps besides its winning write, as
// store.State's slot does, so that its Created is the earliest of its
// puts' since its latest delete whatever order they arrive in: the
// latest delete of the trait before the winner (when hasDel), and the
// puts after it (and after the entity's delete) that no other dominates,
// in chain order, their Created times increasing strictly.
type firsts struct {
	hasDel bool
	del    at
	puts   []firstPut
}

// firstPut is a put with a Created time.
type firstPut struct {
	at      at
	created time.Time
}

// add adds the put at a, created at c (not zero): nothing if a put
// dominates it (store.State's rule: one after it with a Created as
// early, or one of the same entry with an earlier Created, or as early
// and before it: no other entry sorts between two operations of one
// entry); else it drops the puts it dominates.
func (f *firsts) add(a at, c time.Time) {
	for _, p := range f.puts {
		if p.at.compare(a) == 0 || dominates(p.at, p.created, a, c) {
			return
		}
	}
	out := make([]firstPut, 0, len(f.puts)+1)
	for _, p := range f.puts {
		if dominates(a, c, p.at, p.created) {
			continue
		}
		out = append(out, p)
	}
	i, _ := slices.BinarySearchFunc(out, a, func(p firstPut, a at) int { return p.at.compare(a) })
	f.puts = slices.Insert(out, i, firstPut{at: a, created: c})
}

// dominates reports whether the put at a created at c makes the one at b
// created at d count for nothing in a trait's Created (add).
func dominates(a at, c time.Time, b at, d time.Time) bool {
	if a.clock == b.clock && bytes.Equal(a.key, b.key) { // one entry
		return c.Before(d) || c.Equal(d) && a.op < b.op
	}
	return a.compare(b) > 0 && !c.After(d)
}

// cut drops the puts before a, a delete's place.
func (f *firsts) cut(a at) {
	i, _ := slices.BinarySearchFunc(f.puts, a, func(p firstPut, a at) int { return p.at.compare(a) })
	f.puts = f.puts[i:]
}

// created is the trait's Created: the earliest put's, zero if none has one.
func (f *firsts) created() time.Time {
	if len(f.puts) == 0 {
		return time.Time{}
	}
	return f.puts[0].created
}

// encode writes f for the traits' firsts column: a byte 1 and the delete's
// place when hasDel (else 0), the number of puts, then each put's place
// and Created (timeKey). A place is its clock, its key's length and key,
// and its op, as uvarints.
func (f *firsts) encode() []byte {
	var b []byte
	if f.hasDel {
		b = appendPlace(append(b, 1), f.del)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(f.puts)))
	for _, p := range f.puts {
		b = appendPlace(b, p.at)
		b = append(b, timeKey(p.created)...)
	}
	return b
}

func appendPlace(b []byte, a at) []byte {
	b = binary.AppendUvarint(b, a.clock)
	b = binary.AppendUvarint(b, uint64(len(a.key)))
	b = append(b, a.key...)
	return binary.AppendUvarint(b, uint64(a.op))
}

// errFirsts is a firsts column that does not decode (a damaged index).
var errFirsts = errors.New("index: a trait's firsts do not decode")

// decodeFirsts reads encode's bytes; an empty column is no delete and no
// put. It never panics, and the places it returns do not share b.
func decodeFirsts(b []byte) (firsts, error) {
	var f firsts
	if len(b) == 0 {
		return f, nil
	}
	d := placeReader{b: b[1:]}
	switch b[0] {
	case 0:
	case 1:
		f.hasDel, f.del = true, d.place()
	default:
		return firsts{}, fmt.Errorf("%w: flag %d", errFirsts, b[0])
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) { // every put takes bytes
		d.err = fmt.Errorf("%w: %d puts in %d bytes", errFirsts, n, len(d.b))
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		a := d.place()
		if d.err != nil {
			break
		}
		if len(d.b) < 12 {
			d.err = fmt.Errorf("%w: a put's time is cut short", errFirsts)
			break
		}
		c, err := keyTime(d.b[:12])
		if err != nil {
			d.err = err
			break
		}
		d.b = d.b[12:]
		f.puts = append(f.puts, firstPut{at: a, created: c})
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes after the puts", errFirsts, len(d.b))
	}
	if d.err != nil {
		return firsts{}, d.err
	}
	return f, nil
}

type placeReader struct {
	b   []byte
	err error
}

func (d *placeReader) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: a bad varint", errFirsts)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *placeReader) place() at {
	var a at
	a.clock = d.uvarint()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: a key of %d bytes in %d", errFirsts, n, len(d.b))
	}
	if d.err != nil {
		return at{}
	}
	a.key, d.b = slices.Clone(d.b[:n]), d.b[n:]
	op := d.uvarint()
	if op > uint64(^uint32(0)) {
		d.err = fmt.Errorf("%w: op %d", errFirsts, op)
	}
	a.op = int(op)
	return a
}

// cutFirsts applies to r, a live row after a, a delete at a: of the
// trait (trait true: the latest before r's write if it is after the one
// r holds) or of its entity (whose tomb drops the puts before it). The
// puts before a no longer count for r's Created.
// typ is r's type, for a trait's delete (an entity's touches its types).
func (w *writer) cutFirsts(r row, a at, trait bool, typ string) error {
	fs, err := decodeFirsts(r.firsts)
	if err != nil {
		return err
	}
	if trait {
		if fs.hasDel && fs.del.compare(a) >= 0 {
			return nil // a later delete of the trait holds already
		}
		fs.hasDel, fs.del = true, a
	}
	was := fs.created()
	fs.cut(a)
	if trait && !fs.created().Equal(was) {
		w.touch(typ)
	}
	return w.setFirsts(r, fs)
}

// addFirst adds to r, a live row after a, the put at a created at c: if
// it is after the trait's latest delete, its Created counts for r's.
func (w *writer) addFirst(r row, a at, c time.Time, typ string) error {
	fs, err := decodeFirsts(r.firsts)
	if err != nil {
		return err
	}
	if c.IsZero() || fs.hasDel && fs.del.compare(a) > 0 {
		return nil
	}
	was := fs.created()
	fs.add(a, c)
	if !fs.created().Equal(was) {
		w.touch(typ)
	}
	return w.setFirsts(r, fs)
}

// setFirsts writes fs and the Created it gives to r's row.
func (w *writer) setFirsts(r row, fs firsts) error {
	b := fs.encode()
	if bytes.Equal(b, r.firsts) {
		return nil
	}
	w.changed = true
	return w.exec(w.ix.st.setFirsts, timeKey(fs.created()), b, r.id)
}
