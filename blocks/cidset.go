package blocks

import (
	"slices"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// cidSet is a counted set of CIDs that any peer may be asked for: an
// Asker. It is safe for concurrent use; MayAsk takes a read lock.
type cidSet struct {
	mu sync.RWMutex
	n  map[cid.Cid]int
}

func newCIDSet() *cidSet { return &cidSet{n: make(map[cid.Cid]int)} }

// add puts cs in the set until remove (idempotent) is called.
func (s *cidSet) add(cs []cid.Cid) (remove func()) {
	cs = slices.Clone(cs)
	s.mu.Lock()
	for _, c := range cs {
		s.n[c]++
	}
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, c := range cs {
				if s.n[c]--; s.n[c] <= 0 {
					delete(s.n, c)
				}
			}
		})
	}
}

// MayAsk lets any peer be asked for a CID in the set.
func (s *cidSet) MayAsk(_ peer.ID, c cid.Cid) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.n[c]
	return ok
}

// peerCIDSet is a counted set of (peer, CID) pairs: a peer may be asked
// for a CID the set pairs it with (the wants of a session that names
// its peers: SessionOptions.Peers). It is safe for concurrent use;
// MayAsk takes a read lock.
type peerCIDSet struct {
	mu sync.RWMutex
	n  map[cid.Cid]map[peer.ID]int
}

func newPeerCIDSet() *peerCIDSet { return &peerCIDSet{n: make(map[cid.Cid]map[peer.ID]int)} }

// add pairs each of cs with each of ps until remove (idempotent) is
// called.
func (s *peerCIDSet) add(ps []peer.ID, cs []cid.Cid) (remove func()) {
	ps, cs = slices.Clone(ps), slices.Clone(cs)
	s.mu.Lock()
	for _, c := range cs {
		m := s.n[c]
		if m == nil {
			m = make(map[peer.ID]int, len(ps))
			s.n[c] = m
		}
		for _, p := range ps {
			m[p]++
		}
	}
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, c := range cs {
				m := s.n[c]
				for _, p := range ps {
					if m[p]--; m[p] <= 0 {
						delete(m, p)
					}
				}
				if len(m) == 0 {
					delete(s.n, c)
				}
			}
		})
	}
}

// MayAsk lets p be asked for c when the set pairs them.
func (s *peerCIDSet) MayAsk(p peer.ID, c cid.Cid) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n[c][p] > 0
}
