package dht

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestParseBootstrap(t *testing.T) {
	_, a := newKey(t)
	_, b := newKey(t)
	addr := func(s string) ma.Multiaddr { return ma.StringCast(s) }
	tests := []struct {
		name    string
		in      []string
		want    []peer.AddrInfo
		errHas  string // the error must name the bad entry
		wantErr bool
	}{
		{name: "none", in: nil, want: nil},
		{
			name: "two peers, one with two addresses",
			in: []string{
				"/ip4/198.51.100.7/tcp/4001/p2p/" + a.String(),
				" /dns4/boot.example/udp/4001/quic-v1/p2p/" + b.String(),
				"/ip6/2001:db8::1/tcp/4001/p2p/" + a.String(),
			},
			want: []peer.AddrInfo{
				{ID: a, Addrs: []ma.Multiaddr{addr("/ip4/198.51.100.7/tcp/4001"), addr("/ip6/2001:db8::1/tcp/4001")}},
				{ID: b, Addrs: []ma.Multiaddr{addr("/dns4/boot.example/udp/4001/quic-v1")}},
			},
		},
		{name: "not a multiaddr", in: []string{"/ip4/198.51.100.7/tcp/4001/p2p/" + a.String(), "/ip4/999.1.1.1/tcp/1"}, errHas: `entry 1 "/ip4/999.1.1.1/tcp/1"`, wantErr: true},
		{name: "host:port", in: []string{"198.51.100.7:4001"}, errHas: `"198.51.100.7:4001"`, wantErr: true},
		{name: "missing /p2p/", in: []string{"/ip4/198.51.100.7/tcp/4001"}, errHas: `entry 0 "/ip4/198.51.100.7/tcp/4001": needs a /p2p/`, wantErr: true},
		{name: "only /p2p/", in: []string{"/p2p/" + a.String()}, errHas: "needs an address", wantErr: true},
		{name: "empty", in: []string{""}, errHas: `entry 0 ""`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBootstrap(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadBootstrap) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want ErrBadBootstrap containing %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cmpAddr := cmp.Comparer(func(x, y ma.Multiaddr) bool { return x.Equal(y) })
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Fatalf("ParseBootstrap (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	_, id := newKey(t)
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"zero means defaults", func(c *Config) { *c = Config{} }, true},
		{"short test timings", func(c *Config) { c.RecordTTL, c.RepublishInterval = time.Minute, 20*time.Second }, true},
		{"unknown mode", func(c *Config) { c.Mode = 7 }, false},
		{"negative ttl", func(c *Config) { c.RecordTTL = -time.Second }, false},
		{"ttl past max", func(c *Config) { c.RecordTTL = MaxRecordTTL + time.Second }, false},
		{"republish not before expiry", func(c *Config) { c.RepublishInterval = c.RecordTTL }, false},
		{"republish past provider validity", func(c *Config) { c.RecordTTL, c.RepublishInterval = MaxRecordTTL, 50*time.Hour }, false},
		{"negative bucket size", func(c *Config) { c.BucketSize = -1 }, false},
		{"bootstrap without address", func(c *Config) { c.Bootstrap = []peer.AddrInfo{{ID: id}} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.withDefaults().validate()
			if tt.ok != (err == nil) {
				t.Fatalf("validate = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("validate = %v, does not wrap ErrInvalidConfig", err)
			}
		})
	}
}
