package peer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
)

// reserveStatus is the relay's answer to h's reservation request.
func reserveStatus(ctx context.Context, h host.Host, r peer.AddrInfo) pbv2.Status {
	_, err := client.Reserve(ctx, h, r)
	if err == nil {
		return pbv2.Status_OK
	}
	var re client.ReservationError
	if errors.As(err, &re) {
		return re.Status
	}
	return pbv2.Status_CONNECTION_FAILED
}

// TestRelayGuestRefusedHoldsNoSlot: the relay's own limits (here one
// reservation per IP address) come after the ACL. A contact's device
// the relay refuses holds no guest slot: another device gets the one
// slot once the address is free. Before, the refused device kept it.
func TestRelayGuestRefusedHoldsNoSlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, hm, hd1, hd2 := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3), loopbackHost(t, 4)
	guests := newRelayGuests(1, time.Hour, time.Now)
	acl := relayACL{self: hr.ID(), member: func(p peer.ID) bool { return p == hr.ID() || p == hm.ID() },
		contactDevice: func(p peer.ID) (bool, error) { return p == hd1.ID() || p == hd2.ID(), nil },
		guests:        guests,
	}
	svc, err := newRelayService(hr, RelayOn, acl, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.res.MaxReservationsPerIP = 1 // all hosts are on 127.0.0.1
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	rinfo := peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}
	if st := reserveStatus(ctx, hm, rinfo); st != pbv2.Status_OK {
		t.Fatalf("member's reservation: %v", st)
	}
	if st := reserveStatus(ctx, hd1, rinfo); st != pbv2.Status_RESERVATION_REFUSED {
		t.Fatalf("first device's reservation with the address's one taken: %v, want RESERVATION_REFUSED", st)
	}
	if n := guests.len(); n != 0 {
		t.Fatalf("%d guest slots held after a refused reservation, want 0", n)
	}
	// The member leaves: the relay frees the address's reservation when
	// it sees the disconnection.
	if err := hm.Network().ClosePeer(hr.ID()); err != nil {
		t.Fatal(err)
	}
	for {
		st := reserveStatus(ctx, hd2, rinfo)
		if st == pbv2.Status_OK {
			break
		}
		if st != pbv2.Status_RESERVATION_REFUSED || ctx.Err() != nil {
			t.Fatalf("second device's reservation: %v, want OK once the member left", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := guests.len(); n != 1 {
		t.Fatalf("%d guest slots held, want 1 (the second device's)", n)
	}
}
