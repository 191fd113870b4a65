// Package server serves the control API of one exopeer node (package api
// describes it) on a loopback TCP port: it writes the address it listens
// on to the data dir for the CLI to find, refuses requests without the
// data dir's token and requests whose Host header is not loopback (DNS
// rebinding from a browser), caps request bodies, answers errors as
// application/problem+json, and implements api.ServerInterface on a
// *peer.Node.
//
// GET /v1/openapi.json serves the document itself with no token: it
// describes no secret, and tools that read it need not hold one. The Host
// check still applies.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/peer"
)

// Server serves the control API of one node. New starts nothing; Start
// listens; Close shuts down and waits.
type Server struct {
	node  *peer.Node
	token string
	log   *slog.Logger

	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
	file string
	done chan struct{}

	// streams ends when Close begins, so that long answers (a chain
	// follow) end and Shutdown need not wait for them.
	streams     context.Context
	stopStreams context.CancelFunc
	// fresh holds the connections that have sent no request yet (a
	// client's transport may dial one and never use it): Close closes
	// them, where Shutdown would wait 5 s for each.
	fresh map[net.Conn]struct{}
	// shutting is set once closeFresh ran: a connection accepted after
	// that (the listener's backlog) is closed as soon as it is seen.
	shutting bool
}

// New returns the control API of node, authorised by token.
func New(node *peer.Node, token string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{node: node, token: token, log: log}
}

// Start listens on listen (a loopback IP:port) and serves in the
// background. If addrFile is not empty, the address actually listened on is
// written there (mode 0600) for the CLI to find.
func (s *Server) Start(listen, addrFile string) error {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("server: api address %q is not a loopback IP:port", listen)
	}
	doc, err := specJSON()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("server: api listen: %w", err)
	}
	if addrFile != "" {
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
			ln.Close()
			return fmt.Errorf("server: write %s: %w", addrFile, err)
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			ln.Close()
			return fmt.Errorf("server: write %s: %w", addrFile, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln, s.file, s.done = ln, addrFile, make(chan struct{})
	s.streams, s.stopStreams = context.WithCancel(context.Background())
	s.fresh = make(map[net.Conn]struct{})
	rt := &routes{node: s.node, streams: s.streams, spec: doc}
	s.srv = &http.Server{
		Handler:           s.guard(rt.mux()),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState:         s.connState,
	}
	// Shutdown runs these once the listener is closed.
	s.srv.RegisterOnShutdown(s.stopStreams)
	s.srv.RegisterOnShutdown(s.closeFresh)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("control api stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the address the API listens on; "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops accepting requests, ends the follow streams, waits for the
// requests in flight until ctx ends, removes the address file and waits for
// the server goroutine. Idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	srv, done, file, stopStreams := s.srv, s.done, s.file, s.stopStreams
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	defer stopStreams()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.Close())
	}
	<-done
	if file != "" {
		_ = os.Remove(file)
	}
	return err
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateNew {
		if s.shutting {
			_ = c.Close()
			return
		}
		s.fresh[c] = struct{}{}
	} else {
		delete(s.fresh, c)
	}
}

func (s *Server) closeFresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting = true
	for c := range s.fresh {
		_ = c.Close()
		delete(s.fresh, c)
	}
}

// guard refuses requests whose Host header is not a loopback address (DNS
// rebinding from a browser), then requests without the token, but for the
// document itself; it answers a request no route takes as a problem too.
func (s *Server) guard(mux *http.ServeMux) http.Handler {
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeProblem(w, http.StatusForbidden, api.ProblemNotLoopback, "host "+r.Host+" is not loopback")
			return
		}
		open := r.Method == http.MethodGet && r.URL.Path == "/v1/openapi.json"
		got := []byte(r.Header.Get("Authorization"))
		if len(got) == 0 && queryTokenRoute(r) {
			// A browser's <video src>: the token in the URL.
			got = []byte("Bearer " + r.URL.Query().Get("token"))
		}
		if !open && subtle.ConstantTimeCompare(got, want) != 1 {
			writeProblem(w, http.StatusUnauthorized, api.ProblemUnauthorized, "missing or wrong token (see api.token in the data dir)")
			return
		}
		h, pattern := mux.Handler(r)
		if pattern == "" {
			// The mux's own answer, 404 or 405 (with its Allow
			// header), as a problem.
			rec := &statusRecorder{header: http.Header{}}
			h.ServeHTTP(rec, r)
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			if rec.status == http.StatusMethodNotAllowed {
				writeProblem(w, rec.status, api.ProblemMethodNotAllowed, r.Method+" is not a method of "+r.URL.Path)
				return
			}
			writeProblem(w, http.StatusNotFound, api.ProblemNotFound, "no route "+r.URL.Path)
			return
		}
		// The mux again, not h: it sets the request's pattern and path
		// values, which routes with parameters in their path read.
		mux.ServeHTTP(w, r)
	})
}

// queryTokenRoute tells a request that may carry its token as ?token=:
// a GET or HEAD of a blob's content, which a browser's media element asks
// for without a way to set a header.
func queryTokenRoute(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/blobs/")
	cap, ok2 := strings.CutSuffix(rest, "/content")
	return ok && ok2 && cap != "" && !strings.Contains(cap, "/")
}

// statusRecorder keeps the status and headers a handler answers with and
// drops its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// specJSON returns the OpenAPI document as JSON.
func specJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(api.Spec(), &doc); err != nil {
		return nil, fmt.Errorf("server: openapi document: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("server: openapi document: %w", err)
	}
	return b, nil
}
