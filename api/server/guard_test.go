package server_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestGuardPathTricks sends request lines by hand, as no client would
// (Go's and curl's clean their paths), and checks that none of them
// reaches a route without the token: paths that clean to a route, that
// start like the document's or encode a slash, methods a GET route takes
// but that are not GET, and a request in absolute form. The document
// itself is open to GET only, at its exact path.
func TestGuardPathTricks(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	r := newRaw(t, dir)
	addr := strings.TrimPrefix(r.base, "http://")
	tests := []struct {
		name, line string
		want       int
	}{
		{"double slash", "GET //v1/status", http.StatusUnauthorized},
		{"dot dot after the document", "GET /v1/openapi.json/../status", http.StatusUnauthorized},
		{"dot segment", "GET /v1/./status", http.StatusUnauthorized},
		{"document with a trailing slash", "GET /v1/openapi.json/", http.StatusUnauthorized},
		{"encoded slash", "GET /v1%2Fstatus", http.StatusUnauthorized},
		{"encoded letter", "GET /v1/%73tatus", http.StatusUnauthorized},
		{"route with a trailing slash", "GET /v1/status/", http.StatusUnauthorized},
		{"HEAD of a route", "HEAD /v1/status", http.StatusUnauthorized},
		{"HEAD of the document", "HEAD /v1/openapi.json", http.StatusUnauthorized},
		{"OPTIONS of a route", "OPTIONS /v1/status", http.StatusUnauthorized},
		{"POST to the document", "POST /v1/openapi.json", http.StatusUnauthorized},
		{"absolute form", "GET http://" + addr + "/v1/status", http.StatusUnauthorized},
		{"absolute form, document path in the query", "GET http://" + addr + "/v1/status?/v1/openapi.json", http.StatusUnauthorized},
		{"the document", "GET /v1/openapi.json", http.StatusOK},
		{"the document, encoded", "GET /v1/openapi%2ejson", http.StatusOK},
		// Open as the document's path once decoded, but no route takes it.
		{"the document, slash encoded", "GET /v1%2Fopenapi.json", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawStatus(t, addr, tt.line+" HTTP/1.1\r\nHost: "+addr+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); got != tt.want {
				t.Errorf("%q: %d, want %d", tt.line, got, tt.want)
			}
		})
	}
	// The Host check comes first, for the document too.
	if got := rawStatus(t, addr, "GET /v1/openapi.json HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"); got != http.StatusForbidden {
		t.Errorf("the document for a foreign host: %d, want 403", got)
	}
	if got := rawStatus(t, addr, "GET /v1/openapi.json HTTP/1.0\r\nConnection: close\r\n\r\n"); got != http.StatusForbidden {
		t.Errorf("the document with no Host: %d, want 403", got)
	}
}

// rawStatus sends req as it is to addr and returns the answer's status.
func rawStatus(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
