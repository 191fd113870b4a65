package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
)

// The follower: one goroutine that keeps the index of a store-role node
// caught up with its cell's chain. It runs a pass at start, on each of the
// chain's signals, when a read or a write asks (kick), and every
// Config.Poll (the roster may have changed: another cell, a lost role).
// A pass:
//
//  1. finds the index this node should have now: none without a cell or
//     the store role (an open one is closed); Dir/<cell id>/ otherwise,
//     opened when the chain has entries, when a read asked, or when it
//     exists on disk already (so that an empty store opens nothing);
//  2. checks that arrival Next-1 of the chain still has the CID the index
//     recorded, and before each batch that the arrival before it is the
//     one applied last: a removal's cut-off renumbers the arrivals, and
//     then the index is emptied and the chain applied again (logged);
//  3. applies the arrivals from Next in batches (Config.Batch arrivals
//     at most, read in chunks of ReadChunk until their payloads reach
//     Config.BatchBytes) until caught up.
//
// Reads and writes take the index under imu; catch-ups are serialised by
// amu (the follower, Reindex and a write waiting for its entry).

// follow is the follower's loop; it returns when ctx ends.
func (s *Service) follow(ctx context.Context) {
	defer s.wg.Done()
	watch, stop := s.chain.Watch()
	defer stop()
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		if err := s.pass(ctx, false); err != nil && ctx.Err() == nil {
			s.lmu.Lock()
			log, quiet := s.passLog.allow(s.cfg.Now())
			s.lmu.Unlock()
			if log {
				s.log.Warn("store index not caught up", "err", err, "notLogged", quiet)
			}
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-watch:
			if !ok {
				watch = nil // the replica closed: only the ticker and kicks now
			}
		case <-tick.C:
		case <-s.kick:
		}
	}
}

// kickFollower asks the follower for a pass soon.
func (s *Service) kickFollower() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// pass brings the index of the node's current cell up to date with its
// chain, opening it when there is something to index or open is set.
func (s *Service) pass(ctx context.Context, open bool) error {
	ix, err := s.index(ctx, open)
	if ix == nil || err != nil {
		return err
	}
	_, err = s.catchUp(ctx, ix)
	return err
}

// index returns the index of the node's current cell, opening it when
// there is something to index, when it exists on disk, or when open is
// set; nil (and no error) when the node keeps none now. It closes the
// index of a cell the node left.
func (s *Service) index(ctx context.Context, open bool) (*index.Index, error) {
	ro, me, rerr := s.roster()
	s.imu.Lock()
	defer s.imu.Unlock()
	if s.ixDone {
		return nil, ErrClosed
	}
	want := ""
	if rerr == nil && s.isStore(me) {
		want = s.cellID(ro)
	}
	if s.ix != nil && s.ixCell == want {
		return s.ix, nil
	}
	if s.ix != nil {
		if err := s.ix.Close(); err != nil {
			s.log.Warn("store index close", "cell", s.ixCell, "err", err)
		}
		s.log.Info("store index closed", "cell", s.ixCell, "now", cellOrNone(want))
		s.ix, s.ixCell = nil, ""
	}
	if want == "" {
		return nil, nil
	}
	dir := filepath.Join(s.cfg.Dir, want)
	if !open {
		if _, err := os.Stat(dir); err != nil {
			es, err := s.chain.Arrivals(ctx, 0, 1)
			if err != nil || len(es) == 0 {
				return nil, nil // nothing to index yet (or no chain to read)
			}
		}
	}
	ix, err := index.Open(dir, s.reg, s.cfg.Index)
	if err != nil {
		return nil, fmt.Errorf("store: open the index of cell %s: %w", want, err)
	}
	if ix.Emptied() {
		s.log.Warn("store index made for other schemas, or damaged: emptied, the chain is applied again", "cell", want)
	}
	s.log.Info("store index opened", "cell", want, "dir", dir)
	s.ix, s.ixCell = ix, want
	return ix, nil
}

// cellID returns ro's cell ID (Roster.ID, a hash of the cell's key),
// remembered for the last cell key asked: every read and write asks, and
// the hash was 1% of a write. The caller holds imu.
func (s *Service) cellID(ro *cell.Roster) string {
	if s.idKey == nil || !bytes.Equal(s.idKey, ro.Cell) {
		s.idKey, s.idOf = bytes.Clone(ro.Cell), ro.ID()
	}
	return s.idOf
}

func cellOrNone(id string) string {
	if id == "" {
		return "none"
	}
	return id
}

// catchUp applies the chain's arrivals that ix lacks and returns how many
// it applied. It empties ix first when the chain's arrival order changed
// under it (a removal's cut-off), and again when it changes while catchUp
// reads: each read also returns the arrival before the ones it asks for,
// whose CID must be the last one applied, so that a cut-off between two
// reads (or between the checkpoint and the first read) is seen before the
// renumbered arrivals are applied.
//
// When the index is the one the last catch-up left (caught), its
// checkpoint is known and not read from SQLite; then a catch-up with
// nothing to do, the chain's tip (from memory) being that arrival count
// with that last CID, reads nothing at all.
func (s *Service) catchUp(ctx context.Context, ix *index.Index) (uint64, error) {
	s.amu.Lock()
	defer s.amu.Unlock()
	if c := s.caught; c.ix == ix {
		n, last, err := s.chain.Tip(ctx)
		if err == nil && n == c.next && bytes.Equal(tipBytes(last), c.last) {
			return 0, nil
		}
		return s.catchUpFrom(ctx, ix, index.Checkpoint{Next: c.next, Last: c.last})
	}
	return s.catchUpLocked(ctx, ix)
}

// caughtUp is where the last catch-up left an index: the arrivals it
// holds (next) and the CID of the last (nil: none). Guarded by amu; a
// zero ix is no memo. Only catch-ups write the index, under amu; anything
// else that changes it (Reset) clears the memo first.
type caughtUp struct {
	ix   *index.Index
	next uint64
	last []byte
}

// tipBytes is a tip's CID as the index records it: nil for none.
func tipBytes(c cid.Cid) []byte {
	if !c.Defined() {
		return nil
	}
	return c.Bytes()
}

// catchUpLocked is catchUp for a caller that holds amu. It reads the
// index's checkpoint whatever the memo says, and leaves the memo where
// it caught up (none on an error).
func (s *Service) catchUpLocked(ctx context.Context, ix *index.Index) (uint64, error) {
	s.caught = caughtUp{}
	cp, err := ix.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	return s.catchUpFrom(ctx, ix, cp)
}

// catchUpFrom is catchUpLocked from checkpoint cp, which is ix's.
func (s *Service) catchUpFrom(ctx context.Context, ix *index.Index, cp index.Checkpoint) (uint64, error) {
	s.caught = caughtUp{}
	var applied uint64
	for try := 0; ; try++ {
		n, last, moved, err := s.applyFrom(ctx, ix, cp)
		applied += n
		if err == nil && !moved {
			s.caught = caughtUp{ix: ix, next: cp.Next + n, last: last}
		}
		if err != nil || !moved {
			return applied, err
		}
		if try == maxRestarts {
			return applied, errors.New("store: the chain's arrival order keeps changing under the index")
		}
		s.log.Warn("the chain's arrival order changed under the store index (a removed member's entries were dropped): reindexing",
			"indexed", cp.Next+n)
		if err := ix.Reset(ctx); err != nil {
			return applied, err
		}
		cp, applied = index.Checkpoint{}, 0
	}
}

// maxRestarts bounds how many times one catchUp starts again from an
// emptied index; past it the follower's next pass goes on.
const maxRestarts = 3

// ReadChunk is the most arrivals the follower asks the chain for at once:
// 64 entries of at most 256 KiB (chain.MaxPayload) are 16 MiB.
const ReadChunk = 64

// applyFrom applies the arrivals from checkpoint cp on, in batches, and
// reports moved (having applied nothing of the batch that showed it) when
// the arrival before a read is not the one applied or read last; last is
// the CID of the last arrival applied (cp's when none was).
func (s *Service) applyFrom(ctx context.Context, ix *index.Index, cp index.Checkpoint) (applied uint64, last []byte, moved bool, err error) {
	// The next batch is read from the chain (blocks, decryption) while the
	// index applies this one; applyFrom waits for every read it started.
	reads := make(chan readBatch, 1)
	go func() { reads <- s.readBatch(ctx, cp.Next, cp.Last) }()
	next, last := cp.Next, cp.Last
	for {
		b := <-reads
		if b.err != nil || b.moved || len(b.es) == 0 {
			return applied, last, b.moved, chainErr(b.err)
		}
		more := !b.last
		next += uint64(len(b.es))
		if more {
			from, last := next, b.es[len(b.es)-1].CID.Bytes()
			go func() { reads <- s.readBatch(ctx, from, last) }()
		}
		skips, err := ix.Apply(ctx, s.arrivals(b.es))
		if err != nil {
			if more {
				<-reads
			}
			return applied, last, false, err
		}
		for _, sk := range skips {
			s.skipped(sk)
		}
		applied += uint64(len(b.es))
		last = b.es[len(b.es)-1].CID.Bytes()
		if !more {
			return applied, last, false, nil
		}
	}
}

// readBatch is one batch read from the chain: its entries, whether they
// reach the chain's end (last), or why not (err, moved).
type readBatch struct {
	es    []replica.Entry
	last  bool
	moved bool
	err   error
}

// readBatch reads arrivals from on, in chunks of at most ReadChunk, until
// it holds Config.Batch of them, their payloads reach Config.BatchBytes,
// or the chain ends. Each chunk is read with the arrival before it, whose
// CID must be last (the CID of arrival from-1; nil when from is 0):
// else the chain's arrival order changed (moved).
func (s *Service) readBatch(ctx context.Context, from uint64, last []byte) readBatch {
	var b readBatch
	size := 0
	for len(b.es) < s.cfg.Batch && size < s.cfg.BatchBytes {
		n := min(ReadChunk, s.cfg.Batch-len(b.es))
		var es []replica.Entry
		var err error
		if from == 0 {
			es, err = s.chain.Arrivals(ctx, 0, n)
		} else {
			es, err = s.chain.Arrivals(ctx, from-1, n+1)
			if err == nil {
				if len(es) == 0 || !bytes.Equal(es[0].CID.Bytes(), last) {
					return readBatch{moved: true}
				}
				es = es[1:]
			}
		}
		if err != nil {
			return readBatch{err: err}
		}
		b.es = append(b.es, es...)
		if len(es) < n {
			b.last = true
			return b
		}
		for _, e := range es {
			size += len(e.Payload)
		}
		from += uint64(n)
		last = es[n-1].CID.Bytes()
	}
	return b
}

// chainErr makes a chain without a cell no failure of the index.
func chainErr(err error) error {
	if errors.Is(err, replica.ErrNoCell) || errors.Is(err, replica.ErrRemoved) {
		return nil
	}
	return err
}

// arrivals converts the chain's entries for the index; an entry of this
// service's own commits is marked Validated (see own).
func (s *Service) arrivals(es []replica.Entry) []index.Arrival {
	as := make([]index.Arrival, len(es))
	s.omu.Lock()
	defer s.omu.Unlock()
	for i, e := range es {
		c := e.CID.Bytes()
		as[i] = index.Arrival{Index: e.Index, CID: c, Pos: store.Pos{Clock: e.Pos.Clock, Key: string(e.Pos.CID.Bytes())}, Payload: e.Payload,
			Validated: s.own.has(e.CID)}
	}
	return as
}

// skipped logs a skipped entry, at most skipLogBurst per skipLogWindow: a
// hostile member can fill the chain with bad entries, not the log. The
// index counts them all (Status.Skipped).
func (s *Service) skipped(sk index.Skip) {
	now := s.cfg.Now()
	s.lmu.Lock()
	log, quiet := s.skipLog.allow(now)
	s.lmu.Unlock()
	if quiet > 0 {
		s.log.Warn("store entries skipped and not logged", "count", quiet)
	}
	if log {
		s.log.Warn("store entry skipped", "reason", sk.Reason, "entry", sk.Index, "tx", sk.Tx, "err", sk.Err)
	}
}

// Skipped entries logged at most skipLogBurst times per skipLogWindow.
const (
	skipLogBurst  = 10
	skipLogWindow = time.Minute
)

// limiter allows skipLogBurst events per window and counts the others.
type limiter struct {
	start time.Time
	n     int
	quiet int
}

// allow reports whether the event at now is to be logged, and how many
// were not since the last window ended (reported once, with the first
// event of a new window).
func (l *limiter) allow(now time.Time) (ok bool, quiet int) {
	if now.Sub(l.start) >= skipLogWindow || now.Before(l.start) {
		quiet, l.start, l.n, l.quiet = l.quiet, now, 0, 0
	}
	if l.n < skipLogBurst {
		l.n++
		return true, quiet
	}
	l.quiet++
	return false, quiet
}
