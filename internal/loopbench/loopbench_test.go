package loopbench_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/netnstest"
)

var (
	size      = flag.Int64("loopbench.mib", 1024, "MiB of the file fetched")
	kuboPath  = flag.String("loopbench.kubo", "", "path of a Kubo ipfs binary: BenchmarkFetchKubo measures Kubo daemon to daemon as the anchor (skipped without it)")
	transport = flag.String("loopbench.transport", "any", "the address b is given of a: any (all of a's loopback addresses: the node's dialer chooses, as after mDNS), tcp or quic")
)

func TestMain(m *testing.M) { netnstest.Main(m) }

// stepLimit bounds one step (a start, a join, an add, the fetch): how long
// it may take on a loaded machine before the benchmark fails, not a speed.
const stepLimit = 5 * time.Minute

// BenchmarkFetchTwoProcesses runs two exopeer nodes on loopback, a and b,
// in one cell: a adds a file (-loopbench.mib MiB of random bytes, files
// add: the cell's derived key), b (pin policy none, so that it fetches
// nothing by itself) fetches the whole blob as `exopeer files get` does
// (the control API's fetch route, POST /v1/blobs/{cap}/fetch), from a.
// It reports the fetch's MiB/s and the CPU-seconds both processes spent
// during it per GiB (utime + stime from /proc/PID/stat).
// Its anchor is BenchmarkFetchKubo (with -loopbench.kubo).
func BenchmarkFetchTwoProcesses(b *testing.B) {
	bin := netnstest.Binary(b)
	path := randomFile(b)
	for range b.N {
		b.StopTimer()
		na := start(b, bin, "a", nil)
		nb := start(b, bin, "b", []string{"EXOPEER_BLOBS_POLICY=none"}, bootArgs(b, na)...)
		ctx, cancel := context.WithTimeout(b.Context(), stepLimit)
		if _, err := na.c.CellCreate(ctx, api.CellCreateRequest{Name: "loopbench", Member: "a"}); err != nil {
			b.Fatalf("a: cell create: %v", err)
		}
		inv, err := na.c.CellInvite(ctx, api.CellInviteRequest{Roles: "chain,store", TTL: api.Duration(5 * time.Minute)})
		if err != nil {
			b.Fatalf("a: cell invite: %v", err)
		}
		if _, err := nb.c.CellJoin(ctx, api.CellJoinRequest{Code: inv.Code, Member: "b", Timeout: api.Duration(time.Minute)}); err != nil {
			b.Fatalf("b: cell join: %v", err)
		}
		files, err := na.c.FilesAdd(ctx, []string{path}, nil)
		if err != nil || len(files) != 1 {
			b.Fatalf("a: files add: %+v, %v", files, err)
		}
		// b must know a as a member before it asks it for blocks: its
		// wants go only to members (the gate's asker).
		waitMember(b, ctx, nb.c, na.id)
		b.StartTimer()

		cpu0 := na.cpu(b) + nb.cpu(b)
		t0 := time.Now()
		last, err := nb.c.BlobFetch(ctx, files[0].Cap, nil)
		wall := time.Since(t0)
		cpu := na.cpu(b) + nb.cpu(b) - cpu0
		if err != nil {
			b.Fatalf("b: fetch: %v\n%s", err, nb.tail())
		}
		if last.Bytes < *size<<20 {
			b.Fatalf("b: fetched %d bytes of a %d-byte file", last.Bytes, *size<<20)
		}
		b.Logf("b fetched %d blocks, %d bytes: %v, %v CPU (a and b); conns %s", last.Blocks, last.Bytes, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), conns(b, ctx, nb.c, na.id))
		report(b, last.Bytes, wall, cpu)
		cancel()
	}
}

// report gives MiB/s and CPU-s/GiB of a fetch of n bytes.
func report(b *testing.B, n int64, wall, cpu time.Duration) {
	b.ReportMetric(float64(n)/(1<<20)/wall.Seconds(), "MiB/s")
	b.ReportMetric(cpu.Seconds()/(float64(n)/(1<<30)), "CPU-s/GiB")
	b.ReportMetric(0, "ns/op")
}

// randomFile writes -loopbench.mib MiB of seeded random bytes to a file.
func randomFile(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "film.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{7}), *size<<20)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// proc is a process of the benchmark: an exopeer node or a Kubo daemon.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     string // its stdout and stderr
	dir     string
	id      string
	c       *client.Client
	exited  chan struct{}
	waitErr error
}

// spawn starts cmd, its output to a file, killed with the benchmark.
func spawn(b testing.TB, name string, cmd *exec.Cmd) *proc {
	p := &proc{name: name, cmd: cmd, out: filepath.Join(b.TempDir(), name+".out"), exited: make(chan struct{})}
	f, err := os.Create(p.out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// start runs `exopeer run` on a data dir of its own: any free port,
// loopback API, mDNS off, the LAN DHT off.
func start(b testing.TB, bin, name string, env []string, args ...string) *proc {
	return startAt(b, bin, name, filepath.Join(b.TempDir(), name), env, args...)
}

// startAt is start on the data dir dir.
func startAt(b testing.TB, bin, name, dir string, env []string, args ...string) *proc {
	argv := append([]string{"run", "--dir", dir, "--port", "-1", "--api", "127.0.0.1:0", "--mdns", "false", "--log-level", "info"}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(os.Environ(), env...)
	p := spawn(b, name, cmd)
	p.dir = dir
	deadline := time.Now().Add(stepLimit)
	for p.id == "" {
		if data, err := os.ReadFile(p.out); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "peer ID "); ok {
					p.id = strings.TrimSpace(rest)
				}
			}
		}
		if p.id != "" {
			break
		}
		select {
		case <-p.exited:
			b.Fatalf("%s exited: %v\n%s", name, p.waitErr, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s printed no peer ID\n%s", name, p.tail())
		}
	}
	c, err := client.Dial(dir)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	p.c = c
	return p
}

// bootArgs are b's --bootstrap flags: a's loopback addresses of the
// transport -loopbench.transport names; for "any", its TCP and its QUIC
// address, as mDNS would give them, and b's dialer chooses.
func bootArgs(b testing.TB, a *proc) []string {
	id, err := a.c.ID(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	var tcp, quic string
	for _, s := range id.Addrs {
		if !strings.HasPrefix(s, "/ip4/127.0.0.1/") {
			continue
		}
		switch {
		case strings.Contains(s, "/tcp/") && tcp == "":
			tcp = s
		case strings.Contains(s, "/quic-v1/") && quic == "":
			quic = s
		}
	}
	if tcp == "" || quic == "" {
		b.Fatalf("a has no loopback TCP and QUIC addresses: %v", id.Addrs)
	}
	switch *transport {
	case "tcp":
		return []string{"--bootstrap", tcp}
	case "quic":
		return []string{"--bootstrap", quic}
	case "any":
		return []string{"--bootstrap", quic, "--bootstrap", tcp}
	}
	b.Fatalf("-loopbench.transport %q: want any, tcp or quic", *transport)
	return nil
}

// waitMember waits until c's roster lists id.
func waitMember(b *testing.B, ctx context.Context, c *client.Client, id string) {
	for {
		v, err := c.Cell(ctx)
		if err == nil {
			for _, m := range v.Members {
				if m.Peer == id {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			b.Fatalf("b never listed a as a member: %+v, %v", v, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// conns says over what b is connected to a.
func conns(b *testing.B, ctx context.Context, c *client.Client, id string) string {
	ps, err := c.Peers(ctx)
	if err != nil {
		return err.Error()
	}
	for _, p := range ps {
		if p.Peer == id {
			return p.Addr
		}
	}
	return "none"
}

// cpu is the CPU time the process has used so far, user and system, from
// /proc/PID/stat (fields 14 and 15, in clock ticks).
func (p *proc) cpu(b *testing.B) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		b.Fatalf("%s: /proc/PID/stat: %q", p.name, data)
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3; utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatalf("%s: /proc/PID/stat: %v", p.name, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// tail4k is its whole output (tail, past 4,000 bytes, would cut it).
func (p *proc) tail4k() string {
	data, _ := os.ReadFile(p.out)
	return string(data)
}

// stop interrupts the process and waits for it to exit (killed past
// 30 s).
func (p *proc) stop(t testing.TB) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Logf("%s killed: it did not stop within 30 s", p.name)
	}
}

// tail is the end of the process's output, for a failure.
func (p *proc) tail() string {
	data, _ := os.ReadFile(p.out)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}
