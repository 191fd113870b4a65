package service

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

// TestSlowedBounded: the frames the quotas slow at once are at most
// MaxSlowedPerContact of one contact and Config.MaxFramesIn of all;
// past either, a frame that would be slowed is refused for the rate at
// once (answered busy), and every place is given back once its frame is
// handled.
func TestSlowedBounded(t *testing.T) { bubble(t, testSlowedBounded) }

func testSlowedBounded(t *testing.T) {
	const node = MaxSlowedPerContact + 8
	s := quotaService(dssync.MutexWrap(ds.NewMapDatastore()), func(c *Config) {
		c.InRate, c.InBurst, c.Timeout, c.MaxSlow, c.MaxFramesIn = 1, 1, 400*time.Second, 200*time.Second, node
	})
	ctx := t.Context()
	var wg sync.WaitGroup
	defer wg.Wait()
	var refused, slowed atomic.Int64
	var mu sync.Mutex
	var releases []func()
	flood := func(conv string, n int) {
		if err := s.admitIn(ctx, []string{conv}, 1, nil); err != nil { // its burst
			t.Fatalf("%s's first: %v", conv, err)
		}
		for range n {
			wg.Go(func() {
				err := s.admitIn(ctx, []string{conv}, 1, func(release func()) {
					slowed.Add(1)
					mu.Lock()
					releases = append(releases, release)
					mu.Unlock()
				})
				if errors.Is(err, errQuota) {
					refused.Add(1)
				} else if err != nil {
					t.Errorf("%s: %v", conv, err)
				}
			})
		}
		synctest.Wait()
	}
	flood("a", MaxSlowedPerContact+8)
	if got, want := slowed.Load(), int64(MaxSlowedPerContact); got != want {
		t.Fatalf("one contact's frames slowed at once: %d, want %d (MaxSlowedPerContact)", got, want)
	}
	if got := refused.Load(); got != 8 {
		t.Fatalf("one contact's frames past its slowed bound: %d refused, want 8", got)
	}
	flood("b", 9)
	if got := slowed.Load(); got != node {
		t.Fatalf("frames slowed at once: %d, want %d (Config.MaxFramesIn)", got, node)
	}
	if got := refused.Load(); got != 9 {
		t.Fatalf("frames past the node's slowed bound: %d refused, want 9", got)
	}
	if q := s.Quota(); q.Slowed != node || q.RefusedRate != 9 {
		t.Fatalf("quota %+v: want %d slowed, 9 refused for the rate", q, node)
	}
	wg.Wait()
	for _, r := range releases {
		r()
	}
	if s.quota.slow.n != 0 || len(s.quota.slow.per) != 0 {
		t.Fatalf("after every slowed frame was handled: %d held, %d contacts in the map", s.quota.slow.n, len(s.quota.slow.per))
	}
	// Each bound frees its places: a contact is slowed again.
	time.Sleep(time.Hour)
	flood("a", 2)
	if got := slowed.Load(); got != node+2 {
		t.Fatalf("once the places were given back: %d slowed in all, want %d", got, node+2)
	}
	wg.Wait()
}
