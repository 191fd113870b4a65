package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
)

// TestStoreOutput: the human forms of an entity, a hit, a note and the
// store's status.
func TestStoreOutput(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	local := at.Local().Format(time.DateTime)
	id := "00112233445566778899aabbccddeeff"
	long := `{"body": "` + strings.Repeat("word ", 30) + `"}`
	e := api.StoreEntity{ID: id, Traits: []api.StoreTrait{
		{Type: "exo.note", ID: "exo.note", Doc: json.RawMessage("{\n  \"body\": \"milk\",\n  \"tags\": [\"home\"]\n}"), Modified: at},
		{Type: "app.thing", ID: "extra", Doc: json.RawMessage(long), Modified: at},
	}}
	for _, tt := range []struct {
		name  string
		print func(*strings.Builder) error
		want  string
	}{
		{"entity", func(b *strings.Builder) error { return printEntity(b, e) },
			"entity " + id + "\n" +
				"  exo.note, modified " + local + "\n" +
				`    {"body":"milk","tags":["home"]}` + "\n" +
				"  app.thing extra, modified " + local + "\n" +
				"    {\n      \"body\": \"" + strings.Repeat("word ", 30) + "\"\n    }\n"},
		{"hit", func(b *strings.Builder) error { return printHit(b, api.StoreHit{Entity: e, Rank: -1.5}) },
			id + `  exo.note {"body":"milk","tags":["home"]}  app.thing {"body":"word word word word word word word word word word word word wo…` + "\n"},
		{"hit with no trait", func(b *strings.Builder) error { return printHit(b, api.StoreHit{Entity: api.StoreEntity{ID: id}}) },
			id + "\n"},
		{"note", func(b *strings.Builder) error {
			return printNote(b, api.StoreHit{Entity: api.StoreEntity{ID: id, Traits: []api.StoreTrait{
				{Type: "exo.note", ID: "exo.note", Doc: json.RawMessage(`{"title": "Groceries", "body": "milk\nand eggs", "tags": ["home", "errands"]}`), Modified: at}}}})
		}, id + "  " + local + "  Groceries  #home  #errands\n"},
		{"note without title", func(b *strings.Builder) error {
			return printNote(b, api.StoreHit{Entity: api.StoreEntity{ID: id, Traits: []api.StoreTrait{
				{Type: "exo.note", ID: "exo.note", Doc: json.RawMessage(`{"body": "milk\nand eggs"}`), Modified: at}}}})
		}, id + "  " + local + "  milk and eggs\n"},
		{"not a note", func(b *strings.Builder) error {
			return printNote(b, api.StoreHit{Entity: api.StoreEntity{ID: id, Traits: []api.StoreTrait{
				{Type: "exo.note", ID: "exo.note", Doc: json.RawMessage(`[1]`), Modified: at}}}})
		}, id + "  exo.note [1]\n"},
		{"status of a store node", func(b *strings.Builder) error {
			return printStoreStatus(b, api.StoreStatus{Role: "store", Next: 12, Behind: 3, Entities: 4, Traits: 5,
				Skipped: map[string]int64{"schema": 2, "decode": 1}, Bytes: 3 << 20})
		}, "role             store: this node indexes the chain\n" +
			"indexed          12 chain entries, 3 behind\n" +
			"entities         4 (5 traits)\n" +
			"skipped entries  1 (decode), 2 (schema)\n" +
			"index size       3.0 MiB\n"},
		{"status of a thin node", func(b *strings.Builder) error {
			return printStoreStatus(b, api.StoreStatus{Role: "remote", Member: "12D3KooWabc", Skipped: map[string]int64{}})
		}, "role  remote: queries go to the store member 12D3KooWabc (this node keeps no index)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := tt.print(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("printed:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}
