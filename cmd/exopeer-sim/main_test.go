package main

import (
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain makes the test binary the exopeer-sim command of the
// transcripts (testdata/script).
func TestMain(m *testing.M) {
	testscript.Main(leaktest.M(m), map[string]func(){"exopeer-sim": main})
}

// TestScripts runs the transcripts of exopeer-sim: its usage errors, its
// help, and a small scenario whose report is checked.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// TestUsageErrors: every way of calling exopeer-sim wrongly exits with 2,
// before any scenario runs, and says what is wrong.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no scenario", nil, "want a SCENARIO first"},
		{"unknown scenario", []string{"fly"}, `unknown scenario "fly"`},
		{"extra argument", []string{"chain", "extra"}, `unexpected argument "extra"`},
		{"too few nodes", []string{"dht", "--nodes", "1"}, "--nodes must be at least 2"},
		{"crash too large", []string{"dht", "--crash", "0.95"}, "--crash must be between 0 and 0.9"},
		{"negative crash", []string{"cell", "--crash=-0.1"}, "--crash must be between 0 and 0.9"},
		{"no lookups", []string{"dht", "--lookups", "0"}, "--lookups must be at least 1"},
		{"no entries", []string{"chain", "--entries", "0"}, "--entries must be at least 1"},
		{"negative minutes", []string{"messages", "--minutes=-1"}, "--minutes must not be negative"},
		{"minutes for another scenario", []string{"chain", "--minutes", "5"}, "--minutes is for the messages scenario"},
		{"too few people for minutes", []string{"messages", "--minutes", "5", "--people", "4"}, "--people must be at least 5 with --minutes"},
		{"entries with minutes", []string{"messages", "--minutes", "5", "--entries", "10"}, "--entries is not for the people scenario (--minutes)"},
		{"unknown flag", []string{"chain", "--colour"}, "flag provided but not defined: -colour"},
		{"bad seed", []string{"chain", "--seed", "x"}, `invalid value "x" for flag -seed`},
		{"flag without its value", []string{"chain", "--seed"}, "flag needs an argument: --seed"},
		{"help with an argument", []string{"-h", "x"}, "No help topic for 'x'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := Main(t.Context(), tt.args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) || stdout.Len() > 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout.String(), stderr.String(), tt.want)
			}
		})
	}
}
