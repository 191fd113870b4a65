// Command exopeer runs a node of the exopeer network and talks to it.
//
// Its verbs are defined once, in app (verbs.go); `exopeer --help`, `exopeer
// VERB --help`, the shell completion and the README's verb list all come
// from that definition. Every verb but run, init, config, completion and
// version talks to the node running on the data dir through its local
// control API. The data dir is --dir, else $EXOPEER_DIR, else "exopeer"
// under the user's data directory.
//
// Exit status: 0 ok, 1 failure, 2 usage error (unknown verb or flag,
// missing or extra argument, bad flag value).
//
// The simulator is a command of its own, cmd/exopeer-sim, so that this
// binary carries no test harness.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/datadir"
)

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Main runs the CLI with args and returns the exit code: 0 on success, 1 on
// failure, 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx = context.WithValue(ctx, rawArgsKey{}, args)
	err := app(stdout, stderr).Run(ctx, append([]string{"exopeer"}, args...))
	var ue usageError
	var ve verbError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", ue.verb, ue.msg)
		}
		if ue.hint {
			fmt.Fprintf(stderr, "run %q for its usage\n", ue.verb+" --help")
		}
		return exitUsage
	case errors.As(err, &ve):
		fmt.Fprintf(stderr, "%s: %v\n", ve.verb, ve.err)
		return exitFailure
	case errors.As(err, new(cli.ExitCoder)):
		// The library's own: a help topic that does not exist
		// (`exopeer status --help extra`).
		fmt.Fprintf(stderr, "exopeer: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "exopeer: %v\n", err)
		return exitFailure
	}
}

// usageError is an error in how a verb was called: exit status 2.
type usageError struct {
	verb string // "exopeer chain append"
	msg  string
	hint bool // say how to get the verb's help
}

func (e usageError) Error() string { return e.verb + ": " + e.msg }

// usage returns a usage error of cmd.
func usage(cmd *cli.Command, format string, a ...any) error {
	return usageError{verb: cmd.FullName(), msg: fmt.Sprintf(format, a...)}
}

// verbError is the failure of a verb: exit status 1.
type verbError struct {
	verb string
	err  error
}

func (e verbError) Error() string { return e.verb + ": " + e.err.Error() }
func (e verbError) Unwrap() error { return e.err }

// action makes fn a verb's action: its errors are the verb's failures,
// but for usage errors.
func action(fn func(ctx context.Context, cmd *cli.Command) error) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		err := fn(ctx, cmd)
		if err == nil || errors.As(err, new(usageError)) {
			return err
		}
		return verbError{verb: cmd.FullName(), err: err}
	}
}

// onUsageError makes the library's parse errors (unknown flag, flag
// without its value, value that does not parse) usage errors.
func onUsageError(_ context.Context, cmd *cli.Command, err error, _ bool) error {
	return usageError{verb: cmd.FullName(), msg: err.Error(), hint: true}
}

type rawArgsKey struct{}

// args returns the positional arguments of cmd, at least min and at most
// max (-1: any number). The library stops reading flags at an argument
// such as "-5" and takes the rest of the line as arguments, flags and all;
// args refuses such a line, so that `chain append -5 --dir D` never
// appends "-5 --dir D" on the default data dir: a text that starts with
// "-" goes after "--".
func args(ctx context.Context, cmd *cli.Command, min, max int) ([]string, error) {
	a := cmd.Args().Slice()
	raw, _ := ctx.Value(rawArgsKey{}).([]string)
	dd := func(s []string) (n int) {
		for _, x := range s {
			if x == "--" {
				n++
			}
		}
		return n
	}
	if dd(raw) == dd(a) { // no "--" ended the flags: none may start with "-"
		for _, s := range a {
			if len(s) > 1 && s[0] == '-' {
				return nil, usageError{verb: cmd.FullName(), msg: fmt.Sprintf("%q is not a flag; put arguments that start with - after --", s), hint: true}
			}
		}
	}
	verb := strings.TrimPrefix(cmd.FullName(), "exopeer ")
	switch {
	case len(a) > max && max == 0:
		return nil, usage(cmd, "unexpected argument %q", a[0])
	case (len(a) > max && max >= 0) || len(a) < min:
		return nil, usage(cmd, "%s takes %d argument(s), got %d", verb, min, len(a))
	}
	return a, nil
}

// dataDir returns the data dir: --dir (or $EXOPEER_DIR, which the library
// binds to it), else the default. A --dir given empty (--dir "$D" with D
// unset) is refused rather than taken as the default.
func dataDir(cmd *cli.Command) (string, error) {
	d := cmd.String("dir")
	if d == "" && cmd.Count("dir") > 0 {
		return "", usageError{verb: cmd.FullName(), msg: "--dir is empty: name a data dir, or leave --dir out for the default"}
	}
	if d != "" {
		return d, nil
	}
	return datadir.DefaultDir()
}

// setEnv is an environment variable as a flag's source, found only when
// set to something: set to the empty string it is not set, as for every
// variable of the config (and as EXOPEER_DIR was before the CLI moved to
// urfave/cli), so that EXOPEER_DIR= is the default data dir, not an
// empty --dir.
type setEnv string

func (e setEnv) Lookup() (string, bool) {
	v := os.Getenv(string(e))
	return v, v != ""
}

func (e setEnv) IsFromEnv() bool  { return true }
func (e setEnv) Key() string      { return string(e) }
func (e setEnv) String() string   { return fmt.Sprintf("environment variable %q", string(e)) }
func (e setEnv) GoString() string { return fmt.Sprintf("setEnv(%q)", string(e)) }

// dial returns a client of the node running on the data dir. It is the
// one place the CLI makes a client of the control API.
func dial(cmd *cli.Command) (*client.Client, error) {
	dir, err := dataDir(cmd)
	if err != nil {
		return nil, err
	}
	return client.Dial(dir)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // documents as written: < is not \u003c
	return enc.Encode(v)
}

func stdout(cmd *cli.Command) io.Writer { return cmd.Root().Writer }
func stderr(cmd *cli.Command) io.Writer { return cmd.Root().ErrWriter }
