package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/exopeer/exopeer/api"
	blobs "github.com/exopeer/exopeer/blob/service"
)

// stillStream is a progressStream whose lines go only when the test
// flushes them (no ticker).
func stillStream(w http.ResponseWriter) *progressStream {
	s := &progressStream{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	close(s.done)
	return s
}

func lines(t *testing.T, rec *httptest.ResponseRecorder) []api.ImportLine {
	t.Helper()
	var out []api.ImportLine
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		var l api.ImportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// TestProgressStream: an operation that fails before any progress is
// answered with its problem's status; one that fails after is a 200
// stream whose last line is the problem; progress lines carry the latest
// value only.
func TestProgressStream(t *testing.T) {
	t.Run("fails at once", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s := stillStream(rec)
		s.finish(api.ImportLine{}, fmt.Errorf("add: %w", blobs.ErrNotMember), blobKind, importError)
		var p api.Problem
		if rec.Code != http.StatusConflict || rec.Header().Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Type != api.ProblemNotInCell {
			t.Errorf("%d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	})
	t.Run("fails midway", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s := stillStream(rec)
		s.update(api.ImportLine{Done: 1, Total: 10})
		s.update(api.ImportLine{Done: 4, Total: 10})
		s.flush()
		s.flush() // nothing new: no line
		s.finish(api.ImportLine{}, fmt.Errorf("write: %w", syscall.ENOSPC), blobKind, importError)
		ls := lines(t, rec)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-ndjson" || len(ls) != 2 ||
			ls[0].Done != 4 || ls[1].Error == nil || ls[1].Error.Type != api.ProblemDiskFull || ls[1].Error.Status != http.StatusInsufficientStorage {
			t.Errorf("%d %s %+v", rec.Code, rec.Header().Get("Content-Type"), ls)
		}
	})
	t.Run("fails with a partial result", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s := stillStream(rec)
		s.lineErr = true
		files := []api.FileView{{Name: "first.txt"}}
		s.finish(api.ImportLine{}, fmt.Errorf("add: %w", syscall.ENOSPC), blobKind, func(p *api.Problem) any {
			return api.ImportLine{Error: p, Files: files}
		})
		ls := lines(t, rec)
		if rec.Code != http.StatusOK || len(ls) != 1 || ls[0].Error == nil || len(ls[0].Files) != 1 {
			t.Errorf("%d %+v", rec.Code, ls)
		}
	})
	t.Run("succeeds", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s := stillStream(rec)
		s.finish(api.ImportLine{Done: 3, Total: 3, Blob: &api.BlobAdded{Cap: "c", Size: 3}}, nil, blobKind, importError)
		ls := lines(t, rec)
		if rec.Code != http.StatusOK || len(ls) != 1 || ls[0].Blob == nil || ls[0].Error != nil {
			t.Errorf("%d %+v", rec.Code, ls)
		}
	})
	t.Run("with its ticker", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s := newProgressStream(rec)
		s.update(api.ImportLine{Done: 1})
		s.finish(api.ImportLine{}, errors.New("boom"), blobKind, importError)
		// A line of progress may or may not have gone before the end:
		// either way the answer says the import failed, once.
		if rec.Code == http.StatusInternalServerError {
			return
		}
		ls := lines(t, rec)
		switch {
		case rec.Code == http.StatusOK && len(ls) == 2 && ls[1].Error != nil && ls[1].Error.Type == api.ProblemInternal:
		default:
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
}
