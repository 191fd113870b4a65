// Package probe is the body of the tiny programs under cmd/: each links one driver (or
// none, for the baseline) and reports, in a clean process, the insert rate of a fresh
// database, the time to open an existing one and answer a first query, and the idle
// memory after that (Go runtime and the process's VmRSS from /proc/self/status).
package probe

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/exopeer/exopeer/store/enginebench"
)

// Opener opens the database at path with one driver.
type Opener func(path string) (*sql.DB, error)

// Main parses args and runs: "-populate N DB" builds DB with N entities; "DB" opens it and
// reports start-up and idle memory. With a nil open only the memory is reported.
func Main(name string, open Opener, args []string, out io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	populate := fs.Int("populate", 0, "create the database with this many entities (3 traits each)")
	batch := fs.Int("batch", 1000, "entities per transaction when populating")
	seed := fs.Uint64("seed", 1, "generator seed")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	ctx := context.Background()
	if open == nil {
		return memory(name, out)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("probe: want one database path, got %d", fs.NArg())
	}
	path := fs.Arg(0)
	if *populate > 0 {
		start := time.Now()
		db, err := open(path)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := enginebench.Setup(ctx, db); err != nil {
			return err
		}
		n, err := enginebench.Populate(ctx, db, enginebench.NewGenerator(*seed, 1_780_000_000_000), *populate, *batch)
		if err != nil {
			return err
		}
		d := time.Since(start)
		fmt.Fprintf(out, "%s populate: %d entities, %d traits in %v: %.0f traits/s\n", name, *populate, n, d.Round(time.Millisecond), float64(n)/d.Seconds())
		return nil
	}
	start := time.Now()
	db, err := open(path)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := enginebench.Setup(ctx, db); err != nil {
		return err
	}
	if _, err := enginebench.Count(ctx, db, enginebench.FirstQuery); err != nil {
		return err
	}
	took := time.Since(start)
	n, err := enginebench.Count(ctx, db, `SELECT count(*) FROM traits WHERE type = ?`, enginebench.TypeNote)
	if err != nil {
		return err
	}
	var version string
	if err := db.QueryRowContext(ctx, `SELECT sqlite_version()`).Scan(&version); err != nil {
		return fmt.Errorf("probe: sqlite_version: %w", err)
	}
	fmt.Fprintf(out, "%s (SQLite %s) open+first query: %v (%d notes)\n", name, version, took.Round(10*time.Microsecond), n)
	return memory(name, out)
}

func memory(name string, out io.Writer) error {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	rss := "?"
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
	}
	fmt.Fprintf(out, "%s idle: VmRSS %s, Go Sys %.1f MiB, HeapInuse %.1f MiB\n", name, rss, float64(ms.Sys)/(1<<20), float64(ms.HeapInuse)/(1<<20))
	return nil
}
