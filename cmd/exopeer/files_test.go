package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
)

func TestSafeName(t *testing.T) {
	for name, want := range map[string]bool{
		"a.txt": true, "..a": true, "with space": true, "ünï": true,
		"": false, ".": false, "..": false, "a/b": false, "../x": false, `a\b`: false, "a\x00": false, "/": false,
	} {
		if got := safeName(name); got != want {
			t.Errorf("safeName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestFetchedFrom(t *testing.T) {
	l := api.FetchLine{Bytes: 3 << 20, Blocks: 3, Peers: map[string]api.PeerProgress{
		"12D3KooWaaaaaaaaaaaa11111111": {Blocks: 1, Bytes: 1 << 20},
		"12D3KooWbbbbbbbbbbbb22222222": {Blocks: 2, Bytes: 2 << 20},
	}}
	if got, want := fetchedFrom(l), "fetched 3.0 MiB in 3 blocks: …22222222 2.0 MiB, …11111111 1.0 MiB"; got != want {
		t.Errorf("fetchedFrom = %q, want %q", got, want)
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.00 GiB",
	} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestProgressOnlyOnATerminal: a bar is drawn on a terminal, nowhere
// else; a nil bar does nothing.
func TestProgressOnlyOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	if p := newProgress(&buf, "adding", 100); p != nil {
		t.Fatal("a bar on a buffer, which is no terminal")
	}
	var none *progress
	none.set(1, 2)
	none.describe("x")
	none.done(true)
	if r := strings.NewReader("abc"); none.reader(r) != io.Reader(r) {
		t.Error("a nil bar wraps its reader")
	}

	old := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { isTerminal = old })
	p := newProgress(&buf, "adding", 1000)
	data, err := io.ReadAll(p.reader(strings.NewReader(strings.Repeat("x", 500))))
	if err != nil || len(data) != 500 {
		t.Fatal(len(data), err)
	}
	p.set(1000, 0)
	p.done(true)
	if out := buf.String(); !strings.Contains(out, "adding") || !strings.Contains(out, "100%") {
		t.Errorf("the bar drew %q", out)
	}
}
