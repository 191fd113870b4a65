package simnet

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"testing"
	"testing/synctest"
	"time"
)

// Options are what `exopeer-sim` passes to a scenario.
type Options struct {
	Nodes         int
	Seed          uint64
	CrashFraction float64
	Lookups       int
	// Entries is how many entries each node appends (chain), or how
	// many mutations each store node makes (store).
	Entries int
	// Minutes, if not zero, makes the messages scenario the people
	// scenario (ScenarioPeople) over that many virtual minutes, with
	// Nodes people.
	Minutes int
	// BlobSize is the blob's size in bytes (blob); 0: the scenario's
	// default, 256 MiB.
	BlobSize int64
	// MemoryLimit, if not zero, is the soft memory limit of the Go runtime
	// while the scenario runs (runtime/debug.SetMemoryLimit): the
	// collector works harder near it instead of letting garbage pile up.
	MemoryLimit int64
	// HeapProfile, if set, is a file to write a heap profile to when the
	// scenario has run, before the network closes.
	HeapProfile string
}

// Scenario runs inside a synctest bubble on a fresh network.
type Scenario func(ctx context.Context, n *Net, o Options) (Report, error)

// Scenarios are the scenarios `exopeer-sim` knows, by name.
var Scenarios = map[string]Scenario{
	"dht": func(ctx context.Context, n *Net, o Options) (Report, error) {
		return ScenarioDHT(ctx, n, DHTOptions{Nodes: o.Nodes, Lookups: o.Lookups, CrashFraction: o.CrashFraction})
	},
	"lan": func(ctx context.Context, n *Net, o Options) (Report, error) {
		return ScenarioLAN(ctx, n, LANOptions{Nodes: o.Nodes})
	},
	"cell": func(ctx context.Context, n *Net, o Options) (Report, error) {
		crash := int(o.CrashFraction * float64(o.Nodes))
		if o.CrashFraction > 0 && crash == 0 {
			crash = 1
		}
		return ScenarioCell(ctx, n, CellOptions{Nodes: o.Nodes, Crash: crash})
	},
	"chain": func(ctx context.Context, n *Net, o Options) (Report, error) {
		return ScenarioChain(ctx, n, ChainOptions{Nodes: o.Nodes, Entries: o.Entries, Crash: o.CrashFraction})
	},
	"blob": func(ctx context.Context, n *Net, o Options) (Report, error) {
		seeders := 0
		if o.Nodes > 2 {
			seeders = o.Nodes - 3 // the one seeder and the two fetchers
		}
		return ScenarioBlob(ctx, n, BlobOptions{Size: o.BlobSize, Seeders: seeders})
	},
	"store": func(ctx context.Context, n *Net, o Options) (Report, error) {
		dir, err := os.MkdirTemp("", "exopeer-sim-store-")
		if err != nil {
			return Report{}, fmt.Errorf("simnet: %w", err)
		}
		defer os.RemoveAll(dir)
		// The nodes are closed before the directory goes: their indexes
		// are open in it.
		defer n.Close()
		return ScenarioStore(ctx, n, StoreOptions{Nodes: o.Nodes, Ops: o.Entries, Dir: dir})
	},
	"messages": func(ctx context.Context, n *Net, o Options) (Report, error) {
		dir, err := os.MkdirTemp("", "exopeer-sim-messages-")
		if err != nil {
			return Report{}, fmt.Errorf("simnet: %w", err)
		}
		defer os.RemoveAll(dir)
		defer n.Close() // before the directory goes
		if o.Minutes > 0 {
			return ScenarioPeople(ctx, n, PeopleOptions{People: o.Nodes, Minutes: o.Minutes, Dir: dir})
		}
		return ScenarioMessages(ctx, n, MessageOptions{People: o.Nodes, PerPair: o.Entries, Dir: dir})
	},
}

// ScenarioNames lists the scenarios, sorted.
func ScenarioNames() []string {
	var names []string
	for k := range Scenarios {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// RunInBubble runs scenario s on a new network inside a synctest bubble
// under t, and fills in the wall time and the peak heap. Tests call it;
// Main calls it for `exopeer-sim`.
func RunInBubble(t *testing.T, s Scenario, cfg Config, o Options) (Report, error) {
	if o.MemoryLimit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(o.MemoryLimit))
	}
	stop := sampleHeap()
	wall := time.Now()
	var rep Report
	var err error
	synctest.Test(t, func(t *testing.T) {
		n := New(cfg)
		rep, err = s(context.Background(), n, o)
		rep.Goroutines = runtime.NumGoroutine()
		if o.HeapProfile != "" {
			if perr := writeHeapProfile(o.HeapProfile); perr != nil && err == nil {
				err = perr
			}
		}
		if cerr := n.Close(); cerr != nil && err == nil {
			err = cerr
		}
		time.Sleep(time.Minute) // let stragglers' timers fire
	})
	rep.WallTime = time.Since(wall).Seconds()
	rep.PeakHeap, rep.PeakLiveHeap = stop()
	return rep, err
}

// sampleHeap samples the heap every 50 ms of real time until the returned
// function is called, which returns the peaks of the heap's objects (live
// and not yet collected) and of the live heap (as of the last collection).
// It runs outside any bubble.
func sampleHeap() (stop func() (heap, live uint64)) {
	sample := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	var peakHeap, peakLive uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peakHeap = max(peakHeap, sample[0].Value.Uint64())
			peakLive = max(peakLive, sample[1].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		<-finished
		return peakHeap, peakLive
	}
}

// Main runs one scenario from a program, as `exopeer-sim` does, prints its
// report to stdout (JSON if asJSON; a failed run's too, when the scenario
// got far enough to name itself in it) and exits the process: 0 if the
// scenario ran, 1 if it failed. synctest runs only under a *testing.T, so
// the scenario runs as the one test of testing.Main, the entry point the
// testing package keeps for programs that run tests themselves. Main never
// returns.
func Main(name string, cfg Config, o Options, asJSON bool, stdout, stderr io.Writer) {
	s, ok := Scenarios[name]
	if !ok {
		fmt.Fprintf(stderr, "exopeer-sim: unknown scenario %q (known: %v)\n", name, ScenarioNames())
		os.Exit(2)
	}
	// testing prints PASS/FAIL on os.Stdout; keep it off the report, which
	// goes to stdout (held here before the swap).
	os.Stdout = os.Stderr
	testing.Init()
	// The scenario decides its own length; and the testing flags come from
	// here, not from the command line, which is exopeer's.
	_ = flag.Set("test.timeout", "0")
	_ = flag.CommandLine.Parse(nil)
	test := func(t *testing.T) {
		rep, err := RunInBubble(t, s, cfg, o)
		// A failed run's report, when it has one, says what failed.
		var werr error
		if err == nil || rep.Scenario != "" {
			if asJSON {
				werr = rep.WriteJSON(stdout)
			} else {
				werr = rep.WriteText(stdout)
			}
		}
		if err != nil {
			t.Fatalf("scenario %s (seed %d): %v", name, cfg.Seed, err)
		}
		if werr != nil {
			t.Fatal(werr)
		}
	}
	testing.Main(func(string, string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "simnet_" + name, F: test}}, nil, nil)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("simnet: heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("simnet: heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The goroutines too: at scale their stacks weigh as much as the heap.
	g, err := os.Create(path + ".goroutines")
	if err != nil {
		return fmt.Errorf("simnet: goroutine profile: %w", err)
	}
	if err := pprof.Lookup("goroutine").WriteTo(g, 0); err != nil {
		g.Close()
		return fmt.Errorf("simnet: goroutine profile: %w", err)
	}
	return g.Close()
}
