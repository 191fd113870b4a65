// Package client is the Go client of an exopeer node's control API. Dial
// finds the node running on a data dir; each method of Client is one route
// of the API (package api has the types and the OpenAPI document). It
// imports no libp2p: any program can drive a node with it.
//
// The rest of the package is generated from the document (Raw, with one
// method a route answering the raw *http.Response, and ClientWithResponses,
// which decodes the answers); Client wraps them with the data dir's token,
// typed errors and the follow stream.
//
// An error answer of the node is a *StatusError (its problem details); errors.Is tells the kinds
// callers branch on (ErrNotInCell, ErrNotAdmin, ...). A node that is not
// running is ErrNotRunning.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/dirlock"
)

// The files of a data dir that tell where its node's API is: datadir's
// APIFile, TokenFile and LockFile (a test checks they agree; package
// datadir is not imported, for it brings multiaddrs and leveldb).
const (
	apiFile   = "api"
	tokenFile = "api.token"
	lockFile  = "lock"
)

// ErrNotRunning means no node is running on the data dir.
var ErrNotRunning = errors.New("no exopeer node is running")

// ErrStreamEnded is what a follow yields when the node ends the stream
// without saying why.
var ErrStreamEnded = errors.New("the node ended the stream")

// maxAnswer bounds what the client reads of one answer.
const maxAnswer = 16 << 20

// Client talks to a running node's control API. It is safe for concurrent
// use.
type Client struct {
	dir  string
	base string
	// calls has a backstop timeout; stream has none, for follows.
	calls  *ClientWithResponses
	stream *Raw
}

// Dial finds the node running on dir from the files it keeps there (the api
// address and api.token). If none runs, the error wraps ErrNotRunning and
// says how to start one.
func Dial(dir string) (*Client, error) {
	notRunning := fmt.Errorf("%w on data dir %s (start one with: exopeer run --dir %s)", ErrNotRunning, dir, dir)
	if free, err := dirlock.Free(filepath.Join(dir, lockFile)); err == nil && free {
		return nil, notRunning
	}
	addr, err := os.ReadFile(filepath.Join(dir, apiFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, notRunning
	}
	if err != nil {
		return nil, fmt.Errorf("read api address: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		return nil, fmt.Errorf("read api token: %w", err)
	}
	base := "http://" + strings.TrimSpace(string(addr))
	auth := WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		return nil
	})
	// A backstop: callers bound each call with ctx.
	calls, err := NewClientWithResponses(base, auth, WithHTTPClient(capped{&http.Client{Timeout: 5 * time.Minute}}))
	if err != nil {
		return nil, fmt.Errorf("control api at %s: %w", base, err)
	}
	stream, err := NewClient(base, auth)
	if err != nil {
		return nil, fmt.Errorf("control api at %s: %w", base, err)
	}
	return &Client{dir: dir, base: base, calls: calls, stream: stream}, nil
}

// ID returns the node's identity and addresses.
func (c *Client) ID(ctx context.Context) (api.IDInfo, error) {
	r, err := c.calls.GetIDWithResponse(ctx)
	if err != nil {
		return api.IDInfo{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// Status returns what the node sees.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	r, err := c.calls.GetStatusWithResponse(ctx)
	if err != nil {
		return api.Status{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// Peers lists the connected exopeer peers.
func (c *Client) Peers(ctx context.Context) ([]api.PeerView, error) {
	r, err := c.calls.GetPeersWithResponse(ctx)
	if err != nil {
		return nil, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// Connect asks the node to dial addr, a multiaddr ending in /p2p/<peer ID>.
func (c *Client) Connect(ctx context.Context, addr string) (api.PeerView, error) {
	r, err := c.calls.ConnectWithResponse(ctx, api.ConnectRequest{Addr: addr})
	if err != nil {
		return api.PeerView{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// Cell returns the node's cell and each member's state.
func (c *Client) Cell(ctx context.Context) (api.CellView, error) {
	r, err := c.calls.GetCellWithResponse(ctx)
	if err != nil {
		return api.CellView{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// CellCreate creates a cell with the node as its admin.
func (c *Client) CellCreate(ctx context.Context, req api.CellCreateRequest) (api.CellView, error) {
	r, err := c.calls.CellCreateWithResponse(ctx, req)
	if err != nil {
		return api.CellView{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// CellInvite opens an invite and returns its code.
func (c *Client) CellInvite(ctx context.Context, req api.CellInviteRequest) (api.CellInvite, error) {
	r, err := c.calls.CellInviteWithResponse(ctx, req)
	if err != nil {
		return api.CellInvite{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// CellJoin joins the cell of an invite code; it blocks until joined.
func (c *Client) CellJoin(ctx context.Context, req api.CellJoinRequest) (api.CellView, error) {
	r, err := c.calls.CellJoinWithResponse(ctx, req)
	if err != nil {
		return api.CellView{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// CellRemove removes a member (admin only); see api.CellRemoveRequest.
func (c *Client) CellRemove(ctx context.Context, req api.CellRemoveRequest) (api.CellView, error) {
	r, err := c.calls.CellRemoveWithResponse(ctx, req)
	if err != nil {
		return api.CellView{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// ChainAppend appends one entry and returns it once it is on disk.
func (c *Client) ChainAppend(ctx context.Context, p api.ChainPayload) (api.ChainEntry, error) {
	r, err := c.calls.ChainAppendWithResponse(ctx, api.ChainAppendRequest{Text: p.Text, Data: p.Data})
	if err != nil {
		return api.ChainEntry{}, c.fail(err)
	}
	u, err := answer(r.HTTPResponse, r.Body, r.JSON200)
	if err != nil {
		return api.ChainEntry{}, err
	}
	e, err := u.AsChainEntry()
	if err != nil {
		return api.ChainEntry{}, fmt.Errorf("control api: bad answer: %w", err)
	}
	return e, nil
}

// ChainAppendMany appends entries in order, in one disk sync, and returns
// them.
func (c *Client) ChainAppendMany(ctx context.Context, ps []api.ChainPayload) ([]api.ChainEntry, error) {
	if ps == nil {
		ps = []api.ChainPayload{}
	}
	r, err := c.calls.ChainAppendWithResponse(ctx, api.ChainAppendRequest{Entries: ps})
	if err != nil {
		return nil, c.fail(err)
	}
	u, err := answer(r.HTTPResponse, r.Body, r.JSON200)
	if err != nil {
		return nil, err
	}
	es, err := u.AsChainEntries()
	if err != nil {
		return nil, fmt.Errorf("control api: bad answer: %w", err)
	}
	return es.Entries, nil
}

// ChainLog returns up to limit entries (0: the node's default) in chain
// order after the cursor after ("": from the start).
func (c *Client) ChainLog(ctx context.Context, after string, limit int) (api.ChainEntries, error) {
	params := &api.ChainLogParams{After: after}
	if limit != 0 {
		params.Limit = &limit
	}
	r, err := c.calls.ChainLogWithResponse(ctx, params)
	if err != nil {
		return api.ChainEntries{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// ChainStatus returns a summary of the chain and of what each member holds.
func (c *Client) ChainStatus(ctx context.Context) (api.ChainStatus, error) {
	r, err := c.calls.ChainStatusWithResponse(ctx)
	if err != nil {
		return api.ChainStatus{}, c.fail(err)
	}
	return answer(r.HTTPResponse, r.Body, r.JSON200)
}

// ChainFollow returns the entries after the cursor after ("": from the
// start) in chain order, then every entry as it arrives on the node, until
// ctx ends (the sequence ends), the loop stops, or the node stops (it
// yields an error). Each error is yielded last.
func (c *Client) ChainFollow(ctx context.Context, after string) iter.Seq2[api.ChainEntry, error] {
	return func(yield func(api.ChainEntry, error) bool) {
		resp, err := c.stream.ChainLog(ctx, &api.ChainLogParams{After: after, Follow: true})
		if err != nil {
			yield(api.ChainEntry{}, c.fail(err))
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			yield(api.ChainEntry{}, problem(resp.StatusCode, data))
			return
		}
		readFollow(ctx, resp.Body, yield)
	}
}

// readFollow yields the entries of a follow stream, one JSON object a
// line, until ctx ends, yield stops, or the stream ends or says why it
// ends (then it yields that error).
func readFollow(ctx context.Context, body io.Reader, yield func(api.ChainEntry, error) bool) {
	dec := json.NewDecoder(body)
	for {
		var l api.ChainFollowLine
		err := dec.Decode(&l)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, io.EOF):
			yield(api.ChainEntry{}, ErrStreamEnded)
			return
		case err != nil:
			yield(api.ChainEntry{}, fmt.Errorf("control api: follow: %w", err))
			return
		case l.Error != "":
			yield(api.ChainEntry{}, fmt.Errorf("node says: %s", l.Error))
			return
		}
		if !yield(l.Entry(), nil) {
			return
		}
	}
}

// answer returns the decoded answer of a 200, else the node's error.
func answer[T any](resp *http.Response, body []byte, v *T) (T, error) {
	var zero T
	if resp.StatusCode != http.StatusOK {
		return zero, problem(resp.StatusCode, body)
	}
	if v == nil {
		return zero, fmt.Errorf("control api: bad answer: %q is not JSON", resp.Header.Get("Content-Type"))
	}
	return *v, nil
}

// fail is the error of a call that got no answer.
func (c *Client) fail(err error) error {
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w on data dir %s (its control API at %s refuses connections)", ErrNotRunning, c.dir, c.base)
	}
	return fmt.Errorf("control api: %w", err)
}

// capped reads at most maxAnswer bytes of an answer.
type capped struct{ hc *http.Client }

func (d capped) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxAnswer}
	return resp, nil
}

type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the cap: the answer must end here.
		if n, err := b.ReadCloser.Read(make([]byte, 1)); n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("answer over %d bytes", maxAnswer)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
