package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/exopeer/exopeer/api"
)

// The files' and blobs' routes. Imports and fetches stream their
// progress (NDJSON); a blob's content and its CAR are bodies to read.
// Capabilities are strings here (package blob brings libp2p): CapPath
// turns one into the form the routes take in their path.

// ErrBadCapability is errors.Is the error of a capability that does not
// parse, here or on the node.
var ErrBadCapability = errors.New("client: bad capability")

const capPrefix = "exo://blob/"

// CapPath returns the path form of a capability (see the {cap} parameter
// of the API document): CID, CID.KEY, CID.dir or CID.KEY.dir, from its
// text (exo://blob/CID?dir#KEY), or from a path form or a bare CID, which
// it returns as they are. It checks the form, not the CID or the key: the
// node does.
func CapPath(s string) (string, error) {
	bad := fmt.Errorf("%w: %q is not exo://blob/CID[?dir][#KEY], nor a CID", ErrBadCapability, s)
	if len(s) > 512 {
		return "", fmt.Errorf("%w: %d bytes, more than a capability has", ErrBadCapability, len(s))
	}
	rest, full := strings.CutPrefix(s, capPrefix)
	if !full {
		if !pathForm(s) {
			return "", bad
		}
		return s, nil
	}
	rest, key, hasKey := strings.Cut(rest, "#")
	root, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery && query != "dir" || hasKey && key == "" || !token(root) || hasKey && !token(key) {
		return "", bad
	}
	out := root
	if hasKey {
		out += "." + key
	}
	if hasQuery {
		out += ".dir"
	}
	return out, nil
}

// pathForm tells a capability's path form: one to three parts of letters,
// digits, - and _, separated by dots.
func pathForm(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return false
	}
	for _, p := range parts {
		if !token(p) {
			return false
		}
	}
	return true
}

func token(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// FilesAdd adds the files and folders at paths on the node's disk (the
// node reads them; each path absolute) as files of the cell, and returns
// them. progress, if not nil, is called with each line of progress. It
// stops at the first path that fails: its error comes with the files
// added before it.
func (c *Client) FilesAdd(ctx context.Context, paths []string, progress func(api.ImportLine)) ([]api.FileView, error) {
	resp, err := c.stream.FilesAdd(ctx, &api.FilesAddParams{}, api.FilesAddRequest{Paths: paths})
	l, err := readImport(ctx, resp, err, progress)
	if err != nil {
		return l.Files, err
	}
	if l.Files == nil {
		return nil, errors.New("control api: bad answer: an import's last line without its files")
	}
	return l.Files, nil
}

// FilesUpload adds the bytes of r as a file of the cell named name, and
// returns it. size is r's length if known (the request's Content-Length),
// else -1. progress, if not nil, is called with each line of progress.
func (c *Client) FilesUpload(ctx context.Context, name string, r io.Reader, size int64, progress func(api.ImportLine)) (api.FileView, error) {
	resp, err := c.stream.FilesAddWithBody(ctx, &api.FilesAddParams{Name: name}, "application/octet-stream", r, contentLength(size))
	l, err := readImport(ctx, resp, err, progress)
	if err != nil {
		return api.FileView{}, err
	}
	if len(l.Files) != 1 {
		return api.FileView{}, errors.New("control api: bad answer: an upload's last line without its file")
	}
	return l.Files[0], nil
}

// BlobAdd adds the bytes of r as a raw blob pinned on the node, sealed
// under a random key, or plain when public; size as for FilesUpload.
func (c *Client) BlobAdd(ctx context.Context, r io.Reader, size int64, public bool, progress func(api.ImportLine)) (api.BlobAdded, error) {
	resp, err := c.stream.BlobAddWithBody(ctx, &api.BlobAddParams{Public: public}, "application/octet-stream", r, contentLength(size))
	l, err := readImport(ctx, resp, err, progress)
	if err != nil {
		return api.BlobAdded{}, err
	}
	if l.Blob == nil {
		return api.BlobAdded{}, errors.New("control api: bad answer: an import's last line without its blob")
	}
	return *l.Blob, nil
}

// contentLength sets a request's length when known.
func contentLength(size int64) RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		if size >= 0 {
			req.ContentLength = size
			if size == 0 {
				req.Body = http.NoBody
			}
		}
		return nil
	}
}

// readImport reads the answer of an import: its progress lines, given to
// progress, then its last line, returned (or its error).
func readImport(ctx context.Context, resp *http.Response, err error, progress func(api.ImportLine)) (api.ImportLine, error) {
	var last api.ImportLine
	err = readStream(ctx, resp, err, "import", func(l api.ImportLine) (bool, error) {
		switch {
		case l.Error != nil:
			last = api.ImportLine{Files: l.Files} // added before the failure
			return true, &StatusError{*l.Error}
		case l.Files != nil || l.Blob != nil:
			last = l
			return true, nil
		}
		if progress != nil {
			progress(l)
		}
		return false, nil
	})
	return last, err
}

// readStream reads a streamed answer (NDJSON) to its last line: line is
// called with each, and says whether it is the last, or the error it
// carries.
func readStream[L any](ctx context.Context, resp *http.Response, err error, what string, line func(L) (bool, error)) error {
	if err != nil {
		if !errors.Is(err, ErrNotRunning) {
			err = fmt.Errorf("control api: %w", err)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return problem(resp.StatusCode, data)
	}
	var out error
	readLines(ctx, resp.Body, what, func(L) error { return nil }, func(l L, err error) bool {
		if err != nil {
			out = err
			return false
		}
		last, err := line(l)
		if last || err != nil {
			out = err
			return false
		}
		return true
	})
	if out == nil && ctx.Err() != nil {
		out = ctx.Err()
	}
	return out
}

// Files returns every file of the cell, newest first.
func (c *Client) Files(ctx context.Context) ([]api.FileView, error) {
	return Answer(c.calls.FilesListWithResponse(ctx))
}

// File returns the file of that name, entity ID or capability.
func (c *Client) File(ctx context.Context, nameOrCap string) (api.FileView, error) {
	return Answer(c.calls.FilesGetWithResponse(ctx, nameOrCap))
}

// FileRemove removes a file (by name or entity ID) from the cell and
// returns it as it was.
func (c *Client) FileRemove(ctx context.Context, name string) (api.FileView, error) {
	return Answer(c.calls.FilesRemoveWithResponse(ctx, name))
}

// FilePin pins a file (by name or entity ID) on the node.
func (c *Client) FilePin(ctx context.Context, name string) (api.FileView, error) {
	return Answer(c.calls.FilesPinWithResponse(ctx, name))
}

// FileUnpin unpins a file (by name or entity ID) on the node.
func (c *Client) FileUnpin(ctx context.Context, name string) (api.FileView, error) {
	return Answer(c.calls.FilesUnpinWithResponse(ctx, name))
}

// Content is a blob's content, or a range of it, being read.
type Content struct {
	io.ReadCloser
	// Size is the blob's whole size; Offset and Length the range the
	// body holds.
	Size, Offset, Length int64
	// Type is the media type the node answered.
	Type string
}

// BlobContent returns the content of the blob cap (its text, or its
// path form): length bytes from offset, or to its end when length is
// negative. The caller closes it.
func (c *Client) BlobContent(ctx context.Context, cap string, offset, length int64) (*Content, error) {
	p, err := CapPath(cap)
	if err != nil {
		return nil, err
	}
	params := &api.BlobContentParams{}
	switch {
	case length == 0:
		// Nothing to read: the head of the answer says the size.
		params.Range = "bytes=0-0"
	case offset > 0 && length < 0:
		params.Range = fmt.Sprintf("bytes=%d-", offset)
	case length > 0:
		params.Range = fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	}
	resp, err := c.stream.BlobContent(ctx, p, params)
	if err != nil {
		if !errors.Is(err, ErrNotRunning) {
			err = fmt.Errorf("control api: %w", err)
		}
		return nil, err
	}
	out := &Content{ReadCloser: resp.Body, Type: resp.Header.Get("Content-Type")}
	switch resp.StatusCode {
	case http.StatusOK:
		out.Size, out.Length = resp.ContentLength, resp.ContentLength
	case http.StatusPartialContent:
		var first, last int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &out.Size); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("control api: bad answer: Content-Range %q", resp.Header.Get("Content-Range"))
		}
		out.Offset, out.Length = first, last-first+1
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		size, _ := strconv.ParseInt(strings.TrimPrefix(resp.Header.Get("Content-Range"), "bytes */"), 10, 64)
		if length == 0 || offset == size {
			// Nothing at or past the end: an empty range.
			return &Content{ReadCloser: http.NoBody, Size: size, Offset: offset}, nil
		}
		return nil, fmt.Errorf("offset %d is past the blob's end (%d bytes): %w", offset, size, ErrRangeNotSatisfiable)
	default:
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return nil, problem(resp.StatusCode, data)
	}
	if length == 0 {
		resp.Body.Close()
		out.ReadCloser, out.Offset, out.Length = http.NoBody, offset, 0
	}
	return out, nil
}

// ErrRangeNotSatisfiable is the error of a range past a blob's end.
var ErrRangeNotSatisfiable = errors.New("client: range not satisfiable")

// BlobEntries returns the entries of a directory blob.
func (c *Client) BlobEntries(ctx context.Context, cap string) ([]api.BlobEntry, error) {
	p, err := CapPath(cap)
	if err != nil {
		return nil, err
	}
	return Answer(c.calls.BlobEntriesWithResponse(ctx, p))
}

// BlobExport returns a blob's blocks as a CARv1 file, root first; cap
// may be a bare CID. The caller closes it.
func (c *Client) BlobExport(ctx context.Context, cap string) (io.ReadCloser, error) {
	p, err := CapPath(cap)
	if err != nil {
		return nil, err
	}
	resp, err := c.stream.BlobExport(ctx, p)
	if err != nil {
		if !errors.Is(err, ErrNotRunning) {
			err = fmt.Errorf("control api: %w", err)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return nil, problem(resp.StatusCode, data)
	}
	return resp.Body, nil
}

// BlobFetch fetches the whole blob cap into the node's store, calling
// progress (if not nil) with each line of progress, and returns the last.
func (c *Client) BlobFetch(ctx context.Context, cap string, progress func(api.FetchLine)) (api.FetchLine, error) {
	p, err := CapPath(cap)
	if err != nil {
		return api.FetchLine{}, err
	}
	resp, err := c.stream.BlobFetch(ctx, p)
	return readFetch(ctx, resp, err, progress)
}

// readFetch reads the answer of a fetch: its progress lines, given to
// progress, then its last line, returned (or its error).
func readFetch(ctx context.Context, resp *http.Response, err error, progress func(api.FetchLine)) (api.FetchLine, error) {
	var last api.FetchLine
	err = readStream(ctx, resp, err, "fetch", func(l api.FetchLine) (bool, error) {
		switch {
		case l.Error != nil:
			return true, &StatusError{*l.Error}
		case l.Done:
			last = l
			return true, nil
		}
		if progress != nil {
			progress(l)
		}
		return false, nil
	})
	return last, err
}

// BlobGC collects the node's unpinned blob blocks.
func (c *Client) BlobGC(ctx context.Context) (api.BlobGCStats, error) {
	return Answer(c.calls.BlobGCWithResponse(ctx))
}

// BlobStatus returns the node's blob storage, pin policy and budgets.
func (c *Client) BlobStatus(ctx context.Context) (api.BlobStatus, error) {
	return Answer(c.calls.BlobStatusWithResponse(ctx))
}
