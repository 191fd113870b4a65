package server

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/exopeer/exopeer/api"
)

// TestProblemTypesAreTheDocuments: the problem types are the API
// document's (the enum of ProblemType, stable for programs to branch on),
// and each has its title here: a type added to the document without one
// would be answered with an empty title, and one here the document does
// not list is not documented.
func TestProblemTypesAreTheDocuments(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec())
	if err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas["ProblemType"]
	if schema == nil || schema.Value == nil || len(schema.Value.Enum) == 0 {
		t.Fatal("the document has no enum of ProblemType")
	}
	documented := map[api.ProblemType]bool{}
	for _, v := range schema.Value.Enum {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("ProblemType's enum holds %v (%T), not a string", v, v)
		}
		typ := api.ProblemType(s)
		documented[typ] = true
		if titles[typ] == "" {
			t.Errorf("problem type %s has no title", typ)
		}
	}
	for typ := range titles {
		if !documented[typ] {
			t.Errorf("problem type %s has a title but is not in the document", typ)
		}
	}
}
