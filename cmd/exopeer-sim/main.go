// Command exopeer-sim runs a simulated exopeer network in virtual time and
// reports on it:
//
//	exopeer-sim SCENARIO [--nodes N] [--seed S] [--crash F] [--json] ...
//
// The scenarios are simnet's (blob, cell, chain, dht, lan, messages,
// store). The
// blob scenario runs on links of 100 Mbit/s with 20 ms one-way latency. A scenario runs as
// the one test of testing.Main, since synctest runs only under a
// *testing.T; that is why the simulator is a command of its own, and the
// exopeer binary users install carries no test harness.
//
// Exit status: 0 ok, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/simnet"
)

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is an error in how the command was called: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Main runs the command with args and returns its exit code when the
// scenario did not run: 1 on failure, 2 on a usage error. A scenario that
// runs ends the process (simnet.Main): 0 if it ran, 1 if it failed.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := app(stdout, stderr).Run(ctx, append([]string{"exopeer-sim"}, args...))
	switch {
	case err == nil:
		return 0
	case errors.As(err, new(usageError)), errors.As(err, new(cli.ExitCoder)):
		// cli.ExitCoder: the library's own, a help topic that does not
		// exist (`exopeer-sim -h x`).
		fmt.Fprintf(stderr, "exopeer-sim: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "exopeer-sim: %v\n", err)
		return 1
	}
}

func app(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "exopeer-sim",
		Usage:     "run a simulated exopeer network in virtual time and report",
		UsageText: "exopeer-sim SCENARIO [flags]   (scenarios: " + strings.Join(simnet.ScenarioNames(), ", ") + ")",
		Description: "Every random choice (keys, topology, lookups, faults) comes from --seed: a seed replays a run.\n\n" +
			"Exit status: 0 ok, 1 failure, 2 usage error.",
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Aliases: []string{"people"}, Value: 200, Usage: "number of nodes (chain and store: default 5; blob: default 6, the seeders of the many-seeder fetch plus 3; messages: people, each a cell of 1 to 3 devices, default 20)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of every random choice (keys, topology, lookups, faults)"},
			&cli.Float64Flag{Name: "crash", Usage: "fraction of the nodes that crash after the network settled (0 to 0.9; chain: that each crash takes down, default one node)"},
			&cli.Float64Flag{Name: "slow", Usage: "fraction of the links that are slow (400 ms one way instead of 10 ms), picked by the seed (cell; 0 to 1)"},
			&cli.IntFlag{Name: "lookups", Value: 10, Usage: "lookups per live node (dht)"},
			&cli.IntFlag{Name: "entries", Value: 1000, Usage: "entries each node appends (chain); mutations each store node makes (store: default 60); texts each person of a pair sends the other (messages: default 3)"},
			&cli.IntFlag{Name: "minutes", Usage: "messages: run the people scenario over this many virtual minutes (phones online a few minutes at a time, blind mailboxes, shared files, churn); 0: the plain messages scenario"},
			&cli.Int64Flag{Name: "size", Value: 256, Usage: "size of the blob, in MiB (blob)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.BoolFlag{Name: "v", Usage: "log the nodes (warnings and errors) to stderr"},
			&cli.Int64Flag{Name: "memlimit", Value: -1, Usage: "soft memory limit of the run, in MiB (0: none; default 6 GiB, or 8 MiB per node if more)"},
			&cli.StringFlag{Name: "memprofile", Usage: "write a heap profile to this file when the scenario has run"},
		},
		HideHelpCommand: true,
		OnUsageError: func(_ context.Context, _ *cli.Command, err error, _ bool) error {
			return usageError{err.Error()}
		},
		ExitErrHandler: func(context.Context, *cli.Command, error) {}, // Main maps errors to exit codes
		Action:         run,
	}
}

func run(_ context.Context, cmd *cli.Command) error {
	args := cmd.Args().Slice()
	nodes, crash := cmd.Int("nodes"), cmd.Float64("crash")
	switch {
	case len(args) == 0:
		return usageError{fmt.Sprintf("want a SCENARIO first, one of %v", simnet.ScenarioNames())}
	case len(args) > 1:
		return usageError{fmt.Sprintf("unexpected argument %q", args[1])}
	case !slices.Contains(simnet.ScenarioNames(), args[0]):
		return usageError{fmt.Sprintf("unknown scenario %q, want one of %v", args[0], simnet.ScenarioNames())}
	case nodes < 2:
		return usageError{"--nodes must be at least 2"}
	case crash < 0 || crash > 0.9:
		return usageError{"--crash must be between 0 and 0.9"}
	case cmd.Float64("slow") < 0 || cmd.Float64("slow") > 1:
		return usageError{"--slow must be between 0 and 1"}
	case cmd.Int("lookups") < 1:
		return usageError{"--lookups must be at least 1"}
	case cmd.Int("entries") < 1:
		return usageError{"--entries must be at least 1"}
	case cmd.Int("minutes") < 0:
		return usageError{"--minutes must not be negative"}
	case cmd.Int("minutes") > 0 && args[0] != "messages":
		return usageError{"--minutes is for the messages scenario"}
	case cmd.Int("minutes") > 0 && nodes < 5 && cmd.IsSet("nodes"):
		return usageError{"--people must be at least 5 with --minutes"}
	case cmd.Int("minutes") > 0 && cmd.IsSet("entries"):
		return usageError{"--entries is not for the people scenario (--minutes)"}
	case cmd.Int64("size") < 1:
		return usageError{"--size must be at least 1 (MiB)"}
	}
	name := args[0]
	if (name == "chain" || name == "store") && !cmd.IsSet("nodes") {
		nodes = 5
	}
	if name == "blob" {
		if !cmd.IsSet("nodes") {
			nodes = 6
		}
		if nodes < 4 {
			return usageError{"--nodes must be at least 4 for blob (one seeder, its fetcher, one of the many seeders, their fetcher)"}
		}
	}
	if name == "messages" && !cmd.IsSet("nodes") {
		nodes = 20
	}
	entries := cmd.Int("entries")
	if (name == "store" || name == "messages") && !cmd.IsSet("entries") {
		entries = 0 // the scenario's own default: 60 mutations a node, 3 texts each way
	}
	memLimit := cmd.Int64("memlimit")
	if memLimit < 0 {
		// ~5.6 MiB per node was measured at 1,000 nodes; a limit below
		// what the nodes need only makes the collector run all the time.
		memLimit = max(6<<10, int64(nodes)*8)
	}
	cfg := simnet.Config{Seed: cmd.Uint64("seed")}
	if name == "blob" {
		cfg.Bandwidth = simnet.BlobBandwidth
		cfg.Latency = func(int, int) time.Duration { return simnet.BlobLatency }
	}
	if f := cmd.Float64("slow"); f > 0 {
		cfg.Latency = simnet.SlowLinks(cfg.Seed, f)
	}
	if cmd.Bool("v") {
		cfg.Logger = slog.New(slog.NewTextHandler(cmd.Root().ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	simnet.Main(name, cfg, simnet.Options{
		Nodes: nodes, Seed: cfg.Seed, CrashFraction: crash, Lookups: cmd.Int("lookups"), Entries: entries,
		Minutes: cmd.Int("minutes"), HeapProfile: cmd.String("memprofile"), MemoryLimit: memLimit << 20, BlobSize: cmd.Int64("size") << 20,
	}, cmd.Bool("json"), cmd.Root().Writer, cmd.Root().ErrWriter)
	return nil
}
