package pin

import "testing"

// BenchmarkGC collects a store of 2×4,160 small blob blocks on flatfs,
// half of them reached by a pinned root (a DAG of 64 nodes of 64 leaves),
// half loose; the loose half is written again (not timed) before each
// collection. It reports blocks looked at per second.
func BenchmarkGC(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	pinned := e.newDAG(b, 64, 64)
	loose := e.newDAG(b, 64, 64)
	if err := e.store.PutOwn(ctx, pinned.all); err != nil {
		b.Fatal(err)
	}
	if err := e.pins.Pin(ctx, pinned.root, "manual"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := e.store.PutOwn(ctx, loose.all); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		st, err := e.pins.GC(ctx)
		if err != nil || st.Deleted != int64(len(loose.all)) {
			b.Fatalf("GC = %+v, %v", st, err)
		}
	}
	b.ReportMetric(float64(b.N*(len(pinned.all)+len(loose.all)))/b.Elapsed().Seconds(), "blocks/s")
}
