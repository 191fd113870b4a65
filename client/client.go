// Package client is the Go client of an exopeer node's control API. Dial
// finds the node running on a data dir; each method of Client is one route
// of the API (package api has the types and the OpenAPI document). It
// imports no libp2p: any program can drive a node with it.
//
// The rest of the package is generated from the document: Raw, with one
// method a route answering the raw *http.Response, and ClientWithResponses,
// which decodes the answers. Client holds them with the data dir's token;
// a route with no method on Client yet is called through API and Answer.
//
// An error answer of the node is a *StatusError (its problem details); errors.Is tells the kinds
// callers branch on (ErrNotInCell, ErrNotAdmin, ...). A node that is not
// running is ErrNotRunning.
package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/netip"
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
	tokData, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		return nil, fmt.Errorf("read api token: %w", err)
	}
	// A node writes its token in hex, and refuses to start with another.
	tok := strings.TrimSpace(string(tokData))
	if _, err := hex.DecodeString(tok); err != nil || tok == "" {
		return nil, fmt.Errorf("api token %s is not a token a node writes (hex)", filepath.Join(dir, tokenFile))
	}
	// The node listens on loopback only: any other address in its file is
	// a broken or tampered data dir, and the token must not go there.
	ap, err := netip.ParseAddrPort(strings.TrimSpace(string(addr)))
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("api file %s: %q is not a loopback IP:port", filepath.Join(dir, apiFile), strings.TrimSpace(string(addr)))
	}
	base := "http://" + ap.String()
	auth := WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+tok)
		return nil
	})
	// A backstop: callers bound each call with ctx.
	tr := transport()
	calls, err := NewClientWithResponses(base, auth,
		WithHTTPClient(doer{dir: dir, base: base, hc: &http.Client{Transport: tr, Timeout: 5 * time.Minute}, capped: true}))
	if err != nil {
		return nil, fmt.Errorf("control api at %s: %w", base, err)
	}
	stream, err := NewClient(base, auth, WithHTTPClient(doer{dir: dir, base: base, hc: &http.Client{Transport: tr}}))
	if err != nil {
		return nil, fmt.Errorf("control api at %s: %w", base, err)
	}
	return &Client{calls: calls, stream: stream}, nil
}

// API returns the generated client of every route, authorised with the
// data dir's token: a route with no method on Client is called as
//
//	v, err := client.Answer(c.API().GetPeersWithResponse(ctx))
//
// It is safe for concurrent use.
func (c *Client) API() *ClientWithResponses { return c.calls }

// Response is the answer of a call of the generated client whose 200
// answer is a T.
type Response[T any] interface {
	StatusCode() int
	GetJSON200() *T
	GetBody() []byte
}

// Answer returns the decoded 200 answer of a call of the generated
// client, else its error: ErrNotRunning if the node refuses connections, a
// *StatusError (errors.Is its kind, ErrNotInCell...) if it answered one.
func Answer[T any, R Response[T]](r R, err error) (T, error) {
	var zero T
	if errors.Is(err, ErrNotRunning) {
		return zero, err
	}
	if err != nil {
		return zero, fmt.Errorf("control api: %w", err)
	}
	if r.StatusCode() != http.StatusOK {
		return zero, problem(r.StatusCode(), r.GetBody())
	}
	v := r.GetJSON200()
	if v == nil {
		return zero, errors.New("control api: bad answer: not JSON")
	}
	return *v, nil
}

// ID returns the node's identity and addresses.
func (c *Client) ID(ctx context.Context) (api.IDInfo, error) {
	return Answer(c.calls.GetIDWithResponse(ctx))
}

// Status returns what the node sees.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	return Answer(c.calls.GetStatusWithResponse(ctx))
}

// Doctor asks the node what is wrong with its connectivity and data dir,
// and what to do. It blocks while the node asks its members' clocks, a few
// seconds at most.
func (c *Client) Doctor(ctx context.Context) (api.DoctorReport, error) {
	return Answer(c.calls.GetDoctorWithResponse(ctx))
}

// Peers lists the connected exopeer peers.
func (c *Client) Peers(ctx context.Context) ([]api.PeerView, error) {
	return Answer(c.calls.GetPeersWithResponse(ctx))
}

// Connect asks the node to dial addr, a multiaddr ending in /p2p/<peer ID>.
func (c *Client) Connect(ctx context.Context, addr string) (api.PeerView, error) {
	return Answer(c.calls.ConnectWithResponse(ctx, api.ConnectRequest{Addr: addr}))
}

// Cell returns the node's cell and each member's state.
func (c *Client) Cell(ctx context.Context) (api.CellView, error) {
	return Answer(c.calls.GetCellWithResponse(ctx))
}

// CellCreate creates a cell with the node as its admin.
func (c *Client) CellCreate(ctx context.Context, req api.CellCreateRequest) (api.CellView, error) {
	return Answer(c.calls.CellCreateWithResponse(ctx, req))
}

// CellInvite opens an invite and returns its code.
func (c *Client) CellInvite(ctx context.Context, req api.CellInviteRequest) (api.CellInvite, error) {
	return Answer(c.calls.CellInviteWithResponse(ctx, req))
}

// CellJoin joins the cell of an invite code; it blocks until joined.
func (c *Client) CellJoin(ctx context.Context, req api.CellJoinRequest) (api.CellView, error) {
	return Answer(c.calls.CellJoinWithResponse(ctx, req))
}

// CellRemove removes a member (admin only); see api.CellRemoveRequest.
func (c *Client) CellRemove(ctx context.Context, req api.CellRemoveRequest) (api.CellView, error) {
	return Answer(c.calls.CellRemoveWithResponse(ctx, req))
}

// ChainAppend appends one entry and returns it once it is on disk.
func (c *Client) ChainAppend(ctx context.Context, p api.ChainPayload) (api.ChainEntry, error) {
	u, err := Answer(c.calls.ChainAppendWithResponse(ctx, api.ChainAppendRequest{Text: p.Text, Data: p.Data}))
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
	u, err := Answer(c.calls.ChainAppendWithResponse(ctx, api.ChainAppendRequest{Entries: ps}))
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
	return Answer(c.calls.ChainLogWithResponse(ctx, params))
}

// ChainStatus returns a summary of the chain and of what each member holds.
func (c *Client) ChainStatus(ctx context.Context) (api.ChainStatus, error) {
	return Answer(c.calls.ChainStatusWithResponse(ctx))
}

// ChainFollow returns the entries after the cursor after ("": from the
// start) in chain order, then every entry as it arrives on the node, until
// ctx ends (the sequence ends), the loop stops, or the node stops (it
// yields an error). Each error is yielded last.
func (c *Client) ChainFollow(ctx context.Context, after string) iter.Seq2[api.ChainEntry, error] {
	return func(yield func(api.ChainEntry, error) bool) {
		resp, err := c.stream.ChainLog(ctx, &api.ChainLogParams{After: after, Follow: true})
		if err != nil {
			if !errors.Is(err, ErrNotRunning) {
				err = fmt.Errorf("control api: %w", err)
			}
			yield(api.ChainEntry{}, err)
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
	readLines(ctx, body, "follow", func(l api.ChainFollowLine) error {
		if l.Error != nil {
			return &StatusError{*l.Error}
		}
		return nil
	}, func(l api.ChainFollowLine, err error) bool { return yield(l.Entry(), err) })
}

// readLines yields the lines of a stream of JSON objects, one a line,
// until ctx ends, yield stops, the stream ends (ErrStreamEnded) or a line
// is one that ends it (end returns its error, nil for a line to yield).
// A line over maxAnswer bytes is an error: the stream has no end, but
// each of its lines has.
func readLines[L any](ctx context.Context, body io.Reader, what string, end func(L) error, yield func(L, error) bool) {
	var zero L
	dec := json.NewDecoder(&lineCapped{r: body, left: maxAnswer + 1})
	for {
		var l L
		err := dec.Decode(&l)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, io.EOF):
			yield(zero, ErrStreamEnded)
			return
		case err != nil:
			yield(zero, fmt.Errorf("control api: %s: %w", what, err))
			return
		}
		if err := end(l); err != nil {
			yield(zero, err)
			return
		}
		if !yield(l, nil) {
			return
		}
	}
}

// doer sends the requests of the generated client: a node that refuses
// connections is ErrNotRunning; capped answers are read up to maxAnswer
// bytes.
// MaxIdleConns is how many idle connections to its node a Client keeps
// for reuse. net/http's default transport keeps 2 per host, so a program
// that makes more calls at once (16 sends) closed and opened a loopback
// connection for most of them; a connection costs both ends a handshake
// and leaves a socket in TIME_WAIT.
const MaxIdleConns = 64

// transport is the Client's: net/http's default one, keeping
// MaxIdleConns idle connections to the node. The node is on loopback:
// no proxy.
func transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = MaxIdleConns
	tr.MaxIdleConnsPerHost = MaxIdleConns
	return tr
}

type doer struct {
	dir, base string
	hc        *http.Client
	capped    bool
}

func (d doer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.hc.Do(req)
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) && op.Op == "dial" {
		return nil, fmt.Errorf("%w on data dir %s (its control API at %s refuses connections)", ErrNotRunning, d.dir, d.base)
	}
	if err != nil {
		return nil, err
	}
	if d.capped {
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxAnswer}
	}
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

// lineCapped reads a stream of lines, each at most maxAnswer bytes but
// its newline, and fails on a longer one.
type lineCapped struct {
	r    io.Reader
	left int64 // bytes the current line may still take, its newline too
}

func (l *lineCapped) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("a line over %d bytes", maxAnswer)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		l.left = maxAnswer + 1 - int64(n-1-i)
	} else {
		l.left -= int64(n)
	}
	return n, err
}
