package blob

import (
	"container/list"
	"sync"

	"github.com/ipfs/go-cid"
)

// lru is a bounded cache keyed by CID, safe for concurrent use.
type lru[V any] struct {
	mu  sync.Mutex
	max int
	ll  *list.List // of *lruEntry[V], most recent first
	m   map[cid.Cid]*list.Element
}

type lruEntry[V any] struct {
	k cid.Cid
	v V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: map[cid.Cid]*list.Element{}}
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
	if e, ok := l.m[k]; ok {
		e.Value.(*lruEntry[V]).v = v
		l.ll.MoveToFront(e)
		return
	}
	l.m[k] = l.ll.PushFront(&lruEntry[V]{k, v})
	for l.ll.Len() > l.max {
		e := l.ll.Back()
		l.ll.Remove(e)
		delete(l.m, e.Value.(*lruEntry[V]).k)
	}
}

func (l *lru[V]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ll.Len()
}
