package enginebench_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/exopeer/exopeer/store/enginebench"
	"github.com/exopeer/exopeer/store/enginebench/modernc"
	"github.com/exopeer/exopeer/store/enginebench/ncruces"
)

const testBase = 1_780_000_000_000

type driver struct {
	name string
	open func(string) (*sql.DB, error)
}

var drivers = []driver{{ncruces.Name, ncruces.Open}, {modernc.Name, modernc.Open}}

func build(t testing.TB, d driver, path string, n int) *sql.DB {
	t.Helper()
	db, err := d.open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	if err := enginebench.Setup(ctx, db); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		got, err := enginebench.Populate(ctx, db, enginebench.NewGenerator(1, testBase), n, 250)
		if err != nil {
			t.Fatal(err)
		}
		if got != 3*n {
			t.Fatalf("%s: %d trait rows for %d entities, want %d", d.name, got, n, 3*n)
		}
	}
	return db
}

// TestDriversAgree builds the same seeded data with both drivers and checks every query
// against the generated data and against the other driver.
func TestDriversAgree(t *testing.T) {
	const n = 1500
	ctx := t.Context()

	// What the generated data says.
	g := enginebench.NewGenerator(1, testBase)
	tag := g.Tag(7)
	var wantTag []string
	var wantPrio []string
	type prio struct {
		p  float64
		id string
	}
	var prios []prio
	for i := range n {
		e := g.Entity(i)
		for _, tr := range e.Traits {
			for _, f := range tr.Fields {
				if f.Name == "tag" && f.Keyword == tag {
					wantTag = append(wantTag, e.ID)
				}
				if f.Name == "priority" && f.Number >= 100 && f.Number < 200 {
					prios = append(prios, prio{f.Number, e.ID})
				}
			}
		}
	}
	slices.SortFunc(prios, func(a, b prio) int {
		if a.p != b.p {
			if a.p < b.p {
				return -1
			}
			return 1
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})
	for _, p := range prios[:min(10, len(prios))] {
		wantPrio = append(wantPrio, p.id)
	}
	if len(wantTag) == 0 || len(wantPrio) == 0 {
		t.Fatalf("generated data has no matches: tag %d, priority %d", len(wantTag), len(wantPrio))
	}

	results := map[string][][]string{}
	for _, d := range drivers {
		db := build(t, d, filepath.Join(t.TempDir(), d.name+".db"), n)
		gotTag, err := enginebench.KeywordEq(ctx, db, "tag", tag, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotTag, wantTag) {
			t.Errorf("%s: tag %s: got %v, want %v", d.name, tag, gotTag, wantTag)
		}
		gotPrio, err := enginebench.NumberRange(ctx, db, "priority", 100, 200, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotPrio, wantPrio) {
			t.Errorf("%s: priority range: got %v, want %v", d.name, gotPrio, wantPrio)
		}
		word := g.Word(0)
		hits, err := enginebench.Match(ctx, db, word, 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 20 {
			t.Errorf("%s: match %q: %d hits, want 20", d.name, word, len(hits))
		}
		notes, err := enginebench.Count(ctx, db, `SELECT count(*) FROM traits WHERE type = ?`, enginebench.TypeNote)
		if err != nil {
			t.Fatal(err)
		}
		if notes != n {
			t.Errorf("%s: %d notes, want %d", d.name, notes, n)
		}
		results[d.name] = [][]string{gotTag, gotPrio, hits}
	}
	a, b := results[drivers[0].name], results[drivers[1].name]
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Errorf("query %d: %s %v, %s %v", i, drivers[0].name, a[i], drivers[1].name, b[i])
		}
	}
}

// TestReopen checks that a database written by one driver is read by the other (same file
// format), and that Setup on an existing database keeps its rows.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "x.db")
	db := build(t, drivers[0], path, 100)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := build(t, drivers[1], path, 0)
	n, err := enginebench.Count(ctx, db2, `SELECT count(*) FROM fields`)
	if err != nil {
		t.Fatal(err)
	}
	if n != 100*7 {
		t.Errorf("fields: %d rows, want %d", n, 100*7)
	}
}

func TestInsertEmpty(t *testing.T) {
	db := build(t, drivers[1], filepath.Join(t.TempDir(), "e.db"), 0)
	if _, err := enginebench.Insert(t.Context(), db, nil); !errors.Is(err, enginebench.ErrEmptyBatch) {
		t.Fatalf("Insert(nil) = %v, want ErrEmptyBatch", err)
	}
}
