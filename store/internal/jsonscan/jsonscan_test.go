package jsonscan

import (
	"encoding/json"
	"testing"
)

// FuzzMembers: for every valid JSON object, Lookup of each member's name
// gives what decoding into a map of json.RawMessage gives, and Elements
// of a list what decoding into a slice gives; Members refuses what is
// not an object.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 , "b" : [1, "]", {"c":"}"}] } `, `{"a":1,"a":2}`, `{"\u0061":1,"a":2,"a\"":3}`,
		"{\"\xff\":\"\xfe\"}", `{"s":"x\ny","l":[ ],"n":null}`, `[1,2]`, `null`, `"s"`, `1`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return
		}
		var obj map[string]json.RawMessage
		err := json.Unmarshal([]byte(doc), &obj)
		ms, ok := Members([]byte(doc))
		if ok != (err == nil && obj != nil) {
			t.Fatalf("Members(%q): ok %t, encoding/json: %v, %v", doc, ok, obj, err)
		}
		for _, m := range ms {
			name, ok := String(m.Key)
			if !ok {
				t.Fatalf("String(%q): not a string", m.Key)
			}
			got, ok := Lookup(ms, name)
			if !ok || string(got) != string(obj[name]) {
				t.Fatalf("Lookup(%q) in %q = %q, %t; want %q", name, doc, got, ok, obj[name])
			}
			var elems []json.RawMessage
			lerr := json.Unmarshal(got, &elems)
			es, ok := Elements(got)
			if ok != (lerr == nil && elems != nil) || len(es) != len(elems) {
				t.Fatalf("Elements(%q) = %q, %t; encoding/json: %q, %v", got, es, ok, elems, lerr)
			}
			for i := range es {
				if string(es[i]) != string(elems[i]) {
					t.Fatalf("Elements(%q)[%d] = %q, want %q", got, i, es[i], elems[i])
				}
			}
			var s string
			serr := json.Unmarshal(got, &s)
			if sv, ok := String(got); ok != (serr == nil && got[0] == '"') || sv != s {
				t.Fatalf("String(%q) = %q, %t; encoding/json: %q, %v", got, sv, ok, s, serr)
			}
		}
	})
}

// TestLookupUnescapesOnce: a key that holds an escape is unescaped once,
// by Members, not again by each Lookup: a document of many escaped keys
// looked up for each field of a schema (Registry.Validate, the index's
// extraction) cost a decoding per key and per field, 37 times a decoding
// of the whole document for a message's ten fields. Counted in
// allocations (a decoding of a key allocates), not in time.
func TestLookupUnescapesOnce(t *testing.T) {
	var b []byte
	b = append(b, `{"a":1`...)
	const keys = 2000
	for range keys {
		b = append(b, `,"\u0078":0`...)
	}
	b = append(b, '}')
	names := []string{"b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}
	var found bool
	allocs := testing.AllocsPerRun(5, func() {
		ms, ok := Members(b)
		if !ok {
			t.Fatal("not an object")
		}
		for _, n := range names {
			if _, ok := Lookup(ms, n); ok {
				found = true
			}
		}
		_, ok = Lookup(ms, "a")
		found = found || !ok
	})
	if found {
		t.Fatal("Lookup found a member that is not there, or missed one that is")
	}
	// Members unescapes each key once (a few allocations each, as
	// decoding the document into a map would), whatever the number of
	// names looked up.
	if max := float64(4 * keys); allocs > max {
		t.Errorf("Members and %d Lookups of %d escaped keys: %.0f allocations, want at most %.0f (each key unescaped once)", len(names)+1, keys, allocs, max)
	}
}
