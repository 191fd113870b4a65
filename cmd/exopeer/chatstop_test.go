package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/dirlock"
)

// TestChatFollowNodeGone: a chat whose follow stream is asked once its
// node has stopped (the data dir still locked and its API file there,
// the port closed: the client says no node is running) ends saying the
// node stopped, as when the stream is cut while the node stops.
func TestChatFollowNodeGone(t *testing.T) {
	dir := t.TempDir()
	lock, err := dirlock.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dirlock.Unlock(lock) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the node stopped: its port refuses connections
	if err := os.WriteFile(filepath.Join(dir, "api"), []byte(addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte("00ff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	p := &chatPrinter{w: io.Discard, names: map[string]string{}, seen: map[string]bool{}}
	err = p.follow(context.Background(), c, "Alice")
	if err == nil || !strings.Contains(err.Error(), "the node stopped") {
		t.Fatalf("follow with the node gone: %v, want the node stopped", err)
	}
}
