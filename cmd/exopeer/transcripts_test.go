package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

// jsonShapeWithin is how many lines after a verb's --json call its
// jsonshape may come (a background --json call's output is shaped once
// the commands that feed it have run).
const jsonShapeWithin = 25

// TestTranscriptsCoverEveryVerb: every verb of the CLI's definition (and
// each shell of completion) has, in testdata/script, a call that succeeds,
// a call that fails (exit 1 or 2), and, if it takes --json, a --json call
// whose shape is checked (jsonshape). A verb added without its
// transcripts fails here.
func TestTranscriptsCoverEveryVerb(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	var lines []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		script, _, _ := strings.Cut(string(data), "\n-- ") // the commands, not the files
		lines = append(lines, strings.Split(script, "\n")...)
		lines = append(lines, "") // a file's end
	}

	root := app(io.Discard, io.Discard)
	// The library adds its own verbs (completion) when it runs.
	_ = root.Run(context.Background(), []string{"exopeer", "--help"})
	var verbs []*cli.Command
	var walk func(cmd *cli.Command)
	walk = func(cmd *cli.Command) {
		for _, c := range cmd.Commands {
			if c.Hidden || c.Name == "help" {
				continue
			}
			if len(c.Commands) > 0 {
				walk(c)
				continue
			}
			verbs = append(verbs, c)
		}
	}
	walk(root)
	if len(verbs) < 40 {
		t.Fatalf("found %d verbs", len(verbs))
	}

	for _, v := range verbs {
		name := strings.TrimPrefix(v.FullName(), "exopeer ")
		call := `exopeer ` + regexp.QuoteMeta(name) + `( |'|$)`
		ok := regexp.MustCompile(`^(\[\S+\] )?(exits 0 |exec |exec sh -c ')` + call)
		fails := regexp.MustCompile(`^(\[\S+\] )?exits [12] ` + call)
		withJSON := regexp.MustCompile(call + `.*--json( |'|$)`)
		var hasOK, hasFail, hasShape bool
		for i, l := range lines {
			hasOK = hasOK || ok.MatchString(l)
			hasFail = hasFail || fails.MatchString(l)
			if ok.MatchString(l) && withJSON.MatchString(l) {
				for _, next := range lines[i+1 : min(i+1+jsonShapeWithin, len(lines))] {
					if strings.HasPrefix(next, "jsonshape") {
						hasShape = true
						break
					}
				}
			}
		}
		if !hasOK {
			t.Errorf("%s: no transcript calls it and succeeds", name)
		}
		if !hasFail {
			t.Errorf("%s: no transcript calls it and fails (exits 1 or 2)", name)
		}
		if hasFlag(v, "json") && !hasShape {
			t.Errorf("%s: no transcript checks its --json shape (a --json call, then jsonshape within %d lines)", name, jsonShapeWithin)
		}
	}
}

func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}
