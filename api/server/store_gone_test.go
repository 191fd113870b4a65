package server_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// watchHandlers counts the store watch handlers running.
func watchHandlers() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "(*routes).StoreWatch(")
}

// TestStoreWatchEndsWhenTheClientGoes: a client that goes away ends its
// watch at once, without waiting for a change to write, whatever it sent
// after the query. A body with 300 KiB of spaces after the query was the
// way around it: the handler had its query before the body's end,
// net/http does not read that much after a handler, and a server that
// does not read a body to its end never hears the client go. Such a body
// is over the API's limit: refused.
func TestStoreWatchEndsWhenTheClientGoes(t *testing.T) {
	dir, _ := storeNode(t)
	raw := newRaw(t, dir)
	addr := strings.TrimPrefix(raw.base, "http://")
	tests := []struct {
		name   string
		body   string
		status string
	}{
		{"query", `{"type":"exo.note"}`, "200"},
		{"query and a newline", "{}\n", "200"},
		{"query and 300 KiB of spaces", "{}" + strings.Repeat(" ", 300<<10), "413"},
		{"two queries", "{}{}", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := watchHandlers(); n != 0 {
				t.Fatalf("%d watch handlers run before the test", n)
			}
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /v1/store/watch HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				addr, raw.token, len(tt.body), tt.body)
			br := bufio.NewReader(conn)
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			status, err := br.ReadString('\n')
			if err != nil || !strings.Contains(status, " "+tt.status+" ") {
				t.Fatalf("status line %q, %v; want %s", status, err, tt.status)
			}
			if tt.status == "200" {
				for { // the headers, then the page's line
					l, err := br.ReadString('\n')
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(l, `"page"`) {
						break
					}
				}
			}
			conn.Close()
			for i := 0; watchHandlers() != 0; i++ {
				if i == 200 {
					t.Fatal("the watch goes on 10 s after its client went")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
