package loopbench_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkFetchKubo is BenchmarkFetchTwoProcesses's anchor: two Kubo
// daemons (the binary -loopbench.kubo names) on loopback, repos made with
// `ipfs init --profile test` (loopback addresses on free ports, no
// bootstrap peers, mDNS off; Kubo's flatfs does not sync its files, where
// exopeer's syncs each), no routing. a adds the same file (`ipfs add
// --cid-version=1`: 256 KiB raw leaves), b connects to a and fetches the
// whole DAG (`ipfs pin add`). It reports the same metrics, per byte of
// the file.
func BenchmarkFetchKubo(b *testing.B) {
	if *kuboPath == "" {
		b.Skip("no Kubo binary: give its path with -loopbench.kubo")
	}
	if _, err := os.Stat(*kuboPath); err != nil {
		b.Skipf("-loopbench.kubo: %v", err)
	}
	path := randomFile(b)
	for range b.N {
		b.StopTimer()
		ka := startKubo(b, "kubo-a")
		kb := startKubo(b, "kubo-b")
		cidOut := ka.ipfs(b, "add", "--cid-version=1", "-q", path)
		fields := strings.Fields(cidOut)
		if len(fields) == 0 {
			b.Fatalf("ipfs add printed %q", cidOut)
		}
		root := fields[len(fields)-1]
		var addr string
		for _, a := range strings.Fields(ka.ipfs(b, "id", "-f", "<addrs>")) {
			if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
				addr = a
				break
			}
		}
		if addr == "" {
			b.Fatalf("kubo a has no loopback TCP address")
		}
		if !strings.Contains(addr, "/p2p/") {
			addr += "/p2p/" + strings.TrimSpace(ka.ipfs(b, "id", "-f", "<id>"))
		}
		kb.ipfs(b, "swarm", "connect", addr)
		b.StartTimer()

		cpu0 := ka.cpu(b) + kb.cpu(b)
		t0 := time.Now()
		kb.ipfs(b, "pin", "add", root)
		wall := time.Since(t0)
		cpu := ka.cpu(b) + kb.cpu(b) - cpu0
		b.Logf("kubo b pinned %s: %v, %v CPU (a and b)", root, wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
		report(b, *size<<20, wall, cpu)
	}
}

// startKubo makes a repo and runs `ipfs daemon` on it until the
// benchmark ends.
func startKubo(b *testing.B, name string) *proc {
	repo := filepath.Join(b.TempDir(), name)
	env := append(os.Environ(), "IPFS_PATH="+repo, "IPFS_TELEMETRY=off")
	run := func(args ...string) {
		cmd := exec.Command(*kuboPath, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: ipfs %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("init", "--profile", "test")
	run("config", "--json", "Routing.Type", `"none"`)
	cmd := exec.Command(*kuboPath, "daemon")
	cmd.Env = env
	p := spawn(b, name, cmd)
	p.dir = repo
	deadline := time.Now().Add(stepLimit)
	for {
		data, _ := os.ReadFile(p.out)
		if strings.Contains(string(data), "Daemon is ready") {
			return p
		}
		select {
		case <-p.exited:
			b.Fatalf("%s exited: %v\n%s", name, p.waitErr, p.tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not ready\n%s", name, p.tail())
		}
	}
}

// ipfs runs the Kubo CLI against the daemon p and returns its stdout.
func (p *proc) ipfs(b *testing.B, args ...string) string {
	ctx, cancel := context.WithTimeout(b.Context(), stepLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, *kuboPath, args...)
	cmd.Env = append(os.Environ(), "IPFS_PATH="+p.dir, "IPFS_TELEMETRY=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s: ipfs %s: %v\n%s", p.name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
