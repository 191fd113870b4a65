package main

import (
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
