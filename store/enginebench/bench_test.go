package enginebench_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store/enginebench"
)

var (
	entities = flag.Int("entities", 100_000, "entities (3 traits each) in the benchmark databases")
	batch    = flag.Int("batch", 1000, "entities per transaction in BenchmarkInsert")
)

// benchDir holds the populated databases, shared by the benchmarks of one run.
var benchDir string

// populated maps a driver name to its populated database, written by BenchmarkInsert or
// built by the first benchmark needing it.
var populated = map[string]string{}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "enginebench")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	benchDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fill builds a database at path with *entities entities and returns the number of
// trait rows.
func fill(b *testing.B, d driver, path string) int {
	b.Helper()
	db, err := d.open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := b.Context()
	if err := enginebench.Setup(ctx, db); err != nil {
		b.Fatal(err)
	}
	n, err := enginebench.Populate(ctx, db, enginebench.NewGenerator(1, testBase), *entities, *batch)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	return n
}

func dbFor(b *testing.B, d driver) *sql.DB {
	b.Helper()
	path, ok := populated[d.name]
	if !ok {
		path = filepath.Join(benchDir, d.name+".db")
		fill(b, d, path)
		populated[d.name] = path
	}
	db, err := d.open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := enginebench.Setup(b.Context(), db); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkInsert is the raw insert rate: *entities entities of 3 traits (each trait a
// row, its 2 or 3 field rows, and a note's FTS5 row) in transactions of *batch entities.
func BenchmarkInsert(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			var traits int
			var path string
			for range b.N {
				dir, err := os.MkdirTemp(benchDir, d.name)
				if err != nil {
					b.Fatal(err)
				}
				path = filepath.Join(dir, "index.db")
				traits += fill(b, d, path)
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(traits)/secs, "traits/s")
			b.ReportMetric(float64(traits)/3/secs, "entities/s")
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(fi.Size())/float64(*entities), "disk-B/entity")
			if _, ok := populated[d.name]; !ok {
				populated[d.name] = path
			}
		})
	}
}

// quantiles reports the p50 and p99 of the durations in microseconds.
func quantiles(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkQuery times the index's three kinds of reads, 20 results each: keyword
// equality (a tag, about 1/200 of the notes, ordered by entity), a number range (1% of
// the priorities, ordered by the value) and an FTS5 match of two words ordered by bm25.
func BenchmarkQuery(b *testing.B) {
	g := enginebench.NewGenerator(1, testBase)
	for _, d := range drivers {
		kinds := []struct {
			name string
			run  func(ctx context.Context, db *sql.DB, rng *rand.Rand) ([]string, error)
		}{
			{"keyword", func(ctx context.Context, db *sql.DB, rng *rand.Rand) ([]string, error) {
				return enginebench.KeywordEq(ctx, db, "tag", g.Tag(rng.IntN(enginebench.TagCount)), 20)
			}},
			{"range", func(ctx context.Context, db *sql.DB, rng *rand.Rand) ([]string, error) {
				lo := float64(rng.IntN(990))
				return enginebench.NumberRange(ctx, db, "priority", lo, lo+10, 20)
			}},
			{"match", func(ctx context.Context, db *sql.DB, rng *rand.Rand) ([]string, error) {
				// Two words of ranks 10..500: common enough to match, rare enough to rank.
				q := g.Word(10+rng.IntN(490)) + " " + g.Word(10+rng.IntN(490))
				return enginebench.Match(ctx, db, q, 20)
			}},
		}
		for _, k := range kinds {
			b.Run(d.name+"/"+k.name, func(b *testing.B) {
				db := dbFor(b, d)
				ctx := b.Context()
				rng := rand.New(rand.NewPCG(2, 3))
				ds := make([]time.Duration, 0, b.N)
				empty := 0
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					res, err := k.run(ctx, db, rng)
					ds = append(ds, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					if len(res) == 0 {
						empty++
					}
				}
				b.StopTimer()
				quantiles(b, ds)
				b.ReportMetric(float64(empty)/float64(b.N), "empty/op")
			})
		}
	}
}

// BenchmarkOpen is start-up: open the populated database, apply the pragmas and schema
// (no-ops on an existing database) and answer FirstQuery, then close.
func BenchmarkOpen(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			dbFor(b, d).Close()
			path := populated[d.name]
			ctx := b.Context()
			ds := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				db, err := d.open(path)
				if err != nil {
					b.Fatal(err)
				}
				if err := enginebench.Setup(ctx, db); err != nil {
					b.Fatal(err)
				}
				if _, err := enginebench.Count(ctx, db, enginebench.FirstQuery); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			quantiles(b, ds)
		})
	}
}
