package replica

import "github.com/libp2p/go-libp2p/core/peer"

// Unban lifts a member's sync ban, for tests that go on with it.
func (r *Replica) Unban(id peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.banned, id)
}
