package main

import (
	"os"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/simnet"
)

// TestREADMEScenarios: the README shows how to run each of the
// simulator's scenarios (`go run ./cmd/exopeer-sim NAME`), and no
// scenario that is gone.
func TestREADMEScenarios(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	names := simnet.ScenarioNames()
	if len(names) == 0 {
		t.Fatal("simnet has no scenarios")
	}
	known := map[string]bool{}
	for _, name := range names {
		known[name] = true
		if !strings.Contains(readme, "`go run ./cmd/exopeer-sim "+name+" ") && !strings.Contains(readme, "`go run ./cmd/exopeer-sim "+name+"`") {
			t.Errorf("the README does not show the scenario %s (`go run ./cmd/exopeer-sim %s ...`)", name, name)
		}
	}
	const cmd = "go run ./cmd/exopeer-sim "
	for rest := readme; ; {
		i := strings.Index(rest, cmd)
		if i < 0 {
			break
		}
		rest = rest[i+len(cmd):]
		name, _, _ := strings.Cut(rest, " ")
		name = strings.TrimRight(name, "`")
		if !known[name] {
			t.Errorf("the README runs exopeer-sim %q, which is no scenario (%v)", name, names)
		}
	}
}
