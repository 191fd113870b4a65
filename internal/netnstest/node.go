package netnstest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/leaktest"
)

// Client is the typed client of a node's control API.
//
// It is the one place this package names the client's package: when the
// client moves, this line and dial change, and the tests do not.
type Client = client.Client

// dial opens the client of the node running on the data dir dir.
func dial(dir string) (*Client, error) { return client.Dial(dir) }

const (
	// startTimeout bounds the wait for a started node to print its peer ID.
	startTimeout = 30 * time.Second
	// StopLimit bounds the wait for a node to exit after SIGINT; past it,
	// the node is killed and Stop fails.
	StopLimit = 5 * time.Second
	// logTail is how many lines of a node's log a failed test shows.
	logTail = 60
)

// Main runs the tests of m with the goroutine-leak check and removes the
// binary Binary built. Call it from the TestMain of a package that uses
// netnstest.
func Main(m *testing.M) {
	leaktest.VerifyTestMain(cleanM{m})
}

type cleanM struct{ m *testing.M }

func (c cleanM) Run() int {
	code := c.m.Run()
	build.mu.Lock()
	defer build.mu.Unlock()
	if build.dir != "" {
		os.RemoveAll(build.dir)
		build.dir, build.bin, build.err = "", "", nil
	}
	return code
}

// build is the exopeer binary built for this test binary.
var build struct {
	mu       sync.Mutex
	dir, bin string
	err      error
}

// BinaryEnv names the environment variable that gives the path of an
// exopeer binary to test instead of building one (a race-enabled build,
// a release candidate).
const BinaryEnv = "NETNSTEST_EXOPEER"

// Binary returns the path of the exopeer binary under test: $NETNSTEST_EXOPEER
// if set, else one built from this module's cmd/exopeer on first use (go
// build, into a temp dir that Main removes). A failed build fails every
// test that asks.
func Binary(t testing.TB) string {
	t.Helper()
	build.mu.Lock()
	defer build.mu.Unlock()
	if p := os.Getenv(BinaryEnv); p != "" && build.bin == "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			t.Fatalf("netnstest: %s=%s: %v", BinaryEnv, p, err)
		}
		build.bin = abs
	}
	if build.bin == "" && build.err == nil {
		build.bin, build.err = buildExopeer()
		if build.err == nil {
			build.dir = filepath.Dir(build.bin)
		}
	}
	if build.err != nil {
		t.Fatalf("netnstest: %v", build.err)
	}
	return build.bin
}

func buildExopeer() (string, error) {
	goTool, err := exec.LookPath("go") // go test puts its GOROOT/bin first in PATH
	if err != nil {
		return "", fmt.Errorf("build exopeer: %w", err)
	}
	dir, err := os.MkdirTemp("", "netnstest-bin-")
	if err != nil {
		return "", fmt.Errorf("build exopeer: %w", err)
	}
	bin := filepath.Join(dir, "exopeer")
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/exopeer/exopeer/cmd/exopeer").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/exopeer: %w\n%s", err, out)
	}
	return bin, nil
}

// Node is an exopeer process running `exopeer run` on a host of a LAN.
type Node struct {
	Name   string  // the host's name
	Host   *Host   // where it runs
	Dir    string  // its data dir
	ID     string  // its peer ID, as it printed it
	Client *Client // its control API

	bin      string
	out, log string // files holding its stdout and stderr
	cmd      *exec.Cmd
	proxy    *apiProxy
	exited   chan struct{} // closed once cmd.Wait returned
	waitErr  error
	stopOnce sync.Once
	stopErr  error
	stopTook time.Duration
}

// Start runs `exopeer run` on host h, with its own data dir, port h.Port,
// mDNS on and debug logs, plus args; it returns once the node has printed
// its peer ID and its control API answers. When t ends, the node is stopped
// and, if t failed, its output is logged. Started again on a host whose
// node stopped or was killed, it runs on the same data dir (the same peer
// ID, what it recorded), its stdout starts afresh and its log goes on.
func (l *Net) Start(t testing.TB, h *Host, args ...string) *Node {
	t.Helper()
	return l.StartEnv(t, h, nil, args...)
}

// StartEnv is Start with env (NAME=value entries) added to the node's
// environment, e.g. EXOPEER_BLOBS_POLICY=none.
func (l *Net) StartEnv(t testing.TB, h *Host, env []string, args ...string) *Node {
	t.Helper()
	n, err := l.start(t, Binary(t), h, env, args)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// StartAll is Start on each of hosts, all at once, each with args; it
// returns once every node has started, the nodes in the order of hosts,
// or fails t if any could not.
func (l *Net) StartAll(t testing.TB, hosts []*Host, args ...string) []*Node {
	t.Helper()
	bin := Binary(t)
	nodes := make([]*Node, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { nodes[i], errs[i] = l.start(t, bin, h, nil, args) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return nodes
}

// start is StartEnv with the binary bin, saying what went wrong rather
// than failing t, so that it may run on any goroutine (it only registers
// the node's clean-up with t).
func (l *Net) start(t testing.TB, bin string, h *Host, env, args []string) (*Node, error) {
	n := &Node{
		Name:   h.Name,
		Host:   h,
		Dir:    filepath.Join(l.dir, h.Name),
		bin:    bin,
		out:    filepath.Join(l.dir, h.Name+".out"),
		log:    filepath.Join(l.dir, h.Name+".log"),
		exited: make(chan struct{}),
	}
	p, err := listenProxy(h.NS)
	if err != nil {
		return nil, err
	}
	n.proxy = p
	stdout, err := os.Create(n.out)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("netnstest: node %s: %w", n.Name, err)
	}
	defer stdout.Close()
	// Appended to: a node started again on the host's data dir (after a
	// stop or a kill) keeps the log of the runs before it.
	stderr, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("netnstest: node %s: %w", n.Name, err)
	}
	defer stderr.Close()
	ipCmd, _ := ipPath() // NewNet checked it
	argv := append([]string{"netns", "exec", h.NS, n.bin, "run",
		"--dir", n.Dir, "--port", fmt.Sprint(h.Port), "--api", p.Addr(), "--mdns=true", "--log-level", "debug"}, args...)
	n.cmd = exec.Command(ipCmd, argv...)
	n.cmd.Stdout, n.cmd.Stderr = stdout, stderr
	if env != nil {
		n.cmd.Env = append(os.Environ(), env...)
	}
	// Should the test binary die, so does the node.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		p.Close()
		return nil, fmt.Errorf("netnstest: start node %s: %w", n.Name, err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		if _, err := n.Stop(); err != nil {
			t.Errorf("netnstest: %v", err)
		}
		if t.Failed() || panicking() {
			t.Logf("netnstest: node %s (%s, %s, data dir %s, peer ID %s)\n%s", n.Name, h.NS, h.IP, n.Dir, n.ID, n.Output())
		}
	})
	if err := n.awaitStart(); err != nil {
		return nil, fmt.Errorf("netnstest: node %s: %w", n.Name, err)
	}
	return n, nil
}

// panicking says whether the calling goroutine is unwinding a panic: a
// test's clean-up runs then with t.Failed() still false.
func panicking() bool {
	for _, line := range strings.Split(string(debug.Stack()), "\n") {
		if strings.HasPrefix(line, "panic(") {
			return true
		}
	}
	return false
}

// awaitStart waits for the peer ID line, checks that the process is the
// node itself (ip netns exec execs it, so that signals reach it), and
// opens the client.
func (n *Node) awaitStart() error {
	deadline := time.Now().Add(startTimeout)
	for n.ID == "" {
		if id, ok := printedID(n.out); ok {
			n.ID = id
			break
		}
		select {
		case <-n.exited:
			return fmt.Errorf("exited before printing its peer ID: %v", n.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("printed no peer ID within %v", startTimeout)
		}
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", n.cmd.Process.Pid))
	if err != nil || exe != n.bin {
		return fmt.Errorf("pid %d runs %q (%v), not %s", n.cmd.Process.Pid, exe, err, n.bin)
	}
	c, err := dial(n.Dir)
	if err != nil {
		return fmt.Errorf("dial its control API: %w", err)
	}
	n.Client = c
	return nil
}

// printedID reads the peer ID from the `peer ID  X` line of run's output.
func printedID(path string) (string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "peer ID "); ok {
			if id := strings.TrimSpace(rest); id != "" {
				return id, true
			}
		}
	}
	return "", false
}

// Stop sends SIGINT and waits for the node to exit, up to StopLimit, and
// returns how long it took. It fails if the node had to be killed or exited
// with an error; calls after the first return the first's result, and so
// does the clean-up.
func (n *Node) Stop() (time.Duration, error) {
	n.stopOnce.Do(func() {
		defer n.proxy.Close()
		select {
		case <-n.exited:
			n.stopErr = fmt.Errorf("node %s had exited before it was stopped: %v", n.Name, n.waitErr)
			return
		default:
		}
		began := time.Now()
		if err := n.cmd.Process.Signal(os.Interrupt); err != nil {
			n.stopErr = fmt.Errorf("node %s: SIGINT: %w", n.Name, err)
		}
		select {
		case <-n.exited:
			n.stopTook = time.Since(began)
		case <-time.After(StopLimit):
			_ = n.cmd.Process.Kill()
			<-n.exited
			n.stopErr = fmt.Errorf("node %s did not exit within %v of SIGINT; killed", n.Name, StopLimit)
			return
		}
		if n.waitErr != nil {
			n.stopErr = fmt.Errorf("node %s exited with %v after SIGINT (in %v)", n.Name, n.waitErr, n.stopTook.Round(time.Millisecond))
		}
	})
	return n.stopTook, n.stopErr
}

// Kill ends the node with SIGKILL, as a crash or a power cut would, and
// waits for it to exit. Stop (and the clean-up) after Kill do nothing.
func (n *Node) Kill() error {
	err := errors.New("netnstest: node " + n.Name + " was stopped before it was killed")
	n.stopOnce.Do(func() {
		defer n.proxy.Close()
		err = n.cmd.Process.Kill()
		<-n.exited
	})
	return err
}

// Stdout returns what the node printed on stdout so far.
func (n *Node) Stdout() string {
	data, _ := os.ReadFile(n.out)
	return string(data)
}

// Output returns the node's stdout and the last lines of its log, for a
// failure's report.
func (n *Node) Output() string {
	logData, _ := os.ReadFile(n.log)
	lines := strings.Split(strings.TrimRight(string(logData), "\n"), "\n")
	if len(lines) > logTail {
		lines = lines[len(lines)-logTail:]
	}
	return fmt.Sprintf("--- stdout:\n%s--- log, last %d lines:\n%s", n.Stdout(), len(lines), strings.Join(lines, "\n"))
}

// Result is how a CLI command ended.
type Result struct {
	Code           int // the exit status
	Stdout, Stderr string
	Took           time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d in %v; stdout %q; stderr %q", r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Exopeer runs `exopeer ARGS... --dir DIR` in the node's namespace, as a
// user on that machine would, and returns how it ended, whatever its exit
// status; the error says it could not be run, or ctx ended first (the
// command is then killed).
func (n *Node) Exopeer(ctx context.Context, args ...string) (Result, error) {
	ipCmd, err := ipPath()
	if err != nil {
		return Result{}, err
	}
	argv := append(append([]string{"netns", "exec", n.Host.NS, n.bin}, args...), "--dir", n.Dir)
	cmd := exec.CommandContext(ctx, ipCmd, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	began := time.Now()
	err = cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(began)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.Code = ee.ExitCode()
	default:
		return r, fmt.Errorf("netnstest: node %s: exopeer %s: %w (%v)", n.Name, strings.Join(args, " "), errors.Join(err, ctx.Err()), r)
	}
	return r, nil
}
