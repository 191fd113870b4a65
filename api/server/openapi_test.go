package server_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestOpenAPIDocument checks that the node serves its document with no
// token, that the document is valid OpenAPI and the one in package api,
// and that every operation it lists is served, answering a status it
// documents.
func TestOpenAPIDocument(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	r := newRaw(t, dir)
	status, ctype, body := r.do(t, http.MethodGet, "/v1/openapi.json", "", "-", "")
	if status != http.StatusOK || ctype != "application/json" {
		t.Fatalf("GET /v1/openapi.json: %d %s", status, ctype)
	}
	status, ctype, body2 := r.do(t, http.MethodGet, "/v1/openapi.json", "", "-", "evil.example")
	wantProblem(t, "document for a foreign host", status, ctype, body2, http.StatusForbidden, api.ProblemNotLoopback)

	// A route with no method on client.Client is called through its API.
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := client.Answer(c.API().GetOpenAPIWithResponse(t.Context()))
	if err != nil || m["openapi"] != "3.0.3" {
		t.Errorf("the document through the client: openapi %v, %v", m["openapi"], err)
	}

	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("served document: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("served document is not valid OpenAPI: %v", err)
	}
	src, err := openapi3.NewLoader().LoadFromData(api.Spec())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := doc.Paths.InMatchingOrder(), src.Paths.InMatchingOrder(); !slices.Equal(got, want) {
		t.Errorf("served paths %v, api.Spec's %v", got, want)
	}

	ops := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops++
			body := ""
			if op.RequestBody != nil {
				body = "{}"
			}
			status, ctype, answer := r.do(t, method, path, body, "", "")
			var p api.Problem
			if ctype == "application/problem+json" && json.Unmarshal(answer, &p) == nil &&
				(p.Type == api.ProblemNotFound || p.Type == api.ProblemMethodNotAllowed) {
				t.Errorf("%s %s: not routed: %s", method, path, answer)
			}
			if op.Responses.Value(strconv.Itoa(status)) == nil {
				t.Errorf("%s %s answered %d, which the document does not list: %s", method, path, status, answer)
			}
		}
	}
	if want := reflect.TypeFor[api.ServerInterface]().NumMethod(); ops != want {
		t.Errorf("%d operations in the document, %d in api.ServerInterface", ops, want)
	}
}
