package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/exopeer/exopeer/client"
)

var update = flag.Bool("update", false, "rewrite the README's verb list and the transcripts' expected JSON shapes")

// TestScripts runs the CLI transcripts in testdata/script: every verb, its
// errors and its --json shape, against the real binary (this test binary,
// run as exopeer). Nodes the scripts start listen on loopback only, with
// mDNS off. EXOPEER_DIR points into the script's work dir, so that the
// default data dir is never the user's.
// With -update, a `cmp stdout FILE` that fails rewrites FILE in its
// script (the --json shapes).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXOPEER_DIR", filepath.Join(env.WorkDir, "default"))
			env.Setenv("EXOPEER_LISTEN_IPS", "127.0.0.1")
			env.Setenv("EXOPEER_MDNS", "false")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitnode":  waitNode,
			"waitfile":  waitFile,
			"jsonshape": jsonShape,
			"exits":     exits,
			"setvar":    setVar,
		},
	})
}

// exits N PROGRAM [ARGS...] runs PROGRAM, as exec does, and checks that
// it exits with status N: 0 ok, 1 failure, 2 usage error.
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}

// setVar VAR REGEXP sets the variable VAR to the first group of the first
// match of REGEXP (multi-line) in the last command's stdout: a peer ID, an
// address, an invite code.
func setVar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setvar VAR REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("no match for %s (with a group) in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// waitNode DIR waits until a node serves the control API on the data dir
// DIR (one started in the background with `exec exopeer run ... &`), up to
// a minute: a bound on a wait, not a measurement.
func waitNode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitnode DIR")
	}
	dir := ts.MkAbs(args[0])
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		c, err := client.Dial(dir)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = c.ID(ctx)
			cancel()
			if err == nil {
				return
			}
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("no node answered on %s within a minute: %v", dir, last)
}

// waitFile FILE REGEXP waits until the file FILE (the output of a command
// started in the background) has a line that matches REGEXP, up to a
// minute: a bound on a wait, not a measurement.
func waitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfile FILE REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && re.Match(data) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("no line of %s matched %s within a minute", args[0], args[1])
}

// jsonShape prints the shape of the JSON of the last command's stdout (a
// value, or one value a line): each path with its type, sorted, one a
// line, so that `cmp stdout FILE` checks the shape of --json without the
// values, which change from run to run.
func jsonShape(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: jsonshape")
	}
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile("stdout")))
	shape := map[string]bool{}
	n := 0
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			break
		}
		ts.Check(err)
		n++
		walkShape("", v, shape)
	}
	if n == 0 {
		ts.Fatalf("no JSON on stdout")
	}
	lines := make([]string, 0, len(shape))
	for l := range shape {
		lines = append(lines, l)
	}
	slices.Sort(lines)
	var b bytes.Buffer
	for _, l := range lines {
		fmt.Fprintln(&b, l)
	}
	ts.Stdout().Write(b.Bytes())
}

func walkShape(path string, v any, shape map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			shape[path+" {}"] = true
		}
		for k, x := range v {
			walkShape(path+"."+k, x, shape)
		}
	case []any:
		if len(v) == 0 {
			shape[path+"[] (empty)"] = true
		}
		for _, x := range v {
			walkShape(path+"[]", x, shape)
		}
	case string:
		shape[path+" string"] = true
	case float64:
		shape[path+" number"] = true
	case bool:
		shape[path+" bool"] = true
	case nil:
		shape[path+" null"] = true
	}
}
