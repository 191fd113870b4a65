package replica_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/chain/replica"
)

// BenchmarkAppend measures local appends on a real leveldb on disk, each
// append its own synced write (batch=1), or batch entries per AppendMany
// (one synced write for all). cpu-µs/entry is the process's CPU time
// (user and system) per entry: wall time is mostly fsync latency.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			n := realNode(b, 20, b.TempDir(), replica.Config{})
			makeCell(b, n)
			payloads := make([][]byte, batch)
			for i := range payloads {
				payloads[i] = make([]byte, 100)
			}
			b.ResetTimer()
			entries, cpu0 := 0, cpuTime(b)
			for b.Loop() {
				if _, err := n.Chain().AppendMany(b.Context(), payloads); err != nil {
					b.Fatal(err)
				}
				entries += batch
			}
			b.ReportMetric(float64(entries)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(entries), "cpu-µs/entry")
		})
	}
}

// BenchmarkSync10k measures a node catching up 10,000 entries from
// another, both in this process on loopback with real libp2p and leveldb:
// from the start of its join (the PAKE and the roster included) until it
// holds every entry.
func BenchmarkSync10k(b *testing.B) {
	const total = 10_000
	a := realNode(b, 21, b.TempDir(), replica.Config{})
	makeCell(b, a)
	payload := make([]byte, 100)
	for range total / 500 {
		batch := make([][]byte, 500)
		for i := range batch {
			batch[i] = payload
		}
		if _, err := a.Chain().AppendMany(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	seed := byte(22)
	for b.Loop() {
		b.StopTimer()
		h := startReal(b, seed, b.TempDir(), replica.Config{})
		seed++
		code, _, err := a.Cell().Invite(cell.InviteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Host().Connect(b.Context(), peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := h.Cell().Join(b.Context(), code.String(), ""); err != nil {
			b.Fatal(err)
		}
		for {
			st, err := h.Chain().Status(b.Context())
			if err == nil && st.Length == total {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		h.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkLog measures reading the chain in order: load, decode, decrypt.
func BenchmarkLog(b *testing.B) {
	n := realNode(b, 30, b.TempDir(), replica.Config{})
	makeCell(b, n)
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = make([]byte, 100)
	}
	if _, err := n.Chain().AppendMany(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		es, err := n.Chain().Log(b.Context(), chain.Pos{}, 1000)
		if err != nil || len(es) != 1000 {
			b.Fatal(len(es), err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// cpuTime returns the CPU time the process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
