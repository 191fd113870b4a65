package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestHarness: the binary users install links neither the simulator
// nor testing/synctest nor mocknet (the simulator is cmd/exopeer-sim), and
// none of exopeer's packages in it imports testing. The package testing
// itself is still linked: go-libp2p-kad-dht v0.40.0 imports it in
// dht_options.go, for two test-only options.
func TestNoTestHarness(t *testing.T) {
	goTool, err := exec.LookPath("go") // go test puts its GOROOT/bin first in PATH
	if err != nil {
		t.Skipf("no go tool to list the dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 50 {
		t.Fatalf("go list -deps listed %d packages:\n%s", len(lines), out)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		p, imports := f[0], f[1:]
		switch {
		case p == "testing/synctest", p == "github.com/exopeer/exopeer/simnet",
			strings.HasPrefix(p, "github.com/exopeer/exopeer/simnet/"), strings.HasSuffix(p, "/mocknet"):
			t.Errorf("exopeer links %s", p)
		case strings.HasPrefix(p, "github.com/exopeer/exopeer/"):
			for _, i := range imports {
				if i == "testing" || strings.HasPrefix(i, "testing/") {
					t.Errorf("%s, linked into exopeer, imports %s", p, i)
				}
			}
		}
	}
}
