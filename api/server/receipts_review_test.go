package server_test

import (
	"net/http"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestContactReceiptsNeedsOn: POST /v1/contacts/{name}/receipts with no
// "on" (required by the OpenAPI document) is refused, not taken as "on":
// false, which turns the contact's read receipts off.
func TestContactReceiptsNeedsOn(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
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
	status, ctype, body := newRaw(t, dir).do(t, http.MethodPost, "/v1/contacts/Bob/receipts", `{}`, "", "")
	wantProblem(t, "receipts with no on", status, ctype, body, http.StatusBadRequest, api.ProblemBadRequest)
	if got, err := c.Contact(ctx, "Bob"); err != nil || !got.Receipts {
		t.Fatalf("Bob after a request with no on: %+v, %v; want receipts on", got, err)
	}
}
