package index

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/internal/jsonscan"
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
// Registry.Validate; extract reads it with the scanner of the top-level
// members Validate uses (package store/internal/jsonscan: the parse of
// every document, so it matters for indexing speed) and gives what
// encoding/json would: the last of
// repeated members, strings unescaped (through encoding/json when they
// hold an escape or are not UTF-8). FuzzExtract checks it against an
// encoding/json version.
func (ix *Index) extract(typ string, doc json.RawMessage) extracted {
	s, ok := ix.reg.Lookup(typ)
	if !ok || len(s.Fields) == 0 {
		return extracted{}
	}
	ms, ok := jsonscan.Members(doc)
	if !ok {
		return extracted{}
	}
	var ex extracted
	var text strings.Builder
	fs := ix.fields.byName[typ]
	for _, f := range s.Fields {
		if f.Kept {
			continue
		}
		raw, ok := jsonscan.Lookup(ms, f.Name)
		if !ok {
			continue
		}
		vals := [][]byte{raw}
		if f.List {
			if vals, ok = jsonscan.Elements(raw); !ok {
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
	s, ok := jsonscan.String(raw)
	if !ok {
		return nil, false
	}
	return textValue(k, s)
}
