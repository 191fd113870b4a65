package ratchet

import (
	"os/exec"
	"strings"
	"testing"
)

// TestInteropPython runs testdata/interop.py, a second implementation
// written from doc.go alone (in Python, with the cryptography package),
// against the frozen vectors: X3DH's and PQXDH's DHs, Secret, AD, initial
// header and bundle (PQXDH from the recorded ML-KEM shared secret), and
// the ten ratchet steps, every message opened and, from the recorded
// randomness, sealed again to the same bytes. It proves that doc.go is
// enough to interoperate; it is skipped where python3 or cryptography is
// missing.
func TestInteropPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: the doc-only implementation cannot run")
	}
	if out, err := exec.Command(py, "-c", "import cryptography").CombinedOutput(); err != nil {
		t.Skipf("python3 has no cryptography package: %v: %s", err, out)
	}
	out, err := exec.Command(py, "testdata/interop.py", "testdata").CombinedOutput()
	if err != nil {
		t.Fatalf("interop.py: %v\n%s", err, failed(string(out)))
	}
	if !strings.Contains(string(out), "all passed") {
		t.Fatalf("interop.py did not finish:\n%s", out)
	}
}

// failed keeps the lines of interop.py's output that are not "ok".
func failed(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "ok ") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
