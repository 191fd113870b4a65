package peer

import (
	"testing"
	"time"
)

// TestUnrelayableKeepsNewerRelayed: a punched connection is newer than the
// relayed one it replaces. A relayed connection opened after the direct
// one is the peer dialling through the relay while this node still holds
// a direct connection (the swarm would reuse it for a dial of ours): the
// peer has lost it (a LAN address that no longer works, a NAT mapping
// gone), and this node's end is stale until its keepalive notices.
// Closing the new relayed connection leaves the peer with no working path.
func TestUnrelayableKeepsNewerRelayed(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const g = 30 * time.Second
	stale := connView{opened: t0}
	fresh := connView{relayed: true, opened: t0.Add(time.Hour)}
	if got := unrelayable([]connView{stale, fresh}, t0.Add(time.Hour+time.Minute), g); len(got) != 0 {
		t.Errorf("unrelayable = %v: closes a relayed connection opened an hour after the direct one", got)
	}
}
