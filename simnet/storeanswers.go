package simnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/exopeer/exopeer/store"
)

// The store scenario's checks: that the nodes hold one chain, the answers
// they give to a fixed set of queries, and the page a watch holds.

// awaitSameChain waits until every node holds the same entries (length
// and heads) and returns the length.
func awaitSameChain(nodes []*Node, limit time.Duration) (int, bool) {
	var length int
	_, ok := pollUntil(limit, chainPoll, func() bool {
		var heads string
		for i, nd := range nodes {
			st, err := nd.Peer().Chain().Status(context.Background())
			if err != nil {
				return false
			}
			h := fmt.Sprint(st.Heads)
			if i == 0 {
				length, heads = st.Length, h
			} else if st.Length != length || h != heads {
				return false
			}
		}
		return true
	})
	return length, ok
}

// storeQueries are the store scenario's queries, owner an entity tasks
// refer to.
func storeQueries(owner store.EntityID) []store.Query {
	return []store.Query{
		{Type: "exo.note"},
		{Type: "sim.task", Order: "n", Limit: store.MaxLimit},
		{Match: "alpha"},
		{Match: "bravo charlie", Type: "exo.note"},
		{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "red"}}},
		{Type: "sim.task", Where: []store.Predicate{{Field: "n", Op: store.Ge, Value: "3"}, {Field: "n", Op: store.Lt, Value: "8"}}, Order: "due", Desc: true},
		{Type: "sim.task", Where: []store.Predicate{{Field: "tag", Op: store.Prefix, Value: "a"}}, Traits: []string{"sim.task"}},
		{Type: "sim.task", Where: []store.Predicate{{Field: "due", Op: store.Lt, Value: "2026-02-01T00:00:00Z"}}, Order: store.OrderCreated, Asc: true},
		{RefersTo: &owner},
		{Limit: store.MaxLimit, Traits: []string{}},
	}
}

// storeAnswers runs the store scenario's queries on nd, pages through a
// listing with the cursor and gets every entity of ids, and returns the
// answers as JSON, one line each.
func storeAnswers(ctx context.Context, nd *Node, ids []store.EntityID) ([]byte, error) {
	s := nd.Peer().Store()
	var b bytes.Buffer
	line := func(head string, v any) error {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.WriteString(head)
		b.WriteByte('\n')
		b.Write(j)
		b.WriteByte('\n')
		return nil
	}
	for _, q := range storeQueries(ids[0]) {
		pg, err := s.Query(ctx, q)
		if err == nil {
			err = line(fmt.Sprintf("query %+v", q), pg)
		}
		if err != nil {
			return nil, fmt.Errorf("query %+v: %w", q, err)
		}
	}
	q := store.Query{Type: "exo.note", Order: store.OrderModified, Limit: 7}
	for page := 0; page <= len(ids); page++ {
		pg, err := s.Query(ctx, q)
		if err == nil {
			err = line(fmt.Sprintf("page %d", page), pg)
		}
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", page, err)
		}
		if pg.Next == "" {
			break
		}
		q.After = pg.Next
	}
	for _, id := range ids {
		e, err := s.Get(ctx, id, nil)
		switch {
		case errors.Is(err, store.ErrNotFound):
			fmt.Fprintf(&b, "get %s: not found\n", id)
		case err != nil:
			return nil, fmt.Errorf("get %s: %w", id, err)
		default:
			if err := line("get "+id.String(), e); err != nil {
				return nil, err
			}
		}
	}
	return b.Bytes(), nil
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d: got %.300s, want %.300s", i, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(al), len(bl))
}

// watchedPage is the first page a watch's consumer holds, built from its
// events: each hit as JSON, by entity.
type watchedPage struct {
	mu   sync.Mutex
	hits map[store.EntityID]string
}

func (w *watchedPage) follow(events <-chan store.WatchEvent) {
	for ev := range events {
		w.mu.Lock()
		if ev.Page != nil {
			w.hits = hitSet(*ev.Page)
		}
		for _, c := range ev.Changes {
			if c.Kind == store.Removed {
				delete(w.hits, c.Hit.Entity.ID)
			} else {
				w.hits[c.Hit.Entity.ID] = hitJSON(c.Hit)
			}
		}
		w.mu.Unlock()
	}
}

func (w *watchedPage) equal(m map[store.EntityID]string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.hits) != len(m) {
		return false
	}
	for id, h := range m {
		if w.hits[id] != h {
			return false
		}
	}
	return true
}

func (w *watchedPage) has(id store.EntityID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.hits[id]
	return ok
}

func (w *watchedPage) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.hits)
}

func hitSet(pg store.Page) map[store.EntityID]string {
	m := make(map[store.EntityID]string, len(pg.Hits))
	for _, h := range pg.Hits {
		m[h.Entity.ID] = hitJSON(h)
	}
	return m
}

func hitJSON(h store.Hit) string {
	b, err := json.Marshal(h)
	if err != nil {
		return "unmarshalable: " + err.Error()
	}
	return string(b)
}

// pollUntil checks cond every step of virtual time until it holds or
// limit has passed, and returns the time waited and whether it held.
func pollUntil(limit, step time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) >= limit {
			return time.Since(start), false
		}
		time.Sleep(step)
	}
}
