package peer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/datadir"
)

// TestNodeRelaysForCell: nodes as `exopeer run` builds them. R runs the
// relay service (relay_service "on"); A listens nowhere (behind NAT) and
// joins R's cell: A's AutoRelay finds R in the roster and reserves a slot
// on it; a stranger is refused a circuit to A.
func TestNodeRelaysForCell(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ropts := loopbackOptions(t, 31)
	ropts.Cell = fastCell
	ropts.Network.Relays.Service = RelayOn
	r := startNode(t, ropts)
	aopts := loopbackOptions(t, 32, addrInfo(r))
	aopts.Cell = fastCell
	aopts.Network.NewHost = func(priv crypto.PrivKey) (host.Host, error) {
		return buildHost(priv, datadir.NetworkConfig{}, nil)
	}
	a := startNode(t, aopts)
	if st := r.RelayStats(); !st.Running {
		t.Fatalf("R's relay service: %+v, want running", st)
	}
	if _, err := r.Cell().Create(ctx, "home", "r"); err != nil {
		t.Fatal(err)
	}
	code, _, err := r.Cell().Invite(cell.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Cell().Join(ctx, code.String(), "a"); err != nil {
		t.Fatalf("Join: %v", err)
	}
	eventually(t, 45*time.Second, "A reserves a slot on R", func() bool {
		return r.RelayStats().Reservations > 0
	})
	s := loopbackHost(t, 33)
	err = s.Connect(ctx, circuitTo(t, r.Host(), a.ID()))
	if err == nil || !strings.Contains(err.Error(), pbv2.Status_PERMISSION_DENIED.String()) {
		t.Fatalf("stranger through R: %v, want PERMISSION_DENIED", err)
	}
	if st := a.RelayStats(); st.Running {
		t.Errorf("A's relay service runs (%+v), want off: A is not reachable", st)
	}
}
