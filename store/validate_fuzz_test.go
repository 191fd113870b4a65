package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
)

// FuzzValidate: Validate, which splits a document with one light pass
// (store/internal/jsonscan), accepts and refuses exactly what its first
// version, which decoded the document into a map with encoding/json,
// did, with the same error.
func FuzzValidate(f *testing.F) {
	r := NewRegistry()
	if err := r.Register(Schema{Type: "test.all", Fields: []Field{
		{Name: "k", Kind: Keyword, Required: true},
		{Name: "t", Kind: Text},
		{Name: "n", Kind: Number},
		{Name: "at", Kind: Time},
		{Name: "ref", Kind: Reference},
		{Name: "refs", Kind: Reference, List: true},
		{Name: "ks", Kind: Keyword, List: true},
	}}); err != nil {
		f.Fatal(err)
	}
	ref := testID(7).String()
	for _, s := range []struct{ typ, doc string }{
		{"test.all", `{"k":"a","t":"b","n":1.5e3,"at":"2026-01-01T00:00:00Z","ref":"` + ref + `","refs":["` + ref + `"],"ks":["x","y"]}`},
		{"test.all", ` { "k" : "a" , "k" : 1 } `},
		{"test.all", `{"k":"a","\u006b":2}`},
		{"test.all", `{"k\u0000":"a"}`},
		{"test.all", `{"k":"\u00e9\ud800","at":"2026-01-01T00:00:00\u005a"}`},
		{"test.all", `{"k":"a","refs":null,"ks":[],"n":null}`},
		{"test.all", `{"k":"a","ks":[1],"refs":"x"}`},
		{"test.all", "{\"k\":\"\xff\"}"},
		{"test.all", `{"k":"a","at":"yesterday"}`},
		{"test.all", `{"k":{"k":"a"},"t":[{"x":"]"}]}`},
		{"test.all", `null`},
		{"test.all", `["k"]`},
		{"test.all", `{}`},
		{"test.all", `{"k":"a"`},
		{"exo.message", `{"conversation":"c","direction":"out","id":"i","cell":"c","device":"d","sent":"2026-01-01T00:00:00Z","order":"o","text":"t","state":"sent"}`},
		{"x.free", `[1,2]`},
	} {
		f.Add(s.typ, s.doc)
	}
	f.Fuzz(func(t *testing.T, typ, doc string) {
		got, want := r.Validate(typ, json.RawMessage(doc)), validateRef(r, typ, json.RawMessage(doc))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Validate(%q, %q) = %v, want %v", typ, doc, got, want)
		}
	})
}

// validateRef is Validate's first version: the reference of FuzzValidate.
func validateRef(r *Registry, typ string, doc json.RawMessage) error {
	if len(doc) > MaxDoc {
		return fmt.Errorf("store: %s: document of %d bytes, over %d: %w", typ, len(doc), MaxDoc, ErrTooLarge)
	}
	if !json.Valid(doc) {
		return &FieldError{Type: typ, Reason: "document is not valid JSON"}
	}
	s, ok := r.types[typ]
	if !ok {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil || obj == nil {
		return &FieldError{Type: typ, Reason: "document is not a JSON object"}
	}
	for _, f := range s.Fields {
		v, ok := obj[f.Name]
		if !ok || isNull(v) {
			if f.Required {
				return &FieldError{Type: typ, Path: f.Name, Reason: "required, missing"}
			}
			continue
		}
		if !f.List {
			if reason := checkValueRef(f.Kind, v); reason != "" {
				return &FieldError{Type: typ, Path: f.Name, Reason: reason}
			}
			continue
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(v, &elems); err != nil || elems == nil {
			return &FieldError{Type: typ, Path: f.Name, Reason: "want a list, got " + jsonType(v)}
		}
		for i, e := range elems {
			if reason := checkValueRef(f.Kind, e); reason != "" {
				return &FieldError{Type: typ, Path: f.Name + "[" + strconv.Itoa(i) + "]", Reason: reason}
			}
		}
	}
	return nil
}

func checkValueRef(k IndexKind, v json.RawMessage) string {
	got := jsonType(v)
	if k == Number {
		if got != "number" {
			return "want a number, got " + got
		}
		return ""
	}
	if got != "string" {
		return "want a string (" + k.String() + "), got " + got
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "bad string"
	}
	return checkString(k, s)
}

// BenchmarkValidate: Validate of a ~400-byte exo.message document, as
// each write of a message makes it.
func BenchmarkValidate(b *testing.B) {
	r := NewRegistry()
	doc := json.RawMessage(`{"cell":"0000000000000000000000000000000000000000000000000000000000000063","conversation":"0000000000000000000000000000000000000000000000000000000000000001",` +
		`"device":"12D3KooWRkGLz4YbVmrsWK75VjFTs8xKoCsYoVjDSuCr5ZrYVDDy","direction":"out","id":"00000000000000000000000000000007","order":"0000019b7741540000000000000000000000000000000007",` +
		`"sent":"2026-01-01T00:00:00.007Z","state":"sent","text":"message 7: the quick brown fox jumps over the lazy dog, and then some more words to fill"}`)
	for b.Loop() {
		if err := r.Validate("exo.message", doc); err != nil {
			b.Fatal(err)
		}
	}
}
