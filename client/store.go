package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"

	"github.com/exopeer/exopeer/api"
)

// The store's routes: entities and their traits, queries and watches.

// StorePut writes traits into an entity (a new one when req.Entity is
// empty) in one chain entry, and returns the entity's ID and the entry
// once it is on disk.
//
// The documents go as they are, but for their spacing: not HTML-escaped
// (encoding/json's default writes < as \u003c, six bytes for one, which
// changes the document and can put it over store.MaxDoc).
func (c *Client) StorePut(ctx context.Context, req api.StorePutRequest) (api.StoreWritten, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return api.StoreWritten{}, fmt.Errorf("control api: encode put: %w", err)
	}
	return Answer(c.calls.StorePutWithBodyWithResponse(ctx, "application/json", &b))
}

// StoreGet returns the entity id and its live traits: those of the types
// in traits, or all of them when traits is nil. An entity with no live
// trait is an error that errors.Is ErrNotFound.
func (c *Client) StoreGet(ctx context.Context, id string, traits []string) (api.StoreEntity, error) {
	params := &api.StoreGetParams{}
	if traits != nil {
		s := strings.Join(traits, ",")
		params.Traits = &s
	}
	return Answer(c.calls.StoreGetWithResponse(ctx, id, params))
}

// StoreDelete deletes the traits of entity id with these IDs, or the whole
// entity when traits is empty, in one chain entry.
func (c *Client) StoreDelete(ctx context.Context, id string, traits []string) (api.StoreWritten, error) {
	if len(traits) == 0 {
		traits = nil // no trait= at all: an empty one is a trait ID
	}
	return Answer(c.calls.StoreDeleteWithResponse(ctx, id, &api.StoreDeleteParams{Trait: traits}))
}

// StoreQuery returns a page of the entities q finds; the page's Next is
// the cursor of the next one (q.After).
func (c *Client) StoreQuery(ctx context.Context, q api.StoreQuery) (api.StorePage, error) {
	return Answer(c.calls.StoreQueryWithResponse(ctx, q))
}

// StoreTypes returns the node's registered trait types.
func (c *Client) StoreTypes(ctx context.Context) ([]api.StoreSchema, error) {
	return Answer(c.calls.StoreTypesWithResponse(ctx))
}

// StoreReindex rebuilds the node's index from its chain and returns what
// it did; it blocks until done.
func (c *Client) StoreReindex(ctx context.Context) (api.StoreReindexed, error) {
	return Answer(c.calls.StoreReindexWithResponse(ctx))
}

// StoreStatus returns the store's role and the index's state.
func (c *Client) StoreStatus(ctx context.Context) (api.StoreStatus, error) {
	return Answer(c.calls.StoreStatusWithResponse(ctx))
}

// StoreWatch watches q: it yields the query's first page (a line with
// Page set), then the changes to that page as they happen (Changes set),
// until ctx ends (the sequence ends), the loop stops, or the node ends
// the stream (it yields an error). Each error is yielded last.
func (c *Client) StoreWatch(ctx context.Context, q api.StoreQuery) iter.Seq2[api.StoreWatchLine, error] {
	return func(yield func(api.StoreWatchLine, error) bool) {
		resp, err := c.stream.StoreWatch(ctx, q)
		if err != nil {
			if !errors.Is(err, ErrNotRunning) {
				err = fmt.Errorf("control api: %w", err)
			}
			yield(api.StoreWatchLine{}, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			yield(api.StoreWatchLine{}, problem(resp.StatusCode, data))
			return
		}
		readWatch(ctx, resp.Body, yield)
	}
}

// readWatch yields the lines of a watch stream that carry a page or
// changes, until ctx ends, yield stops, or the stream ends or says why it
// ends (then it yields that error). A line with neither is an error: the
// node sends none.
func readWatch(ctx context.Context, body io.Reader, yield func(api.StoreWatchLine, error) bool) {
	readLines(ctx, body, "watch", func(l api.StoreWatchLine) error {
		switch {
		case l.Error != nil:
			return &StatusError{*l.Error}
		case l.Page == nil && len(l.Changes) == 0:
			return errors.New("control api: watch: a line with no page and no change")
		}
		return nil
	}, yield)
}
