package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// rawAPI sends requests to the API of the node on dir by hand, with its
// token unless auth says otherwise.
type rawAPI struct {
	base, token string
}

func newRaw(t *testing.T, dir string) rawAPI {
	t.Helper()
	addr, err := os.ReadFile(filepath.Join(dir, datadir.APIFile))
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(dir, datadir.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return rawAPI{base: "http://" + strings.TrimSpace(string(addr)), token: strings.TrimSpace(string(token))}
}

// do sends a request; auth is the Authorization header ("-": none), host
// the Host header ("": the address). It returns the status, the content
// type and the body.
func (r rawAPI) do(t *testing.T, method, path, body, auth, host string) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, r.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	switch auth {
	case "":
		req.Header.Set("Authorization", "Bearer "+r.token)
	case "-":
	default:
		req.Header.Set("Authorization", auth)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), data
}

// wantProblem fails unless an answer is a problem of that status and type.
func wantProblem(t *testing.T, what string, status int, ctype string, body []byte, wantStatus int, wantType api.ProblemType) {
	t.Helper()
	var p api.Problem
	if status != wantStatus || ctype != "application/problem+json" || json.Unmarshal(body, &p) != nil ||
		p.Type != wantType || p.Status != wantStatus || p.Title == "" || p.Detail == "" {
		t.Errorf("%s: %d %s %s, want a %d problem of type %s", what, status, ctype, body, wantStatus, wantType)
	}
}

func TestClientAgainstRunningNode(t *testing.T) {
	dir, n, _ := nodetest.Serve(t)
	other := nodetest.Start(t, nodetest.Options(t, 10))
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id, err := c.ID(ctx)
	if err != nil || id.ID != n.ID().String() || len(id.Addrs) == 0 {
		t.Fatalf("ID = %+v, %v", id, err)
	}
	addr := nodetest.P2pAddr(t, other).String()
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
		{"self", nodetest.P2pAddr(t, n).String(), "is this node"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Connect(ctx, tt.addr); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Connect(%q) error = %v, want %q", tt.addr, err, tt.want)
			}
		})
	}
}

func TestAPIRefusesWithoutToken(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	r := newRaw(t, dir)
	tests := []struct {
		name, auth, host string
		want             int
		problem          api.ProblemType
	}{
		{"no token", "-", "", http.StatusUnauthorized, api.ProblemUnauthorized},
		{"wrong token", "Bearer 00", "", http.StatusUnauthorized, api.ProblemUnauthorized},
		{"token without scheme", r.token, "", http.StatusUnauthorized, api.ProblemUnauthorized},
		{"foreign host header", "", "evil.example:80", http.StatusForbidden, api.ProblemNotLoopback},
		{"right token", "", "", http.StatusOK, ""},
		{"localhost", "", "localhost:1", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ctype, body := r.do(t, http.MethodGet, "/v1/status", "", tt.auth, tt.host)
			if tt.problem != "" {
				wantProblem(t, tt.name, status, ctype, body, tt.want, tt.problem)
			} else if status != tt.want {
				t.Errorf("status = %d, want %d", status, tt.want)
			}
		})
	}
	// The client tells a wrong token by its kind.
	if err := os.WriteFile(filepath.Join(dir, datadir.TokenFile), []byte("00\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(t.Context()); !errors.Is(err, client.ErrUnauthorized) || !strings.HasPrefix(err.Error(), "node says: ") {
		t.Errorf("Status with a wrong token: %v, want ErrUnauthorized", err)
	}

	// A bad request body is a clear 400, not a crash; one too large a
	// clear 413.
	status, ctype, body := r.do(t, http.MethodPost, "/v1/connect", `{"addr": 5`, "", "")
	wantProblem(t, "bad body", status, ctype, body, http.StatusBadRequest, api.ProblemBadRequest)
	status, ctype, body = r.do(t, http.MethodPost, "/v1/connect", `{"addr": "`+strings.Repeat("a", 70<<10)+`"}`, "", "")
	wantProblem(t, "large body", status, ctype, body, http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge)

	// A route that does not exist, or a method a route does not take, is a
	// problem too, after the token.
	status, ctype, body = r.do(t, http.MethodGet, "/v1/nope", "", "", "")
	wantProblem(t, "unknown route", status, ctype, body, http.StatusNotFound, api.ProblemNotFound)
	status, _, _ = r.do(t, http.MethodGet, "/v1/nope", "", "-", "")
	if status != http.StatusUnauthorized {
		t.Errorf("unknown route without a token: %d, want 401", status)
	}
	status, ctype, body = r.do(t, http.MethodPost, "/v1/status", "", "", "")
	wantProblem(t, "wrong method", status, ctype, body, http.StatusMethodNotAllowed, api.ProblemMethodNotAllowed)
}
