package index

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/store"
	"github.com/google/go-cmp/cmp"
)

// extract returns what a valid document of typ indexes: its keyword,
// number, time and reference values, and its text fields joined by
// newlines, in schema order. An unregistered type indexes nothing.
func (ix *Index) extractRef(typ string, doc json.RawMessage) extracted {
	s, ok := ix.reg.Lookup(typ)
	if !ok || len(s.Fields) == 0 {
		return extracted{}
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(doc, &obj) != nil {
		return extracted{}
	}
	var ex extracted
	var text strings.Builder
	fs := ix.fields.byName[typ]
	for _, f := range s.Fields {
		raw, ok := obj[f.Name]
		if !ok {
			continue
		}
		vals := []json.RawMessage{raw}
		if f.List {
			vals = nil
			if json.Unmarshal(raw, &vals) != nil {
				continue
			}
		}
		for _, raw := range vals {
			v, ok := valueRef(f.Kind, raw)
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
func valueRef(k store.IndexKind, raw json.RawMessage) (any, bool) {
	if k == store.Number {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, false
		}
		return f, true
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return nil, false
	}
	return textValue(k, s)
}

// FuzzExtract: for every document its schema accepts, the scanner gives
// exactly what the encoding/json version gives.
func FuzzExtract(f *testing.F) {
	for _, d := range []string{
		`{"body":"milk","title":"x","tags":["a","b"]}`,
		`{"body":"a\"b\u00e9","tags":[],"body":"last wins"}`,
		`{ "status" : "open" , "prio" : -1.5e3, "due": "2026-01-01T00:00:00+01:00", "about": ["e0000000000000000000000000000001"], "x": {"y": [1, "]"]} }`,
		`{"prio": 1e400, "title": null, "status": "\ud83d\ude00"}`,
		`{"t\u0069tle": "escaped key", "body": "b"}`,
		"{\"body\":\"\xff\"}",
	} {
		f.Add("exo.note", d)
		f.Add("test.task", d)
	}
	ix := openIndex(f, f.TempDir(), testRegistry(f))
	f.Fuzz(func(t *testing.T, typ, doc string) {
		if ix.reg.Validate(typ, json.RawMessage(doc)) != nil {
			return
		}
		got, want := ix.extract(typ, json.RawMessage(doc)), ix.extractRef(typ, json.RawMessage(doc))
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(extracted{}, term{})); diff != "" {
			t.Fatalf("extract(%s, %q) (-encoding/json +scanner):\n%s", typ, doc, diff)
		}
	})
}
