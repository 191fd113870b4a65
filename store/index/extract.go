package index

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/exopeer/exopeer/store"
)

type term struct {
	field int64
	v     any
}

type extracted struct {
	terms []term
	text  string
}

// extract returns what a document of typ indexes: its keyword, number,
// time and reference values, and its text fields joined by newlines, in
// schema order. An unregistered type indexes nothing. doc has passed
// Registry.Validate; extract reads it with a small scanner of the
// top-level members (the second parse of every document, so it matters
// for indexing speed) and gives what encoding/json would: the last of
// repeated members, strings unescaped (through encoding/json when they
// hold an escape or are not UTF-8). FuzzExtract checks it against an
// encoding/json version.
func (ix *Index) extract(typ string, doc json.RawMessage) extracted {
	s, ok := ix.reg.Lookup(typ)
	if !ok || len(s.Fields) == 0 {
		return extracted{}
	}
	ms, ok := members(doc)
	if !ok {
		return extracted{}
	}
	var ex extracted
	var text strings.Builder
	fs := ix.fields.byName[typ]
	for _, f := range s.Fields {
		raw, ok := lookup(ms, f.Name)
		if !ok {
			continue
		}
		vals := [][]byte{raw}
		if f.List {
			if vals, ok = elements(raw); !ok {
				continue
			}
		}
		for _, raw := range vals {
			v, ok := value(f.Kind, raw)
			if !ok {
				continue
			}
			if f.Kind == store.Text {
				if text.Len() > 0 {
					text.WriteByte('\n')
				}
				text.WriteString(v.(string))
				continue
			}
			ex.terms = append(ex.terms, term{field: fs[f.Name].id, v: v})
		}
	}
	ex.text = text.String()
	return ex
}

// member is a top-level member of a JSON object: its key (still quoted)
// and its raw value.
type member struct{ key, raw []byte }

// lookup returns the value of the last member named name.
func lookup(ms []member, name string) ([]byte, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		k := ms[i].key
		if bytes.IndexByte(k, '\\') < 0 && utf8.Valid(k) {
			if string(k[1:len(k)-1]) == name {
				return ms[i].raw, true
			}
			continue
		}
		var s string
		if json.Unmarshal(k, &s) == nil && s == name {
			return ms[i].raw, true
		}
	}
	return nil, false
}

// members splits a valid JSON object into its members; false if doc is
// not an object.
func members(doc []byte) ([]member, bool) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, false
	}
	var ms []member
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return ms, true
	}
	for i < len(doc) {
		ke, ok := skipValue(doc, i)
		if !ok || doc[i] != '"' {
			return nil, false
		}
		k := doc[i:ke]
		i = skipSpace(doc, ke)
		if i >= len(doc) || doc[i] != ':' {
			return nil, false
		}
		i = skipSpace(doc, i+1)
		ve, ok := skipValue(doc, i)
		if !ok {
			return nil, false
		}
		ms = append(ms, member{k, doc[i:ve]})
		i = skipSpace(doc, ve)
		if i >= len(doc) {
			return nil, false
		}
		if doc[i] == '}' {
			return ms, true
		}
		if doc[i] != ',' {
			return nil, false
		}
		i = skipSpace(doc, i+1)
	}
	return nil, false
}

// elements splits a valid JSON array into its elements; false if raw is
// not an array.
func elements(raw []byte) ([][]byte, bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var out [][]byte
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return out, true
	}
	for i < len(raw) {
		e, ok := skipValue(raw, i)
		if !ok {
			return nil, false
		}
		out = append(out, raw[i:e])
		i = skipSpace(raw, e)
		if i >= len(raw) {
			return nil, false
		}
		if raw[i] == ']' {
			return out, true
		}
		if raw[i] != ',' {
			return nil, false
		}
		i = skipSpace(raw, i+1)
	}
	return nil, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			}
		}
		return 0, false
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, ok := skipValue(b, j)
				if !ok {
					return 0, false
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(b) && !strings.ContainsRune(",]} \t\n\r", rune(b[j])) {
		j++
	}
	return j, j > i
}

// value converts a JSON value of a field of kind k to what terms hold: a
// keyword or a text as a string, a number as a float64, a time as its
// timeKey, a reference as the 16 bytes of the ID. Null and values of the
// wrong type (which Validate refuses) give false.
func value(k store.IndexKind, raw []byte) (any, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	if k == store.Number {
		if c := raw[0]; c != '-' && (c < '0' || c > '9') {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, false
		}
		return f, true
	}
	if raw[0] != '"' {
		return nil, false
	}
	var s string
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		s = string(raw[1 : len(raw)-1])
	} else if json.Unmarshal(raw, &s) != nil {
		return nil, false
	}
	return textValue(k, s)
}
