package discovery

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().validate(); err != nil {
		t.Fatalf("DefaultConfig().validate() = %v", err)
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{name: "zero is the default", in: Config{}, want: DefaultConfig()},
		{
			name: "set fields are kept",
			in: Config{
				BackoffMin: 2 * time.Second, BackoffMax: 3 * time.Second, MaxFailures: 1,
				DialTimeout: time.Second, MaxConcurrentDials: 2, PingInterval: time.Minute, IdentifyGrace: 2 * time.Second,
				IgnoreFor: time.Minute, RendezvousEpoch: 2 * time.Hour, RendezvousInterval: 5 * time.Second,
				RendezvousAdvertisers: 3,
			},
			want: Config{
				BackoffMin: 2 * time.Second, BackoffMax: 3 * time.Second, MaxFailures: 1,
				DialTimeout: time.Second, MaxConcurrentDials: 2, PingInterval: time.Minute, IdentifyGrace: 2 * time.Second,
				IgnoreFor: time.Minute, RendezvousEpoch: 2 * time.Hour, RendezvousInterval: 5 * time.Second,
				RendezvousAdvertisers: 3,
			},
		},
		{
			name: "negative values are left for validate to reject",
			in:   Config{BackoffMin: -1, MaxFailures: -1},
			want: func() Config {
				c := DefaultConfig()
				c.BackoffMin, c.MaxFailures = -1, -1
				return c
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.in.withDefaults()); diff != "" {
				t.Errorf("withDefaults() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	id := peer.ID("12D3KooWtestpeer")
	addr := mustAddr(t, "/ip4/127.0.0.1/tcp/4001")
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings the error must contain, the field's name first
	}{
		{"BackoffMin negative", func(c *Config) { c.BackoffMin = -time.Second }, []string{"BackoffMin", "negative"}},
		{"BackoffMax negative", func(c *Config) { c.BackoffMax = -time.Second }, []string{"BackoffMax", "negative"}},
		{"DialTimeout negative", func(c *Config) { c.DialTimeout = -1 }, []string{"DialTimeout", "negative"}},
		{"PingInterval negative", func(c *Config) { c.PingInterval = -1 }, []string{"PingInterval", "negative"}},
		{"IgnoreFor negative", func(c *Config) { c.IgnoreFor = -1 }, []string{"IgnoreFor", "negative"}},
		{"RendezvousEpoch negative", func(c *Config) { c.RendezvousEpoch = -1 }, []string{"RendezvousEpoch", "negative"}},
		{"RendezvousInterval negative", func(c *Config) { c.RendezvousInterval = -1 }, []string{"RendezvousInterval", "negative"}},
		{"MaxFailures negative", func(c *Config) { c.MaxFailures = -1 }, []string{"MaxFailures", "negative"}},
		{"MaxConcurrentDials negative", func(c *Config) { c.MaxConcurrentDials = -1 }, []string{"MaxConcurrentDials", "negative"}},
		{"RendezvousAdvertisers negative", func(c *Config) { c.RendezvousAdvertisers = -1 }, []string{"RendezvousAdvertisers", "negative"}},
		{
			"BackoffMax below BackoffMin",
			func(c *Config) { c.BackoffMin, c.BackoffMax = 2*time.Second, time.Second },
			[]string{"BackoffMax", "BackoffMin"},
		},
		{
			"bootstrap entry without addresses",
			func(c *Config) { c.Bootstrap = []peer.AddrInfo{{ID: id}} },
			[]string{"bootstrap peer 0", "no address"},
		},
		{
			"bootstrap entry without peer ID",
			func(c *Config) {
				c.Bootstrap = []peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{addr}}, {Addrs: []ma.Multiaddr{addr}}}
			},
			[]string{"bootstrap peer 1", "no peer ID"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.validate()
			if err == nil {
				t.Fatal("validate() = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("validate() = %q, want it to mention %q", err, w)
				}
			}
			// New applies the same check.
			if _, err := New(newHost(t), cfg, nil, nil, nil); err == nil {
				t.Error("New accepted the configuration")
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DialTimeout, cfg.IgnoreFor, cfg.MaxFailures = -1, -1, -1
	err := cfg.validate()
	if err == nil {
		t.Fatal("validate() = nil, want an error")
	}
	for _, w := range []string{"DialTimeout", "IgnoreFor", "MaxFailures"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("validate() = %q, want it to mention %q", err, w)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"defaults", DefaultConfig()},
		{"test profile", testConfig().withDefaults()},
		{"equal back-off bounds", func() Config {
			c := DefaultConfig()
			c.BackoffMin, c.BackoffMax = time.Second, time.Second
			return c
		}()},
		{"bootstrap with address", func() Config {
			c := DefaultConfig()
			c.Bootstrap = []peer.AddrInfo{{ID: "x", Addrs: []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1")}}}
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.validate(); err != nil {
				t.Errorf("validate() = %v", err)
			}
		})
	}
}
