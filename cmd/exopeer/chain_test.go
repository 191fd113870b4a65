package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
)

// runNode runs `exopeer run` in-process on dir (with the flags extra)
// until the returned stop is called (or the test ends); stop returns its
// exit code and output.
func runNode(t *testing.T, dir string, extra ...string) (stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- Main(ctx, append([]string{"run", "--dir", dir}, extra...), &out, &errb) }()
	waitFor(t, 20*time.Second, "the node to start", func() bool { return strings.Contains(out.String(), "press Ctrl-C") })
	code, stopped := 0, false
	stop = func() (int, string) {
		if !stopped {
			stopped = true
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("run did not stop")
			}
		}
		return code, out.String() + errb.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChainUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no verb", []string{"chain"}, "want a chain verb"},
		{"unknown verb", []string{"chain", "fly"}, `unknown chain verb "fly"`},
		{"append nothing", []string{"chain", "append"}, "wants TEXT or --file"},
		{"append both", []string{"chain", "append", "--file", "f", "text"}, "not both"},
		{"log argument", []string{"chain", "log", "x"}, `unexpected argument "x"`},
		{"follow with limit", []string{"chain", "log", "--follow", "--limit", "3"}, "do not go together"},
		{"negative limit", []string{"chain", "log", "--limit", "-1"}, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

var logLine = regexp.MustCompile(`^(\d+\.\S+)  …\S{8}  +(\d+)  (.*)$`)

// TestChainVerbs appends, reads and follows a node's chain through the
// CLI, and stops the node while a follow is open.
func TestChainVerbs(t *testing.T) {
	dir := loopbackDir(t)
	stop := runNode(t, dir)

	code, _, stderr := run(t, "chain", "status", "--dir", dir)
	if code != 1 || !strings.Contains(stderr, "in no cell") {
		t.Errorf("status in no cell: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run(t, "cell", "create", "--dir", dir, "--member", "laptop", "home"); code != 0 {
		t.Fatalf("cell create: exit %d, %s", code, stderr)
	}

	code, stdout, stderr := run(t, "chain", "append", "--dir", dir, "hello", "world")
	if code != 0 || !regexp.MustCompile(`^appended \S+ \(seq 1\) at 1\.\S+\n$`).MatchString(stdout) {
		t.Errorf("append: exit %d, %q %q", code, stdout, stderr)
	}
	file := filepath.Join(t.TempDir(), "bin")
	os.WriteFile(file, []byte{0xff, 0, 0xfe}, 0o600)
	if code, stdout, stderr = run(t, "chain", "append", "--dir", dir, "--file", file); code != 0 || !strings.Contains(stdout, "(seq 2)") {
		t.Errorf("append --file: exit %d, %q %q", code, stdout, stderr)
	}
	stdin = strings.NewReader("from\nstdin")
	t.Cleanup(func() { stdin = os.Stdin })
	code, stdout, _ = run(t, "chain", "append", "--dir", dir, "--file", "-", "--json")
	var e api.ChainEntry
	if err := json.Unmarshal([]byte(stdout), &e); code != 0 || err != nil || e.Seq != 3 || e.Text == nil || *e.Text != "from\nstdin" {
		t.Errorf("append --file - --json: exit %d, %q (%v)", code, stdout, err)
	}

	code, stdout, stderr = run(t, "chain", "log", "--dir", dir)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := []string{"hello world", "<3 bytes>", `"from\nstdin"`}
	if code != 0 || len(lines) != len(want) {
		t.Fatalf("log: exit %d, %q %q", code, stdout, stderr)
	}
	var pos []string
	for i, l := range lines {
		m := logLine.FindStringSubmatch(l)
		if m == nil || m[2] != string(rune('1'+i)) || m[3] != want[i] {
			t.Errorf("log line %d = %q, want seq %d and %q", i, l, i+1, want[i])
			continue
		}
		pos = append(pos, m[1])
	}
	if len(pos) != 3 {
		t.FailNow()
	}

	code, stdout, stderr = run(t, "chain", "log", "--dir", dir, "--limit", "2")
	if code != 0 || strings.Count(stdout, "\n") != 2 || !strings.Contains(stderr, "exopeer chain log --after "+pos[1]) {
		t.Errorf("log --limit 2: exit %d, %q %q", code, stdout, stderr)
	}
	code, stdout, _ = run(t, "chain", "log", "--dir", dir, "--after", pos[1])
	if code != 0 || strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, "stdin") {
		t.Errorf("log --after: exit %d, %q", code, stdout)
	}
	code, stdout, _ = run(t, "chain", "log", "--dir", dir, "--json")
	dec := json.NewDecoder(strings.NewReader(stdout))
	for i := range 3 {
		var e api.ChainEntry
		if err := dec.Decode(&e); err != nil || e.Pos != pos[i] {
			t.Errorf("log --json entry %d: %+v, %v", i, e, err)
		}
	}
	if code, _, stderr = run(t, "chain", "log", "--dir", dir, "--after", "nope"); code != 1 || !strings.Contains(stderr, "nope") {
		t.Errorf("log --after nope: exit %d, %q", code, stderr)
	}

	code, stdout, _ = run(t, "chain", "status", "--dir", dir)
	for _, w := range []string{"3 entries", "head ", "laptop", "this node", "LAST SEQ", "sync: "} {
		if code != 0 || !strings.Contains(stdout, w) {
			t.Errorf("status: exit %d, want %q in\n%s", code, w, stdout)
		}
	}
	code, stdout, _ = run(t, "chain", "status", "--dir", dir, "--json")
	var st replica.Status
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || st.Length != 3 || st.Authors[0].LastSeq != 3 {
		t.Errorf("status --json: exit %d, %+v, %v", code, st, err)
	}

	// Follow from the second entry: two lines, then what is appended.
	var fout, ferr syncBuffer
	fdone := make(chan int, 1)
	go func() {
		fdone <- Main(t.Context(), []string{"chain", "log", "--dir", dir, "--follow", "--after", pos[0]}, &fout, &ferr)
	}()
	waitFor(t, 10*time.Second, "follow to print the log", func() bool { return strings.Count(fout.String(), "\n") == 2 })
	if code, _, stderr := run(t, "chain", "append", "--dir", dir, "late"); code != 0 {
		t.Fatalf("append while following: %s", stderr)
	}
	waitFor(t, 10*time.Second, "follow to print the new entry", func() bool { return strings.Contains(fout.String(), "  late\n") })

	// Stopping the node ends the follow, and the follow does not hold up
	// the stop.
	began := time.Now()
	code, out := stop()
	if code != 0 || !strings.Contains(out, "stopped") || time.Since(began) > stopTimeout {
		t.Errorf("run with a follow open ended with %d after %v: %s", code, time.Since(began), out)
	}
	select {
	case code := <-fdone:
		if code != 1 || !strings.Contains(ferr.String(), "stopping") {
			t.Errorf("follow ended with exit %d, %q", code, ferr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end with the node")
	}
	if strings.Count(fout.String(), "\n") != 3 {
		t.Errorf("follow printed:\n%s", fout.String())
	}
}

// zeros is an endless stream of zero bytes, as /dev/zero.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestChainAppendFileTooLarge: a file or a stdin over the largest payload
// (chain.MaxPayload) is refused, saying so, after reading no more than
// that: `chain append --file /dev/zero` must not eat the memory.
func TestChainAppendFileTooLarge(t *testing.T) {
	t.Setenv("EXOPEER_DIR", filepath.Join(t.TempDir(), "default"))
	dir := loopbackDir(t)
	runNode(t, dir)
	if code, _, stderr := run(t, "cell", "create", "home", "--dir", dir); code != 0 {
		t.Fatalf("cell create: exit %d, %s", code, stderr)
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, chain.MaxPayload+1), 0o600); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("over %d bytes", chain.MaxPayload)
	if code, _, stderr := run(t, "chain", "append", "--dir", dir, "--file", big); code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("a file over the limit: exit %d, %q; want 1 and %q", code, stderr, want)
	}
	stdin = io.LimitReader(zeros{}, 64<<20)
	t.Cleanup(func() { stdin = os.Stdin })
	if code, _, stderr := run(t, "chain", "append", "--dir", dir, "--file", "-"); code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("a stdin over the limit: exit %d, %q; want 1 and %q", code, stderr, want)
	}
	if n, _ := io.Copy(io.Discard, stdin); n < 60<<20 {
		t.Errorf("%d bytes of stdin read; want no more than the limit and a little", 64<<20-n)
	}
}
