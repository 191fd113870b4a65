package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
)

const (
	// chainLogLimit is a log page's default size; chainLogMax its largest.
	chainLogLimit, chainLogMax = 100, 10000
	// chainAppendMax bounds the entries of one append request.
	chainAppendMax = 1000
	// chainPageBytes is about where a log page is cut short, so that an
	// answer stays well under what a client reads.
	chainPageBytes = 4 << 20
	// chainBodyMax bounds an append request: one largest payload in
	// base64 and then some.
	chainBodyMax = 16 << 20
)

// ChainStatus implements api.ServerInterface.
func (rt *routes) ChainStatus(w http.ResponseWriter, r *http.Request) {
	st, err := rt.node.Chain().Status(r.Context())
	if err != nil {
		writeChainErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, chainStatus(st))
}

// ChainAppend implements api.ServerInterface.
func (rt *routes) ChainAppend(w http.ResponseWriter, r *http.Request) {
	payloads, many, p := appendRequest(http.MaxBytesReader(w, r.Body, chainBodyMax))
	if p != nil {
		p.write(w)
		return
	}
	es, err := rt.node.Chain().AppendMany(r.Context(), payloads)
	if err != nil {
		writeChainErr(w, err)
		return
	}
	if !many {
		writeJSON(w, http.StatusOK, chainEntry(es[0]))
		return
	}
	out := api.ChainEntries{Entries: make([]api.ChainEntry, len(es)), Next: es[len(es)-1].Pos.String()}
	for i, e := range es {
		out.Entries[i] = chainEntry(e)
	}
	writeJSON(w, http.StatusOK, out)
}

// appendRequest decodes and checks the body of an append: it returns the
// payloads to append (1 to chainAppendMax, each at most chain.MaxPayload
// bytes) and whether the request gave them as "entries", or the problem.
func appendRequest(body io.Reader) (payloads [][]byte, many bool, p *problem) {
	var req api.ChainAppendRequest
	if p := decodeJSON(body, &req); p != nil {
		return nil, false, p
	}
	many = req.Entries != nil
	list := req.Entries
	if !many {
		list = []api.ChainPayload{{Text: req.Text, Data: req.Data}}
	} else if req.Text != nil || req.Data != nil {
		return nil, false, &problem{http.StatusBadRequest, api.ProblemBadRequest, `give "entries" or one payload, not both`}
	}
	if len(list) == 0 || len(list) > chainAppendMax {
		return nil, false, &problem{http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("%d entries: give 1 to %d", len(list), chainAppendMax)}
	}
	payloads = make([][]byte, len(list))
	for i, pl := range list {
		which := ""
		if many {
			which = fmt.Sprintf("entry %d: ", i)
		}
		b, err := payloadBytes(pl)
		if err != nil {
			return nil, false, &problem{http.StatusBadRequest, api.ProblemBadRequest, which + err.Error()}
		}
		if len(b) > chain.MaxPayload {
			return nil, false, &problem{http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge, fmt.Sprintf(
				"%spayload of %d bytes, limit %d (put large data in a blob)", which, len(b), chain.MaxPayload)}
		}
		payloads[i] = b
	}
	return payloads, many, nil
}

func payloadBytes(p api.ChainPayload) ([]byte, error) {
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

// ChainLog implements api.ServerInterface.
func (rt *routes) ChainLog(w http.ResponseWriter, r *http.Request, params api.ChainLogParams) {
	after, err := chain.ParsePos(params.After)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, api.ProblemBadCursor, err.Error())
		return
	}
	limit := chainLogLimit
	if params.Limit != nil {
		if params.Follow {
			writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, "limit and follow do not go together")
			return
		}
		if limit = *params.Limit; limit < 1 || limit > chainLogMax {
			writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("limit=%q: want 1 to %d", r.URL.Query().Get("limit"), chainLogMax))
			return
		}
	}
	if params.Follow {
		rt.chainFollow(w, r, after)
		return
	}
	es, err := rt.node.Chain().Log(r.Context(), after, limit)
	if err != nil {
		writeChainErr(w, err)
		return
	}
	out := api.ChainEntries{Entries: []api.ChainEntry{}, Next: after.String()}
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

// chainFollow streams the log after a cursor, then each entry as it
// arrives. Entries that arrive while the log is read are in both the log
// and the arrivals: they are sent once.
func (rt *routes) chainFollow(w http.ResponseWriter, r *http.Request, after chain.Pos) {
	ctx, rep := r.Context(), rt.node.Chain()
	// Watch before counting, count before reading: an entry that arrives
	// at any point is either counted, or signalled and read from arrivals.
	wake, unwatch := rep.Watch()
	defer unwatch()
	st, err := rep.Status(ctx)
	if err != nil {
		writeChainErr(w, err)
		return
	}
	from := uint64(st.Length)
	sendLine := ndjson(w)
	send := func(l api.ChainFollowLine) bool { return sendLine(l) }
	sendEntry := func(e replica.Entry) bool { return send(followLine(chainEntry(e))) }
	fail := func(err error) {
		status, typ := chainKind(err)
		send(api.ChainFollowLine{Error: lineProblem(status, typ, err.Error())})
	}

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
			if !sendEntry(e) {
				return
			}
			after = e.Pos
		}
		if len(es) < 1000 {
			break
		}
	}
	for {
		if ro := rt.node.Cell().Roster(); ro != nil && ro.ID() != st.Cell {
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
			if !sendEntry(e) {
				return
			}
		}
		if len(es) == 1000 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-rt.streams.Done():
			send(api.ChainFollowLine{Error: lineProblem(http.StatusServiceUnavailable, api.ProblemUnavailable, "the control API is stopping")})
			return
		case _, ok := <-wake:
			if !ok {
				fail(replica.ErrClosed)
				return
			}
		}
	}
}

func followLine(e api.ChainEntry) api.ChainFollowLine {
	return api.ChainFollowLine{CID: e.CID, Pos: e.Pos, Index: e.Index, Author: e.Author, Seq: e.Seq,
		Clock: e.Clock, Epoch: e.Epoch, Parents: e.Parents, Text: e.Text, Data: e.Data}
}

func chainEntry(e replica.Entry) api.ChainEntry {
	v := api.ChainEntry{
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

func writeChainErr(w http.ResponseWriter, err error) {
	status, typ := chainKind(err)
	writeProblem(w, status, typ, err.Error())
}

// links returns CIDs as IPLD links, nil for nil, as cid.Cid marshals.
func links(cs []cid.Cid) []api.Link {
	if cs == nil {
		return nil
	}
	out := make([]api.Link, len(cs))
	for i, c := range cs {
		out[i] = api.Link{CID: c.String()}
	}
	return out
}

// chainStatus is the API's view of the replica's status.
func chainStatus(st replica.Status) api.ChainStatus {
	s := st.Sync
	out := api.ChainStatus{
		Cell: st.Cell, Length: st.Length, Heads: links(st.Heads), Waiting: st.Waiting, WaitingBytes: st.WaitingBytes,
		Sync: api.ChainSyncStats{
			Pulls: s.Pulls, PullErrors: s.PullErrors, Served: s.Served, Received: s.Received, Sent: s.Sent,
			Deferred: s.Deferred, Rejected: s.Rejected, PastCutoff: s.PastCutoff, Dropped: s.Dropped, Banned: s.Banned,
			LastRejected: s.LastRejected, LastRejectedAuthor: s.LastRejectedAuthor.String(),
			LastRejectedFrom: s.LastRejectedFrom.String(), LastRejectedAt: s.LastRejectedAt,
			LastBanned: s.LastBanned.String(), LastBannedBecause: s.LastBannedBecause,
			AnnouncesSent: s.AnnouncesSent, AnnouncesSeen: s.AnnouncesSeen, ForkRefused: s.ForkRefused,
			WaitingDropped: s.WaitingDropped, WaitingDroppedAuthor: s.WaitingDroppedAuthor,
		},
	}
	for _, a := range st.Authors {
		out.Authors = append(out.Authors, api.ChainAuthorStatus{Peer: a.Peer.String(), Name: a.Name, LastSeq: a.LastSeq})
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, api.ChainMemberStatus{
			Peer: m.Peer.String(), Name: m.Name, Self: m.Self, State: m.State, Known: m.Known,
			Length: m.Length, Heard: m.Heard, Behind: m.Behind, Ahead: m.Ahead,
		})
	}
	for _, f := range st.Forks {
		out.Forks = append(out.Forks, api.ChainForkStatus{Author: f.Author.String(), Seq: f.Seq, CIDs: links(f.CIDs)})
	}
	return out
}
