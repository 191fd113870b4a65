// Package jsonscan splits valid JSON documents into their top-level
// members and a list into its elements, without decoding them: the
// store's schemas are checked (store.Registry.Validate) and its index's
// values extracted (store/index) with one light pass over a document
// that json.Valid accepted, giving what encoding/json would (the last of
// repeated members, keys and strings unescaped as it does). It is a pure
// core: data in, data out.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Member is a top-level member of a JSON object: its key (still quoted)
// and its raw value.
type Member struct {
	Key, Raw []byte
	// name is the key unescaped, for a key that holds an escape or is
	// not UTF-8 (escaped is then true): Members unescapes such a key once,
	// so that Lookup does not decode it again for each name looked up
	// (a document of many escaped keys would cost a decoding per key and
	// per field of its schema).
	name    string
	escaped bool
}

// Lookup returns the value of the last member named name (its key
// unescaped as encoding/json does), as decoding into a map keeps it.
// ms must come from Members.
func Lookup(ms []Member, name string) ([]byte, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		m := &ms[i]
		if m.escaped {
			if m.name == name {
				return m.Raw, true
			}
			continue
		}
		if string(m.Key[1:len(m.Key)-1]) == name {
			return m.Raw, true
		}
	}
	return nil, false
}

// member returns the member of key k (quoted) and value raw, its key
// unescaped now if it needs it; false if k does not unescape.
func member(k, raw []byte) (Member, bool) {
	if bytes.IndexByte(k, '\\') < 0 && utf8.Valid(k) {
		return Member{Key: k, Raw: raw}, true
	}
	var name string // declared here: only such a key allocates
	if json.Unmarshal(k, &name) != nil {
		return Member{}, false
	}
	return Member{Key: k, Raw: raw, name: name, escaped: true}, true
}

// Members splits a valid JSON object into its members, in order; false if
// doc is not an object. doc must be valid JSON (json.Valid).
func Members(doc []byte) ([]Member, bool) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, false
	}
	var ms []Member
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
		m, ok := member(k, doc[i:ve])
		if !ok {
			return nil, false
		}
		ms = append(ms, m)
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

// Elements splits a valid JSON array into its elements; false if raw is
// not an array.
func Elements(raw []byte) ([][]byte, bool) {
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

// String returns the JSON string raw unescaped, as encoding/json does;
// false if raw is not a string.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
