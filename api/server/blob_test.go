package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// testBytes returns n bytes of a seeded generator; the seed is printed if
// the test fails.
func testBytes(t *testing.T, n int) []byte {
	t.Helper()
	seed := rand.Uint64()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("data seed %d", seed)
		}
	})
	r := rand.New(rand.NewPCG(seed, 12))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// get sends a GET (or HEAD) of path with the token and extra headers, and
// returns the answer, its body read.
func (r rawAPI) get(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, r.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestBlobContentRange adds a blob of a little over 2 leaves and reads it
// over HTTP as a browser would: whole, by ranges (one across a leaf
// boundary), by suffix, and past its end, as RFC 9110 says (14.1.2,
// 15.3.7, 15.5.17).
func TestBlobContentRange(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := testBytes(t, 2<<20+12345)
	n := int64(len(data))
	b, err := c.BlobAdd(t.Context(), bytes.NewReader(data), n, false, nil)
	if err != nil || b.Size != n || !strings.HasPrefix(b.Cap, "exo://blob/") || !strings.Contains(b.Cap, "#") {
		t.Fatalf("BlobAdd = %+v, %v", b, err)
	}
	r := newRaw(t, dir)
	path := "/v1/blobs/" + url.PathEscape(b.Cap) + "/content"
	short, err := client.CapPath(b.Cap)
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name, rng   string
		status      int
		first, last int64 // of the answer's bytes
	}{
		{"whole", "", http.StatusOK, 0, n - 1},
		{"first byte", "bytes=0-0", http.StatusPartialContent, 0, 0},
		{"across a leaf", "bytes=1048000-1049999", http.StatusPartialContent, 1048000, 1049999},
		{"open end", fmt.Sprintf("bytes=%d-", n-100), http.StatusPartialContent, n - 100, n - 1},
		{"last past the end", fmt.Sprintf("bytes=%d-%d", n-10, n+1000), http.StatusPartialContent, n - 10, n - 1},
		{"suffix", "bytes=-500", http.StatusPartialContent, n - 500, n - 1},
		{"suffix longer than the blob", fmt.Sprintf("bytes=-%d", n+5), http.StatusPartialContent, 0, n - 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []string{path, "/v1/blobs/" + short + "/content"} {
				resp, body := r.get(t, http.MethodGet, p, "Range", tt.rng)
				if resp.StatusCode != tt.status {
					t.Fatalf("GET %s Range %q: %d %s", p, tt.rng, resp.StatusCode, body)
				}
				if !bytes.Equal(body, data[tt.first:tt.last+1]) {
					t.Errorf("Range %q: %d bytes, not the blob's %d to %d", tt.rng, len(body), tt.first, tt.last)
				}
				if got := resp.Header.Get("Content-Length"); got != fmt.Sprint(tt.last-tt.first+1) {
					t.Errorf("Range %q: Content-Length %s", tt.rng, got)
				}
				if resp.Header.Get("Accept-Ranges") != "bytes" {
					t.Errorf("Range %q: Accept-Ranges %q", tt.rng, resp.Header.Get("Accept-Ranges"))
				}
				wantCR := fmt.Sprintf("bytes %d-%d/%d", tt.first, tt.last, n)
				if tt.status == http.StatusOK {
					wantCR = ""
				}
				if got := resp.Header.Get("Content-Range"); got != wantCR {
					t.Errorf("Range %q: Content-Range %q, want %q", tt.rng, got, wantCR)
				}
			}
		})
	}

	// Ranges anywhere, seeded: within a leaf, across leaves, at their
	// edges (the server reads whole leaves and serves from them).
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range 24 {
		first := rng.Int64N(n)
		if i%3 == 0 { // at a leaf's edge
			first = min(int64(i/3%3)*1048320+int64(rng.IntN(3))-1, n-1)
			first = max(first, 0)
		}
		last := min(first+rng.Int64N(1<<20+100), n-1)
		resp, body := r.get(t, http.MethodGet, path, "Range", fmt.Sprintf("bytes=%d-%d", first, last))
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[first:last+1]) {
			t.Fatalf("range %d-%d (seed %d): %d, %d bytes, not the blob's", first, last, seed, resp.StatusCode, len(body))
		}
	}

	// Past the end: 416, and the size (RFC 9110 14.4), as a problem like
	// every error of the API.
	for _, rng := range []string{fmt.Sprintf("bytes=%d-", n), fmt.Sprintf("bytes=%d-%d", n+10, n+20)} {
		resp, body := r.get(t, http.MethodGet, path, "Range", rng)
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", n) {
			t.Errorf("Range %q: %d Content-Range %q, want 416 bytes */%d", rng, resp.StatusCode, resp.Header.Get("Content-Range"), n)
		}
		wantProblem(t, "Range "+rng, resp.StatusCode, resp.Header.Get("Content-Type"), body,
			http.StatusRequestedRangeNotSatisfiable, api.ProblemRangeNotSatisfiable)
	}

	// HEAD says the size; the answer is sandboxed, and content addressed.
	resp, body := r.get(t, http.MethodHead, path)
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != n ||
		resp.Header.Get("Content-Security-Policy") != "sandbox" || resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("HEAD: %d, %d bytes, length %d, headers %v", resp.StatusCode, len(body), resp.ContentLength, resp.Header)
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := r.get(t, http.MethodGet, path, "If-None-Match", etag); etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d, want 304", etag, resp.StatusCode)
	}
	// A precondition that fails: 412, a problem.
	resp, body = r.get(t, http.MethodGet, path, "If-Match", `"not-its-root"`)
	wantProblem(t, "If-Match of another ETag", resp.StatusCode, resp.Header.Get("Content-Type"), body,
		http.StatusPreconditionFailed, api.ProblemPreconditionFailed)

	// A browser's media element sends no header: the token goes in the
	// URL, for this route only.
	resp, body = r.get(t, http.MethodGet, path+"?token="+r.token, "Authorization", "", "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[10:20]) {
		t.Errorf("?token=: %d %q", resp.StatusCode, body)
	}
	for _, p := range []string{path + "?token=nope", "/v1/blobs/status?token=" + r.token, "/v1/files?token=" + r.token} {
		if resp, _ := r.get(t, http.MethodGet, p, "Authorization", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the header: %d, want 401", p, resp.StatusCode)
		}
	}

	// The client reads ranges too.
	ct, err := c.BlobContent(t.Context(), b.Cap, 1<<20-3, 6)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(ct)
	ct.Close()
	if err != nil || !bytes.Equal(got, data[1<<20-3:1<<20+3]) || ct.Size != n || ct.Offset != 1<<20-3 || ct.Length != 6 {
		t.Errorf("BlobContent range = %d bytes %+v, %v", len(got), ct, err)
	}
	if _, err := c.BlobContent(t.Context(), b.Cap, n+1, -1); !errors.Is(err, client.ErrRangeNotSatisfiable) {
		t.Errorf("BlobContent past the end: %v", err)
	}
}

// TestBlobErrors: a capability that does not parse, a wrong key, a
// directory read as a file, each a problem of its own type.
func TestBlobErrors(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.BlobAdd(t.Context(), strings.NewReader("some secret bytes"), -1, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, dir)
	root, key, _ := strings.Cut(strings.TrimPrefix(b.Cap, "exo://blob/"), "#")
	wrong := []byte(key)
	if wrong[0] = 'A'; key[0] == 'A' {
		wrong[0] = 'B'
	}
	for _, tt := range []struct {
		name, path string
		status     int
		typ        api.ProblemType
	}{
		{"bad capability", "/v1/blobs/nope/content", http.StatusBadRequest, api.ProblemBadCapability},
		{"bad key", "/v1/blobs/" + root + ".short/content", http.StatusBadRequest, api.ProblemBadCapability},
		{"wrong key", "/v1/blobs/" + root + "." + string(wrong) + "/content", http.StatusBadRequest, api.ProblemWrongKey},
		{"not a directory", "/v1/blobs/" + root + "." + key + "/entries", http.StatusBadRequest, api.ProblemNotDir},
		{"bad capability of a CAR", "/v1/blobs/exo:nope/car", http.StatusBadRequest, api.ProblemBadCapability},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, ctype, body := r.do(t, http.MethodGet, tt.path, "", "", "")
			wantProblem(t, tt.name, status, ctype, body, tt.status, tt.typ)
		})
	}
	if _, err := c.BlobContent(t.Context(), "exo://blob/"+root+"#"+string(wrong), 0, -1); !errors.Is(err, client.ErrWrongKey) {
		t.Errorf("client, wrong key: %v, want ErrWrongKey", err)
	}

	// A public blob needs no key; its CAR begins with its root.
	pb, err := c.BlobAdd(t.Context(), strings.NewReader("hello, world\n"), 13, true, nil)
	if err != nil || strings.Contains(pb.Cap, "#") {
		t.Fatalf("public BlobAdd = %+v, %v", pb, err)
	}
	car, err := c.BlobExport(t.Context(), strings.TrimPrefix(pb.Cap, "exo://blob/"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(car)
	car.Close()
	if err != nil || len(data) < 13 || !bytes.Contains(data, []byte("hello, world\n")) {
		t.Errorf("BlobExport = %d bytes, %v", len(data), err)
	}

	// A fetch of what the node holds ends at once, done.
	last, err := c.BlobFetch(t.Context(), b.Cap, nil)
	if err != nil || !last.Done || last.Error != nil {
		t.Errorf("BlobFetch = %+v, %v", last, err)
	}
}

// TestFilesOverTheAPI adds files by path and by upload, lists them, finds
// them by name, ID and capability, pins, unpins and removes one.
func TestFilesOverTheAPI(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// In no cell, an upload fails before its answer begins: its status.
	if _, err := c.FilesUpload(ctx, "a.txt", strings.NewReader("a"), 1, nil); !errors.Is(err, client.ErrNotInCell) {
		t.Fatalf("FilesUpload in no cell: %v, want ErrNotInCell", err)
	}
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}

	src := t.TempDir()
	data := testBytes(t, 300<<10)
	if err := os.WriteFile(filepath.Join(src, "photo.jpg"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "docs", "deep"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"docs/a.txt", "docs/deep/b.txt"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte("file "+f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var progress []api.ImportLine
	files, err := c.FilesAdd(ctx, []string{filepath.Join(src, "photo.jpg"), filepath.Join(src, "docs")},
		func(l api.ImportLine) { progress = append(progress, l) })
	if err != nil || len(files) != 2 {
		t.Fatalf("FilesAdd = %+v, %v", files, err)
	}
	for _, l := range progress {
		if l.Done > l.Total && l.Total > 0 || l.Files != nil {
			t.Errorf("a progress line %+v", l)
		}
	}
	photo := files[0]
	if photo.Name != "photo.jpg" || photo.Size != int64(len(data)) || photo.ID == "" || !photo.Pinned {
		t.Errorf("photo = %+v", photo)
	}
	if files[1].Name != "docs" || !strings.Contains(files[1].Cap, "?dir") {
		t.Errorf("docs = %+v", files[1])
	}
	entries, err := c.BlobEntries(ctx, files[1].Cap)
	if err != nil || len(entries) != 2 || entries[0].Name != "a.txt" || entries[1].Name != "deep" || !strings.Contains(entries[1].Cap, "?dir") {
		t.Errorf("BlobEntries(docs) = %+v, %v", entries, err)
	}

	// A path that fails after one added: the error, with the file added
	// before it, which is the cell's.
	if err := os.Symlink(filepath.Join(src, "gone"), filepath.Join(src, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "first.txt"), []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	partial, err := c.FilesAdd(ctx, []string{filepath.Join(src, "first.txt"), filepath.Join(src, "dangling")}, nil)
	if err == nil || len(partial) != 1 || partial[0].Name != "first.txt" {
		t.Fatalf("FilesAdd of a good path and a dangling link = %+v, %v", partial, err)
	}
	if _, err := c.FileRemove(ctx, partial[0].ID); err != nil {
		t.Fatal(err)
	}

	up, err := c.FilesUpload(ctx, "notes.txt", strings.NewReader("uploaded"), -1, nil)
	if err != nil || up.Name != "notes.txt" || up.Size != 8 {
		t.Fatalf("FilesUpload = %+v, %v", up, err)
	}
	list, err := c.Files(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("Files = %+v, %v", list, err)
	}
	for _, key := range []string{"photo.jpg", photo.ID, photo.Cap} {
		if f, err := c.File(ctx, key); err != nil || f.ID != photo.ID {
			t.Errorf("File(%q) = %+v, %v", key, f, err)
		}
	}
	// The content of a file has its media type.
	ct, err := c.BlobContent(ctx, photo.Cap, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(ct)
	ct.Close()
	resp, _ := newRaw(t, dir).get(t, http.MethodHead, "/v1/blobs/"+url.PathEscape(photo.Cap)+"/content")
	if d := resp.Header.Get("Content-Disposition"); d != `inline; filename=photo.jpg` {
		t.Errorf("Content-Disposition %q", d)
	}
	if !bytes.Equal(got, data[:10]) || ct.Type != "image/jpeg" {
		t.Errorf("content of photo.jpg: %q, type %q", got, ct.Type)
	}

	if f, err := c.FileUnpin(ctx, "photo.jpg"); err != nil || f.Pinned {
		t.Errorf("FileUnpin = %+v, %v", f, err)
	}
	if f, err := c.FilePin(ctx, photo.ID); err != nil || !f.Pinned {
		t.Errorf("FilePin = %+v, %v", f, err)
	}
	if f, err := c.FileRemove(ctx, "notes.txt"); err != nil || f.ID != up.ID {
		t.Errorf("FileRemove = %+v, %v", f, err)
	}
	if _, err := c.File(ctx, "notes.txt"); !errors.Is(err, client.ErrNoFile) {
		t.Errorf("File after remove: %v, want ErrNoFile", err)
	}
	if _, err := c.FileRemove(ctx, "notes.txt"); !errors.Is(err, client.ErrNoFile) {
		t.Errorf("FileRemove twice: %v, want ErrNoFile", err)
	}

	// Bad requests: a relative path, one that is not there, no name.
	r := newRaw(t, dir)
	for _, tt := range []struct{ name, body string }{
		{"relative path", `{"paths": ["photo.jpg"]}`},
		{"missing path", `{"paths": ["` + filepath.Join(src, "nope") + `"]}`},
		{"no paths", `{"paths": []}`},
	} {
		status, ctype, body := r.do(t, http.MethodPost, "/v1/files", tt.body, "", "")
		wantProblem(t, tt.name, status, ctype, body, http.StatusBadRequest, api.ProblemBadRequest)
	}
	for _, name := range []string{"", "a/b", ".."} {
		status, ctype, body := r.do(t, http.MethodPost, "/v1/files?name="+url.QueryEscape(name), "x", "", "")
		wantProblem(t, "name "+name, status, ctype, body, http.StatusBadRequest, api.ProblemBadRequest)
	}

	st, err := c.BlobStatus(ctx)
	if err != nil || st.Files != 2 || st.Usage.Blocks == 0 || !st.Scrub.Done || st.Scrub.Unclean || st.Scrub.Recheck || st.Incomplete != 0 {
		t.Errorf("BlobStatus = %+v, %v", st, err)
	}
	gc, err := c.BlobGC(ctx)
	if err != nil || gc.Kept == 0 {
		t.Errorf("BlobGC = %+v, %v", gc, err)
	}
}
