package replica

import "github.com/libp2p/go-libp2p/core/peer"

// Unban lifts a member's sync ban, for tests that go on with it.
func (r *Replica) Unban(id peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.banned, id)
}

// RecentEntries is the recent cache's bound in entries.
const RecentEntries = recentEntries

// RecentLen returns how many entries the recent cache holds.
func RecentLen(r *Replica) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recent.m)
}
