package peer

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	// LookupRate and LookupBurst bound the contact look-ups the doctor's
	// part makes for peers off the roster (whose observed addresses wait
	// for the check, or who ask the time): LookupRate a second, up to
	// LookupBurst at once. One look-up may be a remote store read on a
	// thin device; past the rate a peer off the roster is refused.
	LookupRate  = 1
	LookupBurst = 4
	// MaxVerdicts bounds the look-up verdicts the doctor's part remembers;
	// past it the oldest is forgotten.
	MaxVerdicts = 256
	// NotContactFor is how long a peer found not to be a contact's device
	// is refused with no new look-up; ContactFor how long one found to be
	// is admitted with none.
	NotContactFor = 10 * time.Minute
	ContactFor    = time.Minute
)

// lookupVerdict is a remembered look-up: the contacts the peer is a
// device of (peerRule.contact's owner; "": none), and when it was looked
// up.
type lookupVerdict struct {
	owner string
	at    time.Time
}

// contact reports whether the verdict is that of a contact's device.
func (v lookupVerdict) contact() bool { return v.owner != "" }

// contactGate admits the cell's members (the roster, in memory) and its
// contacts' devices, looked up through rule.contact at most LookupRate a
// second (LookupBurst at once), each verdict remembered (NotContactFor,
// ContactFor; at most MaxVerdicts): a flood of strangers costs a bounded
// number of look-ups a second, and one stranger one look-up per
// NotContactFor. A look-up that fails (an error: the store not read, at
// once or in time) is not remembered, since it found nothing about the
// peer, but it spent its token: a failing store is asked no more than
// LookupRate a second. Safe for concurrent use.
type contactGate struct {
	rule peerRule
	now  func() time.Time
	rate *bucket

	mu       sync.Mutex
	verdicts map[peer.ID]lookupVerdict
	lookups  int // look-ups made
	failed   int // look-ups that failed, not remembered
	limited  int // peers refused for the rate, with no look-up
}

func newContactGate(rule peerRule, now func() time.Time) *contactGate {
	return &contactGate{rule: rule, now: now, rate: newBucket(LookupRate, LookupBurst), verdicts: make(map[peer.ID]lookupVerdict)}
}

// allows reports whether p is a member or a contact's device (admits).
func (g *contactGate) allows(ctx context.Context, p peer.ID) bool {
	_, ok := g.admits(ctx, p)
	return ok
}

// admits reports whether p is a member or a contact's device, and for a
// contact's device the contacts it is one of (peerRule.contact's owner;
// "" for a member). It blocks for a look-up, up to ctx's end
// (rule.contact bounds it too); a look-up that fails, cut short by ctx's
// end or not, refuses p and is not remembered.
func (g *contactGate) admits(ctx context.Context, p peer.ID) (owner string, ok bool) {
	if g.rule.member(p) {
		return "", true
	}
	now := g.now()
	if v, ok := g.remembered(p, now); ok {
		return v.owner, v.contact()
	}
	if !g.rate.take(now) {
		g.mu.Lock()
		g.limited++
		g.mu.Unlock()
		return "", false
	}
	owner, err := g.rule.contact(ctx, p)
	if err != nil {
		g.mu.Lock()
		g.lookups++
		g.failed++
		g.mu.Unlock()
		return "", false // nothing learnt to remember; the token stays spent
	}
	g.remember(p, lookupVerdict{owner: owner, at: now})
	return owner, owner != ""
}

// remembered is the verdict on p remembered at now, if one is fresh.
func (g *contactGate) remembered(p peer.ID, now time.Time) (lookupVerdict, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.verdicts[p]
	if !ok || !fresh(v, now) {
		return lookupVerdict{}, false
	}
	return v, true
}

// fresh reports whether v still holds at now; a verdict from the future
// (the clock set back since) does not.
func fresh(v lookupVerdict, now time.Time) bool {
	ttl := NotContactFor
	if v.contact() {
		ttl = ContactFor
	}
	return !v.at.After(now) && now.Sub(v.at) < ttl
}

// remember books the verdict on p, forgetting the stale ones, then the
// oldest, past MaxVerdicts.
func (g *contactGate) remember(p peer.ID, v lookupVerdict) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lookups++
	if _, ok := g.verdicts[p]; !ok && len(g.verdicts) >= MaxVerdicts {
		for q, w := range g.verdicts {
			if !fresh(w, v.at) {
				delete(g.verdicts, q)
			}
		}
		for len(g.verdicts) >= MaxVerdicts {
			var oldest peer.ID
			for q, w := range g.verdicts {
				if oldest == "" || w.at.Before(g.verdicts[oldest].at) || (w.at.Equal(g.verdicts[oldest].at) && q < oldest) {
					oldest = q
				}
			}
			delete(g.verdicts, oldest)
		}
	}
	g.verdicts[p] = v
}

// counts returns the look-ups made, those of them that failed, and the
// peers refused for the rate.
func (g *contactGate) counts() (lookups, failed, limited int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lookups, g.failed, g.limited
}
