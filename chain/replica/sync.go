package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/gossip"
	"github.com/exopeer/exopeer/internal/ambient"
	"github.com/exopeer/exopeer/internal/growbuf"
)

// ProtocolSync is the have/want exchange: the package chain documentation
// describes its messages.
const ProtocolSync = "/exopeer/chain/sync/1.0.0"

// frameTarget is the size at which a server closes a frame of entries.
const frameTarget = 1 << 20

// Topic is the gossip topic the replica rides on (it is a
// gossip.StateHandler, registered by the node's wiring): its
// announcements, at most chain.MaxAnnounce bytes, go as broadcasts and as
// its push/pull state.
const Topic = "chain"

// HandleMessage takes a member's broadcast on Topic. It does not block:
// the message is queued, or dropped if the queue is full (the next
// announcement or the anti-entropy round makes up for it).
func (r *Replica) HandleMessage(msg []byte) { r.enqueue(msg) }

// MergeState takes a member's push/pull state on Topic. It copies buf and
// does not block.
func (r *Replica) MergeState(buf []byte) { r.enqueue(slices.Clone(buf)) }

// LocalState returns this node's announcement for push/pull exchanges on
// Topic. It does not block.
func (r *Replica) LocalState() []byte {
	if b := r.announce.Load(); b != nil {
		return *b
	}
	return nil
}

func (r *Replica) enqueue(msg []byte) {
	select {
	case r.inbox <- msg:
	default:
	}
}

// inboxLoop handles the announcements members sent.
func (r *Replica) inboxLoop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case msg := <-r.inbox:
			r.heard(msg)
		}
	}
}

// heard records a member's announcement and schedules a pull if the member
// holds entries this node lacks.
func (r *Replica) heard(msg []byte) {
	a, err := chain.DecodeAnnounce(msg)
	if err != nil {
		r.log.Debug("bad chain announcement", "err", err)
		return
	}
	ro := r.cell.Roster()
	if a.From == r.self || ro == nil || !ro.Has(a.From) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.AnnouncesSeen++
	r.remotes[a.From] = &remote{ann: a, heard: r.cfg.Now()}
	st, err := r.stateLocked(r.ctx)
	if err != nil {
		return
	}
	if st.Ahead(a.Vector, a.Digests) || a.Len > uint64(st.Len()) {
		r.scheduleLocked(a.From)
	}
}

// scheduleLocked queues a pull from id; if one is running, another runs
// after it.
func (r *Replica) scheduleLocked(id peer.ID) {
	if r.quietLocked(id) {
		return
	}
	if _, running := r.pulling[id]; running {
		r.pulling[id] = true
		return
	}
	select {
	case r.pulls <- id:
	default:
	}
}

// announceLoop tells the cell about the chain after every change,
// coalescing bursts.
func (r *Replica) announceLoop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.changed:
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(r.cfg.AnnounceDelay):
		}
		r.mu.Lock()
		st := r.st
		var msg []byte
		if st != nil {
			// keep ranks authors by their latest entry, in case the
			// vector does not fit in one announcement.
			var last map[peer.ID]uint64
			keep := func(id peer.ID) uint64 {
				if last == nil {
					last = make(map[peer.ID]uint64)
					for _, m := range st.Arrivals(0, st.Len()) {
						last[m.Author] = max(last[m.Author], m.Clock)
					}
				}
				return last[id]
			}
			msg = chain.EncodeAnnounce(chain.Announce{From: r.self, Len: uint64(st.Len()), Vector: st.Vector(), Digests: st.Digests()}, keep)
			r.announce.Store(&msg)
			r.stats.AnnouncesSent++
		}
		r.mu.Unlock()
		if msg != nil {
			if err := r.cell.Broadcast(Topic, msg); err != nil {
				r.log.Debug("chain announcement not sent", "err", err)
			}
		}
	}
}

// syncLoop runs the pulls that announcements ask for, and every
// SyncInterval one pull from a random live member.
func (r *Replica) syncLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.SyncInterval)
	defer tick.Stop()
	slots := make(chan struct{}, r.cfg.MaxPulls)
	for {
		var id peer.ID
		select {
		case <-r.ctx.Done():
			return
		case id = <-r.pulls:
		case <-tick.C:
			if id = r.randomMember(); id == "" {
				continue
			}
		}
		r.mu.Lock()
		_, busy := r.pulling[id]
		if !busy {
			r.pulling[id] = false
		}
		r.mu.Unlock()
		if busy {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-slots }()
			err := r.Pull(r.ctx, id)
			r.mu.Lock()
			again := r.pulling[id]
			delete(r.pulling, id)
			if again && err == nil {
				r.scheduleLocked(id)
			}
			r.mu.Unlock()
			if err != nil && r.ctx.Err() == nil {
				r.log.Debug("chain pull failed", "peer", id, "err", err)
			}
		}()
	}
}

// randomMember returns a random live member other than this node, or "".
func (r *Replica) randomMember() peer.ID {
	g := r.cell.Gossip()
	if g == nil {
		return ""
	}
	var alive []peer.ID
	for _, m := range g.Members() {
		if m.ID != r.self && (m.State == gossip.StateAlive || m.State == gossip.StateSuspect) {
			alive = append(alive, m.ID)
		}
	}
	if len(alive) == 0 {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return alive[r.rng.IntN(len(alive))]
}

// misbehaved cuts a member off sync for BanTime and closes its
// connections.
func (r *Replica) misbehaved(id peer.ID, why error) {
	r.mu.Lock()
	r.banned[id] = r.cfg.Now().Add(r.cfg.BanTime)
	r.stats.Banned++
	r.stats.LastBanned, r.stats.LastBannedBecause = id, why.Error()
	r.mu.Unlock()
	r.log.Warn("member cut off from chain sync", "peer", id, "for", r.cfg.BanTime, "err", why)
	_ = r.h.Network().ClosePeer(id)
}

func (r *Replica) isBanned(id peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.banned[id]
	if ok && r.cfg.Now().After(until) {
		delete(r.banned, id)
		return false
	}
	return ok
}

// errMisbehaved marks the errors for which a member is cut off.
var errMisbehaved = errors.New("chain: member sent bad sync data")

// Pull asks member id for every entry this node lacks and adds what it
// gets, batch by batch, as it arrives: one round trip. It blocks until the
// member is done, the exchange fails or ctx ends.
func (r *Replica) Pull(ctx context.Context, id peer.ID) error {
	if r.isBanned(id) {
		return fmt.Errorf("chain: %s is cut off from sync", id)
	}
	// As serve asks of its requester: a removed member still holds the
	// secrets of the epochs it may write in, and could sign entries there.
	if ro := r.cell.Roster(); ro == nil || !ro.Has(id) {
		return fmt.Errorf("chain: %s is not a member of the cell", id)
	}
	r.mu.Lock()
	st, err := r.stateLocked(ctx)
	var req []byte
	if err == nil {
		req = chain.EncodeRequest(chain.Request{Len: uint64(st.Len()), Vector: st.Vector(), Digests: st.Digests()})
		r.stats.Pulls++
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	err = r.pull(ctx, id, req)
	if err != nil {
		r.mu.Lock()
		r.stats.PullErrors++
		r.mu.Unlock()
		if errors.Is(err, errMisbehaved) {
			r.misbehaved(id, err)
		}
	}
	return err
}

func (r *Replica) pull(ctx context.Context, id peer.ID, req []byte) error {
	s, err := r.h.NewStream(network.WithAllowLimitedConn(ctx, "chain sync"), id, ProtocolSync)
	if err != nil {
		return fmt.Errorf("chain: open sync stream: %w", err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	_ = s.SetWriteDeadline(ambient.Deadline(r.cfg.IdleTimeout))
	msg := binary.AppendUvarint(nil, uint64(len(req)))
	if _, err := s.Write(append(msg, req...)); err != nil {
		_ = s.Reset()
		return fmt.Errorf("chain: send sync request: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return fmt.Errorf("chain: send sync request: %w", err)
	}
	br := bufio.NewReaderSize(s, 64<<10)
	var buf []byte
	for {
		_ = s.SetReadDeadline(ambient.Deadline(r.cfg.IdleTimeout))
		kind, body, err := chain.ReadFrame(br, buf)
		if err != nil {
			_ = s.Reset()
			if errors.Is(err, chain.ErrMalformed) || errors.Is(err, chain.ErrFrameTooLarge) {
				return fmt.Errorf("%w: %w", errMisbehaved, err)
			}
			return fmt.Errorf("chain: read sync answer: %w", err)
		}
		buf = body[:0]
		if kind == chain.FrameDone {
			n, err := chain.DecodeDone(body)
			if err != nil {
				_ = s.Reset()
				return fmt.Errorf("%w: %w", errMisbehaved, err)
			}
			r.log.Debug("chain pull done", "peer", id, "theirLength", n)
			return nil
		}
		blocks, err := chain.DecodeEntries(body)
		if err != nil {
			_ = s.Reset()
			return fmt.Errorf("%w: %w", errMisbehaved, err)
		}
		if err := r.receive(ctx, id, blocks); err != nil {
			_ = s.Reset()
			return err
		}
	}
}

// receive decodes and verifies a batch from member from, then adds and
// stores what joins the chain.
func (r *Replica) receive(ctx context.Context, from peer.ID, raw [][]byte) error {
	ro, keys := r.cell.Roster(), r.cell.Keys()
	if ro == nil {
		return ErrNoCell
	}
	entries, errs := decodeAll(raw)
	for i, e := range entries {
		if e == nil {
			return r.reject(from, "", errs[i])
		}
	}
	skip, forked, err := r.triage(ctx, entries)
	if err != nil {
		return err
	}
	verifyAll(entries, errs, skip, ro, secrets(keys))
	verified := make([]*chain.Entry, 0, len(raw))
	deferred, past := 0, 0
	for i, e := range entries {
		switch err := errs[i]; {
		case skip[i]:
		case chain.Deferred(err):
			deferred++
		case errors.Is(err, chain.ErrPastCutoff):
			past++ // from may not know of the removal yet
		case err != nil:
			return r.reject(from, e.Author, fmt.Errorf("entry %s: %w", e.CID(), err))
		default:
			verified = append(verified, e)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Deferred += uint64(deferred)
	r.stats.ForkRefused += uint64(forked)
	r.stats.PastCutoff += uint64(past)
	st, err := r.stateLocked(ctx)
	if err != nil {
		return err
	}
	if string(st.Cell()) != string(ro.Cell) {
		return ErrNoCell
	}
	verified = r.dropPastCutoffLocked(verified)
	rd := st.Add(verified)
	r.stats.WaitingDropped += uint64(rd.Dropped)
	r.stats.WaitingDroppedAuthor += uint64(rd.DroppedAuthor)
	for _, f := range rd.Forks {
		r.log.Warn("forked author: two entries with one sequence number", "author", f.Author, "seq", f.Seq, "entries", f.CIDs)
	}
	if err := persist(ctx, r.blocks, st, ro, rd.Accepted, false); err != nil {
		r.dropLocked()
		return err
	}
	r.stats.Received += uint64(len(rd.Accepted))
	if past > 0 && len(rd.Accepted) == 0 {
		r.hushLocked(from)
	}
	if len(rd.Accepted) > 0 {
		r.signalLocked()
	}
	// An entry refused as a fork past the two kept breaks no rule by
	// itself: the member may be relaying it. Count it, and go on.
	invalid := slices.DeleteFunc(rd.Rejected, func(x chain.Rejected) bool { return errors.Is(x.Err, chain.ErrForked) })
	if forked := len(rd.Rejected) - len(invalid); forked > 0 {
		r.stats.ForkRefused += uint64(forked)
		r.log.Debug("forked entries refused", "from", from, "entries", forked)
	}
	if len(invalid) > 0 {
		x := invalid[0]
		r.rejectLocked(from, x.Author, fmt.Errorf("entry %s: %w", x.CID, x.Err), uint64(len(invalid)))
		return fmt.Errorf("%w: entry %s: %w", errMisbehaved, x.CID, x.Err)
	}
	return nil
}

// triage marks the decoded entries not worth verifying: those held
// already (or waiting), and those that could only widen a fork past the
// two kept, which Add would refuse anyway (ErrForked); it returns how many
// of those. A flood of forks then costs a decode per entry, not a
// signature check and a decryption.
func (r *Replica) triage(ctx context.Context, entries []*chain.Entry) (skip []bool, forked int, err error) {
	type slot struct {
		author peer.ID
		seq    uint64
	}
	skip = make([]bool, len(entries))
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stateLocked(ctx)
	if err != nil {
		return nil, 0, err
	}
	batch := make(map[slot]int)
	for i, e := range entries {
		if st.Has(e.CID(), true) {
			skip[i] = true
			continue
		}
		k := slot{e.Author, e.Seq}
		if st.Held(e.Author, e.Seq)+batch[k] >= chain.MaxForkWidth {
			skip[i] = true
			forked++
			continue
		}
		batch[k]++
	}
	return skip, forked, nil
}

// decodeAll decodes a batch on every core. entries[i] is nil when raw[i]
// does not decode, and errs[i] says why.
func decodeAll(raw [][]byte) ([]*chain.Entry, []error) {
	entries := make([]*chain.Entry, len(raw))
	errs := make([]error, len(raw))
	parallel(len(raw), func(i int) { entries[i], errs[i] = chain.Decode(raw[i]) })
	return entries, errs
}

// verifyAll verifies the decoded entries not skipped on every core;
// errs[i] says why entries[i] was not verified.
func verifyAll(entries []*chain.Entry, errs []error, skip []bool, ro *cell.Roster, sec chain.Secrets) {
	parallel(len(entries), func(i int) {
		if !skip[i] {
			_, errs[i] = chain.Verify(entries[i], ro.Cell, ro, sec)
		}
	})
}

// parallel runs f(0), ..., f(n-1) on every core, 32 or more each.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+31)/32)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				f(i)
			}
		})
	}
	wg.Wait()
}

func (r *Replica) reject(from, author peer.ID, err error) error {
	r.mu.Lock()
	r.rejectLocked(from, author, err, 1)
	r.mu.Unlock()
	return fmt.Errorf("%w: %w", errMisbehaved, err)
}

func (r *Replica) rejectLocked(from, author peer.ID, err error, n uint64) {
	r.stats.Rejected += n
	r.stats.LastRejected, r.stats.LastRejectedAuthor, r.stats.LastRejectedFrom = err.Error(), author, from
	r.stats.LastRejectedAt = r.cfg.Now()
	r.log.Warn("chain entry refused", "from", from, "author", author, "err", err)
}

// serve answers a member's Request with every entry it lacks.
func (r *Replica) serve(s network.Stream) {
	defer s.Close()
	id := s.Conn().RemotePeer()
	ro := r.cell.Roster()
	if ro == nil || !ro.Has(id) || !ro.Has(r.self) || r.isBanned(id) {
		_ = s.Reset()
		return
	}
	_ = s.SetReadDeadline(ambient.Deadline(r.cfg.IdleTimeout))
	q, err := readRequest(bufio.NewReader(s))
	if err != nil {
		_ = s.Reset()
		// A stream that failed (a partition, a crash) is no fault of
		// the member's.
		if errors.Is(err, chain.ErrMalformed) || errors.Is(err, chain.ErrFrameTooLarge) {
			r.misbehaved(id, err)
		}
		return
	}
	r.mu.Lock()
	st, err := r.stateLocked(r.ctx)
	var missing []cid.Cid
	var length int
	if err == nil {
		missing = st.Missing(q.Vector, q.Digests)
		length = st.Len()
		if st.Ahead(q.Vector, q.Digests) || q.Len > uint64(length) {
			r.scheduleLocked(id)
		}
		r.stats.Served++
	}
	r.mu.Unlock()
	if err != nil {
		_ = s.Reset()
		return
	}
	if err := r.send(s, missing, length); err != nil {
		_ = s.Reset()
		r.log.Debug("chain sync answer failed", "peer", id, "err", err)
	}
}

func readRequest(br *bufio.Reader) (chain.Request, error) {
	n, err := chain.ReadLength(br)
	if err == io.EOF {
		err = cutShort("sync request length", io.ErrUnexpectedEOF)
	}
	if err != nil {
		return chain.Request{}, err
	}
	if n > uint64(chain.MaxRequest) {
		return chain.Request{}, fmt.Errorf("%w: request of %d bytes", chain.ErrFrameTooLarge, n)
	}
	b, err := growbuf.ReadFull(br, int(n), nil)
	if err != nil {
		return chain.Request{}, cutShort("sync request", err)
	}
	return chain.DecodeRequest(b)
}

// cutShort is the error of a read that failed in the middle of a request:
// ErrMalformed if the member ended its stream there, the read's own error
// if the stream failed.
func cutShort(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w %s: %v", chain.ErrMalformed, what, err)
	}
	return fmt.Errorf("chain: %s: %w", what, err)
}

// send streams entries in frames of about frameTarget bytes, then the
// done frame.
func (r *Replica) send(s network.Stream, cs []cid.Cid, length int) error {
	bw := bufio.NewWriterSize(s, 64<<10)
	var batch [][]byte
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_ = s.SetWriteDeadline(ambient.Deadline(r.cfg.IdleTimeout))
		if _, err := bw.Write(chain.AppendFrame(nil, chain.FrameEntries, chain.EntriesBody(batch))); err != nil {
			return err
		}
		r.mu.Lock()
		r.stats.Sent += uint64(len(batch))
		r.mu.Unlock()
		batch, size = batch[:0], 0
		return nil
	}
	for _, c := range cs {
		b, err := r.blocks.Get(r.ctx, c)
		if err != nil {
			return err
		}
		if size+len(b.RawData()) > frameTarget {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, b.RawData())
		size += len(b.RawData()) + 4
	}
	if err := flush(); err != nil {
		return err
	}
	_ = s.SetWriteDeadline(ambient.Deadline(r.cfg.IdleTimeout))
	if _, err := bw.Write(chain.AppendFrame(nil, chain.FrameDone, chain.DoneBody(uint64(length)))); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return s.CloseWrite()
}
