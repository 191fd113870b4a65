package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/remote"
	"github.com/exopeer/exopeer/store/service"
)

const (
	// storeBodyMax bounds a put's body: its documents are at most a
	// chain entry's payload together (store.MaxPayload, 256 KiB), and
	// JSON's escapes and a thousand traits' names may double that.
	storeBodyMax = 1 << 20
	// storeEntityBytes bounds the one entity of a get, or the first hit
	// of a page: an answer over it would be over what a client reads (16
	// MiB); it is refused, 413, as a store member refuses one over its
	// protocol's frame.
	storeEntityBytes = 15 << 20
)

// storePageBytes is about where a query's page, or a watch's line, is cut
// short (with the cursor that reads on from there), so that an answer
// stays well under what a client reads (16 MiB). A variable for the
// tests, which cut pages sooner.
var storePageBytes = 8 << 20

// tooLarge is the problem of an entity over storeEntityBytes, or nil.
func tooLarge(h store.Hit) *problem {
	if n := hitSize(h); n > storeEntityBytes {
		return &problem{http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge, fmt.Sprintf(
			"entity %s: some %d bytes, over the %d of an answer (project fewer traits)", h.Entity.ID, n, storeEntityBytes)}
	}
	return nil
}

// StorePut implements api.ServerInterface.
func (rt *routes) StorePut(w http.ResponseWriter, r *http.Request) {
	e, traits, p := putRequest(http.MaxBytesReader(w, r.Body, storeBodyMax))
	if p != nil {
		p.write(w)
		return
	}
	wr, err := rt.node.Store().Put(r.Context(), e, traits)
	if err != nil {
		writeStoreErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, written(wr))
}

// putRequest decodes and checks the body of a put: the entity (zero for a
// new one) and its traits (1 to store.MaxOps, each with a type and a
// document of at most store.MaxDoc bytes), or the problem. The schemas are
// the store service's to check.
func putRequest(body io.Reader) (store.EntityID, []store.Trait, *problem) {
	var req api.StorePutRequest
	if p := decodeJSON(body, &req); p != nil {
		return store.EntityID{}, nil, p
	}
	var e store.EntityID
	if req.Entity != "" {
		id, err := store.ParseEntityID(req.Entity)
		if err != nil {
			return store.EntityID{}, nil, &problem{http.StatusBadRequest, api.ProblemBadEntityID, "entity: " + err.Error()}
		}
		e = id
	}
	switch n := len(req.Traits); {
	case n == 0:
		return store.EntityID{}, nil, &problem{http.StatusBadRequest, api.ProblemBadRequest, `no "traits": give 1 to 1000`}
	case n > store.MaxOps:
		return store.EntityID{}, nil, &problem{http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge,
			fmt.Sprintf("%d traits, limit %d", n, store.MaxOps)}
	}
	traits := make([]store.Trait, len(req.Traits))
	for i, t := range req.Traits {
		switch {
		case t.Type == "":
			return store.EntityID{}, nil, &problem{http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("trait %d: no type", i)}
		case t.Doc == nil:
			return store.EntityID{}, nil, &problem{http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("trait %d (%s): no doc", i, t.Type)}
		case len(t.Doc) > store.MaxDoc:
			return store.EntityID{}, nil, &problem{http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge, fmt.Sprintf(
				"trait %d (%s): document of %d bytes, limit %d (put large data in a blob)", i, t.Type, len(t.Doc), store.MaxDoc)}
		}
		traits[i] = store.Trait{Type: t.Type, ID: store.TraitID(t.ID), Doc: t.Doc}
	}
	return e, traits, nil
}

// StoreGet implements api.ServerInterface.
func (rt *routes) StoreGet(w http.ResponseWriter, r *http.Request, id string, params api.StoreGetParams) {
	e, ok := entityID(w, id)
	if !ok {
		return
	}
	var traits []string
	if params.Traits != nil {
		traits = splitList(*params.Traits)
	}
	ent, err := rt.node.Store().Get(r.Context(), e, traits)
	if err != nil {
		writeStoreErr(w, err)
		return
	}
	if p := tooLarge(store.Hit{Entity: ent}); p != nil {
		p.write(w)
		return
	}
	writeDocs(w, entity(ent))
}

// splitList splits a comma-separated list; "" is the empty list.
func splitList(s string) []string {
	out := []string{}
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// StoreDelete implements api.ServerInterface.
func (rt *routes) StoreDelete(w http.ResponseWriter, r *http.Request, id string, params api.StoreDeleteParams) {
	e, ok := entityID(w, id)
	if !ok {
		return
	}
	var traits []store.TraitID
	for _, t := range params.Trait {
		traits = append(traits, store.TraitID(t))
	}
	wr, err := rt.node.Store().Delete(r.Context(), e, traits)
	if err != nil {
		writeStoreErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, written(wr))
}

func entityID(w http.ResponseWriter, s string) (store.EntityID, bool) {
	id, err := store.ParseEntityID(s)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, api.ProblemBadEntityID, err.Error())
		return store.EntityID{}, false
	}
	return id, true
}

// StoreQuery implements api.ServerInterface.
func (rt *routes) StoreQuery(w http.ResponseWriter, r *http.Request) {
	q, p := queryRequest(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if p != nil {
		p.write(w)
		return
	}
	page, err := rt.node.Store().Query(r.Context(), q)
	if err != nil {
		writeStoreErr(w, err)
		return
	}
	// A page too large to answer is asked again, shorter: the order is
	// total, so the shorter page is the first hits of the longer one, and
	// its cursor reads on from its last.
	if n := fitting(page.Hits, storePageBytes); n < len(page.Hits) {
		q.Limit = n
		if page, err = rt.node.Store().Query(r.Context(), q); err != nil {
			writeStoreErr(w, err)
			return
		}
	}
	if len(page.Hits) > 0 {
		if p := tooLarge(page.Hits[0]); p != nil {
			p.write(w)
			return
		}
	}
	writeDocs(w, storePage(page))
}

// fitting returns how many of hits, at least one, fit in about budget
// bytes of JSON.
func fitting(hits []store.Hit, budget int) int {
	size := 0
	for i, h := range hits {
		if size += hitSize(h); size > budget {
			return max(i, 1)
		}
	}
	return len(hits)
}

// hitSize is about the size of a hit's JSON, as answered (compact, not
// HTML-escaped: a document's size at most).
func hitSize(h store.Hit) int {
	size := 100
	for _, t := range h.Entity.Traits {
		size += 150 + len(t.Type) + len(t.ID) + len(t.Doc)
	}
	return size
}

// batches cuts changes into lines of about budget bytes at most, each
// with one change at least.
func batches(changes []store.Change, budget int) [][]store.Change {
	var out [][]store.Change
	start, size := 0, 0
	for i, c := range changes {
		n := hitSize(c.Hit)
		if i > start && size+n > budget {
			out = append(out, changes[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(changes) {
		out = append(out, changes[start:])
	}
	return out
}

// queryRequest decodes a query's body into a store.Query, or answers the
// problem. What the body names (types, fields, operators, values, the
// cursor) is the index's to check.
func queryRequest(body io.Reader) (store.Query, *problem) {
	var req api.StoreQuery
	if p := decodeJSON(body, &req); p != nil {
		return store.Query{}, p
	}
	q := store.Query{Type: req.Type, Match: req.Match, Order: req.Order, Asc: req.Asc, Desc: req.Desc,
		Limit: req.Limit, After: req.After}
	if len(req.Where) > store.MaxPredicates {
		return store.Query{}, &problem{http.StatusBadRequest, api.ProblemBadQuery,
			fmt.Sprintf("where: %d conditions, limit %d", len(req.Where), store.MaxPredicates)}
	}
	for _, p := range req.Where {
		q.Where = append(q.Where, store.Predicate{Field: p.Field, Op: store.Cmp(p.Op), Value: p.Value})
	}
	if req.RefersTo != "" {
		id, err := store.ParseEntityID(req.RefersTo)
		if err != nil {
			return store.Query{}, &problem{http.StatusBadRequest, api.ProblemBadQuery, "refersTo: " + err.Error()}
		}
		q.RefersTo = &id
	}
	if req.Traits != nil {
		q.Traits = append([]string{}, *req.Traits...)
	}
	return q, nil
}

// StoreWatch implements api.ServerInterface.
func (rt *routes) StoreWatch(w http.ResponseWriter, r *http.Request) {
	q, p := queryRequest(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if p != nil {
		p.write(w)
		return
	}
	// The watch ends with the request, or when the API begins to close.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(rt.streams, cancel)
	defer stop()
	events, first, err := rt.watch(ctx, q)
	if err != nil {
		writeStoreErr(w, err)
		return
	}
	send := ndjson(w)
	pg := storePage(*first.Page)
	if !send(api.StoreWatchLine{Page: &pg}) {
		return
	}
	for ev := range events {
		// Each line within what a client reads: changes in batches.
		for _, b := range batches(ev.Changes, storePageBytes) {
			l := api.StoreWatchLine{Changes: make([]api.StoreChange, len(b))}
			for i, c := range b {
				l.Changes[i] = api.StoreChange{Kind: string(c.Kind), Hit: hit(c.Hit)}
			}
			if !send(l) {
				return
			}
		}
	}
	switch {
	case r.Context().Err() != nil:
	case rt.streams.Err() != nil:
		send(api.StoreWatchLine{Error: lineProblem(http.StatusServiceUnavailable, api.ProblemUnavailable, "the control API is stopping")})
	default:
		send(api.StoreWatchLine{Error: lineProblem(http.StatusServiceUnavailable, api.ProblemUnavailable, "the store ended the watch")})
	}
}

// watch starts a watch of q and returns its events after the first, the
// page. A page too large for one line is watched again, shorter (as a
// query's page is cut: see StoreQuery). The watch ends with ctx.
func (rt *routes) watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, store.WatchEvent, error) {
	for {
		wctx, cancel := context.WithCancel(ctx)
		events, err := rt.node.Store().Watch(wctx, q)
		if err != nil {
			cancel()
			return nil, store.WatchEvent{}, err
		}
		first, ok := <-events
		switch {
		case !ok:
			cancel()
			if err := ctx.Err(); err != nil {
				return nil, store.WatchEvent{}, err
			}
			return nil, store.WatchEvent{}, errors.New("store: the watch ended before its first page")
		case first.Page == nil:
			cancel()
			return nil, store.WatchEvent{}, errors.New("store: a watch began without its page")
		}
		if n := fitting(first.Page.Hits, storePageBytes); n < len(first.Page.Hits) {
			cancel()
			q.Limit = n
			continue
		}
		context.AfterFunc(ctx, cancel)
		return events, first, nil
	}
}

// StoreTypes implements api.ServerInterface.
func (rt *routes) StoreTypes(w http.ResponseWriter, r *http.Request) {
	out := []api.StoreSchema{}
	for _, s := range rt.node.Store().Types() {
		v := api.StoreSchema{Type: s.Type, Fields: []api.StoreField{}}
		for _, f := range s.Fields {
			v.Fields = append(v.Fields, api.StoreField{Name: f.Name, Kind: f.Kind.String(), List: f.List, Required: f.Required})
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// StoreReindex implements api.ServerInterface.
func (rt *routes) StoreReindex(w http.ResponseWriter, r *http.Request) {
	re, err := rt.node.Store().Reindex(r.Context())
	if err != nil {
		writeStoreErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.StoreReindexed{Entries: re.Entries, Entities: re.Entities, Took: api.Duration(re.Took)})
}

// StoreStatus implements api.ServerInterface.
func (rt *routes) StoreStatus(w http.ResponseWriter, r *http.Request) {
	st, err := rt.node.Store().Status(r.Context())
	if err != nil {
		writeStoreErr(w, err)
		return
	}
	skipped := st.Skipped
	if skipped == nil {
		skipped = map[string]int64{}
	}
	writeJSON(w, http.StatusOK, api.StoreStatus{Role: st.Role, Member: st.Member, Next: st.Next, Behind: st.Behind,
		Entities: st.Entities, Traits: st.Traits, Skipped: skipped, Bytes: st.Bytes})
}

func written(wr service.Written) api.StoreWritten {
	return api.StoreWritten{Entity: wr.Entity.String(), CID: wr.CID.String(), Pos: wr.Pos.String(), Tx: wr.Tx}
}

func entity(e store.Entity) api.StoreEntity {
	v := api.StoreEntity{ID: e.ID.String(), Traits: make([]api.StoreTrait, len(e.Traits))}
	for i, t := range e.Traits {
		v.Traits[i] = api.StoreTrait{Type: t.Type, ID: string(t.ID), Doc: t.Doc, Created: t.Created, Modified: t.Modified}
	}
	return v
}

func hit(h store.Hit) api.StoreHit { return api.StoreHit{Entity: entity(h.Entity), Rank: h.Rank} }

func storePage(p store.Page) api.StorePage {
	v := api.StorePage{Hits: make([]api.StoreHit, len(p.Hits)), Next: p.Next}
	for i, h := range p.Hits {
		v.Hits[i] = hit(h)
	}
	return v
}

// storeKind is kind for the store's routes.
func storeKind(err error) (int, api.ProblemType) {
	switch {
	case errors.Is(err, service.ErrNotMember):
		return http.StatusConflict, api.ProblemNotInCell
	case errors.Is(err, service.ErrNotStore):
		return http.StatusConflict, api.ProblemNotStore
	case errors.Is(err, service.ErrNoStoreMember):
		return http.StatusServiceUnavailable, api.ProblemNoStoreMember
	case errors.Is(err, service.ErrClosed):
		return http.StatusServiceUnavailable, api.ProblemUnavailable
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, api.ProblemNotFound
	case errors.Is(err, store.ErrQuery):
		return http.StatusBadRequest, api.ProblemBadQuery
	case errors.Is(err, store.ErrTooLarge), errors.Is(err, remote.ErrTooLarge):
		// remote's: a store member's answer too large for the store
		// protocol (its detail says: project fewer traits).
		return http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge
	case errors.Is(err, store.ErrSchema):
		return http.StatusBadRequest, api.ProblemBadDocument
	case errors.Is(err, store.ErrBadID):
		return http.StatusBadRequest, api.ProblemBadEntityID
	case errors.Is(err, store.ErrMalformed):
		return http.StatusBadRequest, api.ProblemBadRequest
	}
	return chainKind(err)
}

func writeStoreErr(w http.ResponseWriter, err error) {
	status, typ := storeKind(err)
	writeProblem(w, status, typ, err.Error())
}
