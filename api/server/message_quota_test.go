package server_test

import (
	"net/http"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// TestMessagesTooManyPending: past the node's bound of messages pending
// to one contact (Messages.MaxPendingPerContact, here 1), a send is
// answered 429 too-many-pending and nothing more is recorded.
func TestMessagesTooManyPending(t *testing.T) {
	dir, _, _ := nodetest.Serve(t, func(o *p.Options) { o.Messages.MaxPendingPerContact = 1 })
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContactAdd(ctx, otherCard(t, 2, 1, "Bob"), ""); err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(ctx, "Bob", "are you there?")
	wantProblemType(t, "send to no reachable device", err, http.StatusBadGateway, api.ProblemNotDelivered)
	_, err = c.Send(ctx, "Bob", "hello?")
	wantProblemType(t, "one pending message too many", err, http.StatusTooManyRequests, api.ProblemTooManyPending)
	if pg, err := c.Messages(ctx, "Bob", "", 0); err != nil || len(pg.Messages) != 1 {
		t.Fatalf("Messages = %+v, %v; want the one pending", pg, err)
	}
}
