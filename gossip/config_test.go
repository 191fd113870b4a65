package gossip

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestTimingDefaults(t *testing.T) {
	got := Timing{}.withDefaults()
	if got != DefaultTiming() {
		t.Errorf("zero Timing with defaults = %+v, want %+v", got, DefaultTiming())
	}
	if err := got.validate(); err != nil {
		t.Errorf("DefaultTiming is invalid: %v", err)
	}
	// A short probe interval gets a probe timeout to match.
	short := Timing{ProbeInterval: 400 * time.Millisecond}.withDefaults()
	if short.ProbeTimeout != 300*time.Millisecond {
		t.Errorf("ProbeTimeout for a 400 ms ProbeInterval = %v, want 300 ms", short.ProbeTimeout)
	}
}

func TestNewRejects(t *testing.T) {
	seed := testSeed(t, 41)
	h := newRealHost(t, testKey(seed, 0))
	r := newRoster(h.ID())
	secp, _, err := crypto.GenerateSecp256k1Key(rand.NewChaCha8([32]byte{byte(seed)}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"zero tag", func(c *Config) { c.Tag = [8]byte{} }, "Tag is zero"},
		{"no key", func(c *Config) { c.Key = nil }, "Key is nil"},
		{"another node's key", func(c *Config) { c.Key = testKey(seed, 1) }, "not of the host"},
		{"not Ed25519", func(c *Config) { c.Key = secp }, "not Ed25519"},
		{"no Allow", func(c *Config) { c.Allow = nil }, "Allow is nil"},
		{"no AppMeta", func(c *Config) { c.AppMeta = nil }, "AppMeta is nil"},
		{"short gossip key", func(c *Config) { c.GossipKey = c.GossipKey[:16] }, "GossipKey has 16 bytes"},
		{"probe timeout too long", func(c *Config) { c.Timing.ProbeTimeout = 5 * time.Second }, "must be below ProbeInterval"},
		{"negative interval", func(c *Config) { c.Timing.GossipInterval = -time.Second }, "GossipInterval must be positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(seed, testKey(seed, 0), r, Timing{})
			tt.change(&cfg)
			_, err := New(h, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestLifecycle: the methods say clearly when they are called too early
// or too late, Close is idempotent, and closing closes subscriptions.
func TestLifecycle(t *testing.T) {
	seed := testSeed(t, 42)
	h := newRealHost(t, testKey(seed, 0))
	cfg := testConfig(seed, testKey(seed, 0), newRoster(h.ID()), fastTiming())
	m, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Join(t.Context(), nil); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Join before Start: %v, want ErrNotStarted", err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	// A second Membership on the same host is refused: fixed protocol IDs.
	other, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "already has a handler") {
		t.Errorf("second Membership's Start = %v, want refused", err)
	}
	other.Close()

	if got := m.Members(); len(got) != 1 || got[0].ID != h.ID() || got[0].State != StateAlive || string(got[0].Meta) != "roster v1" {
		t.Errorf("a lone member sees %v", got)
	}
	if n, err := m.Join(t.Context(), []peer.ID{h.ID()}); n != 0 || err == nil {
		t.Errorf("Join of only itself = %d, %v; want 0 and an error", n, err)
	}
	if err := m.Broadcast(testTopic, nil); err == nil || errors.Is(err, ErrUnknownTopic) {
		t.Errorf("Broadcast of 0 bytes: %v, want refused for its size", err)
	}
	if err := m.Broadcast(testTopic, make([]byte, MaxBroadcastSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Broadcast of %d bytes: %v, want ErrTooLarge", MaxBroadcastSize+1, err)
	}
	if err := m.Broadcast("not-registered", []byte("x")); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("Broadcast on a topic not registered: %v, want ErrUnknownTopic", err)
	}
	if err := m.SetGossipKey(make([]byte, 16)); err == nil {
		t.Error("SetGossipKey of a 16-byte key succeeded")
	}
	events, cancel := m.Subscribe()
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	cancel() // after Close: harmless
	for range events {
	}
	if _, ok := <-events; ok {
		t.Error("subscription still open after Close")
	}
	if err := m.UpdateMeta(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Close: %v, want ErrClosed", err)
	}
	if err := m.Leave(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Close: %v, want ErrClosed", err)
	}
	if err := m.Broadcast(testTopic, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Broadcast after Close: %v, want ErrClosed", err)
	}
	if err := m.SetGossipKey(gossipKey(seed, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("SetGossipKey after Close: %v, want ErrClosed", err)
	}
	if ch, _ := m.Subscribe(); ch != nil {
		if _, ok := <-ch; ok {
			t.Error("Subscribe after Close returned an open channel")
		}
	}
	// Close of a Membership never started.
	idle, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
}
