package peer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
)

// Routes of the chain, on the control API:
//
//	POST /v1/chain/append   ChainAppendRequest → ChainEntry, or ChainEntries
//	                        when the request has "entries"
//	GET  /v1/chain/log      ?after=POS&limit=N → ChainEntries, in chain order
//	GET  /v1/chain/log      ?after=POS&follow=1 → NDJSON: one ChainEntry a
//	                        line, the log after POS then each new entry as
//	                        it arrives, until the client or the node goes
//	GET  /v1/chain/status   replica.Status
//
// A cursor POS is what ChainEntry.Pos holds (CLOCK.CID); "0" or nothing is
// the start. 409 while the node is in no cell, 400 for a bad cursor, limit
// or body, 413 for a payload over chain.MaxPayload.

// ChainEntry is an entry of the chain as the API shows it. The payload is
// Text when it is valid UTF-8, else Data.
type ChainEntry struct {
	CID     string   `json:"cid"`
	Pos     string   `json:"pos"`   // the entry's place in chain order: a cursor
	Index   uint64   `json:"index"` // its place in this node's arrival order
	Author  string   `json:"author"`
	Seq     uint64   `json:"seq"`
	Clock   uint64   `json:"clock"`
	Epoch   uint64   `json:"epoch"`
	Parents []string `json:"parents"`
	Text    *string  `json:"text,omitempty"`
	Data    []byte   `json:"data,omitempty"`
}

// Payload returns the entry's payload, whichever way it was sent.
func (e ChainEntry) Payload() []byte {
	if e.Text != nil {
		return []byte(*e.Text)
	}
	return e.Data
}

// ChainPayload is one payload to append: Text or Data (base64 in JSON),
// not both.
type ChainPayload struct {
	Text *string `json:"text,omitempty"`
	Data []byte  `json:"data,omitempty"`
}

// ChainText returns the payload of a text entry.
func ChainText(s string) ChainPayload { return ChainPayload{Text: &s} }

// ChainData returns the payload of a binary entry.
func ChainData(b []byte) ChainPayload {
	if b == nil {
		b = []byte{}
	}
	return ChainPayload{Data: b}
}

func (p ChainPayload) bytes() ([]byte, error) {
	switch {
	case p.Text != nil && p.Data != nil:
		return nil, errors.New(`give "text" or "data", not both`)
	case p.Text != nil:
		return []byte(*p.Text), nil
	case p.Data != nil:
		return p.Data, nil
	}
	return nil, errors.New(`give "text" or "data"`)
}

// ChainAppendRequest is the body of /v1/chain/append: one payload, or
// Entries, appended in order in one disk sync.
type ChainAppendRequest struct {
	ChainPayload
	Entries []ChainPayload `json:"entries,omitempty"`
}

// ChainEntries is a page of the log, or the answer to an append of
// several entries. Next is the cursor to read on from: the last entry's
// position, or the request's cursor when there was none.
type ChainEntries struct {
	Entries []ChainEntry `json:"entries"`
	Next    string       `json:"next,omitempty"`
}

const (
	// chainLogLimit is a log page's default size; chainLogMax its largest.
	chainLogLimit, chainLogMax = 100, 10000
	// chainAppendMax bounds the entries of one append request.
	chainAppendMax = 1000
	// chainPageBytes is about where a log page is cut short, so that an
	// answer stays well under what a Client reads.
	chainPageBytes = 4 << 20
	// chainBodyMax bounds an append request: one largest payload in
	// base64 and then some.
	chainBodyMax = 16 << 20
)

func (a *API) chainRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/chain/append", a.chainAppend)
	mux.HandleFunc("GET /v1/chain/log", a.chainLog)
	mux.HandleFunc("GET /v1/chain/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.node.Chain().Status(r.Context())
		if err != nil {
			writeJSON(w, chainErrStatus(err), apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
}

func (a *API) chainAppend(w http.ResponseWriter, r *http.Request) {
	var req ChainAppendRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, chainBodyMax))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		status := http.StatusBadRequest
		if errors.As(err, new(*http.MaxBytesError)) {
			status = http.StatusRequestEntityTooLarge
		}
		writeJSON(w, status, apiError{"bad request body: " + err.Error()})
		return
	}
	many := req.Entries != nil
	list := req.Entries
	if !many {
		list = []ChainPayload{req.ChainPayload}
	} else if req.Text != nil || req.Data != nil {
		writeJSON(w, http.StatusBadRequest, apiError{`give "entries" or one payload, not both`})
		return
	}
	if len(list) == 0 || len(list) > chainAppendMax {
		writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("%d entries: give 1 to %d", len(list), chainAppendMax)})
		return
	}
	payloads := make([][]byte, len(list))
	for i, p := range list {
		which := ""
		if many {
			which = fmt.Sprintf("entry %d: ", i)
		}
		b, err := p.bytes()
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{which + err.Error()})
			return
		}
		if len(b) > chain.MaxPayload {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf(
				"%spayload of %d bytes, limit %d (put large data in a blob)", which, len(b), chain.MaxPayload)})
			return
		}
		payloads[i] = b
	}
	es, err := a.node.Chain().AppendMany(r.Context(), payloads)
	if err != nil {
		writeJSON(w, chainErrStatus(err), apiError{err.Error()})
		return
	}
	if !many {
		writeJSON(w, http.StatusOK, chainEntry(es[0]))
		return
	}
	out := ChainEntries{Entries: make([]ChainEntry, len(es)), Next: es[len(es)-1].Pos.String()}
	for i, e := range es {
		out.Entries[i] = chainEntry(e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) chainLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := chain.ParsePos(q.Get("after"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	follow := false
	if s := q.Get("follow"); s != "" {
		if follow, err = strconv.ParseBool(s); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("follow=%q is not a boolean", s)})
			return
		}
	}
	limit := chainLogLimit
	if s := q.Get("limit"); s != "" {
		if follow {
			writeJSON(w, http.StatusBadRequest, apiError{"limit and follow do not go together"})
			return
		}
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > chainLogMax {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("limit=%q: want 1 to %d", s, chainLogMax)})
			return
		}
	}
	if follow {
		a.chainFollow(w, r, after)
		return
	}
	es, err := a.node.Chain().Log(r.Context(), after, limit)
	if err != nil {
		writeJSON(w, chainErrStatus(err), apiError{err.Error()})
		return
	}
	out := ChainEntries{Entries: []ChainEntry{}, Next: after.String()}
	size := 0
	for _, e := range es {
		if size > chainPageBytes {
			break
		}
		out.Entries = append(out.Entries, chainEntry(e))
		out.Next = e.Pos.String()
		size += approxSize(e)
	}
	writeJSON(w, http.StatusOK, out)
}

// approxSize is about the size of e's JSON view.
func approxSize(e replica.Entry) int {
	return 300 + len(e.Payload)*4/3 + 70*len(e.Parents)
}

// followLine is a line of a follow stream: an entry, or why the stream
// ends.
type followLine struct {
	ChainEntry
	Error string `json:"error,omitempty"`
}

// chainFollow streams the log after a cursor, then each entry as it
// arrives. Entries that arrive while the log is read are in both the log
// and the arrivals: they are printed once.
func (a *API) chainFollow(w http.ResponseWriter, r *http.Request, after chain.Pos) {
	ctx, rep := r.Context(), a.node.Chain()
	// Watch before counting, count before reading: an entry that arrives
	// at any point is either counted, or signalled and read from arrivals.
	wake, unwatch := rep.Watch()
	defer unwatch()
	st, err := rep.Status(ctx)
	if err != nil {
		writeJSON(w, chainErrStatus(err), apiError{err.Error()})
		return
	}
	from := uint64(st.Length)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	send := func(l followLine) bool {
		if enc.Encode(l) != nil || bw.Flush() != nil {
			return false
		}
		return rc.Flush() == nil
	}
	fail := func(err error) { send(followLine{Error: err.Error()}) }

	printed := make(map[cid.Cid]bool) // entries of the log with Index >= from
	for {
		es, err := rep.Log(ctx, after, 1000)
		if err != nil {
			fail(err)
			return
		}
		for _, e := range es {
			if e.Index >= from {
				printed[e.CID] = true
			}
			if !send(followLine{ChainEntry: chainEntry(e)}) {
				return
			}
			after = e.Pos
		}
		if len(es) < 1000 {
			break
		}
	}
	for {
		if ro := a.node.Cell().Roster(); ro != nil && ro.ID() != st.Cell {
			fail(errors.New("the node's cell changed"))
			return
		}
		es, err := rep.Arrivals(ctx, from, 1000)
		if err != nil {
			fail(err)
			return
		}
		for _, e := range es {
			from++
			if printed[e.CID] {
				delete(printed, e.CID)
				continue
			}
			if !send(followLine{ChainEntry: chainEntry(e)}) {
				return
			}
		}
		if len(es) == 1000 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-a.streams.Done():
			fail(errors.New("the control API is stopping"))
			return
		case _, ok := <-wake:
			if !ok {
				fail(replica.ErrClosed)
				return
			}
		}
	}
}

func chainEntry(e replica.Entry) ChainEntry {
	v := ChainEntry{
		CID: e.CID.String(), Pos: e.Pos.String(), Index: e.Index, Author: e.Author.String(),
		Seq: e.Seq, Clock: e.Clock, Epoch: e.Epoch, Parents: make([]string, len(e.Parents)),
	}
	for i, p := range e.Parents {
		v.Parents[i] = p.String()
	}
	if utf8.Valid(e.Payload) {
		s := string(e.Payload)
		v.Text = &s
	} else {
		v.Data = e.Payload
	}
	return v
}

// chainErrStatus maps a chain error to an HTTP status.
func chainErrStatus(err error) int {
	switch {
	case errors.Is(err, replica.ErrNoCell), errors.Is(err, replica.ErrRemoved):
		return http.StatusConflict
	case errors.Is(err, replica.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ChainAppend appends one entry and returns it once it is on disk.
func (c *Client) ChainAppend(ctx context.Context, p ChainPayload) (ChainEntry, error) {
	var v ChainEntry
	return v, c.call(ctx, http.MethodPost, "/v1/chain/append", ChainAppendRequest{ChainPayload: p}, &v)
}

// ChainAppendMany appends entries in order, in one disk sync, and returns
// them.
func (c *Client) ChainAppendMany(ctx context.Context, ps []ChainPayload) ([]ChainEntry, error) {
	var v ChainEntries
	if ps == nil {
		ps = []ChainPayload{}
	}
	return v.Entries, c.call(ctx, http.MethodPost, "/v1/chain/append", ChainAppendRequest{Entries: ps}, &v)
}

// ChainLog returns up to limit entries (0: the node's default) in chain
// order after the cursor after ("": from the start).
func (c *Client) ChainLog(ctx context.Context, after string, limit int) (ChainEntries, error) {
	q := url.Values{"after": {after}}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var v ChainEntries
	return v, c.call(ctx, http.MethodGet, "/v1/chain/log?"+q.Encode(), nil, &v)
}

// ChainStatus returns a summary of the chain and of what each member holds.
func (c *Client) ChainStatus(ctx context.Context) (replica.Status, error) {
	var v replica.Status
	return v, c.call(ctx, http.MethodGet, "/v1/chain/status", nil, &v)
}

// ErrStreamEnded is what a follow yields when the node ends the stream
// without saying why.
var ErrStreamEnded = errors.New("the node ended the stream")

// ChainFollow returns the entries after the cursor after ("": from the
// start) in chain order, then every entry as it arrives on the node, until
// ctx ends (the sequence ends), the loop stops, or the node stops (it
// yields an error). Each error is yielded last.
func (c *Client) ChainFollow(ctx context.Context, after string) iter.Seq2[ChainEntry, error] {
	return func(yield func(ChainEntry, error) bool) {
		resp, err := c.open(ctx, "/v1/chain/log?"+url.Values{"after": {after}, "follow": {"1"}}.Encode())
		if err != nil {
			yield(ChainEntry{}, err)
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var l followLine
			err := dec.Decode(&l)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, io.EOF):
				yield(ChainEntry{}, ErrStreamEnded)
				return
			case err != nil:
				yield(ChainEntry{}, fmt.Errorf("control api: follow: %w", err))
				return
			case l.Error != "":
				yield(ChainEntry{}, fmt.Errorf("node says: %s", l.Error))
				return
			}
			if !yield(l.ChainEntry, nil) {
				return
			}
		}
	}
}
