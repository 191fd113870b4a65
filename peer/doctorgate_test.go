package peer

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/doctor"
)

// strangerRule admits no member and no contact, and counts the contact
// look-ups (each a store read, remote on a thin device).
func strangerRule(lookups *atomic.Int64) peerRule {
	return peerRule{
		member: func(peer.ID) bool { return false },
		contact: func(context.Context, peer.ID) (string, error) {
			lookups.Add(1)
			return "", nil
		},
	}
}

// ownerIf is a peerRule.contact answer: p is a device of its own contact
// when is, of none otherwise.
func ownerIf(p peer.ID, is bool) (string, error) {
	if !is {
		return "", nil
	}
	return "contact of " + string(p), nil
}

// TestObservationsStrangerFlood: a flood of strangers' observed addresses
// costs a bounded number of contact look-ups a second (LookupRate, after
// LookupBurst), however many strangers; and one stranger seen again and
// again is looked up once (its verdict is remembered). Before, each
// stranger dequeued cost a look-up: 10 waves of 100 cost about 170.
func TestObservationsStrangerFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lookups atomic.Int64
		b := newObservations(strangerRule(&lookups), time.Now, nil)
		b.start()
		defer b.close()
		local := ma.StringCast("/ip4/10.0.0.2/udp/4777/quic-v1")
		observed := ma.StringCast("/ip4/11.213.0.7/udp/61001/quic-v1")
		const waves, perWave = 10, 100
		for w := range waves {
			for i := range perWave {
				remote := ma.StringCast("/ip4/192.0.2." + strconv.Itoa(i%250+1) + "/udp/4001/quic-v1")
				b.identified(peer.ID("s"+strconv.Itoa(w*perWave+i)), local, remote, observed)
			}
			synctest.Wait()
			time.Sleep(time.Second)
		}
		if n, max := lookups.Load(), int64(LookupBurst+waves*LookupRate); n > max {
			t.Errorf("%d look-ups for %d strangers in %d s, want at most %d", n, waves*perWave, waves, max)
		}
		lookups.Store(0)
		remote := ma.StringCast("/ip4/192.0.2.9/udp/4001/quic-v1")
		for range 100 {
			b.identified("again", local, remote, observed)
			synctest.Wait()
			time.Sleep(2 * time.Second)
		}
		if n := lookups.Load(); n != 1 {
			t.Errorf("one stranger seen 100 times in 200 s cost %d look-ups, want 1", n)
		}
		if obs := b.list(); len(obs) != 0 {
			t.Errorf("strangers' observations kept: %v", obs)
		}
	})
}

// TestTimeAskersThroughGate: the time protocol's askers off the roster
// pass the same gate: a flood of strangers asking costs a bounded number
// of look-ups; a member costs none.
func TestTimeAskersThroughGate(t *testing.T) {
	var lookups atomic.Int64
	rule := strangerRule(&lookups)
	rule.member = func(p peer.ID) bool { return p == "member" }
	at := time.Unix(1_800_000_000, 0)
	d := newDoctorPart(nil, rule, func() time.Time { return at }, nil)
	for i := range 1000 {
		if d.time.allow(peer.ID("s" + strconv.Itoa(i))) {
			t.Fatal("a stranger may ask the time")
		}
	}
	if !d.time.allow("member") {
		t.Fatal("a member may not ask the time")
	}
	if n := lookups.Load(); n > LookupBurst {
		t.Errorf("%d look-ups for 1000 strangers at one instant, want at most %d", n, LookupBurst)
	}
}

// TestContactGateVerdictsBound: the verdicts remembered are bounded
// (MaxVerdicts) whatever the number of peers looked up; a contact's
// device found once is admitted with no new look-up within ContactFor.
func TestContactGateVerdictsBound(t *testing.T) {
	var lookups atomic.Int64
	rule := strangerRule(&lookups)
	rule.contact = func(_ context.Context, p peer.ID) (string, error) { lookups.Add(1); return ownerIf(p, p == "contact") }
	at := time.Unix(1_800_000_000, 0)
	g := newContactGate(rule, func() time.Time { return at })
	for i := range 3 * MaxVerdicts {
		at = at.Add(time.Second) // a token a second: every one is looked up
		g.allows(t.Context(), peer.ID("s"+strconv.Itoa(i)))
	}
	if n := len(g.verdicts); n > MaxVerdicts {
		t.Errorf("%d verdicts remembered, want at most %d", n, MaxVerdicts)
	}
	if n := lookups.Load(); n != 3*MaxVerdicts {
		t.Errorf("%d look-ups, want %d (one a second is the rate)", n, 3*MaxVerdicts)
	}
	at = at.Add(time.Second)
	for range 10 {
		if !g.allows(t.Context(), "contact") {
			t.Fatal("a contact's device refused")
		}
	}
	if n := lookups.Load(); n != 3*MaxVerdicts+1 {
		t.Errorf("a contact's device admitted 10 times cost %d look-ups, want 1", n-3*MaxVerdicts)
	}
}

// TestNATOneVotePerPeer: a contact's device that comes from several
// addresses (IPv4, IPv6, several interfaces) and reports a different port
// from each is one observer, not three: alone it cannot make the doctor
// say the NAT maps a port per peer.
func TestNATOneVotePerPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rule := peerRule{
			member:  func(peer.ID) bool { return false },
			contact: func(_ context.Context, p peer.ID) (string, error) { return ownerIf(p, p == "liar") },
		}
		b := newObservations(rule, time.Now, nil)
		b.start()
		defer b.close()
		local := ma.StringCast("/ip4/192.168.1.5/udp/4777/quic-v1")
		for i, remote := range []string{"/ip4/192.0.2.1/udp/4001/quic-v1", "/ip6/2001:db8::1/udp/4001/quic-v1", "/ip6/2001:db8::2/udp/4001/quic-v1"} {
			b.identified("liar", local, ma.StringCast(remote), ma.StringCast("/ip4/11.213.0.7/udp/"+strconv.Itoa(61001+i)+"/quic-v1"))
			synctest.Wait()
		}
		if obs := b.list(); len(obs) != 1 {
			t.Errorf("%d observations kept of one peer, want 1: %v", len(obs), obs)
		}
		for _, f := range doctor.Diagnose(doctor.Facts{Observations: b.list()}) {
			if f.Check == doctor.CheckNAT && f.Level != doctor.OK {
				t.Errorf("one contact's device from three addresses decides the NAT's type: %s: %s", f.Level, f.Say)
			}
		}
	})
}

// TestObservationsPrunedAtDoctor: the observations of a device removed
// from the cell, or of a deleted contact's, are dropped when the doctor
// reads them; those of a member still on the roster are kept.
func TestObservationsPrunedAtDoctor(t *testing.T) {
	var mu sync.Mutex
	admitted := map[peer.ID]bool{"member": true, "removed": true, "contact": true}
	is := func(p peer.ID) bool { mu.Lock(); defer mu.Unlock(); return admitted[p] }
	rule := peerRule{
		member:  func(p peer.ID) bool { return p != "contact" && is(p) },
		contact: func(_ context.Context, p peer.ID) (string, error) { return ownerIf(p, p == "contact" && is(p)) },
	}
	b := newObservations(rule, time.Now, nil)
	local := ma.StringCast("/ip4/192.168.1.5/udp/4777/quic-v1")
	for i, p := range []peer.ID{"member", "removed", "contact"} {
		owner, _ := ownerIf(p, p == "contact")
		b.keep(p, owner, doctor.Observation{Local: local.String(), External: "/ip4/11.213.0.7/udp/61001", Port: 61001 + i})
	}
	mu.Lock()
	admitted["removed"], admitted["contact"] = false, false
	mu.Unlock()
	b.prune(t.Context())
	obs := b.list()
	if len(obs) != 1 || obs[0].Observer != peer.ID("member").String() {
		t.Errorf("observations after the removals: %v, want the member's only", obs)
	}
}
