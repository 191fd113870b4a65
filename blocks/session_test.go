package blocks

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// makeBlocks returns n distinct blocks of size bytes and their CIDs.
func makeBlocks(n, size int) ([]blockformat.Block, []cid.Cid) {
	m := newBlockMaker(size)
	blks := make([]blockformat.Block, n)
	cids := make([]cid.Cid, n)
	for i := range blks {
		blks[i] = m.next()
		cids[i] = blks[i].Cid()
	}
	return blks, cids
}

// onBlockLog records OnBlock calls.
type onBlockLog struct {
	mu    sync.Mutex
	calls map[cid.Cid]peer.ID
	n     int
}

func (l *onBlockLog) add(from peer.ID, c cid.Cid, _ int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = make(map[cid.Cid]peer.ID)
	}
	l.calls[c] = from
	l.n++
}

func TestSessionFetchFromSeveralPeers(t *testing.T) {
	fetcher := newNode(t, Config{}, true)
	blks, cids := makeBlocks(48, 64<<10)
	seeders := map[peer.ID]bool{}
	for range 3 {
		s := newNode(t, Config{}, true)
		if err := s.ex.PutMany(t.Context(), blks); err != nil {
			t.Fatal(err)
		}
		connect(t, fetcher, s, "")
		seeders[s.host.ID()] = true
	}
	// Two blocks are held already: read locally, not fetched, not counted.
	if err := fetcher.store.PutMany(t.Context(), blks[:2]); err != nil {
		t.Fatal(err)
	}

	var log onBlockLog
	ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
	defer cancel()
	sess := fetcher.ex.NewSession(ctx, SessionOptions{OnBlock: log.add})
	defer sess.Close()
	// The CIDs reversed, with a repeat.
	var ask []cid.Cid
	for i := len(cids) - 1; i >= 0; i-- {
		ask = append(ask, cids[i])
	}
	ask = append(ask, cids[5])
	got, err := sess.GetBlocks(ctx, ask)
	if err != nil {
		t.Fatalf("GetBlocks: %v", err)
	}
	for i, c := range ask {
		if got[i] == nil || got[i].Cid() != c {
			t.Fatalf("block %d: got %v, want %s", i, got[i], c)
		}
	}
	for _, b := range blks {
		checkStored(t, fetcher.store, b)
	}

	st := sess.Stats()
	fetched := int64(len(blks) - 2)
	if st.Blocks != fetched || st.Bytes != fetched*(64<<10) {
		t.Errorf("Stats = %d blocks, %d bytes; want %d, %d", st.Blocks, st.Bytes, fetched, fetched*(64<<10))
	}
	var sum PeerStats
	for p, ps := range st.Peers {
		if !seeders[p] {
			t.Errorf("blocks attributed to %s, not a seeder", p)
		}
		sum.Blocks += ps.Blocks
		sum.Bytes += ps.Bytes
	}
	if sum.Blocks != st.Blocks || sum.Bytes != st.Bytes {
		t.Errorf("per-peer sums %+v, want the totals %d blocks, %d bytes", sum, st.Blocks, st.Bytes)
	}
	if log.n != int(fetched) || len(log.calls) != int(fetched) {
		t.Errorf("OnBlock called %d times for %d CIDs, want %d", log.n, len(log.calls), fetched)
	}
	for c, from := range log.calls {
		if !seeders[from] {
			t.Errorf("OnBlock(%s) from %q, not a seeder", c, from)
		}
	}
	for _, b := range blks[:2] {
		if _, ok := log.calls[b.Cid()]; ok {
			t.Errorf("OnBlock called for %s, which was held already", b.Cid())
		}
	}

	// Everything is held now: a second call fetches nothing.
	if _, err := sess.GetBlocks(ctx, cids); err != nil {
		t.Fatal(err)
	}
	if st2 := sess.Stats(); st2.Blocks != st.Blocks {
		t.Errorf("after a fully local GetBlocks, Stats.Blocks = %d, want %d", st2.Blocks, st.Blocks)
	}
}

// A fetch interrupted part of the way (its context cancelled, or its only
// seeder gone) keeps what arrived; fetching again asks only for the rest.
func TestSessionResume(t *testing.T) {
	for _, tt := range []struct {
		name string
		// closeSeeder: once `stop` blocks have arrived, the seeder is
		// closed before the fetch's context is cancelled.
		closeSeeder bool
	}{
		{"context cancelled", false},
		{"seeder closed", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const n, stop = 64, 10
			fetcher := newNode(t, Config{}, true)
			seeder := newNode(t, Config{}, true)
			blks, cids := makeBlocks(n, 32<<10)
			if err := seeder.ex.PutMany(t.Context(), blks); err != nil {
				t.Fatal(err)
			}
			connect(t, fetcher, seeder, "")

			ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
			defer cancel()
			fctx, interrupt := context.WithCancel(ctx)
			defer interrupt()
			seen := 0
			sess := fetcher.ex.NewSession(fctx, SessionOptions{OnBlock: func(peer.ID, cid.Cid, int) {
				if seen++; seen == stop {
					if tt.closeSeeder {
						if err := seeder.ex.Close(); err != nil {
							t.Error(err)
						}
						if err := seeder.host.Close(); err != nil {
							t.Error(err)
						}
						// With its only seeder gone the fetch would wait
						// for ctx; end it.
					}
					interrupt()
				}
			}})
			_, err := sess.GetBlocks(fctx, cids)
			sess.Close()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted GetBlocks: err = %v, want context.Canceled", err)
			}
			first := sess.Stats()
			held, err := fetcher.store.Count(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if int64(held) != first.Blocks || held < stop || held >= n {
				t.Fatalf("after the interruption: %d blocks held, session counted %d; want the same, in [%d, %d)", held, first.Blocks, stop, n)
			}

			// Resume, from a new seeder if the first is gone.
			if tt.closeSeeder {
				seeder = newNode(t, Config{}, true)
				if err := seeder.ex.PutMany(t.Context(), blks); err != nil {
					t.Fatal(err)
				}
				connect(t, fetcher, seeder, "")
			}
			sess = fetcher.ex.NewSession(ctx, SessionOptions{})
			defer sess.Close()
			got, err := sess.GetBlocks(ctx, cids)
			if err != nil {
				t.Fatalf("resumed GetBlocks: %v", err)
			}
			for i := range blks {
				checkSame(t, blks[i], got[i])
			}
			if st := sess.Stats(); st.Blocks != int64(n-held) {
				t.Errorf("resumed fetch got %d blocks from peers, want the %d missing", st.Blocks, n-held)
			}
			wantCount(t, fetcher.store, n)
		})
	}
}

func TestSessionNotRunning(t *testing.T) {
	n := newNode(t, Config{}, false)
	local := NewBlock([]byte("local"))
	if err := n.store.Put(t.Context(), local); err != nil {
		t.Fatal(err)
	}
	sess := n.ex.NewSession(t.Context(), SessionOptions{})
	defer sess.Close()
	if got, err := sess.GetBlocks(t.Context(), []cid.Cid{local.Cid()}); err != nil || got[0].Cid() != local.Cid() {
		t.Errorf("GetBlocks(local) = %v, %v; want the block", got, err)
	}
	absent := NewBlock([]byte("absent")).Cid()
	if _, err := sess.GetBlocks(t.Context(), []cid.Cid{absent}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("GetBlocks(absent) err = %v, want ErrNotRunning", err)
	}
}

// A closed session ends its pending calls.
func TestSessionClose(t *testing.T) {
	a := newNode(t, Config{}, true)
	b := newNode(t, Config{}, true)
	connect(t, b, a, "")
	sess := b.ex.NewSession(t.Context(), SessionOptions{})
	errc := make(chan error, 1)
	go func() {
		_, err := sess.GetBlocks(t.Context(), []cid.Cid{NewBlock([]byte("nobody has it")).Cid()})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the want go out
	sess.Close()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("pending GetBlocks after Close: err = %v, want context.Canceled", err)
	}
	if _, err := sess.GetBlocks(t.Context(), []cid.Cid{NewBlock([]byte("x")).Cid()}); !errors.Is(err, context.Canceled) {
		t.Errorf("GetBlocks after Close: err = %v, want context.Canceled", err)
	}
}

// Calls of one session that run at once, over overlapping CIDs (a
// reader's prefetching and its reads), each get their blocks; each block
// is counted once.
func TestSessionConcurrentCalls(t *testing.T) {
	fetcher := newNode(t, Config{}, true)
	seeder := newNode(t, Config{}, true)
	blks, cids := makeBlocks(40, 8<<10)
	if err := seeder.ex.PutMany(t.Context(), blks); err != nil {
		t.Fatal(err)
	}
	connect(t, fetcher, seeder, "")
	ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
	defer cancel()
	var log onBlockLog
	sess := fetcher.ex.NewSession(ctx, SessionOptions{OnBlock: log.add})
	defer sess.Close()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		// Calls i take cids[10i : 10i+20]: each overlaps the next.
		part := cids[10*i : min(10*i+20, len(cids))]
		wg.Go(func() {
			got, err := sess.GetBlocks(ctx, part)
			if err == nil {
				for j, c := range part {
					if got[j].Cid() != c {
						err = errors.New("blocks out of order")
					}
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if st := sess.Stats(); st.Blocks != int64(len(blks)) || log.n != len(blks) {
		t.Errorf("Stats.Blocks %d, OnBlock calls %d; want each of the %d blocks once", st.Blocks, log.n, len(blks))
	}
	if len(sess.wanted) != 0 {
		t.Errorf("%d wants left registered", len(sess.wanted))
	}
}

// A fetch under way when the exchange closes ends with ErrNotRunning, not
// with its context.
func TestSessionExchangeClosed(t *testing.T) {
	a := newNode(t, Config{}, true)
	b := newNode(t, Config{}, true)
	connect(t, b, a, "")
	sess := b.ex.NewSession(t.Context(), SessionOptions{})
	defer sess.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := sess.GetBlocks(t.Context(), []cid.Cid{NewBlock([]byte("nobody has it")).Cid()})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the want go out
	if err := b.ex.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrNotRunning) {
		t.Errorf("GetBlocks when the exchange closed: err = %v, want ErrNotRunning", err)
	}
}
