package service_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
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

// BenchmarkPutMessage: the store's writes of a message as package
// message/service makes them, on a store-role node with a real leveldb:
// Put of a new exo.message document (~400 bytes, state "sent", its
// entity chosen by the caller and Created set, so that Put reads nothing
// first), alone (a receiver's record of a message), or followed by the
// Put of the same trait with state "delivered" (the sender's two
// records), from 1, 16 and 64 goroutines at once. Reports cpu-µs/msg
// (the process's CPU time, every goroutine, per message: the figure that
// matters, the message path being CPU-bound) and syncs/msg.
func BenchmarkPutMessage(b *testing.B) {
	for _, kind := range []string{"sent", "sent+delivered"} {
		for _, par := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", kind, par), func(b *testing.B) {
				n := nodetest.CellNode(b, 32)
				s, ctx := n.Store(), b.Context()
				at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				var seq atomic.Uint64
				put := func(i uint64, state string) error {
					var e store.EntityID
					binary.BigEndian.PutUint64(e[8:], i)
					_, err := s.Put(ctx, e, []store.Trait{{Type: "exo.message", Doc: benchMessage(i, state, at), Created: at}})
					return err
				}
				commits, cpu0 := service.Commits(s), cpuTime(b)
				b.ResetTimer()
				var wg sync.WaitGroup
				next := make(chan struct{})
				for range par {
					wg.Go(func() {
						for range next {
							i := seq.Add(1)
							if err := put(i, "sent"); err != nil {
								b.Error(err)
							}
							if kind == "sent+delivered" {
								if err := put(i, "delivered"); err != nil {
									b.Error(err)
								}
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
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
				b.ReportMetric(float64(service.Commits(s)-commits)/float64(b.N), "syncs/msg")
			})
		}
	}
}

// benchMessage is an exo.message document of message i as
// message/service's record.go writes it (~400 bytes).
func benchMessage(i uint64, state string, at time.Time) json.RawMessage {
	sent := at.Add(time.Duration(i) * time.Millisecond)
	doc, err := json.Marshal(map[string]any{
		"id":           fmt.Sprintf("%032x", i),
		"conversation": fmt.Sprintf("%064x", 1),
		"direction":    "out",
		"cell":         fmt.Sprintf("%064x", 99),
		"device":       "12D3KooWRkGLz4YbVmrsWK75VjFTs8xKoCsYoVjDSuCr5ZrYVDDy",
		"sent":         sent.Format(time.RFC3339Nano),
		"order":        fmt.Sprintf("%016x%032x", sent.UnixMilli(), i),
		"text":         fmt.Sprintf("message %d: %s", i, "the quick brown fox jumps over the lazy dog, and then some more words to fill"),
		"state":        state,
	})
	if err != nil {
		panic(err)
	}
	return doc
}
