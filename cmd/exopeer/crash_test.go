package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/client"
)

// TestChainSurvivesKill runs the real binary, appends to its chain from a
// few clients at once, and SIGKILLs it at a random moment, three times.
// After each restart the store must open, every append that was answered
// must be in the log, the log must be in order with no duplicates and no
// gaps in the sequence numbers, and appends must go on from there.
//
// The moment of each kill comes from a seed, logged; set
// EXOPEER_CRASH_SEED to run a seed again.
func TestChainSurvivesKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL and SIGTERM are Unix")
	}
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EXOPEER_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("EXOPEER_CRASH_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (EXOPEER_CRASH_SEED=%d to run it again)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	began := time.Now()
	bin := buildExopeer(t)
	dir := loopbackDir(t)
	if out, err := exec.Command(bin, "init", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("exopeer init: %v\n%s", err, out)
	}
	t.Logf("built and initialised in %v", time.Since(began).Round(time.Millisecond))

	var acked []string // CIDs of the appends that were answered
	for round := range 4 {
		p := startExopeer(t, bin, dir, round)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		if round == 0 {
			if _, err := p.c.CellCreate(ctx, api.CellCreateRequest{Name: "crash"}); err != nil {
				t.Fatal(err)
			}
		}
		length := checkLog(t, ctx, p, acked)
		if round == 3 {
			e, err := p.c.ChainAppend(ctx, api.ChainText("after the last restart"))
			if err != nil || e.Seq != uint64(length)+1 {
				t.Errorf("append after the last restart: seq %d, %v; want %d", e.Seq, err, length+1)
			}
			cancel()
			p.stop(t)
			t.Logf("round 3: started in %v, log of %d checked, appended, stopped", p.startup.Round(time.Millisecond), length)
			break
		}
		delay := time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
		got := appendUntilKilled(t, ctx, p, length, delay)
		cancel()
		t.Logf("round %d: started in %v, log of %d checked, %d appends answered, killed %v after the 5th",
			round, p.startup.Round(time.Millisecond), length, len(got), delay.Round(time.Millisecond))
		acked = append(acked, got...)
	}
	t.Logf("%d answered appends survived 3 kills; %v in all", len(acked), time.Since(began).Round(time.Millisecond))
}

// buildExopeer builds the binary under test.
func buildExopeer(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go") // go test puts its GOROOT/bin first in PATH
	if err != nil {
		t.Skipf("no go tool to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "exopeer")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// exopeerProc is a running `exopeer run` and a client of it.
type exopeerProc struct {
	cmd     *exec.Cmd
	exited  chan error // Wait's result, once
	c       *client.Client
	stderr  string // the file its log goes to
	startup time.Duration
}

// startExopeer starts `exopeer run` on dir and waits until it serves. The
// process is killed when the test ends, if it still runs.
func startExopeer(t *testing.T, bin, dir string, round int) *exopeerProc {
	t.Helper()
	began := time.Now()
	logs := t.TempDir()
	stdout := filepath.Join(logs, fmt.Sprintf("run%d.out", round))
	p := &exopeerProc{exited: make(chan error, 1), stderr: filepath.Join(logs, fmt.Sprintf("run%d.err", round))}
	out, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	p.cmd = exec.Command(bin, "run", "--dir", dir)
	p.cmd.Stdout, p.cmd.Stderr = out, errf // files: no copying goroutines
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.exited != nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if b, _ := os.ReadFile(stdout); strings.Contains(string(b), "press Ctrl-C") {
			break
		}
		select {
		case err := <-p.exited:
			p.exited = nil
			t.Fatalf("run %d exited before serving: %v\n%s", round, err, p.log())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d did not serve within 15 s\n%s", round, p.log())
		}
	}
	p.startup = time.Since(began)
	if p.c, err = client.Dial(dir); err != nil {
		t.Fatal(err)
	}
	return p
}

// log returns the end of the process's log.
func (p *exopeerProc) log() string {
	b, _ := os.ReadFile(p.stderr)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// kill sends SIGKILL and waits for the process to go.
func (p *exopeerProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	p.exited = nil
}

// stop sends SIGTERM, as Ctrl-C does, and checks that the node stops
// cleanly.
func (p *exopeerProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited = nil
		if err != nil {
			t.Errorf("run ended with %v after SIGTERM\n%s", err, p.log())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("run did not stop within 10 s of SIGTERM\n%s", p.log())
	}
}

// checkLog reads the whole log and checks it: in strictly increasing
// order, every entry once, this node's sequence numbers 1 to N with no
// gap, every answered append present, and the status agreeing. It returns
// the log's length.
func checkLog(t *testing.T, ctx context.Context, p *exopeerProc, acked []string) int {
	t.Helper()
	seen := make(map[string]bool)
	seqs := make(map[uint64]bool)
	var prev chain.Pos
	cursor := ""
	for {
		page, err := p.c.ChainLog(ctx, cursor, 10000)
		if err != nil {
			t.Fatalf("log after restart: %v\n%s", err, p.log())
		}
		if len(page.Entries) == 0 {
			break
		}
		for _, e := range page.Entries {
			pos, err := chain.ParsePos(e.Pos)
			if err != nil {
				t.Fatalf("entry %s: %v", e.CID, err)
			}
			if len(seen) > 0 && pos.Compare(prev) <= 0 {
				t.Errorf("entry %s at %s comes after %s", e.CID, e.Pos, prev)
			}
			if seen[e.CID] {
				t.Errorf("entry %s twice in the log", e.CID)
			}
			if seqs[e.Seq] {
				t.Errorf("seq %d twice in the log (a fork)", e.Seq)
			}
			prev, seen[e.CID], seqs[e.Seq] = pos, true, true
		}
		cursor = page.Next
	}
	for seq := uint64(1); seq <= uint64(len(seqs)); seq++ {
		if !seqs[seq] {
			t.Errorf("seq %d missing from a log of %d entries", seq, len(seqs))
		}
	}
	lost := 0
	for _, c := range acked {
		if !seen[c] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d answered appends are not in the log", lost, len(acked))
	}
	st, err := p.c.ChainStatus(ctx)
	if err != nil || st.Length != len(seen) || (len(seen) > 0 && st.Authors[0].LastSeq != uint64(len(seen))) {
		t.Errorf("status %+v, %v; want length %d", st, err, len(seen))
	}
	if t.Failed() {
		t.FailNow()
	}
	return len(seen)
}

// appendUntilKilled appends from a few clients at once, one entry a
// request, kills the node delay after the fifth answer, and returns the
// CIDs of the appends that were answered.
func appendUntilKilled(t *testing.T, ctx context.Context, p *exopeerProc, length int, delay time.Duration) []string {
	t.Helper()
	const clients = 4
	var (
		mu     sync.Mutex
		acked  []string
		seqs   = make(map[uint64]bool)
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	fifth := make(chan struct{})
	for i := range clients {
		wg.Go(func() {
			for j := 0; ctx.Err() == nil; j++ {
				e, err := p.c.ChainAppend(ctx, api.ChainText(fmt.Sprintf("client %d entry %d", i, j)))
				if err != nil {
					if !killed.Load() {
						t.Errorf("append before the kill: %v", err)
					}
					return
				}
				mu.Lock()
				if seqs[e.Seq] || e.Seq <= uint64(length) {
					t.Errorf("append answered seq %d: taken, or not after the log's %d", e.Seq, length)
				}
				seqs[e.Seq] = true
				acked = append(acked, e.CID)
				if len(acked) == 5 {
					close(fifth)
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-fifth:
		time.Sleep(delay)
	case <-ctx.Done():
		t.Errorf("5 appends not answered in time\n%s", p.log())
	}
	killed.Store(true)
	p.kill(t)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	mu.Lock()
	defer mu.Unlock()
	return acked
}
