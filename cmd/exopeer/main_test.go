package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the run if a goroutine outlives the tests: `exopeer run`
// must stop everything it started. The one-second wait covers goleveldb
// v1.0.0's mpoolDrain, which stops up to a second after DB.Close. It also
// makes the test binary the exopeer command of the transcripts
// (testdata/script).
func TestMain(m *testing.M) {
	testscript.Main(leaktest.M(m), map[string]func(){"exopeer": main})
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running
// node and the reads of the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	code = Main(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// loopbackDir makes a data dir whose node listens on loopback only, with
// mDNS off: the network rule for nodes a test starts on the host.
func loopbackDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := "[network]\nport = -1\nlisten_ips = [\"127.0.0.1\"]\nmdns = false\n"
	if err := os.WriteFile(filepath.Join(dir, datadir.ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no verb", nil, 2, "want a verb"},
		{"unknown verb", []string{"fly"}, 2, `unknown verb "fly"`},
		{"unknown flag", []string{"status", "--colour"}, 2, "flag provided but not defined"},
		{"extra argument", []string{"peers", "x"}, 2, `unexpected argument "x"`},
		{"connect without address", []string{"connect"}, 2, "want one MULTIADDR"},
		{"bad bool", []string{"run", "--dir", "DIR", "--mdns", "maybe"}, 2, `--mdns "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, a := range tt.args {
				if a == "DIR" {
					tt.args[i] = loopbackDir(t)
				}
			}
			code, _, stderr := run(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}

func TestQueriesWithNoNodeRunning(t *testing.T) {
	dir := t.TempDir()
	for _, verb := range []string{"id", "status", "peers"} {
		code, _, stderr := run(t, verb, "--dir", dir)
		if code != 1 || !strings.Contains(stderr, "no exopeer node is running on data dir "+dir) {
			t.Errorf("%s: exit %d, stderr %q", verb, code, stderr)
		}
	}
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	code, stdout, _ := run(t, "init", "--dir", dir)
	if code != 0 || !strings.Contains(stdout, "created "+filepath.Join(dir, datadir.KeyFile)) {
		t.Fatalf("init: exit %d, %q", code, stdout)
	}
	code, stdout, _ = run(t, "init", "--dir", dir)
	if code != 0 || !strings.Contains(stdout, "nothing changed") {
		t.Errorf("second init: exit %d, %q", code, stdout)
	}
	t.Setenv("EXOPEER_DIR", filepath.Join(t.TempDir(), "env"))
	if code, stdout, _ = run(t, "init"); code != 0 || !strings.Contains(stdout, os.Getenv("EXOPEER_DIR")) {
		t.Errorf("init with EXOPEER_DIR: exit %d, %q", code, stdout)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	t.Run("bad bootstrap", func(t *testing.T) {
		code, _, stderr := run(t, "run", "--dir", loopbackDir(t), "--bootstrap", "/ip4/1.2.3.4/tcp/5")
		if code != 1 || !strings.Contains(stderr, "/ip4/1.2.3.4/tcp/5") {
			t.Errorf("exit %d, stderr %q; want the bad address named", code, stderr)
		}
	})
	t.Run("malformed config", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, datadir.ConfigFile)
		os.WriteFile(path, []byte("[network]\nport = \"many\"\n"), 0o644)
		code, _, stderr := run(t, "run", "--dir", dir)
		if code != 1 || !strings.Contains(stderr, path) {
			t.Errorf("exit %d, stderr %q; want the file named", code, stderr)
		}
		if data, _ := os.ReadFile(path); string(data) != "[network]\nport = \"many\"\n" {
			t.Error("the malformed config was overwritten")
		}
	})
}

// TestRunServesAndStops runs a node in-process, queries it through the CLI,
// refuses a second node on the same dir, and stops it by cancelling its
// context as Ctrl-C does.
func TestRunServesAndStops(t *testing.T) {
	dir := loopbackDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb syncBuffer
	done := make(chan int)
	go func() { done <- Main(ctx, []string{"run", "--dir", dir}, &out, &errb) }()

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "press Ctrl-C") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("node did not start: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, stdout, stderr := run(t, "id", "--dir", dir, "--json")
	if code != 0 || !strings.Contains(stdout, `"id": "12D3KooW`) {
		t.Errorf("id: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, _ = run(t, "status", "--dir", dir)
	if code != 0 || !strings.Contains(stdout, "blocks stored") {
		t.Errorf("status: exit %d, %q", code, stdout)
	}
	code, stdout, _ = run(t, "peers", "--dir", dir)
	if code != 0 || !strings.Contains(stdout, "no peers connected") {
		t.Errorf("peers: exit %d, %q", code, stdout)
	}
	code, _, stderr = run(t, "run", "--dir", dir)
	if code != 1 || !strings.Contains(stderr, "in use by another exopeer node") {
		t.Errorf("second run: exit %d, %q", code, stderr)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "stopped") {
			t.Errorf("run ended with %d: %s %s", code, out.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.APIFile)); !os.IsNotExist(err) {
		t.Errorf("api file left after stop: %v", err)
	}
}
