package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// TestStoreThinMember: a member without the store role reads through a
// store member of its cell, with the same answers, and its writes reach
// the store member's index; with no store member left, its reads are 503
// no-store-member.
func TestStoreThinMember(t *testing.T) {
	adir, admin, asrv := nodetest.Serve(t)
	ac, err := client.Dial(adir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := ac.CellCreate(ctx, api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}
	inv, err := ac.CellInvite(ctx, api.CellInviteRequest{Roles: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	tdir, _, _ := nodetest.Serve(t, func(o *p.Options) {
		j := nodetest.Options(t, 11, nodetest.AddrInfo(admin))
		o.Key, o.DHT, o.Discovery = j.Key, j.DHT, j.Discovery
	})
	tc, err := client.Dial(tdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.CellJoin(ctx, api.CellJoinRequest{Code: inv.Code, Member: "phone"}); err != nil {
		t.Fatal(err)
	}

	w, err := ac.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: note("from the laptop")}}})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := tc.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: "exo.note", Doc: note("from the phone")}}})
	if err != nil {
		t.Fatal(err)
	}
	q := api.StoreQuery{Type: "exo.note", Asc: true, Traits: &[]string{}}
	both := func(c *client.Client) func() bool {
		return func() bool {
			page, err := c.StoreQuery(ctx, q)
			return err == nil && len(page.Hits) == 2
		}
	}
	nodetest.Eventually(t, 30*time.Second, "both notes in the store member's index", both(ac))
	nodetest.Eventually(t, 30*time.Second, "both notes through the thin member", both(tc))
	want, err := ac.StoreQuery(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if ids := []string{want.Hits[0].Entity.ID, want.Hits[1].Entity.ID}; !(ids[0] == w.Entity && ids[1] == mine.Entity) &&
		!(ids[0] == mine.Entity && ids[1] == w.Entity) {
		t.Errorf("store member's page %v, want %s and %s", ids, w.Entity, mine.Entity)
	}
	got, err := tc.StoreQuery(ctx, q)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("thin member's page %+v, %v; the store member's %+v", got, err, want)
	}
	if e, err := tc.StoreGet(ctx, w.Entity, nil); err != nil || len(e.Traits) != 1 {
		t.Errorf("thin member's get: %+v, %v", e, err)
	}
	_, err = tc.StoreQuery(ctx, api.StoreQuery{Type: "exo.note", Order: "colour"})
	wantProblemType(t, "thin member's bad query", err, http.StatusBadRequest, api.ProblemBadQuery)
	st, err := tc.StoreStatus(ctx)
	if err != nil || st.Role != "remote" {
		t.Errorf("thin member's status: %+v, %v", st, err)
	}
	_, err = tc.StoreReindex(ctx)
	wantProblemType(t, "thin member's reindex", err, http.StatusConflict, api.ProblemNotStore)

	// An entity too large for the store protocol's frame (some 22 MiB):
	// the store member's answer, 413, not "no store member reachable".
	big := ""
	doc := json.RawMessage(`"` + strings.Repeat("x", 60<<10) + `"`)
	for i := range 70 {
		var ts []api.StoreTraitInput
		for j := range 4 {
			ts = append(ts, api.StoreTraitInput{Type: "app.blob", ID: fmt.Sprintf("t%d.%d", i, j), Doc: doc})
		}
		w, err := ac.StorePut(ctx, api.StorePutRequest{Entity: big, Traits: ts})
		if err != nil {
			t.Fatal(err)
		}
		big = w.Entity
	}
	for _, n := range []struct {
		name string
		c    *client.Client
	}{{"thin member", tc}, {"store member", ac}} {
		_, err = n.c.StoreGet(ctx, big, nil)
		if se := wantProblemType(t, n.name+"'s get of a 22 MiB entity", err, http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge); se != nil &&
			!strings.Contains(se.Detail, "project fewer traits") {
			t.Errorf("%s's get of a 22 MiB entity: %q does not say what to do", n.name, se.Detail)
		}
		_, err = n.c.StoreQuery(ctx, api.StoreQuery{Limit: 1}) // the newest: the large one
		wantProblemType(t, n.name+"'s query of a 22 MiB entity", err, http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge)
		if e, err := n.c.StoreGet(ctx, big, []string{"exo.note"}); err != nil || e.ID != big {
			t.Errorf("%s's get of a 22 MiB entity, projected: %v", n.name, err)
		}
	}

	// The store member goes: the thin member's reads have no one to ask.
	if err := asrv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = tc.StoreQuery(ctx, q)
	wantProblemType(t, "query with no store member", err, http.StatusServiceUnavailable, api.ProblemNoStoreMember)
	if !errors.Is(err, client.ErrNoStoreMember) {
		t.Errorf("query with no store member: %v, want ErrNoStoreMember", err)
	}
}
