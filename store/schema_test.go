package store

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	r := NewRegistry()
	err := r.Register(Schema{Type: "test.all", Fields: []Field{
		{Name: "k", Kind: Keyword},
		{Name: "n", Kind: Number},
		{Name: "at", Kind: Time},
		{Name: "ref", Kind: Reference},
		{Name: "refs", Kind: Reference, List: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ref := testID(7).String()
	tests := []struct {
		name, typ, doc string
		path           string // "" when the document is accepted
	}{
		{"note", "exo.note", `{"title":"t","body":"b","tags":["x","y"]}`, ""},
		{"note with extra members", "exo.note", `{"body":"b","color":3}`, ""},
		{"note tags null", "exo.note", `{"body":"b","tags":null}`, ""},
		{"note without body", "exo.note", `{"title":"t"}`, "body"},
		{"note body null", "exo.note", `{"body":null}`, "body"},
		{"note body a number", "exo.note", `{"body":3}`, "body"},
		{"note tags not a list", "exo.note", `{"body":"b","tags":"x"}`, "tags"},
		{"note tag a number", "exo.note", `{"body":"b","tags":["x",2]}`, "tags[1]"},
		{"note a list", "exo.note", `["body"]`, "-"},
		{"note malformed", "exo.note", `{"body":`, "-"},
		{"all good", "test.all", `{"k":"a","n":-1.5e3,"at":"2026-11-25T22:00:00.5Z","ref":"` + ref + `","refs":["` + ref + `"]}`, ""},
		{"number a string", "test.all", `{"n":"1"}`, "n"},
		{"bad time", "test.all", `{"at":"yesterday"}`, "at"},
		{"time a number", "test.all", `{"at":1}`, "at"},
		{"bad reference", "test.all", `{"ref":"abc"}`, "ref"},
		{"bad reference in list", "test.all", `{"refs":["` + ref + `","x"]}`, "refs[1]"},
		{"keyword an object", "test.all", `{"k":{}}`, "k"},
		{"unknown type kept", "some.app", `[1,"x"]`, ""},
		{"unknown type malformed", "some.app", `[1,`, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Validate(tt.typ, json.RawMessage(tt.doc))
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrSchema) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			want := tt.path
			if want == "-" {
				want = ""
			}
			if fe.Path != want || fe.Type != tt.typ {
				t.Fatalf("error %q names type %q path %q, want %q %q", err, fe.Type, fe.Path, tt.typ, want)
			}
			if want != "" && !strings.Contains(err.Error(), "field "+want+":") {
				t.Fatalf("error %q does not name field %s", err, want)
			}
		})
	}
	big := json.RawMessage(`"` + strings.Repeat("a", MaxDoc) + `"`)
	if err := r.Validate("some.app", big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Validate of %d bytes = %v, want ErrTooLarge", len(big), err)
	}
}

func TestRegister(t *testing.T) {
	r := NewRegistry()
	for _, s := range []Schema{
		{Type: ""},
		{Type: "exo.note"},
		{Type: "a", Fields: []Field{{Name: "x", Kind: Text}, {Name: "x", Kind: Text}}},
		{Type: "a", Fields: []Field{{Name: "", Kind: Text}}},
		{Type: "a", Fields: []Field{{Name: "x", Kind: 0}}},
		{Type: "a", Fields: []Field{{Name: "x", Kind: Reference + 1}}},
	} {
		if err := r.Register(s); !errors.Is(err, ErrRegister) {
			t.Errorf("Register(%+v) = %v, want ErrRegister", s, err)
		}
	}
	if err := r.Register(Schema{Type: "a.b", Fields: []Field{{Name: "x", Kind: Number}}}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.Types() {
		names = append(names, s.Type)
	}
	if got := strings.Join(names, ","); got != "a.b,exo.contact,exo.devices,exo.file,exo.message,exo.note,exo.read,exo.share" {
		t.Fatalf("Types = %s", got)
	}
	if s, ok := r.Lookup("exo.note"); !ok || len(s.Fields) != 3 {
		t.Fatalf("Lookup(exo.note) = %+v, %v", s, ok)
	}
	var zero Registry
	if err := zero.Validate("exo.note", json.RawMessage(`1`)); err != nil {
		t.Fatalf("empty registry refused an unknown type: %v", err)
	}
}
