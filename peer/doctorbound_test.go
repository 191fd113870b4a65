package peer

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/doctor"
)

// observers counts the observers whose observations b keeps and whose
// peer IDs start with prefix.
func observers(b *observations, prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[peer.ID]bool{}
	for _, o := range b.obs {
		if strings.HasPrefix(string(o.peer), prefix) {
			seen[o.peer] = true
		}
	}
	return len(seen)
}

// TestObservationsContactBound: a contact whose signed device list names
// many peer IDs it controls (any cell may sign such a list) has them all
// report made-up ports. It keeps at most MaxContactObservers observers,
// it cannot push out the members' observations nor those of another
// contact's devices, even the one it names too (counted under both
// contacts, apart from either); and a flood of contacts' devices, one
// device each, never pushes out a member's. Before, the 64 slots went to
// the newest observers whoever they were: mallory's fakes evicted
// everyone else.
func TestObservationsContactBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		owners := func(p peer.ID) string {
			switch s := string(p); {
			case s == "c1": // carol's device, which mallory's list names too
				return "carol\x00mallory"
			case s == "c2":
				return "carol"
			case strings.HasPrefix(s, "fake"):
				return "mallory"
			case strings.HasPrefix(s, "x"): // many contacts, one device each
				return "contact " + s
			}
			return ""
		}
		rule := peerRule{
			member:  func(p peer.ID) bool { return strings.HasPrefix(string(p), "m") },
			contact: func(_ context.Context, p peer.ID) (string, error) { return owners(p), nil },
		}
		b := newObservations(rule, time.Now, nil)
		b.start()
		defer b.close()
		local := ma.StringCast("/ip4/192.168.1.5/udp/4777/quic-v1")
		remote := ma.StringCast("/ip4/192.0.2.1/udp/4001/quic-v1")
		see := func(p string, port int) {
			b.identified(peer.ID(p), local, remote, ma.StringCast("/ip4/11.213.0.7/udp/"+strconv.Itoa(port)+"/quic-v1"))
			synctest.Wait()
			time.Sleep(time.Second) // a look-up a second (LookupRate)
		}
		honest := []string{"m0", "m1", "m2", "m3", "c1", "c2"}
		for _, p := range honest {
			see(p, 61001)
		}
		const fakes = 3 * MaxObservations
		for i := range fakes {
			see("fake"+strconv.Itoa(i), 1000+i)
		}
		for _, p := range honest {
			if observers(b, p) != 1 {
				t.Errorf("%s's observation pushed out by %d fake devices of one contact", p, fakes)
			}
		}
		if n := observers(b, "fake"); n > MaxContactObservers {
			t.Errorf("one contact's devices hold %d observers, want at most %d", n, MaxContactObservers)
		}
		for i := range 2 * MaxObservations {
			see("x"+strconv.Itoa(i), 2000+i)
		}
		if obs := b.list(); len(obs) > MaxObservations {
			t.Errorf("%d observations kept, want at most %d", len(obs), MaxObservations)
		}
		if n := observers(b, "m"); n != 4 {
			t.Errorf("%d members' observations kept of 4 after a flood of contacts' devices", n)
		}
	})
}

// TestObservationsMembersFirst: once the members' observations fill every
// slot, a contact's device's is not kept; a member's new one takes the
// place of a contact's device's before that of another member's.
func TestObservationsMembersFirst(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	b := newObservations(everyone, func() time.Time { return at }, nil)
	o := func(port int) doctor.Observation {
		return doctor.Observation{Local: "/ip4/192.168.1.5/udp/4777", External: "/ip4/11.213.0.7/udp/" + strconv.Itoa(port), Port: port}
	}
	for i := range MaxObservations {
		at = at.Add(time.Second)
		b.keep(peer.ID("m"+strconv.Itoa(i)), "", o(61001))
		if i == 0 { // newer than a member's
			at = at.Add(time.Second)
			b.keep("contact", "carol", o(1))
		}
	}
	if n := observers(b, "m"); n != MaxObservations {
		t.Errorf("%d members' observations of %d kept: a contact's device's was kept in place of a member's", n, MaxObservations)
	}
	at = at.Add(time.Second)
	b.keep("late", "carol", o(2))
	if observers(b, "late") != 0 || observers(b, "m") != MaxObservations {
		t.Errorf("a contact's device's observation took a member's place: %d members' kept", observers(b, "m"))
	}
}

// TestContactGateLookupError: a contact look-up that fails at once with
// an error (the store not readable: no time-out) found nothing about the
// peer. The gate must not refuse a contact's device for NotContactFor on
// it, neither its time asks nor its observations: once the store reads,
// it is admitted. A failing store is still asked at most LookupRate a
// second.
func TestContactGateLookupError(t *testing.T) {
	var broken atomic.Bool
	var lookups atomic.Int64
	broken.Store(true)
	rule := peerRule{
		member: func(peer.ID) bool { return false },
		contact: func(_ context.Context, p peer.ID) (string, error) {
			lookups.Add(1)
			if broken.Load() {
				return "", errors.New("store: closed")
			}
			return ownerIf(p, p == "contact")
		},
	}
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	d := newDoctorPart(nil, rule, clk.now, nil)
	if d.time.allow("contact") {
		t.Fatal("admitted on a failed look-up")
	}
	for i := range 1000 {
		d.time.allow(peer.ID("s" + strconv.Itoa(i)))
	}
	if n := lookups.Load(); n > LookupBurst {
		t.Errorf("a failing store asked %d times at one instant, want at most %d", n, LookupBurst)
	}
	if _, failed, _ := d.obs.gate.counts(); failed == 0 {
		t.Error("no failed look-up counted")
	}
	broken.Store(false)
	clk.set(clk.now().Add(2 * time.Second))
	if !d.time.allow("contact") {
		t.Fatal("a contact's device refused the time: a failed look-up was remembered as no contact")
	}
	local := ma.StringCast("/ip4/192.168.1.5/udp/4777/quic-v1")
	d.obs.identified("contact", local, ma.StringCast("/ip4/192.0.2.1/udp/4001/quic-v1"), ma.StringCast("/ip4/11.213.0.7/udp/61001/quic-v1"))
	if obs := d.obs.list(); len(obs) != 1 {
		t.Errorf("a contact's device's observation not kept: %v", obs)
	}
}

// TestObservationsOwnerChange: a peer's observations are all counted
// under the owner it was last admitted as. A member removed from the
// cell and now named by a contact's device list is counted with that
// contact's devices (its member's observation of another local address
// is dropped, not kept as a member's the contacts cannot push out); and
// the doctor's prune drops the observations kept under an owner that no
// longer holds (another contact now names the device too).
func TestObservationsOwnerChange(t *testing.T) {
	owner := "carol"
	rule := peerRule{
		member:  func(peer.ID) bool { return false },
		contact: func(context.Context, peer.ID) (string, error) { return owner, nil },
	}
	b := newObservations(rule, time.Now, nil)
	o := func(local string) doctor.Observation {
		return doctor.Observation{Local: local, External: "/ip4/11.213.0.7/udp/61001", Port: 61001}
	}
	b.keep("p", "", o("/ip4/192.168.1.5/udp/4777"))
	b.keep("p", "carol", o("/ip4/192.168.1.5/tcp/4777"))
	b.mu.Lock()
	for _, v := range b.obs {
		if v.owner != "carol" {
			t.Errorf("%s kept as a member's once p is a contact's device", v.Local)
		}
	}
	b.mu.Unlock()
	b.prune(t.Context())
	if n := len(b.list()); n != 1 {
		t.Fatalf("%d observations after a prune that changed nothing, want 1", n)
	}
	owner = "carol\x00mallory"
	b.prune(t.Context())
	if obs := b.list(); len(obs) != 0 {
		t.Errorf("kept under carol alone once mallory names the device too: %v", obs)
	}
}
