package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// chainNode runs a loopback node with its control API, in a cell of its
// own, and returns a client of it.
func chainNode(t *testing.T) (string, *client.Client) {
	t.Helper()
	dir, _, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CellCreate(t.Context(), api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}
	return dir, c
}

// wantStatus fails unless err is an answer of the API with that status.
func wantStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != status {
		t.Errorf("%s: error %v, want status %d", what, err, status)
	}
}

// isProblem says whether err is a problem of the API of type typ (an
// answer's, or the one a stream's last line carries).
func isProblem(err error, typ api.ProblemType) bool {
	var se *client.StatusError
	return errors.As(err, &se) && se.Type == typ
}

func TestChainOverTheAPI(t *testing.T) {
	_, c := chainNode(t)
	ctx := t.Context()

	first, err := c.ChainAppend(ctx, api.ChainText("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 || first.Clock != 1 || first.Index != 0 || len(first.Parents) != 0 ||
		first.Text == nil || *first.Text != "hello" || first.Data != nil {
		t.Errorf("first entry = %+v", first)
	}
	if p, err := chain.ParsePos(first.Pos); err != nil || p.CID.String() != first.CID {
		t.Errorf("position %q of %s: %v", first.Pos, first.CID, err)
	}
	bin, err := c.ChainAppend(ctx, api.ChainData([]byte{0xff, 0x00, 0xfe}))
	if err != nil {
		t.Fatal(err)
	}
	if bin.Text != nil || !bytes.Equal(bin.Data, []byte{0xff, 0x00, 0xfe}) || bin.Seq != 2 ||
		len(bin.Parents) != 1 || bin.Parents[0] != first.CID {
		t.Errorf("binary entry = %+v", bin)
	}
	var batch []api.ChainPayload
	for i := range 5 {
		batch = append(batch, api.ChainText(fmt.Sprint("batch ", i)))
	}
	batch = append(batch, api.ChainText(""))
	many, err := c.ChainAppendMany(ctx, batch)
	if err != nil || len(many) != 6 {
		t.Fatalf("ChainAppendMany = %d entries, %v", len(many), err)
	}
	if many[5].Seq != 8 || many[5].Text == nil || *many[5].Text != "" {
		t.Errorf("last of the batch = %+v", many[5])
	}

	all, err := c.ChainLog(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Entries) != 8 || all.Next != many[5].Pos {
		t.Fatalf("log: %d entries, next %q; want 8, %q", len(all.Entries), all.Next, many[5].Pos)
	}
	want := append([]api.ChainEntry{first, bin}, many...)
	if diff := cmp.Diff(want, all.Entries); diff != "" {
		t.Errorf("log differs from what was appended (-want +got):\n%s", diff)
	}

	// Paging by cursor reads the same log.
	var paged []api.ChainEntry
	cursor := "0"
	for range 10 {
		page, err := c.ChainLog(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page.Entries...)
		if len(page.Entries) == 0 {
			if page.Next != cursor {
				t.Errorf("empty page moved the cursor from %q to %q", cursor, page.Next)
			}
			break
		}
		cursor = page.Next
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("paged log differs (-want +got):\n%s", diff)
	}

	st, err := c.ChainStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != 8 || len(st.Heads) != 1 || st.Heads[0].String() != many[5].CID ||
		len(st.Authors) != 1 || st.Authors[0].LastSeq != 8 || st.Authors[0].Name != "laptop" ||
		len(st.Members) != 1 || !st.Members[0].Self || st.Members[0].Length != 8 {
		t.Errorf("status = %+v", st)
	}
}

func TestChainFollow(t *testing.T) {
	_, c := chainNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	first, err := c.ChainAppend(ctx, api.ChainText("one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChainAppend(ctx, api.ChainText("two")); err != nil {
		t.Fatal(err)
	}

	// Follow from after the first entry: "two" from the log, then what
	// is appended once the follow runs, each once.
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	got := make(chan string, 100)
	ended := make(chan error, 1)
	go func() {
		var err error
		for e, ferr := range c.ChainFollow(fctx, first.Pos) {
			if ferr != nil {
				err = ferr
				break
			}
			got <- *e.Text
		}
		ended <- err
	}()
	next := func() string {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-ctx.Done():
			t.Fatal("follow: no entry within 30 s")
			return ""
		}
	}
	if s := next(); s != "two" {
		t.Fatalf("follow began with %q, want two", s)
	}
	for _, s := range []string{"three", "four"} {
		if _, err := c.ChainAppend(ctx, api.ChainText(s)); err != nil {
			t.Fatal(err)
		}
		if g := next(); g != s {
			t.Fatalf("follow gave %q, want %q", g, s)
		}
	}
	if _, err := c.ChainAppendMany(ctx, []api.ChainPayload{api.ChainText("five"), api.ChainText("six")}); err != nil {
		t.Fatal(err)
	}
	if a, b := next(), next(); a != "five" || b != "six" {
		t.Fatalf("follow gave %q, %q after a batch", a, b)
	}
	stop()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("follow ended with %v after its context, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("follow did not end with its context")
	}
	if len(got) != 0 {
		t.Errorf("follow gave %q more", <-got)
	}
}

// TestChainFollowWhileAppending starts follows while entries are being
// appended: each must give every entry exactly once, whether it came
// from the log or from the arrivals.
func TestChainFollowWhileAppending(t *testing.T) {
	_, c := chainNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const total = 100
	appended := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := c.ChainAppend(ctx, api.ChainText(fmt.Sprint(i))); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	follow := func(delay time.Duration) error {
		time.Sleep(delay)
		seen := make(map[uint64]bool)
		for e, err := range c.ChainFollow(ctx, "") {
			if err != nil {
				return err
			}
			if seen[e.Seq] {
				return fmt.Errorf("seq %d given twice", e.Seq)
			}
			seen[e.Seq] = true
			if len(seen) == total {
				return nil
			}
		}
		return fmt.Errorf("follow ended after %d entries", len(seen))
	}
	errs := make(chan error, 4)
	for i := range 4 {
		go func() { errs <- follow(time.Duration(i) * 20 * time.Millisecond) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
}

func TestChainAPIErrors(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, dir)
	ctx := t.Context()

	// In no cell: 409, saying how to get one.
	_, err = c.ChainAppend(ctx, api.ChainText("x"))
	wantStatus(t, "append in no cell", err, http.StatusConflict)
	if err == nil || !strings.Contains(err.Error(), "exopeer cell create") || !errors.Is(err, client.ErrNotInCell) {
		t.Errorf("append in no cell: %v, want the way out named", err)
	}
	_, err = c.ChainLog(ctx, "", 0)
	wantStatus(t, "log in no cell", err, http.StatusConflict)
	_, err = c.ChainStatus(ctx)
	wantStatus(t, "status in no cell", err, http.StatusConflict)
	for _, err := range c.ChainFollow(ctx, "") {
		wantStatus(t, "follow in no cell", err, http.StatusConflict)
		if !errors.Is(err, client.ErrNotInCell) {
			t.Errorf("follow in no cell: %v, want ErrNotInCell", err)
		}
	}

	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home"}); err != nil {
		t.Fatal(err)
	}
	e, err := c.ChainAppend(ctx, api.ChainText("x"))
	if err != nil {
		t.Fatal(err)
	}
	text := "x"
	tests := []struct {
		name   string
		call   func() error
		status int
		kind   api.ProblemType
	}{
		{"bad cursor", func() error { _, err := c.ChainLog(ctx, "nope", 0); return err }, 400, api.ProblemBadCursor},
		{"cursor without clock", func() error { _, err := c.ChainLog(ctx, "0."+e.CID, 0); return err }, 400, api.ProblemBadCursor},
		{"limit 0", func() error { _, err := c.ChainLog(ctx, "", -1); return err }, 400, api.ProblemBadRequest},
		{"limit too large", func() error { _, err := c.ChainLog(ctx, "", 10001); return err }, 400, api.ProblemBadRequest},
		{"no entries", func() error { _, err := c.ChainAppendMany(ctx, nil); return err }, 400, api.ProblemBadRequest},
		{"text and data", func() error {
			_, err := c.ChainAppend(ctx, api.ChainPayload{Text: &text, Data: []byte("x")})
			return err
		}, 400, api.ProblemBadRequest},
		{"payload too large", func() error {
			_, err := c.ChainAppend(ctx, api.ChainData(make([]byte, chain.MaxPayload+1)))
			return err
		}, 413, api.ProblemPayloadTooLarge},
		{"one of many too large", func() error {
			_, err := c.ChainAppendMany(ctx, []api.ChainPayload{api.ChainText("ok"), api.ChainData(make([]byte, chain.MaxPayload+1))})
			return err
		}, 413, api.ProblemPayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantStatus(t, tt.name, err, tt.status)
			var se *client.StatusError
			if errors.As(err, &se) && se.Type != tt.kind {
				t.Errorf("%s: problem type %s, want %s", tt.name, se.Type, tt.kind)
			}
		})
	}
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		kind                     api.ProblemType
	}{
		{"limit 0 by hand", "GET", "/v1/chain/log?limit=0", "", 400, api.ProblemBadRequest},
		{"limit not a number", "GET", "/v1/chain/log?limit=x", "", 400, api.ProblemBadRequest},
		{"follow not a boolean", "GET", "/v1/chain/log?follow=x", "", 400, api.ProblemBadRequest},
		{"limit with follow", "GET", "/v1/chain/log?limit=5&follow=1", "", 400, api.ProblemBadRequest},
		{"empty body", "POST", "/v1/chain/append", "{}", 400, api.ProblemBadRequest},
		{"unknown field", "POST", "/v1/chain/append", `{"txt": "x"}`, 400, api.ProblemBadRequest},
		{"body over the cap", "POST", "/v1/chain/append", `{"data": "` + strings.Repeat("A", 17<<20) + `"}`, 413, api.ProblemPayloadTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, ctype, answer := r.do(t, tt.method, tt.path, tt.body, "", "")
			wantProblem(t, tt.name, status, ctype, answer, tt.status, tt.kind)
		})
	}

	// None of them appended anything; the largest payload allowed is fine.
	big, err := c.ChainAppend(ctx, api.ChainData(make([]byte, chain.MaxPayload)))
	if err != nil || big.Seq != 2 {
		t.Errorf("append of the largest payload: seq %d, %v; want 2", big.Seq, err)
	}
}

// TestChainFollowEndsWithTheAPI checks that a follow in progress, or a
// connection with no request, does not hold up the API's Close, and that
// the follow's client is told why it ended.
func TestChainFollowEndsWithTheAPI(t *testing.T) {
	dir, _, srv := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CellCreate(t.Context(), api.CellCreateRequest{Name: "home"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChainAppend(t.Context(), api.ChainText("one")); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		var err error
		for _, ferr := range c.ChainFollow(t.Context(), "") {
			if ferr != nil {
				err = ferr
				break
			}
			close(started)
		}
		ended <- err
	}()
	<-started
	// A connection that never sends a request does not hold up Close
	// either.
	idle, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("api Close with a follow open: %v", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("api Close took %v with a follow open", took)
	}
	if err := <-ended; !isProblem(err, api.ProblemUnavailable) || !strings.Contains(err.Error(), "stopping") {
		t.Errorf("follow ended with %v, want the API stopping as a problem of type %s", err, api.ProblemUnavailable)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.APIFile)); !os.IsNotExist(err) {
		t.Errorf("api file left behind: %v", err)
	}
}
