package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/exopeer/exopeer/api"
)

// TestStoreOutputOfHostileEntities: what another member of the cell wrote
// is printed without its control characters (a terminal's escape
// sequences, C1 codes, line breaks, bidirectional overrides): a type, a trait ID, a tag or a
// document cannot clear the screen, set the title or forge a line.
func TestStoreOutputOfHostileEntities(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	id := "00112233445566778899aabbccddeeff"
	esc := "\x1b]0;owned\x07\x1b[2J\u009b31m\u202e\r\nforged line"
	doc, _ := json.Marshal(map[string]any{"body": esc, "tags": []string{esc}})
	// A raw C1 code (U+009B, CSI) is valid unescaped in a JSON string.
	rawC1 := json.RawMessage("{\"body\": \"x\u009b2Jy\", \"k\": \"" + strings.Repeat("long ", 30) + "\u009b2J\"}")
	e := api.StoreEntity{ID: id, Traits: []api.StoreTrait{
		{Type: "exo.note", ID: "exo.note", Doc: doc, Modified: at},
		{Type: "app" + esc, ID: "id" + esc, Doc: rawC1, Modified: at},
	}}
	for _, tt := range []struct {
		name  string
		print func(*strings.Builder) error
		lines int
	}{
		{"entity", func(b *strings.Builder) error { return printEntity(b, e) }, -1},
		{"hit", func(b *strings.Builder) error { return printHit(b, api.StoreHit{Entity: e}) }, 1},
		{"note", func(b *strings.Builder) error { return printNote(b, api.StoreHit{Entity: e}) }, 1},
		{"note with a hostile title", func(b *strings.Builder) error {
			d, _ := json.Marshal(map[string]any{"title": esc, "body": "b", "tags": []string{"ok", esc}})
			return printNote(b, api.StoreHit{Entity: api.StoreEntity{ID: id, Traits: []api.StoreTrait{{Type: "exo.note", ID: "exo.note", Doc: d, Modified: at}}}})
		}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := tt.print(&b); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, r := range strings.TrimSuffix(out, "\n") {
				if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
					t.Fatalf("printed a control character %U:\n%q", r, out)
				}
			}
			if n := strings.Count(out, "\n"); tt.lines > 0 && n != tt.lines {
				t.Fatalf("printed %d lines, want %d:\n%q", n, tt.lines, out)
			}
			if strings.Contains(out, "\nforged") {
				t.Fatalf("a forged line:\n%q", out)
			}
		})
	}
}

// TestStorePutStdinTooLarge: a document on stdin over the largest is
// refused as too large, not as "not JSON" (the read stops a byte over the
// cap, which cuts the JSON short).
func TestStorePutStdinTooLarge(t *testing.T) {
	stdin = strings.NewReader(`{"body": "` + strings.Repeat("a", 100<<10) + `"}`)
	t.Cleanup(func() { stdin = os.Stdin })
	_, err := docArg(nil, "-")
	if err == nil || strings.Contains(err.Error(), "not JSON") || !strings.Contains(err.Error(), "65536") {
		t.Fatalf("docArg of 100 KiB on stdin: %v, want it refused as over 65536 bytes", err)
	}
}

// TestJSONOutputKeepsDocuments: --json prints a document as written: <,
// > and & are not \u003c, \u003e, \u0026.
func TestJSONOutputKeepsDocuments(t *testing.T) {
	var b strings.Builder
	e := api.StoreEntity{ID: "00112233445566778899aabbccddeeff", Traits: []api.StoreTrait{{Type: "exo.note", ID: "exo.note", Doc: json.RawMessage(`{"body":"<b> & </b>"}`)}}}
	if err := printJSON(&b, e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"body": "<b> & </b>"`) {
		t.Fatalf("printed %s", b.String())
	}
}
