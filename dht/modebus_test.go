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
