package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/blob"
	blobs "github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks"
)

// The files' and blobs' routes. Imports and fetches answer NDJSON
// (progressStream); a blob's content is served by http.ServeContent over
// the blob's ReadSeeker, which gives Range, If-Range and HEAD.

const (
	// maxAddPaths bounds the paths of one POST /v1/files.
	maxAddPaths = 1000
	// maxFileName bounds a file's name, as most file systems do.
	maxFileName = 255
)

// FilesAdd implements api.ServerInterface.
func (rt *routes) FilesAdd(w http.ResponseWriter, r *http.Request, params api.FilesAddParams) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		rt.filesAddPaths(w, r, params)
		return
	}
	if p := checkFileName(params.Name); p != nil {
		p.write(w)
		return
	}
	ctx, cancel := rt.streamContext(r)
	defer cancel()
	longBody(w)
	total := max(r.ContentLength, 0)
	ps := newProgressStream(w)
	f, err := rt.node.Blobs().AddFileReader(ctx, params.Name, r.Body, blobs.AddOptions{
		Progress: func(done int64) { ps.update(api.ImportLine{Done: done, Total: total}) },
	})
	ps.finish(api.ImportLine{Done: f.Size, Total: f.Size, Files: []api.FileView{fileView(f)}}, err, blobKind, importError)
}

// filesAddPaths adds files and folders on the node's disk.
func (rt *routes) filesAddPaths(w http.ResponseWriter, r *http.Request, params api.FilesAddParams) {
	if params.Name != "" {
		writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, "name= names an upload; a JSON body names its paths")
		return
	}
	var req api.FilesAddRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	switch n := len(req.Paths); {
	case n == 0:
		writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, `no "paths": give 1 to 1000`)
		return
	case n > maxAddPaths:
		writeProblem(w, http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge, fmt.Sprintf("%d paths, limit %d", n, maxAddPaths))
		return
	}
	var total int64
	for _, p := range req.Paths {
		if !filepath.IsAbs(p) {
			writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("path %q is not absolute (the node reads it on its own disk)", p))
			return
		}
		n, err := treeSize(p)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, err.Error())
			return
		}
		total += n
	}
	ctx, cancel := rt.streamContext(r)
	defer cancel()
	ps := newProgressStream(w)
	files, err := rt.node.Blobs().AddFiles(ctx, req.Paths, blobs.AddOptions{
		Progress: func(done int64) { ps.update(api.ImportLine{Done: done, Total: total}) },
	})
	views := make([]api.FileView, len(files))
	for i, f := range files {
		views[i] = fileView(f)
	}
	// Files added before a failure are the cell's: the error's line
	// lists them.
	ps.lineErr = len(views) > 0
	ps.finish(api.ImportLine{Done: total, Total: total, Files: views}, err, blobKind, func(p *api.Problem) any {
		return api.ImportLine{Error: p, Files: views}
	})
}

// treeSize is the bytes of the regular files at and under path, for the
// progress of an import; an error says what is wrong with path.
func treeSize(path string) (int64, error) {
	var total int64
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("path %s: %w", path, err)
	}
	return total, nil
}

// checkFileName checks the name of an upload.
func checkFileName(name string) *problem {
	switch {
	case name == "":
		return &problem{http.StatusBadRequest, api.ProblemBadRequest, "an upload needs its file's name: name="}
	case len(name) > maxFileName:
		return &problem{http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("name of %d bytes, limit %d", len(name), maxFileName)}
	case !utf8.ValidString(name), strings.ContainsAny(name, "/\\\x00"), name == ".", name == "..":
		return &problem{http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("name %q is not a file's name", name)}
	}
	return nil
}

// longBody lifts the server's read timeout for a request whose body is a
// file: it takes as long as the file does.
func longBody(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

func importError(p *api.Problem) any { return api.ImportLine{Error: p} }

// FilesList implements api.ServerInterface.
func (rt *routes) FilesList(w http.ResponseWriter, r *http.Request) {
	files, err := rt.node.Blobs().Files(r.Context())
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	views := make([]api.FileView, len(files))
	for i, f := range files {
		views[i] = fileView(f)
	}
	writeJSON(w, http.StatusOK, views)
}

// FilesGet implements api.ServerInterface.
func (rt *routes) FilesGet(w http.ResponseWriter, r *http.Request, name string) {
	f, err := rt.file(r.Context(), name)
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, fileView(f))
}

// FilesRemove implements api.ServerInterface.
func (rt *routes) FilesRemove(w http.ResponseWriter, r *http.Request, name string) {
	f, err := rt.file(r.Context(), name)
	if err == nil {
		err = rt.node.Blobs().RemoveFile(r.Context(), f.ID.String())
	}
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, fileView(f))
}

// FilesPin implements api.ServerInterface.
func (rt *routes) FilesPin(w http.ResponseWriter, r *http.Request, name string) {
	rt.pin(w, r, name, true)
}

// FilesUnpin implements api.ServerInterface.
func (rt *routes) FilesUnpin(w http.ResponseWriter, r *http.Request, name string) {
	rt.pin(w, r, name, false)
}

func (rt *routes) pin(w http.ResponseWriter, r *http.Request, name string, pin bool) {
	f, err := rt.file(r.Context(), name)
	if err == nil {
		if pin {
			err = rt.node.Blobs().PinFile(r.Context(), f.ID.String())
		} else {
			err = rt.node.Blobs().UnpinFile(r.Context(), f.ID.String())
		}
	}
	if err == nil {
		f, err = rt.file(r.Context(), f.ID.String())
	}
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, fileView(f))
}

// file finds a file by its name, its capability or its entity ID.
func (rt *routes) file(ctx context.Context, nameOrID string) (blobs.File, error) {
	return rt.node.Blobs().File(ctx, nameOrID)
}

func fileView(f blobs.File) api.FileView {
	return api.FileView{ID: f.ID.String(), Name: f.Name, Size: f.Size, MediaType: f.MediaType, Cap: f.Cap.String(),
		AddedBy: f.AddedBy, Added: f.Added, Pinned: f.Pinned, Held: f.Held, From: f.From, Offered: f.Offered}
}

// BlobAdd implements api.ServerInterface.
func (rt *routes) BlobAdd(w http.ResponseWriter, r *http.Request, params api.BlobAddParams) {
	ctx, cancel := rt.streamContext(r)
	defer cancel()
	longBody(w)
	total := max(r.ContentLength, 0)
	ps := newProgressStream(w)
	imp, err := rt.node.Blobs().AddBlob(ctx, r.Body, blobs.AddOptions{
		Public:   params.Public,
		Progress: func(done int64) { ps.update(api.ImportLine{Done: done, Total: total}) },
	})
	ps.finish(api.ImportLine{Done: imp.Size, Total: imp.Size, Blob: &api.BlobAdded{
		Cap: imp.Cap.String(), Size: imp.Size, Blocks: imp.Blocks, Bytes: imp.Bytes,
	}}, err, blobKind, importError)
}

// BlobContent implements api.ServerInterface.
func (rt *routes) BlobContent(w http.ResponseWriter, r *http.Request, capText api.Cap, params api.BlobContentParams) {
	c, err := parseCap(capText)
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	// A long answer (a film) ends when the API begins to close.
	ctx, cancel := rt.streamContext(r)
	defer cancel()
	rd, err := rt.node.Blobs().Open(ctx, c)
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	defer rd.Close()
	// A wrong key fails every segment: one byte where the answer begins
	// tells it while a problem can still be answered.
	if off := firstByte(params.Range, rd.Size()); off < rd.Size() {
		if _, err := rd.ReadAt(make([]byte, 1), off); err != nil && !errors.Is(err, io.EOF) {
			writeBlobErr(w, err)
			return
		}
	}
	h := w.Header()
	if f, err := rt.node.Blobs().File(r.Context(), c.String()); err == nil {
		if f.MediaType != "" {
			h.Set("Content-Type", f.MediaType)
		}
		if d := mime.FormatMediaType("inline", map[string]string{"filename": f.Name}); d != "" {
			h.Set("Content-Disposition", d)
		}
	}
	// The blob's bytes are anyone's: a browser shows them, but runs no
	// script of them at the API's origin (where ?token= would be in
	// reach).
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("ETag", `"`+c.Root.String()+`"`)
	h.Set("Cache-Control", "private")
	cw := &contentErrors{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, newWholeReads(rd))
	cw.finish()
}

// firstByte is the offset where the answer to a Range header begins: 0
// but for one range that parses.
func firstByte(rng string, size int64) int64 {
	spec, ok := strings.CutPrefix(rng, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0
		}
		return max(size-n, 0)
	}
	n, err := strconv.ParseInt(a, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// BlobEntries implements api.ServerInterface.
func (rt *routes) BlobEntries(w http.ResponseWriter, r *http.Request, capText api.Cap) {
	c, err := parseCap(capText)
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	s := rt.node.Exchange().NewSession(r.Context(), blocks.SessionOptions{Public: c.Public})
	defer s.Close()
	entries, err := blob.ReadDir(r.Context(), s, c)
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	out := make([]api.BlobEntry, len(entries))
	for i, e := range entries {
		out[i] = api.BlobEntry{Name: e.Name, Size: e.Size, Cap: e.Cap.String()}
	}
	writeJSON(w, http.StatusOK, out)
}

// BlobExport implements api.ServerInterface.
func (rt *routes) BlobExport(w http.ResponseWriter, r *http.Request, capText api.Cap) {
	c, err := parseCap(capText)
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.ipld.car")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.Root.String()+`.car"`)
	ctx, cancel := rt.streamContext(r)
	defer cancel()
	cw := &countingWriter{w: w}
	if err := rt.node.Blobs().Export(ctx, cw, c); err != nil {
		if cw.n == 0 {
			w.Header().Del("Content-Disposition")
			writeBlobErr(w, err)
			return
		}
		// The answer has begun (chunked: a clean end would read as a
		// whole CAR): abort it, so that the client sees it cut short.
		panic(http.ErrAbortHandler)
	}
}

// countingWriter counts what went through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// BlobFetch implements api.ServerInterface.
func (rt *routes) BlobFetch(w http.ResponseWriter, r *http.Request, capText api.Cap) {
	c, err := parseCap(capText)
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	ctx, cancel := rt.streamContext(r)
	defer cancel()
	ps := newProgressStream(w)
	var (
		mu   sync.Mutex
		last api.FetchLine
	)
	err = rt.node.Blobs().Fetch(ctx, c, func(p blobs.Progress) {
		l := fetchLine(p)
		ps.update(l)
		mu.Lock()
		last = l
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	last.Done = true
	ps.finish(last, err, blobKind, func(p *api.Problem) any { return api.FetchLine{Error: p} })
}

func fetchLine(p blobs.Progress) api.FetchLine {
	l := api.FetchLine{Bytes: p.Bytes, Blocks: p.Blocks, TotalBytes: p.TotalBytes, TotalBlocks: p.TotalBlocks,
		Peers: make(map[string]api.PeerProgress, len(p.Peers))}
	for id, pp := range p.Peers {
		l.Peers[id] = api.PeerProgress{Blocks: pp.Blocks, Bytes: pp.Bytes}
	}
	return l
}

// BlobGC implements api.ServerInterface.
func (rt *routes) BlobGC(w http.ResponseWriter, r *http.Request) {
	st, err := rt.node.Blobs().GC(r.Context())
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.BlobGCStats{Deleted: st.Deleted, Kept: st.Kept, Freed: st.Freed, Took: api.Duration(st.Took)})
}

// BlobStatus implements api.ServerInterface.
func (rt *routes) BlobStatus(w http.ResponseWriter, r *http.Request) {
	st, err := rt.node.Blobs().Status(r.Context())
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.BlobStatus{Policy: st.Policy, Budget: st.Budget, DiskBudget: st.DiskBudget,
		Usage: api.BlobUsage{Blocks: st.Usage.Blocks, Bytes: st.Usage.Bytes}, Pinned: st.Pinned, Files: st.Files, Fetching: st.Fetching,
		Incomplete: st.Incomplete, Scrub: api.BlobScrub{Unclean: st.Scrub.Unclean, Done: st.Scrub.Done, Checked: st.Scrub.Checked,
			Deleted: st.Scrub.Deleted, Err: st.Scrub.Err, Recheck: st.Scrub.Recheck != 0, SyncErr: st.Scrub.SyncErr}})
}

// blobKind is kind for the files' and blobs' routes.
func blobKind(err error) (int, api.ProblemType) {
	switch {
	case errors.Is(err, blob.ErrCapability):
		return http.StatusBadRequest, api.ProblemBadCapability
	case errors.Is(err, blobs.ErrNoFile):
		return http.StatusNotFound, api.ProblemNoFile
	case errors.Is(err, blobs.ErrAmbiguous):
		return http.StatusConflict, api.ProblemAmbiguousName
	case errors.Is(err, blobs.ErrNotMember):
		return http.StatusConflict, api.ProblemNotInCell
	case errors.Is(err, blobs.ErrClosed):
		return http.StatusServiceUnavailable, api.ProblemUnavailable
	case errors.Is(err, blob.ErrWrongKey):
		return http.StatusBadRequest, api.ProblemWrongKey
	case errors.Is(err, blob.ErrIsDir):
		return http.StatusBadRequest, api.ProblemIsDir
	case errors.Is(err, blob.ErrNotDir):
		return http.StatusBadRequest, api.ProblemNotDir
	case errors.Is(err, blocks.ErrCorrupt):
		return http.StatusBadGateway, api.ProblemCorruptBlock
	case errors.Is(err, blob.ErrMalformed):
		return http.StatusBadGateway, api.ProblemMalformedBlob
	case errors.Is(err, syscall.ENOSPC):
		return http.StatusInsufficientStorage, api.ProblemDiskFull
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission), errors.Is(err, os.ErrInvalid):
		// A path of an import on the node's disk.
		return http.StatusBadRequest, api.ProblemBadRequest
	}
	return storeKind(err)
}

func writeBlobErr(w http.ResponseWriter, err error) {
	status, typ := blobKind(err)
	writeProblem(w, status, typ, err.Error())
}
