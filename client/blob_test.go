package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
)

const (
	testRoot = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
	testKey  = "AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK-2vcTL0tk"
)

func TestCapPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"exo://blob/" + testRoot + "#" + testKey, testRoot + "." + testKey},
		{"exo://blob/" + testRoot, testRoot},
		{"exo://blob/" + testRoot + "?dir#" + testKey, testRoot + "." + testKey + ".dir"},
		{"exo://blob/" + testRoot + "?dir", testRoot + ".dir"},
		{testRoot, testRoot},
		{testRoot + "." + testKey, testRoot + "." + testKey},
	} {
		if got, err := CapPath(tt.in); err != nil || got != tt.want {
			t.Errorf("CapPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"", "exo://blob/", "exo://blob/" + testRoot + "?x", "exo://blob/" + testRoot + "#",
		"exo://blob/" + testRoot + "#a/b", "exo://blob/a/b", "exo://blob/" + testRoot + "?dir?dir",
		"https://example.com/x", "a/b", "a..b", "a.b.c.d", "report.pdf ", "../x", strings.Repeat("a", 600),
	} {
		if got, err := CapPath(bad); !errors.Is(err, ErrBadCapability) {
			t.Errorf("CapPath(%q) = %q, %v; want ErrBadCapability", bad, got, err)
		}
	}
}

// FuzzCapPath feeds any string to CapPath: it never panics, and what it
// answers is a path form, which it answers as it is.
func FuzzCapPath(f *testing.F) {
	for _, s := range []string{
		"exo://blob/" + testRoot + "?dir#" + testKey, "exo://blob/" + testRoot, testRoot,
		testRoot + ".dir", "exo://blob/?dir#", "a.b.c", "exo://blob/x#y#z", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := CapPath(s)
		if err != nil {
			if !errors.Is(err, ErrBadCapability) {
				t.Fatalf("CapPath(%q): %v, not ErrBadCapability", s, err)
			}
			return
		}
		if !pathForm(p) || strings.ContainsAny(p, "/?#%:") {
			t.Fatalf("CapPath(%q) = %q, not a path form", s, p)
		}
		if again, err := CapPath(p); err != nil || again != p {
			t.Fatalf("CapPath(%q) = %q, %v; want it as it is", p, again, err)
		}
	})
}

func answer(body []byte) *http.Response {
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(body))}
}

func TestReadImport(t *testing.T) {
	var seen []int64
	l, err := readImport(t.Context(), answer([]byte(`{"done":5,"total":10}
{"done":10,"total":10}
{"done":10,"total":10,"blob":{"cap":"exo://blob/x","size":10,"blocks":1,"bytes":26}}
`)), nil, func(l api.ImportLine) { seen = append(seen, l.Done) })
	if err != nil || l.Blob == nil || l.Blob.Size != 10 || len(seen) != 2 || seen[1] != 10 {
		t.Errorf("readImport = %+v, %v; progress %v", l, err, seen)
	}
	_, err = readImport(t.Context(), answer([]byte(`{"done":5}
{"error":{"type":"urn:exopeer:problem:disk-full","title":"disk full","status":507,"detail":"no space left on device"}}
`)), nil, nil)
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("readImport of a failed import: %v, want ErrDiskFull", err)
	}
	if _, err = readImport(t.Context(), answer([]byte(`{"done":5}`+"\n")), nil, nil); !errors.Is(err, ErrStreamEnded) {
		t.Errorf("readImport of a cut answer: %v, want ErrStreamEnded", err)
	}
	resp := &http.Response{StatusCode: http.StatusConflict, Body: io.NopCloser(strings.NewReader(
		`{"type":"urn:exopeer:problem:not-in-cell","title":"x","status":409,"detail":"in no cell"}`))}
	if _, err = readImport(t.Context(), resp, nil, nil); !errors.Is(err, ErrNotInCell) {
		t.Errorf("readImport of a 409: %v, want ErrNotInCell", err)
	}
}

// FuzzReadImport feeds any bytes to the reader of an import's answer: it
// returns a last line with a result, or an error, never both nor neither,
// and never panics.
func FuzzReadImport(f *testing.F) {
	for _, s := range []string{
		"{\"done\":1}\n{\"files\":[{\"id\":\"a\",\"name\":\"n\",\"size\":1,\"cap\":\"c\",\"added\":\"2026-01-01T00:00:00Z\",\"pinned\":true,\"held\":1}]}\n",
		"{\"error\":{\"type\":\"urn:exopeer:problem:wrong-key\",\"status\":400}}\n",
		"{\"blob\":null}\n{\"blob\":{}}\n",
		"{\"done\":\"x\"}",
		"not json",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := readImport(context.Background(), answer(body), nil, func(api.ImportLine) {})
		if err == nil && l.Files == nil && l.Blob == nil || err != nil && l.Blob != nil {
			t.Fatalf("readImport = %+v, %v: want a result or an error", l, err)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("an error with no message")
		}
	})
}

// FuzzReadFetch feeds any bytes to the reader of a fetch's answer: it
// returns a last line that is done, or an error, never both nor neither,
// and never panics.
func FuzzReadFetch(f *testing.F) {
	for _, s := range []string{
		"{\"bytes\":10,\"blocks\":1,\"peers\":{\"12D3KooW\":{\"blocks\":1,\"bytes\":10}}}\n{\"bytes\":20,\"done\":true}\n",
		"{\"error\":{\"type\":\"urn:exopeer:problem:corrupt-block\",\"status\":502,\"detail\":\"bafy...\"}}\n",
		"{\"peers\":{\"a\":5}}\n",
		"{\"done\":false}\n",
		"{\"done\":true",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := readFetch(context.Background(), answer(body), nil, func(api.FetchLine) {})
		if (err == nil) != l.Done {
			t.Fatalf("readFetch = %+v, %v: want a last line done or an error", l, err)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("an error with no message")
		}
	})
}
