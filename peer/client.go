package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/exopeer/exopeer/datadir"
)

// ErrNotRunning means no node is running on the data dir.
var ErrNotRunning = errors.New("no exopeer node is running")

// Client talks to a running node's control API. It is safe for concurrent
// use.
type Client struct {
	dir   string
	base  string
	token string
	hc    *http.Client
}

// Dial finds the node running on dir from the files it keeps there (the api
// address and api.token). If none runs, the error wraps ErrNotRunning and
// says how to start one.
func Dial(dir string) (*Client, error) {
	notRunning := fmt.Errorf("%w on data dir %s (start one with: exopeer run --dir %s)", ErrNotRunning, dir, dir)
	if free, err := datadir.LockFree(dir); err == nil && free {
		return nil, notRunning
	}
	addr, err := os.ReadFile(filepath.Join(dir, datadir.APIFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, notRunning
	}
	if err != nil {
		return nil, fmt.Errorf("read api address: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, datadir.TokenFile))
	if err != nil {
		return nil, fmt.Errorf("read api token: %w", err)
	}
	return &Client{
		dir:   dir,
		base:  "http://" + strings.TrimSpace(string(addr)),
		token: strings.TrimSpace(string(tok)),
		hc:    &http.Client{Timeout: 5 * time.Minute}, // a backstop: callers bound each call with ctx
	}, nil
}

// ID returns the node's identity and addresses.
func (c *Client) ID(ctx context.Context) (IDInfo, error) {
	var v IDInfo
	return v, c.call(ctx, http.MethodGet, "/v1/id", nil, &v)
}

// Status returns what the node sees.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var v Status
	return v, c.call(ctx, http.MethodGet, "/v1/status", nil, &v)
}

// Peers lists the connected exopeer peers.
func (c *Client) Peers(ctx context.Context) ([]PeerView, error) {
	var v []PeerView
	return v, c.call(ctx, http.MethodGet, "/v1/peers", nil, &v)
}

// Connect asks the node to dial addr, a multiaddr ending in /p2p/<peer ID>.
func (c *Client) Connect(ctx context.Context, addr string) (PeerView, error) {
	var v PeerView
	return v, c.call(ctx, http.MethodPost, "/v1/connect", ConnectRequest{Addr: addr}, &v)
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.do(ctx, c.hc, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("control api: read answer: %w", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("control api: bad answer: %w", err)
	}
	return nil
}

// open starts a streaming GET: the answer is the caller's to read and
// close, and only ctx bounds it.
func (c *Client) open(ctx context.Context, path string) (*http.Response, error) {
	hc := *c.hc
	hc.Timeout = 0
	return c.do(ctx, &hc, http.MethodGet, path, nil)
}

// do sends a request and returns the answer if its status is 200 OK, else
// the node's error.
func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || isRefused(err) {
			return nil, fmt.Errorf("%w on data dir %s (its control API at %s refuses connections)", ErrNotRunning, c.dir, c.base)
		}
		return nil, fmt.Errorf("control api: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	se := &StatusError{Status: resp.StatusCode}
	var e apiError
	if json.Unmarshal(data, &e) == nil {
		se.Message = e.Error
	}
	return nil, se
}

// StatusError is an error answer of the control API.
type StatusError struct {
	Status  int    // the HTTP status
	Message string // what the node said; may be empty
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("control api: %d %s", e.Status, http.StatusText(e.Status))
	}
	return "node says: " + e.Message
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
