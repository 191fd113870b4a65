package index

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
)

// The benchmarks measure the index on -index.n entities (100,000 by
// default) of 3 traits each: an exo.note (title, body of 8 to 40 words
// from a 5,000-word Zipf vocabulary, 1 to 3 tags among 200), a registered
// bench.task (status keyword, prio number, due time) and an unregistered
// x.file; one chain entry per entity (its 3 puts: as the service's Put
// writes them), applied in batches of -index.batch arrivals. See
// README.md for the figures and commands.
var (
	benchN     = flag.Int("index.n", 100_000, "entities in the benchmarks' index")
	benchBatch = flag.Int("index.batch", 500, "arrivals per Apply in the benchmarks")
)

var benchTask = store.Schema{Type: "bench.task", Fields: []store.Field{
	{Name: "status", Kind: store.Keyword},
	{Name: "prio", Kind: store.Number},
	{Name: "due", Kind: store.Time},
}}

func benchRegistry(tb testing.TB) *store.Registry {
	reg := store.NewRegistry()
	if err := reg.Register(benchTask); err != nil {
		tb.Fatal(err)
	}
	return reg
}

// benchVocab is the vocabulary: word i is a pronounceable token.
func benchVocab() []string {
	syl := []string{"ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "pe", "du", "ga", "zi"}
	out := make([]string, 5000)
	for i := range out {
		w := ""
		for n := i + 1; n > 0; n /= len(syl) {
			w += syl[n%len(syl)]
		}
		out[i] = w
	}
	return out
}

// benchData is the generated workload: payloads of one entry per entity.
type benchData struct {
	vocab    []string
	arrivals []Arrival
}

var (
	benchOnce   sync.Once
	benchShared *benchData
)

func benchWorkload(tb testing.TB) *benchData {
	benchOnce.Do(func() {
		r := rand.New(rand.NewPCG(1, 2))
		vocab := benchVocab()
		zipf := rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
		text := func(n int) string {
			var b strings.Builder
			for i := range n {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(vocab[zipf.Uint64()])
			}
			return b.String()
		}
		d := &benchData{vocab: vocab}
		for i := range *benchN {
			tm := t0.Add(time.Duration(i) * time.Second)
			tags := make([]string, 1+r.IntN(3))
			for j := range tags {
				tags[j] = fmt.Sprintf("tag%d", r.IntN(200))
			}
			nd, _ := json.Marshal(map[string]any{"title": text(2 + r.IntN(4)), "body": text(8 + r.IntN(33)), "tags": tags})
			td, _ := json.Marshal(map[string]any{"status": []string{"open", "done", "waiting"}[r.IntN(3)], "prio": r.IntN(1000),
				"due": tm.Add(time.Duration(r.IntN(1000)) * time.Hour).Format(time.RFC3339)})
			fd, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("file%d.txt", i), "size": r.IntN(1 << 20)})
			e := eid(i)
			p, err := store.Encode(store.Transaction{Ops: []store.Op{
				store.PutTrait(e, store.Trait{Type: "exo.note", ID: "exo.note", Doc: nd, Created: tm, Modified: tm}),
				store.PutTrait(e, store.Trait{Type: "bench.task", ID: "bench.task", Doc: td, Created: tm, Modified: tm}),
				store.PutTrait(e, store.Trait{Type: "x.file", ID: "x.file", Doc: fd, Created: tm, Modified: tm}),
			}})
			if err != nil {
				panic(err)
			}
			d.arrivals = append(d.arrivals, Arrival{Index: uint64(i), CID: fmt.Appendf(nil, "cid%d", i),
				Pos: store.Pos{Clock: uint64(i + 1), Key: fmt.Sprintf("cid%d", i)}, Payload: p})
		}
		benchShared = d
	})
	return benchShared
}

// applyBench applies the whole workload to ix from arrival 0 and returns
// the time it took.
func applyBench(tb testing.TB, ix *Index, d *benchData) time.Duration {
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < len(d.arrivals); i += *benchBatch {
		if _, err := ix.Apply(ctx, d.arrivals[i:min(i+*benchBatch, len(d.arrivals))]); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkApply indexes the workload into a new index, and in the same
// run inserts comparable rows (the same traits, terms and texts) into the
// same tables with plain prepared INSERTs in one transaction: the
// engine's own rate.
func BenchmarkApply(b *testing.B) {
	d := benchWorkload(b)
	reg := benchRegistry(b)
	muts := float64(3 * len(d.arrivals))
	var applied, raw, appliedCPU, rawCPU time.Duration
	for b.Loop() {
		ix, err := Open(b.TempDir(), reg, Options{})
		if err != nil {
			b.Fatal(err)
		}
		c := cpuTime()
		applied += applyBench(b, ix, d)
		appliedCPU += cpuTime() - c
		ix.Close()
		r, rc := rawInsert(b, reg, d)
		raw, rawCPU = raw+r, rawCPU+rc
	}
	n := muts * float64(b.N)
	b.ReportMetric(n/applied.Seconds(), "mutations/s")
	b.ReportMetric(n/raw.Seconds(), "raw-rows/s")
	b.ReportMetric(applied.Seconds()/raw.Seconds(), "x-raw")
	// The same per second of the process's CPU time (user and system): on
	// a shared machine, wall time measures the neighbours too.
	b.ReportMetric(n/appliedCPU.Seconds(), "mutations/cpu-s")
	b.ReportMetric(n/rawCPU.Seconds(), "raw-rows/cpu-s")
	b.ReportMetric(appliedCPU.Seconds()/rawCPU.Seconds(), "x-raw-cpu")
}

// cpuTime is the process's CPU time so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawInsert writes the workload's rows (traits, terms, texts) into a new
// index's tables with prepared INSERTs in one transaction, without
// reading anything back: the engine's own insert rate for these rows.
func rawInsert(b *testing.B, reg *store.Registry, d *benchData) (wall, cpu time.Duration) {
	ix, err := Open(b.TempDir(), reg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	// Decoded outside the timing: the raw rate is the engine's alone.
	type rowData struct {
		ent    []byte
		t      store.Trait
		ex     extracted
		ct, mt []byte
	}
	var rows []rowData
	for _, a := range d.arrivals {
		tx, err := store.Decode(a.Payload)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range tx.Ops {
			rows = append(rows, rowData{ent: o.Entity[:], t: o.Trait, ex: ix.extract(o.Trait.Type, o.Trait.Doc), ct: timeKey(o.Trait.Created), mt: timeKey(o.Trait.Modified)})
		}
	}
	st := &ix.st
	start, startCPU := time.Now(), cpuTime()
	if _, err := ix.wc.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		b.Fatal(err)
	}
	for i, r := range rows {
		var fs firsts // what apply writes of a put: its place and Created
		fs.add(at{clock: uint64(i), key: []byte("k")}, r.t.Created)
		res, err := st.insTrait.ExecContext(ctx, r.ent, string(r.t.ID), r.t.Type, []byte(r.t.Doc), r.ct, r.mt, int64(i), []byte("k"), 0, 0, r.ex.text != "", fs.encode())
		if err != nil {
			b.Fatal(err)
		}
		id, _ := res.LastInsertId()
		for _, tm := range r.ex.terms {
			if _, err := st.insTerm.ExecContext(ctx, id, tm.field, tm.v, r.ent, r.mt); err != nil {
				b.Fatal(err)
			}
		}
		if r.ex.text != "" {
			if _, err := st.insText.ExecContext(ctx, id, r.ex.text); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := ix.wc.ExecContext(ctx, `COMMIT`); err != nil {
		b.Fatal(err)
	}
	return time.Since(start), cpuTime() - startCPU
}

var (
	builtOnce sync.Once
	builtDir  string
)

// builtIndex returns the directory of an index of the whole workload,
// built once per benchmark run (removed by TestMain).
func builtIndex(b *testing.B) string {
	d := benchWorkload(b)
	builtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "exopeer-index-bench-")
		if err != nil {
			b.Fatal(err)
		}
		ix, err := Open(dir, benchRegistry(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		applyBench(b, ix, d)
		if err := ix.Close(); err != nil {
			b.Fatal(err)
		}
		builtDir = dir
	})
	if builtDir == "" {
		b.Fatal("no index built")
	}
	return builtDir
}

func removeBuilt() {
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
}

// latencies runs query i for i in 0..b.N-1 and reports p50 and p99.
func latencies(b *testing.B, run func(i int) error) {
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := run(i); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99-µs")
}

func openBuilt(b *testing.B) *Index {
	ix, err := Open(builtIndex(b), benchRegistry(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ix.Close() })
	return ix
}

// BenchmarkQueryField: notes with a tag (about 1% of them), newest first,
// 20 a page.
func BenchmarkQueryField(b *testing.B) {
	ix := openBuilt(b)
	r := rand.New(rand.NewPCG(3, 4))
	latencies(b, func(int) error {
		_, err := ix.Query(context.Background(), store.Query{Type: "exo.note", Limit: 20,
			Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: fmt.Sprintf("tag%d", r.IntN(200))}}})
		return err
	})
}

// BenchmarkQueryRange: tasks with prio in a range of 10 (1%), by prio.
func BenchmarkQueryRange(b *testing.B) {
	ix := openBuilt(b)
	r := rand.New(rand.NewPCG(3, 4))
	latencies(b, func(int) error {
		lo := r.IntN(990)
		_, err := ix.Query(context.Background(), store.Query{Type: "bench.task", Limit: 20, Order: "prio",
			Where: []store.Predicate{{Field: "prio", Op: store.Ge, Value: fmt.Sprint(lo)}, {Field: "prio", Op: store.Lt, Value: fmt.Sprint(lo + 10)}}})
		return err
	})
}

// BenchmarkQueryMatch: a two-word full-text match (words of rank 20 to
// 2,000 in the vocabulary), by relevance, 20 a page.
func BenchmarkQueryMatch(b *testing.B) {
	ix := openBuilt(b)
	d := benchWorkload(b)
	r := rand.New(rand.NewPCG(5, 6))
	latencies(b, func(int) error {
		w1, w2 := d.vocab[20+r.IntN(1980)], d.vocab[20+r.IntN(1980)]
		_, err := ix.Query(context.Background(), store.Query{Match: w1 + " " + w2, Limit: 20})
		return err
	})
}

// BenchmarkQueryMatchOne: a one-word match of a word of rank 20 to 2,000.
func BenchmarkQueryMatchOne(b *testing.B) {
	ix := openBuilt(b)
	d := benchWorkload(b)
	r := rand.New(rand.NewPCG(5, 6))
	latencies(b, func(int) error {
		_, err := ix.Query(context.Background(), store.Query{Match: d.vocab[20+r.IntN(1980)], Limit: 20})
		return err
	})
}

// BenchmarkQueryList: notes, newest first, 20 a page, the first page or
// a page after a cursor (a listing; the type holds every entity).
func BenchmarkQueryList(b *testing.B) {
	ix := openBuilt(b)
	p, err := ix.Query(context.Background(), store.Query{Type: "exo.note", Limit: 20})
	if err != nil {
		b.Fatal(err)
	}
	latencies(b, func(i int) error {
		q := store.Query{Type: "exo.note", Limit: 20}
		if i%2 == 1 {
			q.After = p.Next
		}
		_, err := ix.Query(context.Background(), q)
		return err
	})
}

// BenchmarkQueryGet: Get of a random entity.
func BenchmarkQueryGet(b *testing.B) {
	ix := openBuilt(b)
	r := rand.New(rand.NewPCG(7, 8))
	latencies(b, func(int) error {
		_, err := ix.Get(context.Background(), eid(r.IntN(*benchN)), nil)
		return err
	})
}

// BenchmarkWatchUpdate: the time from the start of an Apply that changes
// a watched query's page (a note gets the watched tag) to the watch's
// event, with the whole index underneath.
func BenchmarkWatchUpdate(b *testing.B) {
	dir := b.TempDir()
	if err := os.CopyFS(dir, os.DirFS(builtIndex(b))); err != nil {
		b.Fatal(err)
	}
	ix, err := Open(dir, benchRegistry(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	ch, err := ix.Watch(ctx, store.Query{Type: "exo.note", Limit: 20, Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "watched"}}})
	if err != nil {
		b.Fatal(err)
	}
	<-ch
	next := uint64(*benchN)
	latencies(b, func(i int) error {
		tm := t0.Add(time.Duration(*benchN+i) * time.Second)
		doc, _ := json.Marshal(map[string]any{"body": "watched note", "tags": []string{"watched"}})
		p, err := store.Encode(store.Transaction{Ops: []store.Op{store.PutTrait(eid(i%*benchN), store.Trait{Type: "exo.note", ID: "exo.note", Doc: doc, Created: tm, Modified: tm})}})
		if err != nil {
			return err
		}
		if _, err := ix.Apply(ctx, []Arrival{{Index: next, CID: []byte("w"), Pos: store.Pos{Clock: uint64(*benchN + 1 + i), Key: "w"}, Payload: p}}); err != nil {
			return err
		}
		next++
		if ev := <-ch; len(ev.Changes) == 0 {
			return fmt.Errorf("watch event without changes")
		}
		return nil
	})
}

// BenchmarkReindex: Reset, then re-apply the whole workload.
func BenchmarkReindex(b *testing.B) {
	dir := b.TempDir()
	if err := os.CopyFS(dir, os.DirFS(builtIndex(b))); err != nil {
		b.Fatal(err)
	}
	ix, err := Open(dir, benchRegistry(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	d := benchWorkload(b)
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		if err := ix.Reset(context.Background()); err != nil {
			b.Fatal(err)
		}
		applyBench(b, ix, d)
		took += time.Since(start)
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/reindex")
}

// BenchmarkOpen: Open of the built index, its checkpoint, and Close; and
// the index's size on disk per entity.
func BenchmarkOpen(b *testing.B) {
	dir := builtIndex(b)
	fi, err := os.Stat(filepath.Join(dir, "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	reg := benchRegistry(b)
	latencies(b, func(int) error {
		ix, err := Open(dir, reg, Options{})
		if err != nil {
			return err
		}
		if _, err := ix.Checkpoint(context.Background()); err != nil {
			return err
		}
		return ix.Close()
	})
	b.ReportMetric(float64(fi.Size())/float64(*benchN), "bytes/entity")
}

// BenchmarkStats: Stats of the built index (it counts the live traits and
// entities).
func BenchmarkStats(b *testing.B) {
	ix := openBuilt(b)
	latencies(b, func(int) error {
		_, err := ix.Stats(context.Background())
		return err
	})
}
