package client_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the run if a goroutine outlives the tests (the example
// runs a node).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

// TestImportsNoLibp2p keeps the client usable by any program: neither it
// nor package api may depend on libp2p or multiaddrs.
func TestImportsNoLibp2p(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}",
		"github.com/exopeer/exopeer/client", "github.com/exopeer/exopeer/api").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list gave %d dependencies: %q", len(deps), out)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/libp2p/") || strings.HasPrefix(d, "github.com/multiformats/go-multiaddr") {
			t.Errorf("client or api depends on %s", d)
		}
	}
}

// TestDataDirFiles: Dial reads the files datadir names, without importing
// datadir.
func TestDataDirFiles(t *testing.T) {
	dir := t.TempDir()
	d, err := datadir.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// A node running (the lock held) with its api file written: Dial
	// finds it, and reads the token datadir wrote.
	if err := os.WriteFile(filepath.Join(dir, datadir.APIFile), []byte("127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatalf("Dial with the lock held and the api file written: %v", err)
	}
	// Nothing listens there: the call says no node runs.
	if _, err := c.ID(t.Context()); !errors.Is(err, client.ErrNotRunning) {
		t.Errorf("ID on a closed port: %v, want ErrNotRunning", err)
	}
	if err := os.Remove(filepath.Join(dir, datadir.TokenFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Dial(dir); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("Dial with no token file: %v", err)
	}
}

func TestDialWithNoNodeRunning(t *testing.T) {
	t.Run("empty dir", func(t *testing.T) {
		_, err := client.Dial(t.TempDir())
		if !errors.Is(err, client.ErrNotRunning) || !strings.Contains(err.Error(), "exopeer run") {
			t.Errorf("Dial = %v, want ErrNotRunning saying how to start", err)
		}
	})
	t.Run("stale api file", func(t *testing.T) {
		// A node that crashed leaves its api file; the free lock tells.
		dir := t.TempDir()
		d, err := datadir.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		os.WriteFile(filepath.Join(dir, datadir.APIFile), []byte("127.0.0.1:1\n"), 0o600)
		if _, err := client.Dial(dir); !errors.Is(err, client.ErrNotRunning) {
			t.Errorf("Dial = %v, want ErrNotRunning", err)
		}
	})
}

// TestDialRefusesAForeignAPIAddress: the token goes to loopback only. An
// api file that names another host, or nothing that parses (a broken or
// tampered data dir), is a clear error of Dial, before any request.
func TestDialRefusesAForeignAPIAddress(t *testing.T) {
	dir := t.TempDir()
	d, err := datadir.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, tt := range []struct{ name, addr string }{
		{"another host", "192.0.2.1:80\n"},
		{"a name", "example.com:80\n"},
		{"empty", ""},
		{"no port", "127.0.0.1\n"},
		{"a path", "127.0.0.1:1/x@192.0.2.1\n"},
		{"a user", "u@192.0.2.1:80\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, datadir.APIFile), []byte(tt.addr), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := client.Dial(dir); err == nil || !strings.Contains(err.Error(), "not a loopback") {
				t.Errorf("Dial with api file %q: %v, want an error", tt.addr, err)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:1\n", "[::1]:1"} {
		if err := os.WriteFile(filepath.Join(dir, datadir.APIFile), []byte(addr), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Dial(dir); err != nil {
			t.Errorf("Dial with api file %q: %v", addr, err)
		}
	}
}

// TestDialRefusesABrokenToken: a token file that is not what a node
// writes (hex) is a clear error of Dial, naming the file, rather than a
// request that Go refuses to send ("invalid header field value") or a
// 401 with no hint.
func TestDialRefusesABrokenToken(t *testing.T) {
	dir := t.TempDir()
	d, err := datadir.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.WriteFile(filepath.Join(dir, datadir.APIFile), []byte("127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, token string }{
		{"empty", ""},
		{"spaces", " \n"},
		{"a newline inside", "00\n11\n"},
		{"control bytes", "\x00\x01"},
		{"not hex", "token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, datadir.TokenFile), []byte(tt.token), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := client.Dial(dir); err == nil || !strings.Contains(err.Error(), datadir.TokenFile) {
				t.Errorf("Dial with token file %q: %v, want an error naming the file", tt.token, err)
			}
		})
	}
}

// TestConcurrentCallsReuseConnections: 16 calls at once need 16
// connections; 16 more at once, once those are done, reuse them
// (net/http's default transport keeps 2 idle per host: it opened 14 new
// ones). The server holds each wave's calls until all 16 are in.
func TestConcurrentCallsReuseConnections(t *testing.T) {
	const callers = 16
	var opened atomic.Int64
	var mu sync.Mutex
	in, release := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ch := release
		if in++; in == callers {
			close(release)
			in, release = 0, make(chan struct{})
		}
		mu.Unlock()
		<-ch
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	dir := t.TempDir()
	d, err := datadir.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.WriteFile(filepath.Join(dir, datadir.APIFile), []byte(srv.Listener.Addr().String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	wave := func() {
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() { _, _ = c.ID(t.Context()) }) // the answer's shape does not matter here
		}
		wg.Wait()
	}
	wave()
	first := opened.Load()
	wave()
	// A connection goes back to the pool just after its call returns, so
	// a few of the second wave may still dial; the default transport
	// dials for 14 of them.
	if n := opened.Load() - first; n >= callers/2 {
		t.Errorf("a second wave of %d calls opened %d new connections (the first %d), want fewer than %d", callers, n, first, callers/2)
	}
}
