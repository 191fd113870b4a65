package peer

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/datadir"
)

// runningDir opens a data dir and runs a loopback node with its control API
// on it, as `exopeer run` does.
func runningDir(t *testing.T, tweak ...func(*Options)) (string, *Node) {
	t.Helper()
	dir := t.TempDir()
	d, err := datadir.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	opts := loopbackOptions(t, 9)
	opts.Datastore = d.Datastore
	for _, f := range tweak {
		f(&opts)
	}
	n := startNode(t, opts)
	api := NewAPI(n, d.Token, nil)
	if err := api.Start("127.0.0.1:0", filepath.Join(dir, datadir.APIFile)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := api.Close(ctx); err != nil {
			t.Errorf("api Close: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, datadir.APIFile)); !os.IsNotExist(err) {
			t.Errorf("api file left behind: %v", err)
		}
	})
	return dir, n
}

func TestClientAgainstRunningNode(t *testing.T) {
	dir, n := runningDir(t)
	other := startNode(t, loopbackOptions(t, 10))
	c, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id, err := c.ID(ctx)
	if err != nil || id.ID != n.ID().String() || len(id.Addrs) == 0 {
		t.Fatalf("ID = %+v, %v", id, err)
	}
	addr := mustP2pAddr(t, addrInfo(other)).String()
	pv, err := c.Connect(ctx, addr)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if pv.Peer != other.ID().String() || pv.Sources[0] != "manual" {
		t.Errorf("Connect = %+v", pv)
	}
	peers, err := c.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].Peer != other.ID().String() {
		t.Errorf("Peers = %+v, %v", peers, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.ID != n.ID().String() || st.Peers != 1 {
		t.Errorf("Status = %+v, %v", st, err)
	}

	for _, tt := range []struct{ name, addr, want string }{
		{"not a multiaddr", "nope", "not a multiaddr"},
		{"no peer id", "/ip4/127.0.0.1/tcp/1", "must end in /p2p/"},
		{"self", mustP2pAddr(t, addrInfo(n)).String(), "is this node"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Connect(ctx, tt.addr); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Connect(%q) error = %v, want %q", tt.addr, err, tt.want)
			}
		})
	}
}

func TestAPIRefusesWithoutToken(t *testing.T) {
	dir, _ := runningDir(t)
	addr, _ := os.ReadFile(filepath.Join(dir, datadir.APIFile))
	url := "http://" + strings.TrimSpace(string(addr)) + "/v1/status"
	token, _ := os.ReadFile(filepath.Join(dir, datadir.TokenFile))
	tests := []struct {
		name, auth, host string
		want             int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"wrong token", "Bearer 00", "", http.StatusUnauthorized},
		{"token without scheme", strings.TrimSpace(string(token)), "", http.StatusUnauthorized},
		{"foreign host header", "Bearer " + strings.TrimSpace(string(token)), "evil.example:80", http.StatusForbidden},
		{"right token", "Bearer " + strings.TrimSpace(string(token)), "", http.StatusOK},
		{"localhost", "Bearer " + strings.TrimSpace(string(token)), "localhost:1", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	// A bad request body is a clear 400, not a crash.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, strings.Replace(url, "status", "connect", 1), strings.NewReader("{\"addr\": 5"))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad body: status %d, want 400", resp.StatusCode)
	}
}

func TestDialWithNoNodeRunning(t *testing.T) {
	t.Run("empty dir", func(t *testing.T) {
		_, err := Dial(t.TempDir())
		if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "exopeer run") {
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
		if _, err := Dial(dir); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Dial = %v, want ErrNotRunning", err)
		}
	})
}
