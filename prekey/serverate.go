package prekey

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
)

const (
	// ServeBurst and ServeEvery bound the answers on Protocol to one
	// asker: a token bucket of ServeBurst answers, one more each
	// ServeEvery. A device asks a bundle once per handshake and keeps it
	// (Fetch's cache), so these are far above its use; an asker past them
	// has its stream reset and reads the DHT record instead (Fetch does).
	// Asking takes no one-time prekey: only an initial message's answer
	// does (Accept). The bound keeps a peer that asks in a loop from
	// having this device send it 5.6 KiB per request byte.
	ServeBurst = 16
	ServeEvery = 6 * time.Second
	// MaxServeAskers bounds the askers whose buckets are kept: past it,
	// those whose buckets are full again are forgotten, and while none
	// is, the least recently used bucket is, so that a new asker (a
	// contact's device among a flood of askers) is always answered.
	// Forgetting a bucket that is not full gives its asker ServeBurst
	// answers again: an asker needs MaxServeAskers others asking between
	// two of its bursts, so that its rate stays bounded.
	MaxServeAskers = 1024
)

// serveRate is the askers' token buckets (ServeBurst, ServeEvery).
type serveRate struct {
	mu   sync.Mutex
	per  map[peer.ID]bucket
	size int    // MaxServeAskers; a test makes it smaller
	uses uint64 // the answers given, which order the buckets' last uses
}

// bucket is an asker's tokens at time at; used is serveRate.uses at its
// last answer (not a time: a clock gone back keeps at in the future).
type bucket struct {
	tokens float64
	at     time.Time
	used   uint64
}

func newServeRate() *serveRate {
	return &serveRate{per: map[peer.ID]bucket{}, size: MaxServeAskers}
}

// level is b's tokens at now.
func (b bucket) level(now time.Time) float64 {
	d := now.Sub(b.at)
	if d < 0 { // the clock went back: no refill, nothing lost
		d = 0
	}
	return min(ServeBurst, b.tokens+d.Seconds()/ServeEvery.Seconds())
}

// allow takes a token of id's bucket: false when it has none. A new
// asker past MaxServeAskers kept buckets takes the place of those that
// are full again, or else of the least recently used one.
func (r *serveRate) allow(id peer.ID) bool {
	now := ambient.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.per[id]
	if !ok {
		if len(r.per) >= r.size {
			for k, o := range r.per {
				if o.level(now) >= ServeBurst {
					delete(r.per, k)
				}
			}
		}
		if len(r.per) >= r.size {
			var lru peer.ID
			for k, o := range r.per {
				if lru == "" || o.used < r.per[lru].used {
					lru = k
				}
			}
			delete(r.per, lru)
		}
		b = bucket{tokens: ServeBurst, at: now}
	}
	l := b.level(now)
	if l < 1 {
		return false
	}
	at := now
	if now.Before(b.at) {
		at = b.at
	}
	r.uses++
	r.per[id] = bucket{tokens: l - 1, at: at, used: r.uses}
	return true
}
