// Package enginebench measures the pure-Go SQLite drivers against the schema a store index
// would use: a traits table holding each trait's JSON document, a field table with one row
// per indexed keyword, number or time value, and a contentless FTS5 table over the text
// fields. The package itself is driver-agnostic (database/sql only); the ncruces and
// modernc subpackages open a database with one driver each, so each tiny program under
// cmd/ links exactly one of them.
package enginebench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Trait types of the generated data, one trait of each per entity.
const (
	TypeNote    = "exo.note"
	TypeContact = "exo.contact"
	TypeTask    = "exo.task"
)

// Statuses of generated tasks.
var Statuses = []string{"open", "doing", "blocked", "done"}

// Field is one indexed value of a trait: exactly one of Keyword, Number or Time is set,
// as Kind says.
type Field struct {
	Name    string
	Kind    FieldKind
	Keyword string
	Number  float64
	Time    int64
}

// FieldKind says which column of the field table holds a value.
type FieldKind int

// Field kinds.
const (
	Keyword FieldKind = iota
	Number
	Time
)

// Trait is a generated trait with its document and its index rows.
type Trait struct {
	ID       string
	Type     string
	Doc      string // JSON
	Created  int64  // unix ms
	Modified int64  // unix ms
	Fields   []Field
	Text     string // what goes to FTS5; empty when the trait has no text field
}

// Entity is a generated entity with its traits.
type Entity struct {
	ID     string
	Traits []Trait
}

// Generator produces the same entities for the same seed. Its vocabulary follows a Zipf
// law so that full-text terms have realistic, uneven frequencies.
type Generator struct {
	rng   *rand.Rand
	zipf  *rand.Zipf
	vocab []string
	tags  []string
	base  int64
}

// VocabSize is the number of distinct words of the generated text.
const VocabSize = 5000

// TagCount is the number of distinct tags; a tag matches about 1/TagCount of the notes.
const TagCount = 200

// NewGenerator returns a generator seeded with seed; base is the unix ms time around which
// creation and due times are spread.
func NewGenerator(seed uint64, base int64) *Generator {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &Generator{rng: rng, base: base}
	g.zipf = rand.NewZipf(rng, 1.1, 2, VocabSize-1)
	syll := []string{"ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "va", "ze", "bri", "do", "fu", "gal", "hen", "jo"}
	seen := make(map[string]bool, VocabSize)
	for len(g.vocab) < VocabSize {
		var b strings.Builder
		for n := 2 + rng.IntN(3); n > 0; n-- {
			b.WriteString(syll[rng.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			g.vocab = append(g.vocab, w)
		}
	}
	for i := range TagCount {
		g.tags = append(g.tags, fmt.Sprintf("tag%03d", i))
	}
	return g
}

// Word returns the vocabulary word of rank r (0 is the most frequent).
func (g *Generator) Word(r int) string { return g.vocab[r] }

// Tag returns tag i.
func (g *Generator) Tag(i int) string { return g.tags[i%TagCount] }

func (g *Generator) words(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = g.vocab[g.zipf.Uint64()]
	}
	return strings.Join(w, " ")
}

// Entity returns entity number i; call it with increasing i for a reproducible stream.
func (g *Generator) Entity(i int) Entity {
	id := fmt.Sprintf("e%08d", i)
	created := g.base - g.rng.Int64N(365*24*3600*1000)
	modified := created + g.rng.Int64N(24*3600*1000)

	title, body, tag := g.words(4), g.words(30), g.tags[g.rng.IntN(TagCount)]
	note := Trait{ID: "note", Type: TypeNote, Created: created, Modified: modified,
		Doc: mustJSON(map[string]any{"title": title, "body": body, "tag": tag, "created": created}),
		Fields: []Field{
			{Name: "tag", Kind: Keyword, Keyword: tag},
			{Name: "created", Kind: Time, Time: created},
		},
		Text: title + " " + body,
	}

	name, age := g.words(2), float64(18+g.rng.IntN(70))
	contact := Trait{ID: "contact", Type: TypeContact, Created: created, Modified: modified,
		Doc: mustJSON(map[string]any{"name": name, "age": age}),
		Fields: []Field{
			{Name: "name", Kind: Keyword, Keyword: name},
			{Name: "age", Kind: Number, Number: age},
		},
	}

	status, prio, due := Statuses[g.rng.IntN(len(Statuses))], float64(g.rng.IntN(1000)), g.base+g.rng.Int64N(90*24*3600*1000)
	task := Trait{ID: "task", Type: TypeTask, Created: created, Modified: modified,
		Doc: mustJSON(map[string]any{"status": status, "priority": prio, "due": due}),
		Fields: []Field{
			{Name: "status", Kind: Keyword, Keyword: status},
			{Name: "priority", Kind: Number, Number: prio},
			{Name: "due", Kind: Time, Time: due},
		},
	}
	return Entity{ID: id, Traits: []Trait{note, contact, task}}
}

// mustJSON encodes v, whose types are all JSON-encodable by construction.
func mustJSON(v map[string]any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("enginebench: encode generated document: %v", err))
	}
	return string(b)
}
