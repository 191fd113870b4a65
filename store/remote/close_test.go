package remote

import (
	"strings"
	"testing"
	"time"
)

// TestCloseDoesNotWaitForSilentPeers: Close ends the streams in progress
// at once: a peer that opened a stream and sends a length and nothing
// else (or half a request), or a watcher that does not read, does not
// hold the node's shutdown for ReadTimeout or WriteTimeout.
func TestCloseDoesNotWaitForSilentPeers(t *testing.T) {
	r := newRig(t, Config{}, nil) // ReadTimeout 10 s
	prefix := rawStream(t, r)
	if _, err := prefix.Write([]byte{100}); err != nil { // a length, and nothing
		t.Fatal(err)
	}
	half := rawStream(t, r)
	if _, err := half.Write(frameOf(`{"v":1,"op":"query"`)[:10]); err != nil {
		t.Fatal(err)
	}
	// A watcher that does not read a first page of 2 MiB: the server's
	// write waits on it.
	for i := range byte(32) {
		r.b.put(id(i+1), "exo.note", strings.Repeat("x", 60<<10))
	}
	slow := rawStream(t, r)
	if _, err := slow.Write(frameOf(`{"v":1,"op":"watch","query":{"limit":100}}`)); err != nil {
		t.Fatal(err)
	}
	waitBounds(t, r.srv, 2, 1)
	time.Sleep(100 * time.Millisecond) // the page's write blocks
	began := time.Now()
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("Close took %v with two silent streams and a stalled watch open", took)
	}
}
