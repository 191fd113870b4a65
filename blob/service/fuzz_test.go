package service

import (
	"encoding/json"
	"testing"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/store"
)

// FuzzDecodeFile: an exo.file document written by another member of the
// cell (any JSON the schema lets through, and more) decodes to a file
// whose capability parses and prints back the same, or is skipped; never
// a panic.
func FuzzDecodeFile(f *testing.F) {
	f.Add([]byte(`{"name":"a.txt","size":3,"media":"text/plain","cap":"exo://blob/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","by":"x","added":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"name":"d","size":0,"cap":"exo://blob/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi?dir","added":"2026-01-02T03:04:05.123Z"}`))
	f.Add([]byte(`{"name":1,"cap":"exo://blob/x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		e := store.Entity{ID: store.EntityID{1}, Traits: []store.Trait{{Type: FileType, ID: FileType, Doc: json.RawMessage(doc)}}}
		fl, ok := decodeFile(e)
		if !ok {
			return
		}
		c, err := blob.ParseCapability(fl.Cap.String())
		if err != nil || c != fl.Cap {
			t.Fatalf("decoded capability %v prints as %q, which parses to %v, %v", fl.Cap, fl.Cap.String(), c, err)
		}
		if fl.Size < 0 {
			t.Fatalf("decoded a negative size %d", fl.Size)
		}
		if fl.ID != e.ID {
			t.Fatalf("decoded file of entity %s, want %s", fl.ID, e.ID)
		}
	})
}

// TestDecodeFile: a well-formed document decodes; one with a capability
// that does not parse, or of the wrong shape, is skipped.
func TestDecodeFile(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"file", `{"name":"a.txt","size":3,"media":"text/plain","cap":"exo://blob/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","by":"x","added":"2026-01-02T03:04:05Z"}`, true},
		{"public dir", `{"name":"d","size":0,"cap":"exo://blob/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi?dir","added":"2026-01-02T03:04:05.123Z"}`, true},
		{"bad cap", `{"name":"x","size":1,"cap":"exo://blob/nope#zz","added":"2026-01-02T03:04:05Z"}`, false},
		{"wrong types", `{"name":1,"size":"big","cap":["x"]}`, false},
		{"negative size", `{"name":"n","size":-5,"cap":"exo://blob/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi?dir","added":"2026-01-02T03:04:05Z"}`, false},
	} {
		e := store.Entity{ID: store.EntityID{7}, Traits: []store.Trait{{Type: FileType, Doc: json.RawMessage(tc.doc)}}}
		f, ok := decodeFile(e)
		if ok != tc.ok {
			t.Errorf("%s: decoded %v, want %v (%+v)", tc.name, ok, tc.ok, f)
		}
		if ok && (f.Name == "" || !f.Cap.Root.Defined() || f.Added.IsZero()) {
			t.Errorf("%s: decoded %+v", tc.name, f)
		}
	}
	if f, _ := decodeFile(store.Entity{ID: store.EntityID{7}, Traits: []store.Trait{{Type: FileType, Doc: json.RawMessage(`{"name":"d","size":0,"cap":"exo://blob/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi?dir","added":"2026-01-02T03:04:05Z"}`)}}}); !f.Cap.Public || !f.Cap.Dir {
		t.Errorf("a public folder decoded as %v", f.Cap)
	}
}
