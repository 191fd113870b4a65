package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestMessagesOverTheAPI: a message to a contact no device of which is
// reachable is recorded as sent and answered not-delivered; the
// conversation and the inbox show it; every refusal is a problem of its
// own type. (Delivery between two nodes: the transcript message.txtar
// and simnet TestMessages.)
func TestMessagesOverTheAPI(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = c.Send(ctx, "Bob", "hi")
	wantProblemType(t, "send in no cell", err, http.StatusConflict, api.ProblemNotInCell)
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(ctx, "Bob", "hi")
	wantProblemType(t, "send to no contact", err, http.StatusNotFound, api.ProblemNoContact)
	if _, err := c.ContactAdd(ctx, otherCard(t, 2, 1, "Bob"), ""); err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(ctx, "Bob", "")
	wantProblemType(t, "empty text", err, http.StatusBadRequest, api.ProblemBadMessage)
	_, err = c.Send(ctx, "Bob", strings.Repeat("x", 4097))
	wantProblemType(t, "text too long", err, http.StatusRequestEntityTooLarge, api.ProblemBadMessage)
	if pg, err := c.Messages(ctx, "Bob", "", 0); err != nil || len(pg.Messages) != 0 {
		t.Fatalf("a refused text was recorded: %+v, %v", pg, err)
	}

	_, err = c.Send(ctx, "Bob", "are you there?")
	wantProblemType(t, "send to no reachable device", err, http.StatusBadGateway, api.ProblemNotDelivered)
	if !errors.Is(err, client.ErrNotDelivered) {
		t.Errorf("not delivered: %v is not client.ErrNotDelivered", err)
	}
	pg, err := c.Messages(ctx, "Bob", "", 0)
	if err != nil || len(pg.Messages) != 1 {
		t.Fatalf("Messages = %+v, %v", pg, err)
	}
	m := pg.Messages[0]
	if m.Text != "are you there?" || m.State != "sent" || m.Direction != "out" || len(m.ID) != 32 || len(m.Conversation) != 64 || m.Received != nil {
		t.Fatalf("the message recorded: %+v", m)
	}
	_, err = c.Messages(ctx, "Dave", "", 0)
	wantProblemType(t, "conversation with no contact", err, http.StatusNotFound, api.ProblemNoContact)
	_, err = c.Messages(ctx, "Bob", "", 1001)
	wantProblemType(t, "page too large", err, http.StatusBadRequest, api.ProblemBadRequest)

	var got []api.MessageView
	for v, err := range c.Inbox(ctx, "", false) {
		if err != nil {
			t.Fatalf("Inbox: %v", err)
		}
		got = append(got, v)
	}
	if len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("Inbox = %+v", got)
	}
	for _, err := range c.Inbox(ctx, "Dave", false) {
		wantProblemType(t, "inbox of no contact", err, http.StatusNotFound, api.ProblemNoContact)
	}
	// Following: the first message, then the stream stays open until the
	// client goes.
	fctx, cancel := context.WithCancel(ctx)
	n := 0
	for v, err := range c.Inbox(fctx, "Bob", true) {
		if err != nil {
			t.Fatalf("Inbox --follow: %v", err)
		}
		if v.ID != m.ID {
			t.Fatalf("Inbox --follow: %+v", v)
		}
		n++
		cancel()
	}
	cancel()
	if n != 1 {
		t.Fatalf("Inbox --follow gave %d messages", n)
	}
}
