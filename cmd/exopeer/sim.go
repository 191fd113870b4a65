package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/exopeer/exopeer/simnet"
)

// cmdSim runs a simulated network scenario and prints its report. On
// success it does not return: the scenario runs under the testing package
// (synctest needs it), which exits the process.
func cmdSim(args []string, stdout, stderr io.Writer) error {
	fs, _ := flagSet("sim", stderr)
	nodes := fs.Int("nodes", 200, "number of nodes (chain: default 5)")
	seed := fs.Uint64("seed", 1, "seed of every random choice (keys, topology, lookups, faults)")
	crash := fs.Float64("crash", 0, "fraction of the nodes that crash after the network settled (0 to 0.9; chain: that each crash takes down, default one node)")
	lookups := fs.Int("lookups", 10, "lookups per live node (dht)")
	entries := fs.Int("entries", 1000, "entries each node appends (chain)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	verbose := fs.Bool("v", false, "log the nodes (warnings and errors) to stderr")
	memLimit := fs.Int64("memlimit", -1, "soft memory limit of the run, in MiB (0: none; default 6 GiB, or 8 MiB per node if more)")
	heapProfile := fs.String("memprofile", "", "write a heap profile to this file when the scenario has run")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError{fmt.Sprintf("want a SCENARIO first, one of %v", simnet.ScenarioNames())}
	}
	name := args[0]
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	case *nodes < 2:
		return usageError{"--nodes must be at least 2"}
	case *crash < 0 || *crash > 0.9:
		return usageError{"--crash must be between 0 and 0.9"}
	case *lookups < 1:
		return usageError{"--lookups must be at least 1"}
	case *entries < 1:
		return usageError{"--entries must be at least 1"}
	}
	if name == "chain" {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "nodes" })
		if !set {
			*nodes = 5
		}
	}
	if _, ok := simnet.Scenarios[name]; !ok {
		return usageError{fmt.Sprintf("unknown scenario %q, want one of %v", name, simnet.ScenarioNames())}
	}
	if *memLimit < 0 {
		// ~5.6 MiB per node was measured at 1,000 nodes; a limit below
		// what the nodes need only makes the collector run all the time.
		*memLimit = max(6<<10, int64(*nodes)*8)
	}
	cfg := simnet.Config{Seed: *seed}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	simnet.Main(name, cfg, simnet.Options{Nodes: *nodes, Seed: *seed, CrashFraction: *crash, Lookups: *lookups, Entries: *entries, HeapProfile: *heapProfile, MemoryLimit: *memLimit << 20}, *asJSON, stdout, stderr)
	return nil
}
