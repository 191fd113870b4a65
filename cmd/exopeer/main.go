// Command exopeer runs a node of the exopeer network and talks to it.
//
//	exopeer run [--dir D] [--port N] [--bootstrap ADDR]... [--mdns=false]
//	exopeer init [--dir D]
//	exopeer id | status | peers [--json]
//	exopeer connect MULTIADDR
//	exopeer cell create NAME | invite | join CODE | members | remove PEER
//	exopeer chain append [--file F] TEXT... | log [--after POS] [--follow] | status
//	exopeer sim SCENARIO [--nodes N] [--seed S] [--crash F] [--json]
//
// Every verb but run and init talks to the node running on the data dir
// through its local control API. The data dir is --dir, else $EXOPEER_DIR,
// else "exopeer" under the user's data directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/peer"
)

const usage = `exopeer: one peer of a serverless personal cloud and private messenger

usage:
  exopeer run [flags]           start the node (creates the data dir on first run)
  exopeer init [flags]          create the data dir, key and config without starting
  exopeer id [--json]           the running node's peer ID and addresses
  exopeer status [--json]       what the running node sees
  exopeer peers [--json]        the peers it is connected to, how found, round trip
  exopeer connect MULTIADDR     dial a peer by hand (.../p2p/<peer ID>)
  exopeer cell VERB             the cell: create NAME | invite | join CODE | members | remove PEER
  exopeer chain VERB            the cell's chain: append TEXT | log [--follow] | status
  exopeer sim SCENARIO [flags]  run a simulated network in virtual time and report
                                (--nodes N --seed S --crash F --json; scenarios: cell, chain, dht, lan)
  exopeer version               print the version

Every verb takes --dir DIR (default $EXOPEER_DIR, else the user's data dir).
Flags may come before or after a verb's arguments; -- ends the flags (for a
TEXT that starts with -).
Run "exopeer VERB -h" for the flags of a verb.
`

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the CLI with args and returns the exit code: 0 on success, 1 on
// failure, 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	verb, rest := args[0], args[1:]
	var err error
	switch verb {
	case "run":
		err = cmdRun(ctx, rest, stdout, stderr)
	case "init":
		err = cmdInit(rest, stdout, stderr)
	case "id", "status", "peers":
		err = cmdQuery(ctx, verb, rest, stdout, stderr)
	case "connect":
		err = cmdConnect(ctx, rest, stdout, stderr)
	case "cell":
		err = cmdCell(ctx, rest, stdout, stderr)
	case "chain":
		err = cmdChain(ctx, rest, stdout, stderr)
	case "sim":
		err = cmdSim(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "exopeer", peer.Version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "exopeer: unknown verb %q\n\n%s", verb, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "exopeer %s: %v\n", verb, err)
		return 2
	default:
		fmt.Fprintf(stderr, "exopeer %s: %v\n", verb, err)
		return 1
	}
}

// usageError marks errors in how a verb was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// flagSet returns a FlagSet for verb with the --dir flag every verb has.
func flagSet(verb string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("exopeer "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "data dir (default $EXOPEER_DIR, else the user's data dir)")
	return fs, dir
}

// parse parses args, flags anywhere among the positional arguments, and
// maps flag errors to usage errors. The standard flag package stops at the
// first positional argument, so that `chain append hello --dir D` would
// append "hello --dir D" on the default data dir; here every argument that
// starts with "-" (but "-" alone) is a flag, with the next argument as its
// value unless it is a boolean flag or has "=value", and "--" ends the flags
// so that a text may start with "-". Unknown flags are errors.
func parse(fs *flag.FlagSet, args []string) error {
	flags, positional, complete := splitArgs(fs, args)
	if complete {
		flags = append(append(flags, "--"), positional...)
	} // else the last flag lacks its value, and fs.Parse says so
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	// --dir "$D" with D unset must not fall back on the default data dir.
	var emptyDir bool
	fs.Visit(func(f *flag.Flag) { emptyDir = emptyDir || f.Name == "dir" && f.Value.String() == "" })
	if emptyDir {
		return usageError{"--dir is empty: name a data dir, or leave --dir out for the default"}
	}
	return nil
}

// splitArgs separates the flags of fs (with their values) from the
// positional arguments, keeping the order of each. complete is false if the
// last flag wants a value and none follows.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string, complete bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(positional, args[i+1:]...), true
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // fs.Parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 == len(args) {
			return flags, positional, false
		}
		i++
		flags = append(flags, args[i])
	}
	return flags, positional, true
}

func dataDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return datadir.DefaultDir()
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }
