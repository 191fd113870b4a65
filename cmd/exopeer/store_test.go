package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/store"
)

// TestStoreWatchVerb: store watch prints the first page, then one line a
// change as it is written, in text and in --json; stopping the node ends
// it, with exit status 1 and the reason.
func TestStoreWatchVerb(t *testing.T) {
	dir := loopbackDir(t)
	stop := runNode(t, dir)
	if code, _, stderr := run(t, "cell", "create", "--dir", dir, "home"); code != 0 {
		t.Fatalf("cell create: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := run(t, "note", "add", "--dir", dir, "--tag", "home", "first")
	if code != 0 {
		t.Fatalf("note add: exit %d, %s", code, stderr)
	}
	first := strings.TrimPrefix(strings.TrimSpace(stdout), "added note ")

	type watcher struct {
		out, err syncBuffer
		done     chan int
	}
	watch := func(args ...string) *watcher {
		w := &watcher{done: make(chan int, 1)}
		go func() {
			w.done <- Main(t.Context(), append([]string{"store", "watch", "--dir", dir, "--type", "exo.note", "--where", "tags=home"}, args...), &w.out, &w.err)
		}()
		return w
	}
	text, js := watch(), watch("--json", "--traits", "")
	waitFor(t, 10*time.Second, "the watches to print their first page", func() bool {
		return strings.Contains(text.out.String(), "watching: 1 entities") && strings.Count(js.out.String(), "\n") == 1
	})
	if !regexp.MustCompile(`^` + first + `  exo.note \{"body":"first","tags":\["home"\]\}\n`).MatchString(text.out.String()) {
		t.Errorf("text watch began with %q", text.out.String())
	}

	code, stdout, stderr = run(t, "note", "add", "--dir", dir, "--tag", "home", "second")
	if code != 0 {
		t.Fatalf("note add: exit %d, %s", code, stderr)
	}
	second := strings.TrimPrefix(strings.TrimSpace(stdout), "added note ")
	// Not the watch's: another tag.
	if code, _, stderr := run(t, "note", "add", "--dir", dir, "--tag", "work", "third"); code != 0 {
		t.Fatalf("note add: exit %d, %s", code, stderr)
	}
	if code, _, stderr := run(t, "store", "rm", "--dir", dir, first); code != 0 {
		t.Fatalf("store rm: exit %d, %s", code, stderr)
	}
	waitFor(t, 10*time.Second, "the watches to print the changes", func() bool {
		return strings.Contains(text.out.String(), "removed  "+first) && strings.Count(js.out.String(), "\n") == 3
	})
	lines := strings.Split(strings.TrimSuffix(text.out.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[2], "added    "+second+"  exo.note ") || lines[3] != "removed  "+first {
		t.Errorf("text watch printed:\n%s", text.out.String())
	}
	var ls []api.StoreWatchLine
	dec := json.NewDecoder(strings.NewReader(js.out.String()))
	for dec.More() {
		var l api.StoreWatchLine
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	if len(ls) != 3 || ls[0].Page == nil || len(ls[0].Page.Hits) != 1 || ls[0].Page.Hits[0].Entity.ID != first ||
		len(ls[0].Page.Hits[0].Entity.Traits) != 0 ||
		len(ls[1].Changes) != 1 || ls[1].Changes[0].Kind != string(store.Added) || ls[1].Changes[0].Hit.Entity.ID != second ||
		len(ls[2].Changes) != 1 || ls[2].Changes[0].Kind != string(store.Removed) {
		t.Errorf("--json watch printed:\n%s", js.out.String())
	}

	// Stopping the node ends both, saying why.
	if code, out := stop(); code != 0 {
		t.Errorf("run ended with %d: %s", code, out)
	}
	for name, w := range map[string]*watcher{"text": text, "json": js} {
		select {
		case code := <-w.done:
			if code != 1 || !strings.Contains(w.err.String(), "stopping") {
				t.Errorf("%s watch ended with exit %d, %q", name, code, w.err.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s watch did not end with the node", name)
		}
	}
}

// TestStoreVerbsNeedANode: each store and note verb says that no node
// runs, and how to start one, before it reads stdin.
func TestStoreVerbsNeedANode(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { stdin = os.Stdin })
	for _, args := range [][]string{
		{"store", "put", "exo.note", "-"}, {"store", "get", strings.Repeat("0", 32)}, {"store", "rm", strings.Repeat("0", 32)},
		{"store", "query"}, {"store", "watch"}, {"store", "types"}, {"store", "reindex"}, {"store", "status"},
		{"note", "add", "x"}, {"note", "ls"}, {"note", "search", "x"},
	} {
		stdin = strings.NewReader("{}")
		code, _, stderr := run(t, append(args, "--dir", dir)...)
		if code != 1 || !strings.Contains(stderr, "no exopeer node is running") || !strings.Contains(stderr, "exopeer run --dir") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
		if b, _ := stdin.(*strings.Reader); b.Len() != 2 {
			t.Errorf("%v read stdin with no node running", args)
		}
	}
}
