package blocks

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// Providers is the provider finder of an exchange (Config.ProviderFinder)
// that searches for providers of public blobs only. Bitswap asks for the
// providers of whichever block a fetch is stuck on; Providers answers only
// for the blocks of a public blob being fetched (registered with Track),
// and then asks the content router for the providers of the blob's root,
// which is what a node that holds a public blob announces. For any other
// CID (a private blob's block, a chain entry) it answers nothing at once
// and asks nobody: no DHT query tells anyone what a node looks for. It is
// safe for concurrent use.
type Providers struct {
	router func() routing.ContentDiscovery

	mu        sync.Mutex
	roots     map[cid.Cid]*tracked // every tracked CID, with its root
	searching map[cid.Cid]bool     // roots whose providers are being searched
}

type tracked struct {
	root cid.Cid
	n    int // Track calls naming this CID not yet undone
}

// NewProviders returns a Providers that asks router() (the DHT, once it
// has started; nil: nobody) for the providers of tracked roots. router is
// called for each search; it must be safe for concurrent use.
func NewProviders(router func() routing.ContentDiscovery) *Providers {
	return &Providers{router: router, roots: make(map[cid.Cid]*tracked), searching: make(map[cid.Cid]bool)}
}

// Track registers root and cs as the CIDs of one public blob being
// fetched, so that a provider search for any of them asks for root's
// providers; untrack (idempotent) withdraws them. Call it for the root
// before fetching it, and again for the CIDs of each level as the walk
// learns them. A CID tracked under two roots keeps the first. The map
// holds only what the caller tracks (the blobs it fetches), until untrack.
// It does not block.
func (p *Providers) Track(root cid.Cid, cs []cid.Cid) (untrack func()) {
	all := append([]cid.Cid{root}, cs...)
	p.mu.Lock()
	for _, c := range all {
		t := p.roots[c]
		if t == nil {
			t = &tracked{root: root}
			p.roots[c] = t
		}
		t.n++
	}
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, c := range all {
				if t := p.roots[c]; t != nil {
					if t.n--; t.n == 0 {
						delete(p.roots, c)
					}
				}
			}
		})
	}
}

// MayAsk makes Providers an Asker: the blocks of a tracked public blob
// may be asked of any peer, as the providers of its root are searched for.
func (p *Providers) MayAsk(_ peer.ID, c cid.Cid) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.roots[c]
	return ok
}

// rootOf returns the root c was tracked under.
func (p *Providers) rootOf(c cid.Cid) (cid.Cid, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.roots[c]
	if t == nil {
		return cid.Undef, false
	}
	return t.root, true
}

// FindProvidersAsync implements routing.ContentDiscovery for bitswap: for
// a tracked CID, the providers of its root (up to count; 0: no limit) as
// the router finds them; for any other CID, a closed channel at once. One
// search per root runs at a time: bitswap asks for each block a fetch is
// stuck on, and the providers one search finds are connected, so that
// every want reaches them anyway; meanwhile the other asks get a closed
// channel. The channel is closed when the search ends or ctx is done.
func (p *Providers) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	root, ok := p.rootOf(c)
	var r routing.ContentDiscovery
	if ok && p.router != nil && p.startSearch(root) {
		if r = p.router(); r == nil {
			p.endSearch(root)
		}
	}
	if r == nil {
		ch := make(chan peer.AddrInfo)
		close(ch)
		return ch
	}
	in := r.FindProvidersAsync(ctx, root, count)
	out := make(chan peer.AddrInfo)
	// The router closes in when the search ends or ctx is done; so does
	// this goroutine then.
	go func() {
		defer close(out)
		defer p.endSearch(root)
		for ai := range in {
			select {
			case out <- ai:
			case <-ctx.Done():
				for range in { // let the router finish
				}
				return
			}
		}
	}()
	return out
}

// startSearch reports whether no search for root runs, and marks one.
func (p *Providers) startSearch(root cid.Cid) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.searching[root] {
		return false
	}
	p.searching[root] = true
	return true
}

func (p *Providers) endSearch(root cid.Cid) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.searching, root)
}
