package blob

import (
	"container/list"
	"sync"

	"github.com/ipfs/go-cid"
)

// lru is a bounded cache keyed by CID, safe for concurrent use.
type lru[V any] struct {
	mu     sync.Mutex
	max    int
	ll     *list.List // of *lruEntry[V], most recent first
	m      map[cid.Cid]*list.Element
	weight func(V) int // nil: no bound in bytes
	maxW   int         // the most weight held
	w      int         // the weight held
}

type lruEntry[V any] struct {
	k cid.Cid
	v V
	w int
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: map[cid.Cid]*list.Element{}}
}

// newWeightedLRU returns an lru bounded in entries (max) and in weight
// (maxW, each entry's given by weight).
func newWeightedLRU[V any](max, maxW int, weight func(V) int) *lru[V] {
	l := newLRU[V](max)
	l.weight, l.maxW = weight, maxW
	return l
}

func (l *lru[V]) get(k cid.Cid) (V, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[k]; ok {
		l.ll.MoveToFront(e)
		return e.Value.(*lruEntry[V]).v, true
	}
	var zero V
	return zero, false
}

func (l *lru[V]) has(k cid.Cid) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.m[k]
	return ok
}

func (l *lru[V]) put(k cid.Cid, v V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max <= 0 {
		return
	}
	w := 0
	if l.weight != nil {
		if w = l.weight(v); w > l.maxW {
			return
		}
	}
	if e, ok := l.m[k]; ok {
		en := e.Value.(*lruEntry[V])
		l.w += w - en.w
		en.v, en.w = v, w
		l.ll.MoveToFront(e)
	} else {
		l.m[k] = l.ll.PushFront(&lruEntry[V]{k, v, w})
		l.w += w
	}
	for l.ll.Len() > l.max || (l.weight != nil && l.w > l.maxW) {
		e := l.ll.Back()
		l.ll.Remove(e)
		en := e.Value.(*lruEntry[V])
		delete(l.m, en.k)
		l.w -= en.w
	}
}

func (l *lru[V]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ll.Len()
}
