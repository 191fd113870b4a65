package service_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/exopeer/exopeer/internal/nodetest"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// BenchmarkPut: Put of one message-like entity (a trait of an unregistered
// type, a document of ~100 bytes of text, Created set by the caller so
// that Put reads nothing first) on a store-role node with a real leveldb,
// from 1 and from 16 goroutines at once. Reports ns per Put, the chain
// entries per Put and the synced writes (commits) per Put: concurrent
// Puts share both when they are committed together. cpu-µs/Put is the
// process's CPU time (user and system, every goroutine) per Put: wall
// time on a shared machine is mostly fsync latency.
func BenchmarkPut(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", par), func(b *testing.B) {
			n := nodetest.CellNode(b, 31)
			s, ctx := n.Store(), b.Context()
			doc, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("%0100d", 7)})
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			trait := []store.Trait{{Type: "x.message", Doc: doc, Created: at, Modified: at}}
			length := func() int {
				st, err := n.Chain().Status(ctx)
				if err != nil {
					b.Fatal(err)
				}
				return st.Length
			}
			before, commits := length(), service.Commits(s)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			var wg sync.WaitGroup
			next := make(chan struct{})
			for range par {
				wg.Go(func() {
					for range next {
						if _, err := s.Put(ctx, store.EntityID{}, trait); err != nil {
							b.Error(err)
						}
					}
				})
			}
			for b.Loop() {
				next <- struct{}{}
			}
			close(next)
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/Put")
			b.ReportMetric(float64(length()-before)/float64(b.N), "entries/Put")
			b.ReportMetric(float64(service.Commits(s)-commits)/float64(b.N), "syncs/Put")
		})
	}
}

// cpuTime returns the CPU time the process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
