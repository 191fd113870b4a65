package blocks

import (
	"context"
	"fmt"
	"maps"
	"sync"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A session wants the missing blocks of a GetBlocks call in chunks of
// wantChunk, each in a bitswap session of its own, with at most
// wantWindow blocks wanted and not yet arrived.
//
// Why not one bitswap session for the whole DAG: a bitswap session learns
// its peers only from answers to its first, broadcast wants, and drops an
// answer that comes after the block it was about (the root of a DAG is
// small, so the first seeder's block beats the others' HAVEs); from then
// on it sends every want-block to the peers it knows, so a fetch from
// three seeders ran from one (exopeer-sim blob: 1.0x). A fresh session per
// chunk broadcasts a want-have for the chunk to every connected peer and
// sends the want-blocks to the first to answer HAVE, which is the seeder
// whose link is least loaded (its answer waits behind fewer blocks): the
// chunks spread over the seeders by load, at the cost of one round trip
// per chunk, hidden by the window. A small window keeps the spreading by
// load: with 48 blocks a whole 32 MiB blob was asked at once, of idle
// links, and often all of it went to one seeder (exopeer-sim blob and
// TestBlobScenario, chunks of 2 and 4, windows of 16 to 96: 4 and 16 did
// best, docs/simnet.md).
//
// With a single peer to ask there is nothing to spread: the chunks and
// the window are then soloChunk and soloWindow, which save most of the
// round trips (BenchmarkFetchLoopback, one seeder over loopback TCP, three
// runs each at load 4: 352-439 MiB/s against 220-268 with 4 and 16).
const (
	wantChunk  = 4
	wantWindow = 16
	soloChunk  = 16
	soloWindow = 64
)

// storeBatch is the most fetched blocks stored in one datastore batch; a
// batch is also stored whenever no further block is waiting, so what has
// arrived is on disk before the fetch waits for more.
const storeBatch = 64

// SessionOptions configures a Session.
type SessionOptions struct {
	// OnBlock, if not nil, is called for each block the session fetched
	// from a peer and stored (not for blocks already stored), with the
	// peer that delivered it ("" if unknown), from the goroutine of the
	// GetBlocks call that fetched it. It must not block for long.
	OnBlock func(from peer.ID, c cid.Cid, size int)
	// Public says the DAG is a public blob: the blocks the session wants
	// may be asked of any connected peer while it wants them. Otherwise
	// they go only to the peers the Gate's askers allow.
	Public bool
	// Peers, if not empty, may be asked for the blocks the session wants
	// while it wants them, besides the peers the Gate's askers allow: the
	// devices of a contact that shared a blob with this node. They are
	// asked only for this session's wants, nothing else.
	Peers []peer.ID
}

// PeerStats counts the blocks one peer delivered to a session.
type PeerStats struct {
	Blocks, Bytes int64
}

// SessionStats counts the blocks a session fetched from peers (not those
// it read from the store), in all and per delivering peer.
type SessionStats struct {
	Blocks, Bytes int64
	Peers         map[peer.ID]PeerStats
}

// A Session fetches the blocks of one DAG (a blob) from the peers that
// have them, in bitswap sessions of a few blocks each (see wantChunk),
// spread over the peers by how loaded their links are. It is safe for concurrent use: several GetBlocks calls may run at
// once (a reader's prefetching).
type Session struct {
	ex      *Exchange
	opts    SessionOptions
	ctx     context.Context
	cancel  context.CancelFunc
	running bool // the exchange was running when the session began

	// wanted is guarded by ex.watch.mu: the CIDs that calls of this
	// session wait for, with who delivered them.
	wanted map[cid.Cid]*sessionWant

	mu    sync.Mutex // guards stats
	stats SessionStats
}

// sessionWant is one CID a session waits for.
type sessionWant struct {
	calls   int     // GetBlocks calls waiting for it
	from    peer.ID // the peer whose message brought it first
	counted bool    // counted in the stats already
}

// NewSession returns a session that lives until ctx ends or Close. It
// sends nothing until GetBlocks asks for missing blocks. On an exchange
// that is not running, the session reads stored blocks only.
func (e *Exchange) NewSession(ctx context.Context, o SessionOptions) *Session {
	sctx, cancel := context.WithCancel(ctx)
	s := &Session{
		ex:     e,
		opts:   o,
		ctx:    sctx,
		cancel: cancel,
		wanted: make(map[cid.Cid]*sessionWant),
		stats:  SessionStats{Peers: make(map[peer.ID]PeerStats)},
	}
	s.running = e.running() != nil
	return s
}

// Close ends the session: its pending GetBlocks calls return with an
// error, and bitswap cancels its wants. Blocks fetched so far stay stored.
// It is idempotent. (Bitswap's session goroutines exit shortly after.)
func (s *Session) Close() { s.cancel() }

// Stats returns what the session has fetched so far. The map is the
// caller's.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Peers = maps.Clone(s.stats.Peers)
	return st
}

// GetBlocks returns the blocks for cs, in the order of cs (a repeated CID
// gives the same block twice). Stored blocks are read locally; the missing
// ones are all wanted at once in the session, and each is stored as it
// arrives (verified), so a fetch that ends early keeps what it got and a
// later one asks only for the rest. It blocks until all are there, or ctx
// or the session ends: then it returns an error naming how many of the
// missing blocks arrived. A stored record that fails verification is
// deleted and fetched like a missing block (logged once, with its CID); on
// an exchange that is not running it gives an error wrapping ErrCorrupt
// instead. It does not modify cs; the blocks are the
// caller's. It satisfies blob.BlockGetter.
func (s *Session) GetBlocks(ctx context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	out := make([]blockformat.Block, len(cs))
	want := make(map[cid.Cid]struct{})
	var missing []cid.Cid
	// A session that can fetch treats a corrupt stored block as missing
	// (see getOrMissing); one that cannot reports it.
	read := s.ex.getOrMissing
	if !s.running || s.ex.running() == nil {
		read = s.ex.storedOrMissing
	}
	for i, c := range cs {
		if _, dup := want[c]; dup {
			continue
		}
		b, err := read(ctx, c)
		switch {
		case err != nil:
			return nil, err
		case b != nil:
			out[i] = b
		default:
			want[c] = struct{}{}
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	got, err := s.fetch(ctx, missing, want)
	if err != nil {
		return nil, err
	}
	for i, c := range cs {
		if out[i] == nil {
			out[i] = got[c]
		}
	}
	return out, nil
}

// fetch fetches missing (whose set is want) in the session and stores
// each block as it arrives.
func (s *Session) fetch(ctx context.Context, missing []cid.Cid, want map[cid.Cid]struct{}) (map[cid.Cid]blockformat.Block, error) {
	bs := s.ex.running()
	if !s.running || bs == nil {
		return nil, fmt.Errorf("blocks: fetch %d blocks: %w", len(missing), ErrNotRunning)
	}
	if err := s.ctx.Err(); err != nil {
		return nil, fmt.Errorf("blocks: fetch %d blocks: session ended: %w", len(missing), err)
	}
	// The call's context ends with the session's too.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	done := s.ex.watch.want(s, missing)
	defer done()
	if s.opts.Public {
		defer s.ex.public.add(missing)()
	}
	if len(s.opts.Peers) > 0 {
		defer s.ex.named.add(s.opts.Peers, missing)()
	}
	arrived := make(chan blockformat.Block)
	// ended gets each chunk whose bitswap channel closed, after its
	// blocks: one closed short means bitswap stopped.
	ended := make(chan []cid.Cid)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the forwarders end with cctx
	defer cancel()
	next, inflight := 0, 0
	size, window := wantChunk, wantWindow
	if s.askable(missing[0]) == 1 {
		size, window = soloChunk, soloWindow
	}
	// ask wants the next chunk of missing in the bitswap session and
	// forwards its blocks to arrived.
	ask := func() error {
		chunk := missing[next:min(next+size, len(missing))]
		// A bitswap session of the chunk's own: it ends with the chunk.
		kctx, kcancel := context.WithCancel(cctx)
		ch, err := bs.NewSession(kctx).GetBlocks(kctx, chunk)
		if err != nil {
			kcancel()
			return err
		}
		next += len(chunk)
		inflight += len(chunk)
		wg.Go(func() {
			defer kcancel()
			for b := range ch {
				select {
				case arrived <- b:
				case <-cctx.Done():
					return
				}
			}
			select {
			case ended <- chunk:
			case <-cctx.Done():
			}
		})
		return nil
	}

	got := make(map[cid.Cid]blockformat.Block, len(missing))
	var batch []blockformat.Block
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// What arrived is kept even when the call is ending.
		if err := s.ex.keep(context.WithoutCancel(ctx), bs, batch); err != nil {
			return err
		}
		for _, b := range batch {
			s.count(b)
		}
		batch = batch[:0]
		return nil
	}
loop:
	for len(got) < len(missing) {
		for next < len(missing) && inflight+size <= window {
			if err := ask(); err != nil {
				return nil, fmt.Errorf("blocks: fetch %d blocks: %w", len(missing), err)
			}
		}
		var fb blockformat.Block
		var chunk []cid.Cid
		select {
		case fb = <-arrived:
		case chunk = <-ended:
		default:
			if err := flush(); err != nil {
				return nil, fmt.Errorf("blocks: fetch %d blocks: %w", len(missing), err)
			}
			select {
			case fb = <-arrived:
			case chunk = <-ended:
			case <-cctx.Done():
				break loop
			}
		}
		if chunk != nil {
			for _, c := range chunk {
				if _, ok := got[c]; !ok {
					break loop // its session ended without it: bitswap stopped
				}
			}
			continue
		}
		c := fb.Cid()
		if _, ok := want[c]; !ok {
			continue
		}
		if _, dup := got[c]; dup {
			continue
		}
		got[c] = fb
		inflight--
		batch = append(batch, fb)
		if len(batch) >= storeBatch {
			if err := flush(); err != nil {
				return nil, fmt.Errorf("blocks: fetch %d blocks: %w", len(missing), err)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, fmt.Errorf("blocks: fetch %d blocks: %w", len(missing), err)
	}
	if len(got) < len(missing) {
		err := ctx.Err()
		switch {
		case err != nil:
		case s.ctx.Err() != nil:
			err = fmt.Errorf("session ended: %w", s.ctx.Err())
		default:
			err = ErrNotRunning // bitswap closed
		}
		return nil, fmt.Errorf("blocks: fetched %d of %d blocks: %w", len(got), len(missing), err)
	}
	return got, nil
}

// count adds a stored fetched block to the stats and tells OnBlock.
func (s *Session) count(b blockformat.Block) {
	from, first := s.ex.watch.delivered(s, b.Cid())
	if !first {
		return
	}
	n := len(b.RawData())
	s.mu.Lock()
	s.stats.Blocks++
	s.stats.Bytes += int64(n)
	if from != "" {
		ps := s.stats.Peers[from]
		ps.Blocks++
		ps.Bytes += int64(n)
		s.stats.Peers[from] = ps
	}
	s.mu.Unlock()
	if s.opts.OnBlock != nil {
		s.opts.OnBlock(from, b.Cid(), n)
	}
}

// askable counts the connected peers the gate lets this node ask for c,
// stopping at 2: a fetch whose blocks only one peer can be asked for needs
// no spreading (see soloChunk).
func (s *Session) askable(c cid.Cid) int {
	n := 0
	for _, p := range s.ex.host.Network().Peers() {
		if s.ex.gate.MayAsk(p, c) {
			if n++; n == 2 {
				break
			}
		}
	}
	return n
}
