package peer

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// The control API: HTTP/1.1 on a loopback TCP port, JSON bodies, every
// request authorised by "Authorization: Bearer <token>" with the token from
// the data dir's api.token. Routes:
//
//	GET  /v1/id       IDInfo
//	GET  /v1/status   Status
//	GET  /v1/peers    []PeerView
//	POST /v1/connect  ConnectRequest → PeerView of the peer, once connected
//	/v1/cell...       the cell: see cellapi.go
//	/v1/chain/...     the chain: see chainapi.go
//
// Errors are {"error": "..."} with a 4xx or 5xx status.

// IDInfo is the answer of /v1/id.
type IDInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// PeerView is one connected peer as the API shows it.
type PeerView struct {
	Peer           string    `json:"peer"`
	Addr           string    `json:"addr"`
	Sources        []string  `json:"sources"`
	RTTMillis      float64   `json:"rttMs"`
	ConnectedSince time.Time `json:"connectedSince"`
}

// ConnectRequest is the body of /v1/connect.
type ConnectRequest struct {
	Addr string `json:"addr"`
}

type apiError struct {
	Error string `json:"error"`
}

// maxRequestBody bounds what the API reads from a request.
const maxRequestBody = 64 << 10

// API serves the control API of one node. NewAPI starts nothing; Start
// listens; Close shuts down and waits.
type API struct {
	node  *Node
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

// NewAPI returns the control API of node, authorised by token.
func NewAPI(node *Node, token string, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{node: node, token: token, log: log}
}

// Start listens on listen (a loopback IP:port) and serves in the
// background. If addrFile is not empty, the address actually listened on is
// written there (mode 0600) for the CLI to find.
func (a *API) Start(listen, addrFile string) error {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("peer: api address %q is not a loopback IP:port", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("peer: api listen: %w", err)
	}
	if addrFile != "" {
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
			ln.Close()
			return fmt.Errorf("peer: write %s: %w", addrFile, err)
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			ln.Close()
			return fmt.Errorf("peer: write %s: %w", addrFile, err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ln, a.file, a.done = ln, addrFile, make(chan struct{})
	a.streams, a.stopStreams = context.WithCancel(context.Background())
	a.fresh = make(map[net.Conn]struct{})
	a.srv = &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		ConnState:         a.connState,
	}
	// Shutdown runs these once the listener is closed.
	a.srv.RegisterOnShutdown(a.stopStreams)
	a.srv.RegisterOnShutdown(a.closeFresh)
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("control api stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the address the API listens on; "" before Start.
func (a *API) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Close stops accepting requests, waits for those in flight until ctx ends,
// removes the address file and waits for the server goroutine. Idempotent.
func (a *API) Close(ctx context.Context) error {
	a.mu.Lock()
	srv, done, file, stopStreams := a.srv, a.done, a.file, a.stopStreams
	a.srv = nil
	a.mu.Unlock()
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

func (a *API) connState(c net.Conn, st http.ConnState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st == http.StateNew {
		if a.shutting {
			_ = c.Close()
			return
		}
		a.fresh[c] = struct{}{}
	} else {
		delete(a.fresh, c)
	}
}

func (a *API) closeFresh() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.shutting = true
	for c := range a.fresh {
		_ = c.Close()
		delete(a.fresh, c)
	}
}

func (a *API) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/id", func(w http.ResponseWriter, r *http.Request) {
		info := IDInfo{ID: a.node.ID().String()}
		for _, m := range a.node.Addrs() {
			info.Addrs = append(info.Addrs, m.String())
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.node.Status(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.peers(""))
	})
	mux.HandleFunc("POST /v1/connect", func(w http.ResponseWriter, r *http.Request) {
		var req ConnectRequest
		if !readJSON(w, r, &req) {
			return
		}
		m, err := ma.NewMultiaddr(req.Addr)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("%q is not a multiaddr: %v", req.Addr, err)})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		id, err := a.node.Connect(ctx, m)
		if err != nil {
			status := http.StatusBadGateway
			if id == "" {
				status = http.StatusBadRequest
			}
			writeJSON(w, status, apiError{err.Error()})
			return
		}
		views := a.peers(id.String())
		if len(views) == 0 {
			views = []PeerView{{Peer: id.String(), Sources: []string{"manual"}}}
		}
		writeJSON(w, http.StatusOK, views[0])
	})
	a.cellRoutes(mux)
	a.chainRoutes(mux)
	return a.guard(mux)
}

// guard refuses requests without the token, and requests whose Host header
// is not a loopback address (DNS rebinding from a browser).
func (a *API) guard(next http.Handler) http.Handler {
	want := []byte("Bearer " + a.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeJSON(w, http.StatusForbidden, apiError{"host " + r.Host + " is not loopback"})
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeJSON(w, http.StatusUnauthorized, apiError{"missing or wrong token (see api.token in the data dir)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

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

func (a *API) peers(only string) []PeerView {
	views := []PeerView{}
	for _, p := range a.node.Discovery().Peers() {
		if only != "" && p.ID.String() != only {
			continue
		}
		v := PeerView{
			Peer: p.ID.String(), RTTMillis: float64(p.RTT.Microseconds()) / 1000,
			ConnectedSince: p.ConnectedSince,
		}
		if p.Addr != nil {
			v.Addr = p.Addr.String()
		}
		for _, s := range p.Sources {
			v.Sources = append(v.Sources, string(s))
		}
		views = append(views, v)
	}
	return views
}

// readJSON decodes a request body into v, or answers 400 and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"bad request body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
