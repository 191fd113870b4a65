package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFlagsAfterArguments: a flag after a verb's positional arguments is a
// flag, for every verb, so that `--dir D` at the end of a command line never
// sends it to the node on the default data dir.
func TestFlagsAfterArguments(t *testing.T) {
	t.Setenv("EXOPEER_DIR", filepath.Join(t.TempDir(), "default"))
	dir := t.TempDir() // no node runs here
	noNode := "no exopeer node is running on data dir " + dir
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"id", []string{"id", "--json", "--dir", dir}, 1, noNode},
		{"status", []string{"status", "--dir", dir, "--json"}, 1, noNode},
		{"peers", []string{"peers", "--json", "--dir=" + dir}, 1, noNode},
		{"connect", []string{"connect", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", "--dir", dir}, 1, noNode},
		{"cell create", []string{"cell", "create", "home", "--dir", dir, "--member", "laptop"}, 1, noNode},
		{"cell invite", []string{"cell", "invite", "--roles", "chain", "--dir", dir}, 1, noNode},
		{"cell join", []string{"cell", "join", "CODE", "--dir", dir}, 1, noNode},
		{"cell members", []string{"cell", "members", "--dir", dir}, 1, noNode},
		{"cell remove", []string{"cell", "remove", "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", "--dir", dir}, 1, noNode},
		{"chain append", []string{"chain", "append", "hello", "--dir", dir}, 1, noNode},
		{"chain append interleaved", []string{"chain", "append", "hello", "--json", "world", "--dir", dir}, 1, noNode},
		{"chain log", []string{"chain", "log", "--limit", "2", "--dir", dir}, 1, noNode},
		{"chain status", []string{"chain", "status", "--dir", dir}, 1, noNode},
		{"run", []string{"run", "extra", "--dir", dir}, 2, `unexpected argument "extra"`},
		{"init", []string{"init", "extra", "--dir", dir}, 2, `unexpected argument "extra"`},
		{"sim", []string{"sim", "chain", "extra", "--nodes", "3"}, 2, `unexpected argument "extra"`},
		{"unknown flag after an argument", []string{"chain", "append", "hello", "--dri", dir}, 2, "flag provided but not defined: -dri"},
		{"flag without its value", []string{"chain", "append", "hello", "--dir"}, 2, "flag needs an argument: -dir"},
		// --dir "$D" with D unset: not the default data dir.
		{"empty dir", []string{"chain", "append", "hello", "--dir", ""}, 2, "--dir is empty"},
		{"empty dir=", []string{"chain", "append", "hello", "--dir="}, 2, "--dir is empty"},
		{"init with an empty dir", []string{"init", "--dir", ""}, 2, "--dir is empty"},
		{"run with an empty dir", []string{"run", "--dir="}, 2, "--dir is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(os.Getenv("EXOPEER_DIR")); !os.IsNotExist(err) {
		t.Errorf("the default data dir was touched: %v", err)
	}
}

// TestSplitArgs: flags anywhere, values of flags that take one, and "--"
// ending the flags so that a text may start with "-".
func TestSplitArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // the positional arguments
		json bool
		dir  string
	}{
		{"flags first", []string{"--dir", "D", "--json", "a", "b"}, []string{"a", "b"}, true, "D"},
		{"flags last", []string{"a", "b", "--dir", "D", "--json"}, []string{"a", "b"}, true, "D"},
		{"interleaved", []string{"a", "-json", "b", "-dir=D"}, []string{"a", "b"}, true, "D"},
		{"bool with value", []string{"a", "--json=false"}, []string{"a"}, false, ""},
		{"value that looks like a flag", []string{"--dir", "--json", "a"}, []string{"a"}, false, "--json"},
		{"double dash", []string{"--dir", "D", "--", "-x", "--json", "--dir", "E"}, []string{"-x", "--json", "--dir", "E"}, false, "D"},
		{"double dash as a value", []string{"--dir", "--", "a", "--json"}, []string{"a"}, true, "--"},
		{"single dash is an argument", []string{"-", "--json"}, []string{"-"}, true, ""},
		{"nothing", nil, nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, dir := flagSet("test", new(strings.Builder))
			asJSON := fs.Bool("json", false, "")
			if err := parse(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			got := fs.Args()
			if len(got) == 0 {
				got = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" || *asJSON != tt.json || *dir != tt.dir {
				t.Errorf("args (-want +got):\n%s\njson %v dir %q, want %v %q", diff, *asJSON, *dir, tt.json, tt.dir)
			}
		})
	}
}

// TestChainAppendFlagsLast appends to a running node with --dir after the
// text, and a text that starts with "-" after "--": the node on --dir gets
// exactly the texts, and the default data dir is not written.
func TestChainAppendFlagsLast(t *testing.T) {
	t.Setenv("EXOPEER_DIR", filepath.Join(t.TempDir(), "default"))
	dir := loopbackDir(t)
	runNode(t, dir)
	if code, _, stderr := run(t, "cell", "create", "home", "--dir", dir, "--member", "laptop"); code != 0 {
		t.Fatalf("cell create: exit %d, %s", code, stderr)
	}
	if code, _, stderr := run(t, "chain", "append", "hello", "--dir", dir); code != 0 {
		t.Fatalf("append hello --dir: exit %d, %s", code, stderr)
	}
	if code, _, stderr := run(t, "chain", "append", "--dir", dir, "--", "-x", "--dir", "elsewhere"); code != 0 {
		t.Fatalf("append -- -x: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := run(t, "chain", "log", "--dir", dir)
	var texts []string
	for l := range strings.Lines(stdout) {
		if m := logLine.FindStringSubmatch(strings.TrimSuffix(l, "\n")); m != nil {
			texts = append(texts, m[3])
		}
	}
	if diff := cmp.Diff([]string{"hello", "-x --dir elsewhere"}, texts); code != 0 || diff != "" {
		t.Errorf("log: exit %d, %q; texts (-want +got):\n%s", code, stderr, diff)
	}
	if _, err := os.Stat(os.Getenv("EXOPEER_DIR")); !os.IsNotExist(err) {
		t.Errorf("the default data dir was touched: %v", err)
	}
}

// FuzzSplitArgs: any command line (arguments separated by NUL) parses
// without a panic, and the flags and positional arguments it is split into
// keep their order and parse again to the same result once written in the
// canonical form: flags, "--", positional arguments.
func FuzzSplitArgs(f *testing.F) {
	for _, args := range [][]string{
		{"append", "hello", "--dir", "D"},
		{"--dir", "--", "a", "--json"},
		{"a", "-json=false", "--", "-x", "--dir"},
		{"-", "--limit", "-1", "-dir=", "---x"},
		{"--dir"},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		newFS := func() (*flag.FlagSet, *string, *bool, *int) {
			fs, dir := flagSet("fuzz", io.Discard)
			return fs, dir, fs.Bool("json", false, ""), fs.Int("limit", 0, "")
		}
		fs, dir, asJSON, limit := newFS()
		flags, positional, _ := splitArgs(fs, args)
		if !isSubsequence(flags, args) || !isSubsequence(positional, args) {
			t.Fatalf("split %q into %q and %q", args, flags, positional)
		}
		if err := parse(fs, args); err != nil {
			return
		}
		got := slices.Clone(fs.Args())
		fs2, dir2, asJSON2, limit2 := newFS()
		canon := append(append(slices.Clone(flags), "--"), positional...)
		if err := parse(fs2, canon); err != nil {
			t.Fatalf("canonical form %q of %q: %v", canon, args, err)
		}
		if !slices.Equal(got, positional) || !slices.Equal(fs2.Args(), positional) ||
			*dir != *dir2 || *asJSON != *asJSON2 || *limit != *limit2 {
			t.Fatalf("%q parses to %q, its canonical form %q to %q", args, got, canon, fs2.Args())
		}
	})
}

// isSubsequence reports whether sub appears in s in order.
func isSubsequence(sub, s []string) bool {
	i := 0
	for _, x := range s {
		if i < len(sub) && sub[i] == x {
			i++
		}
	}
	return i == len(sub)
}
