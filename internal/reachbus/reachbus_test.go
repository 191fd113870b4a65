package reachbus

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// host bus's events of the other types and this bus's reachability, the
// last one only however often it was set while nobody read (the bound: one
// pending value per subscriber), and nothing from the host bus's own
// reachability emitters; the bus refuses a reachability emitter.
func TestBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hostBus := eventbus.NewBus()
		b := New(hostBus)
		if _, err := b.Emitter(new(event.EvtLocalReachabilityChanged)); err == nil {
			t.Fatal("Emitter(EvtLocalReachabilityChanged) succeeded, want refused")
		}
		b.Set(network.ReachabilityPrivate)
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
			b.Set(network.ReachabilityUnknown)
		}
		b.Set(network.ReachabilityPublic)
		synctest.Wait()
		var got []any
		for len(sub.Out()) > 0 {
			got = append(got, <-sub.Out())
			synctest.Wait()
		}
		if len(got) == 0 || len(got) > cap(sub.(*subscription).out)+1 {
			t.Fatalf("%d events after 1001 sets, want 1 to %d", len(got), cap(sub.(*subscription).out)+1)
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
		b.Set(network.ReachabilityPrivate) // no subscriber: no block
	})
}

// TestBusWildcard: a subscription to every event type
// (event.WildcardSubscription) on the DHT's bus sees reachability as any
// other subscriber of this bus does: from SetReachability, never from the
// host bus's own emitters (AutoNAT v1), as Bus's doc promises for
// every event type but that one. (Not in a synctest bubble: go-libp2p's
// wildcard subscription leaves a goroutine behind on Close.)
func TestBusWildcard(t *testing.T) {
	hostBus := eventbus.NewBus()
	b := New(hostBus)
	b.Set(network.ReachabilityPrivate)
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
