package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/datadir"
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
		{"flags before a sub-verb", []string{"chain", "--dir", dir, "append", "hello"}, 1, noNode},
		{"flags before the verb", []string{"--dir", dir, "cell", "members"}, 1, noNode},
		{"EXOPEER_DIR overridden", []string{"status", "--dir", dir}, 1, noNode},
		{"an argument like -5 stops the flags", []string{"chain", "append", "-5", "--dir", dir}, 2, `"-5" is not a flag; put arguments that start with - after --`},
		{"-5 after --", []string{"chain", "append", "--dir", dir, "--", "-5"}, 1, noNode},
		{"unknown flag after an argument", []string{"chain", "append", "hello", "--dri", dir}, 2, "flag provided but not defined: -dri"},
		{"flag without its value", []string{"chain", "append", "hello", "--dir"}, 2, "flag needs an argument: --dir"},
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

// TestEmptyEnvDir: EXOPEER_DIR set to the empty string is not set, as
// for every variable of the config: the data dir is the default one, as
// before the CLI moved to urfave/cli. An empty --dir stays a usage error.
func TestEmptyEnvDir(t *testing.T) {
	t.Setenv("EXOPEER_DIR", "")
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	t.Setenv("HOME", data)
	def, err := datadir.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	noNode := "no exopeer node is running on data dir " + def
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"status", []string{"status"}, 1, noNode},
		{"chain append", []string{"chain", "append", "hello"}, 1, noNode},
		{"config show", []string{"config", "show"}, 0, ""},
		{"and an empty --dir", []string{"status", "--dir", ""}, 2, "--dir is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, tt.code, tt.want)
			}
		})
	}
	if code, stdout, _ := run(t, "config", "show"); code != 0 || !strings.Contains(stdout, def) {
		t.Errorf("config show: exit %d, %q; want the default dir %s", code, stdout, def)
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

// FuzzChainAppendLine: any command line after `chain append`, with no
// node running, ends in a usage error (2), in the failure to reach a node
// (1), or in help or completion words (0); never in a panic or an append,
// and never touches the default data dir.
func FuzzChainAppendLine(f *testing.F) {
	for _, args := range [][]string{
		{"hello", "--dir", "D"},
		{"--dir", "--", "a", "--json"},
		{"a", "-json=false", "--", "-x", "--dir"},
		{"-", "--limit", "-1", "-dir=", "---x"},
		{"--dir"},
		{"-5", "--dir", "D"},
		{"--file", "F", "--", "-5"},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	def := filepath.Join(f.TempDir(), "default")
	f.Fuzz(func(t *testing.T, line string) {
		t.Setenv("EXOPEER_DIR", def)
		dir := t.TempDir()
		args := []string{"chain", "append"}
		for _, a := range strings.Split(line, "\x00") {
			if a == "D" || a == "F" {
				a = filepath.Join(dir, a)
			}
			args = append(args, a)
		}
		code, stdout, stderr := run(t, args...)
		switch {
		case code == 0 && strings.Contains(stdout, "appended"),
			code == 1 && stdout != "",
			code == 2 && stdout != "",
			code > 2 || code < 0:
			// 0 only for --help or completion, which print and append nothing.
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		if _, err := os.Stat(def); !os.IsNotExist(err) {
			t.Fatalf("%q touched the default data dir: %v", args, err)
		}
	})
}
