package dht

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// TestModeFollowsReachability: in ModeAuto the WAN table (or the only
// one) is a server exactly while SetReachability last said public, and
// AutoNAT v1's event for the host, which kad-dht follows on its own, no
// longer moves it; fixed modes and the LAN table ignore both.
func TestModeFollowsReachability(t *testing.T) {
	const (
		pub  = network.ReachabilityPublic
		priv = network.ReachabilityPrivate
		unk  = network.ReachabilityUnknown
	)
	type step struct {
		v1   bool // emit AutoNAT v1's event on the host's bus instead
		r    network.Reachability
		want string // Mode() as table:mode
	}
	tests := []struct {
		name   string
		cfg    Config
		before *network.Reachability // set before Start
		start  string
		steps  []step
	}{
		{"single auto", Config{}, nil, "[main:client]", []step{
			{v1: true, r: pub, want: "[main:client]"},
			{r: pub, want: "[main:server]"},
			{v1: true, r: priv, want: "[main:server]"},
			{r: unk, want: "[main:client]"},
			{r: pub, want: "[main:server]"},
			{r: priv, want: "[main:client]"},
		}},
		{"dual auto", Config{LAN: true}, nil, "[wan:client lan:server]", []step{
			{v1: true, r: pub, want: "[wan:client lan:server]"},
			{r: pub, want: "[wan:server lan:server]"},
			{r: priv, want: "[wan:client lan:server]"},
		}},
		{"auto public before start", Config{LAN: true}, &[]network.Reachability{pub}[0], "[wan:server lan:server]", []step{
			{r: unk, want: "[wan:client lan:server]"},
		}},
		{"server stays", Config{Mode: ModeServer}, nil, "[main:server]", []step{
			{r: priv, want: "[main:server]"},
			{r: unk, want: "[main:server]"},
		}},
		{"client stays", Config{Mode: ModeClient, LAN: true}, nil, "[wan:client lan:server]", []step{
			{r: pub, want: "[wan:client lan:server]"},
			{v1: true, r: pub, want: "[wan:client lan:server]"},
		}},
	}
	modes := func(d *DHT) string {
		var s []string
		for _, m := range d.Mode() {
			s = append(s, m.Table+":"+m.Mode.String())
		}
		return fmt.Sprint(s)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				mn := mocknet.New()
				priv, _ := newKey(t)
				h, err := mn.AddPeer(priv, ma.StringCast("/ip4/10.0.0.1/tcp/4001"))
				if err != nil {
					t.Fatal(err)
				}
				d, err := New(h, priv, nil, tt.cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.before != nil {
					d.SetReachability(*tt.before)
				}
				if err := d.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := d.Close(); err != nil {
						t.Error(err)
					}
					mn.Close()
					time.Sleep(time.Minute)
				}()
				synctest.Wait()
				if got := modes(d); got != tt.start {
					t.Fatalf("after Start: %s, want %s", got, tt.start)
				}
				v1, err := d.h.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
				if err != nil {
					t.Fatal(err)
				}
				defer v1.Close()
				for i, st := range tt.steps {
					if st.v1 {
						if err := v1.Emit(event.EvtLocalReachabilityChanged{Reachability: st.r}); err != nil {
							t.Fatal(err)
						}
					} else {
						d.SetReachability(st.r)
					}
					time.Sleep(time.Second)
					synctest.Wait()
					if got := modes(d); got != st.want {
						t.Fatalf("step %d (%+v): %s, want %s", i, st, got, st.want)
					}
				}
			})
		})
	}
}

// TestModeBus: a subscription to reachability and other types gets the
// host bus's events of the other types and this bus's reachability, the
// last one only however often it was set while nobody read (the bound: one
// pending value per subscriber), and nothing from the host bus's own
// reachability emitters; the DHT's bus refuses a reachability emitter.
func TestModeBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hostBus := eventbus.NewBus()
		b := newModeBus(hostBus)
		if _, err := b.Emitter(new(event.EvtLocalReachabilityChanged)); err == nil {
			t.Fatal("Emitter(EvtLocalReachabilityChanged) succeeded, want refused")
		}
		b.setReachability(network.ReachabilityPrivate)
		sub, err := b.Subscribe([]any{new(event.EvtLocalReachabilityChanged), new(event.EvtLocalAddressesUpdated)})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		next := func() any {
			t.Helper()
			synctest.Wait()
			select {
			case e := <-sub.Out():
				return e
			default:
				t.Fatal("no event")
				return nil
			}
		}
		none := func() {
			t.Helper()
			synctest.Wait()
			select {
			case e := <-sub.Out():
				t.Fatalf("unexpected event %+v", e)
			default:
			}
		}
		if e := next(); e != (event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate}) {
			t.Fatalf("first event %+v, want the reachability set before Subscribe", e)
		}
		v1, err := hostBus.Emitter(new(event.EvtLocalReachabilityChanged))
		if err != nil {
			t.Fatal(err)
		}
		defer v1.Close()
		if err := v1.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic}); err != nil {
			t.Fatal(err)
		}
		none()
		addrs, err := hostBus.Emitter(new(event.EvtLocalAddressesUpdated))
		if err != nil {
			t.Fatal(err)
		}
		defer addrs.Close()
		if err := addrs.Emit(event.EvtLocalAddressesUpdated{Diffs: true}); err != nil {
			t.Fatal(err)
		}
		if e, ok := next().(event.EvtLocalAddressesUpdated); !ok || !e.Diffs {
			t.Fatalf("want the host bus's EvtLocalAddressesUpdated, got %+v", e)
		}
		// A subscriber that does not read holds at most its channel's
		// buffer and one pending wake; what it reads last is the latest.
		for range 1000 {
			b.setReachability(network.ReachabilityUnknown)
		}
		b.setReachability(network.ReachabilityPublic)
		synctest.Wait()
		var got []any
		for len(sub.Out()) > 0 {
			got = append(got, <-sub.Out())
			synctest.Wait()
		}
		if len(got) == 0 || len(got) > cap(sub.(*modeSub).out)+1 {
			t.Fatalf("%d events after 1001 sets, want 1 to %d", len(got), cap(sub.(*modeSub).out)+1)
		}
		if e := got[len(got)-1]; e != (event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic}) {
			t.Fatalf("last event %+v, want public", e)
		}
		none()
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-sub.Out(); ok {
			t.Fatal("Out not closed after Close")
		}
		if n := len(b.subs); n != 0 {
			t.Fatalf("%d subscriptions left after Close", n)
		}
		b.setReachability(network.ReachabilityPrivate) // no subscriber: no block
	})
}

// TestModeBusWildcard: a subscription to every event type
// (event.WildcardSubscription) on the DHT's bus sees reachability as any
// other subscriber of this bus does: from SetReachability, never from the
// host bus's own emitters (AutoNAT v1), as modeBus's doc promises for
// every event type but that one. (Not in a synctest bubble: go-libp2p's
// wildcard subscription leaves a goroutine behind on Close.)
func TestModeBusWildcard(t *testing.T) {
	hostBus := eventbus.NewBus()
	b := newModeBus(hostBus)
	b.setReachability(network.ReachabilityPrivate)
	sub, err := b.Subscribe(event.WildcardSubscription)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	v1, err := hostBus.Emitter(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Close()
	if err := v1.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic}); err != nil {
		t.Fatal(err)
	}
	addrs, err := hostBus.Emitter(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		t.Fatal(err)
	}
	defer addrs.Close()
	if err := addrs.Emit(event.EvtLocalAddressesUpdated{Diffs: true}); err != nil {
		t.Fatal(err)
	}
	var reach []event.EvtLocalReachabilityChanged
	others := 0
	for quiet := time.After(500 * time.Millisecond); ; {
		select {
		case e := <-sub.Out():
			if r, ok := e.(event.EvtLocalReachabilityChanged); ok {
				reach = append(reach, r)
			} else {
				others++
			}
			continue
		case <-quiet:
		}
		break
	}
	want := []event.EvtLocalReachabilityChanged{{Reachability: network.ReachabilityPrivate}}
	if fmt.Sprint(reach) != fmt.Sprint(want) || others != 1 {
		t.Fatalf("reachability events %+v and %d others, want %+v (SetReachability's only) and the host's EvtLocalAddressesUpdated", reach, others, want)
	}
}
