package loopbench_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/netnstest"
)

var (
	latencyN = flag.Int("loopbench.latency", 500, "messages sent one after another for BenchmarkMessagesTwoProcesses's latency")
	sustainN = flag.Int("loopbench.sustain", 8000, "messages sent by the parallel senders of BenchmarkMessagesTwoProcesses")
	senders  = flag.Int("loopbench.senders", 64, "parallel senders of BenchmarkMessagesTwoProcesses")
	profiles = flag.String("loopbench.cpuprofile", "", "a dir where BenchmarkMessagesTwoProcesses's nodes write CPU profiles of their whole run, a.pprof and b.pprof (EXOPEER_CPUPROFILE)")
)

// BenchmarkMessagesTwoProcesses runs two exopeer nodes on loopback, a and
// b, each in a cell of its own, the cells contacts of each other (each
// adds the other's card, GET /v1/cell/card then POST /v1/contacts). a
// sends b 100-byte messages through its control API (POST /v1/messages,
// as `exopeer send` does), which answers once b acknowledged: by then
// the message is an entry of a's chain (state sent, written before it
// leaves), an entry of b's chain (written before b acknowledges), and an
// entry of a's chain again (state delivered), each on disk (a synced
// leveldb batch) before the next step.
//
// It reports (a) the latency of -loopbench.latency messages sent one
// after another, p50 and p99 in ms, and (b) the messages/s of
// -loopbench.sustain messages sent by -loopbench.senders senders at once,
// and the CPU-ms per message of both processes then (utime + stime from
// /proc/PID/stat). With -loopbench.cpuprofile, each node writes a CPU
// profile of its run. One handshake (the first message) comes before both.
func BenchmarkMessagesTwoProcesses(b *testing.B) {
	bin := netnstest.Binary(b)
	for range b.N {
		b.StopTimer()
		na := start(b, bin, "a", profileEnv("a"))
		nb := start(b, bin, "b", profileEnv("b"), bootArgs(b, na)...)
		ctx, cancel := context.WithTimeout(b.Context(), stepLimit)
		contacts(b, ctx, na, nb)
		text := string(make([]byte, 0, 100))
		for len(text) < 100 {
			text += "0123456789"
		}
		if _, err := na.c.Send(ctx, "B", text); err != nil {
			b.Fatalf("a: first send: %v\n%s\n%s", err, na.tail(), nb.tail())
		}
		b.StartTimer()

		lat := make([]time.Duration, *latencyN)
		for i := range lat {
			t0 := time.Now()
			if _, err := na.c.Send(ctx, "B", text); err != nil {
				b.Fatalf("a: send %d: %v", i, err)
			}
			lat[i] = time.Since(t0)
		}
		slices.Sort(lat)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		b.Logf("latency of %d sequential sends: p50 %v, p99 %v, max %v", len(lat), p50, p99, lat[len(lat)-1])
		b.ReportMetric(float64(p50)/float64(time.Millisecond), "p50-ms")
		b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")

		cpu0 := na.cpu(b) + nb.cpu(b)
		t0 := time.Now()
		if err := sendParallel(ctx, na.c, text, *senders, *sustainN); err != nil {
			b.Fatalf("a: parallel sends: %v", err)
		}
		wall := time.Since(t0)
		cpu := na.cpu(b) + nb.cpu(b) - cpu0
		rate := float64(*sustainN) / wall.Seconds()
		b.Logf("%d messages from %d senders at once: %v, %.0f messages/s, %v CPU (a and b)", *sustainN, *senders, wall.Round(time.Millisecond), rate, cpu.Round(time.Millisecond))
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(*sustainN), "CPU-ms/msg")
		b.ReportMetric(0, "ns/op")
		checkInbox(b, ctx, nb.c, *latencyN+*sustainN+1)
		cancel()
	}
}

// profileEnv is the environment that makes node name write its CPU
// profile into -loopbench.cpuprofile, if set.
func profileEnv(name string) []string {
	if *profiles == "" {
		return nil
	}
	return []string{"EXOPEER_CPUPROFILE=" + filepath.Join(*profiles, name+".pprof")}
}

// contacts makes a cell on each node and each cell a contact of the
// other, named A and B.
func contacts(b testing.TB, ctx context.Context, na, nb *proc) {
	for _, n := range []*proc{na, nb} {
		if _, err := n.c.CellCreate(ctx, api.CellCreateRequest{Name: n.name, Member: n.name}); err != nil {
			b.Fatalf("%s: cell create: %v", n.name, err)
		}
	}
	for _, p := range [][2]*proc{{na, nb}, {nb, na}} {
		from, to := p[0], p[1]
		var card api.ContactCard
		var err error
		for { // the device list is signed shortly after the cell is made
			if card, err = from.c.CellCard(ctx, ""); !errors.Is(err, client.ErrNoDeviceList) {
				break
			}
			select {
			case <-ctx.Done():
				b.Fatalf("%s: no card: %v", from.name, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err != nil {
			b.Fatalf("%s: cell card: %v", from.name, err)
		}
		name := map[string]string{"a": "A", "b": "B"}[from.name]
		if _, err := to.c.ContactAdd(ctx, card.Text, name); err != nil {
			b.Fatalf("%s: contact add: %v", to.name, err)
		}
	}
}

// sendParallel sends n messages to B from senders goroutines at once and
// returns the first error.
func sendParallel(ctx context.Context, c *client.Client, text string, senders, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range next {
				if _, err := c.Send(ctx, "B", text); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
					cancel()
					return
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

// checkInbox checks that b recorded want messages from A: a sanity check
// of what was measured, not a speed.
func checkInbox(b *testing.B, ctx context.Context, c *client.Client, want int) {
	got := 0
	after := ""
	for {
		page, err := c.Messages(ctx, "A", after, 1000)
		if err != nil {
			b.Fatalf("b: messages: %v", err)
		}
		got += len(page.Messages)
		if page.Next == "" || len(page.Messages) == 0 {
			break
		}
		after = page.Next
	}
	if got != want {
		b.Fatalf("b recorded %d messages from A, want %d", got, want)
	}
}
