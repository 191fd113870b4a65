package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

const (
	readmePath  = "../../README.md"
	verbsBegin  = "<!-- verbs: written by `go test ./cmd/exopeer -run TestREADMEVerbs -update` from the CLI's definition -->\n"
	verbsEnd    = "<!-- end of verbs -->\n"
	usageColumn = 33
)

// verbList renders the verb list of the README from the command tree: each
// verb with its arguments and what it does, then its flags.
func verbList() string {
	root := app(io.Discard, io.Discard)
	// The library adds its own verbs (completion) when it runs.
	_ = root.Run(context.Background(), []string{"exopeer", "--help"})
	var b strings.Builder
	b.WriteString("```\n")
	var walk func(cmd *cli.Command)
	walk = func(cmd *cli.Command) {
		for _, c := range cmd.Commands {
			if c.Hidden {
				continue
			}
			if len(c.Commands) > 0 && c.Name != "completion" {
				walk(c)
				continue
			}
			line := c.FullName()
			if c.ArgsUsage != "" {
				line += " " + c.ArgsUsage
			}
			fmt.Fprintf(&b, "%-*s %s\n", usageColumn-1, line, c.Usage)
			var flags []string
			for _, f := range c.Flags {
				name := f.Names()[0]
				if name == "help" {
					continue
				}
				flags = append(flags, "--"+name)
			}
			if len(flags) > 0 && c.Name != "completion" {
				fmt.Fprintf(&b, "%*s(%s)\n", usageColumn, "", strings.Join(flags, " "))
			}
		}
	}
	walk(root)
	b.WriteString("```\n")
	return b.String()
}

// TestREADMEVerbs fails when the README's verb list is not the one the
// CLI's definition gives; -update rewrites it.
func TestREADMEVerbs(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(verbsBegin))
	j := bytes.Index(data, []byte(verbsEnd))
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", readmePath, verbsBegin, verbsEnd)
	}
	want := verbList()
	got := string(data[i+len(verbsBegin) : j])
	if got == want {
		return
	}
	if !*update {
		t.Fatalf("the README's verb list is stale; run: go test ./cmd/exopeer -run TestREADMEVerbs -update\nwant:\n%s\ngot:\n%s", want, got)
	}
	out := append(append(append([]byte(nil), data[:i+len(verbsBegin)]...), want...), data[j:]...)
	if err := os.WriteFile(readmePath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
