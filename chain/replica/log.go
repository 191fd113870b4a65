package replica

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/gossip"
)

// Entry is an entry of the chain as a reader sees it: decrypted, with its
// place in the chain's order and in this node's arrival order.
type Entry struct {
	CID     cid.Cid
	Pos     chain.Pos
	Index   uint64 // arrival order on this node, from 0
	Author  peer.ID
	Seq     uint64
	Clock   uint64
	Epoch   uint64
	Parents []cid.Cid
	Payload []byte // the plaintext
}

// Append writes payload as this node's next entry and stores it (synced to
// disk) before it returns. It works offline: nothing is sent before the
// announcement that follows.
func (r *Replica) Append(ctx context.Context, payload []byte) (Entry, error) {
	es, err := r.AppendMany(ctx, [][]byte{payload})
	if err != nil {
		return Entry{}, err
	}
	return es[0], nil
}

// AppendMany writes payloads as this node's next entries, in order, and
// stores them in one synced batch: one disk sync for all. The entries'
// plaintext is kept in a bounded cache (see recent), so that reading them
// back soon (Arrivals, Log) reads nothing from disk. payloads is not
// retained; the Payload of each Entry returned is its payload.
func (r *Replica) AppendMany(ctx context.Context, payloads [][]byte) ([]Entry, error) {
	if len(payloads) == 0 {
		return nil, nil
	}
	for _, p := range payloads {
		if len(p) > chain.MaxPayload {
			return nil, fmt.Errorf("chain: payload of %d bytes, limit %d (put large data in a blob)", len(p), chain.MaxPayload)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stateLocked(ctx)
	if err != nil {
		return nil, err
	}
	ro, keys := r.cell.Roster(), r.cell.Keys()
	secret, ok := secrets(keys)(ro.Epoch)
	if !ok {
		return nil, fmt.Errorf("chain: no cell secret for epoch %d", ro.Epoch)
	}
	var added []*chain.Entry
	for _, p := range payloads {
		e, err := chain.Write(st.Next(r.self, ro.Cell, ro.Epoch), r.key, secret, p, r.cfg.Rand)
		if err == nil {
			rd := st.Add([]*chain.Entry{e})
			if len(rd.Accepted) != 1 {
				err = fmt.Errorf("chain: own entry refused: %v", rd.Rejected)
			}
		}
		if err != nil {
			if len(added) > 0 {
				r.dropLocked() // added to st, never stored
			}
			return nil, err
		}
		added = append(added, e)
	}
	if err := persist(ctx, r.blocks, st, ro, added, true); err != nil {
		r.dropLocked()
		return nil, err
	}
	r.signalLocked()
	out := make([]Entry, len(added))
	for i, e := range added {
		out[i] = view(st, e, payloads[i])
		r.recent.add(out[i])
	}
	return out, nil
}

// dropLocked forgets the in-memory chain after a failed write, so that the
// next use reloads what the store holds, and the recent cache with it.
func (r *Replica) dropLocked() {
	r.st = nil
	r.recent.reset()
}

func view(st *chain.State, e *chain.Entry, plaintext []byte) Entry {
	out := Entry{
		CID: e.CID(), Pos: e.Pos(), Author: e.Author, Seq: e.Seq, Clock: e.Clock,
		Epoch: e.Epoch, Parents: e.Parents, Payload: plaintext,
	}
	if m, ok := st.Meta(e.CID()); ok {
		out.Index = m.Index
	}
	return out
}

// Log returns up to limit entries in chain order after the position after
// (the zero Pos: from the start). An entry that arrives later may take a
// place before a reader's cursor; Arrivals is the order that only grows.
func (r *Replica) Log(ctx context.Context, after chain.Pos, limit int) ([]Entry, error) {
	r.mu.Lock()
	st, err := r.stateLocked(ctx)
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	cs := st.Log(after, limit)
	r.mu.Unlock()
	return r.read(ctx, st, cs)
}

// Arrivals returns up to limit entries in the order this node got them,
// from arrival index from on.
func (r *Replica) Arrivals(ctx context.Context, from uint64, limit int) ([]Entry, error) {
	r.mu.Lock()
	st, err := r.stateLocked(ctx)
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	ms := st.Arrivals(from, limit)
	r.mu.Unlock()
	cs := make([]cid.Cid, len(ms))
	for i, m := range ms {
		cs[i] = m.CID
	}
	return r.read(ctx, st, cs)
}

func (r *Replica) read(ctx context.Context, st *chain.State, cs []cid.Cid) ([]Entry, error) {
	out := make([]Entry, len(cs))
	var miss []cid.Cid // not in the recent cache: read and decrypted
	var at []int       // their places in out
	r.mu.Lock()
	for i, c := range cs {
		if e, ok := r.recent.get(c); ok {
			out[i] = e
		} else {
			miss, at = append(miss, c), append(at, i)
		}
	}
	r.mu.Unlock()
	es, err := readEntries(ctx, r.blocks, miss)
	if err != nil {
		return nil, err
	}
	sec := secrets(r.cell.Keys())
	plain := make([][]byte, len(es))
	for i, e := range es {
		if plain[i], err = chain.Open(e, sec); err != nil {
			return nil, fmt.Errorf("chain: entry %s: %w", e.CID(), err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range es {
		out[at[i]] = view(st, e, plain[i])
	}
	for i := range out {
		if m, ok := st.Meta(out[i].CID); ok {
			out[i].Index = m.Index
		}
	}
	return out, nil
}

// Status is a summary of the chain and of what the other members hold.
type Status struct {
	Cell    string    `json:"cell"`
	Length  int       `json:"length"`
	Heads   []cid.Cid `json:"heads"`
	Waiting int       `json:"waiting"` // entries received whose parents are missing
	// WaitingBytes is what they count against the budget (Config.Waiting).
	WaitingBytes int `json:"waitingBytes"`
	// Authors lists every author of the chain with its last sequence
	// number, by peer ID.
	Authors []AuthorStatus `json:"authors"`
	// Members lists the cell's members (this node too) and how far behind
	// this node's chain each one is, by what it last announced.
	Members []MemberStatus `json:"members"`
	Forks   []ForkStatus   `json:"forks,omitempty"`
	Sync    Stats          `json:"sync"`
}

// AuthorStatus is one author's part of the chain.
type AuthorStatus struct {
	Peer    peer.ID `json:"peer"`
	Name    string  `json:"name,omitempty"` // on the roster; empty for a former member
	LastSeq uint64  `json:"lastSeq"`
}

// MemberStatus is what this node knows of a member's chain.
type MemberStatus struct {
	Peer  peer.ID `json:"peer"`
	Name  string  `json:"name"`
	Self  bool    `json:"self,omitempty"`
	State string  `json:"state,omitempty"` // in gossip: alive, suspect, dead, left
	// Known is false until the member announced its chain to this node.
	Known  bool      `json:"known"`
	Length uint64    `json:"length"`
	Heard  time.Time `json:"heard,omitzero"`
	// Behind is how many entries this node holds that the member did not
	// have when it last announced; Ahead that it had some this node lacks.
	Behind int  `json:"behind"`
	Ahead  bool `json:"ahead,omitempty"`
}

// ForkStatus is a forked author.
type ForkStatus struct {
	Author peer.ID   `json:"author"`
	Seq    uint64    `json:"seq"`
	CIDs   []cid.Cid `json:"cids"`
}

// Status summarises the chain.
func (r *Replica) Status(ctx context.Context) (Status, error) {
	// Gossip's members first, without mu: memberlist may hold its lock
	// while it waits for a hook that waits for mu.
	states := map[peer.ID]gossip.State{}
	if g := r.cell.Gossip(); g != nil {
		for _, m := range g.Members() {
			states[m.ID] = m.State
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stateLocked(ctx)
	if err != nil {
		return Status{}, err
	}
	ro := r.cell.Roster()
	out := Status{Cell: ro.ID(), Length: st.Len(), Heads: st.Heads(), Waiting: st.Waiting(), WaitingBytes: st.WaitingBytes(), Sync: r.stats}
	vec := st.Vector()
	for _, a := range slices.Sorted(maps.Keys(vec)) {
		m, _ := ro.Member(a)
		out.Authors = append(out.Authors, AuthorStatus{Peer: a, Name: m.Name, LastSeq: vec[a]})
	}
	for _, m := range ro.Members {
		ms := memberStatus(m, st, r.remotes[m.Peer])
		if s, ok := states[m.Peer]; ok {
			ms.State = s.String()
		}
		if m.Peer == r.self {
			ms = MemberStatus{Peer: m.Peer, Name: m.Name, Self: true, State: ms.State, Known: true, Length: uint64(st.Len())}
		}
		out.Members = append(out.Members, ms)
	}
	for _, f := range st.Forks() {
		out.Forks = append(out.Forks, ForkStatus{Author: f.Author, Seq: f.Seq, CIDs: f.CIDs})
	}
	return out, nil
}

func memberStatus(m cell.Member, st *chain.State, rem *remote) MemberStatus {
	ms := MemberStatus{Peer: m.Peer, Name: m.Name}
	if rem == nil {
		ms.Behind = st.Len()
		return ms
	}
	ms.Known, ms.Length, ms.Heard = true, rem.ann.Len, rem.heard
	ms.Behind = st.Behind(rem.ann.Vector)
	ms.Ahead = st.Ahead(rem.ann.Vector, rem.ann.Digests) || rem.ann.Len > uint64(st.Len())
	return ms
}
