package index

import (
	"bytes"
	"encoding/json"
)

// traitRow is what the writer reads of a trait's row that a write
// replaces: the row, and what it indexed from (its type, document and
// modified time).
type traitRow struct {
	row
	typ string
	doc []byte
	mod []byte
}

func scanTrait(sc interface{ Scan(...any) error }) (traitRow, error) {
	var r traitRow
	var clock int64
	if err := sc.Scan(&r.id, &clock, &r.at.key, &r.at.op, &r.dead, &r.text, &r.firsts, &r.typ, &r.doc, &r.mod); err != nil {
		return traitRow{}, err
	}
	r.at.clock = uint64(clock)
	return r, nil
}

// termKey is a term as a comparable value: its field and value (a
// keyword or text, a number, a time's or a reference's bytes).
type termKey struct {
	field int64
	s     string
	f     float64
	kind  uint8 // 0 a string, 1 a number, 2 bytes
}

func keyOf(t term) termKey {
	switch v := t.v.(type) {
	case float64:
		return termKey{field: t.field, f: v, kind: 1}
	case []byte:
		return termKey{field: t.field, s: string(v), kind: 2}
	default:
		return termKey{field: t.field, s: v.(string)}
	}
}

// rewrite changes what the live row old indexed to what ex indexes, at
// the new modified time mod, with the least writing: the terms ex does
// not have are deleted, those it keeps move to mod (in place, when mod
// changed), and the text is kept when it is the same. It returns the
// terms and the text still to insert. A message's state going from
// "sent" to "delivered" so rewrites one term, not its eight and its
// text.
func (w *writer) rewrite(old traitRow, ex extracted, mod []byte) ([]term, string, error) {
	st := &w.ix.st
	prev := w.ix.extract(old.typ, json.RawMessage(old.doc))
	had := make(map[termKey]bool, len(prev.terms))
	for _, tm := range prev.terms {
		had[keyOf(tm)] = true
	}
	keep := make(map[termKey]bool, len(ex.terms))
	var add []term
	for _, tm := range ex.terms {
		k := keyOf(tm)
		if keep[k] {
			continue // a list's repeated value
		}
		keep[k] = true
		if !had[k] {
			add = append(add, tm)
		}
	}
	kept := false
	for k := range had {
		if !keep[k] {
			if err := w.exec(st.delTerm, old.id, k.field, termValue(k)); err != nil {
				return nil, "", err
			}
			continue
		}
		kept = true
	}
	if kept && !bytes.Equal(old.mod, mod) {
		if err := w.exec(st.setTermsMod, mod, old.id); err != nil {
			return nil, "", err
		}
	}
	if !old.text {
		return add, ex.text, nil
	}
	if prev.text != "" && prev.text == ex.text {
		return add, "", nil // the same text: its full-text row stays
	}
	return add, ex.text, w.exec(st.delText, old.id)
}

// termValue is k's value as terms hold it.
func termValue(k termKey) any {
	switch k.kind {
	case 1:
		return k.f
	case 2:
		return []byte(k.s)
	}
	return k.s
}
