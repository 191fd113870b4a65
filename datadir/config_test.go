package datadir

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultConfigFileParsesToDefaults(t *testing.T) {
	got, err := ParseConfig([]byte(DefaultConfigFile))
	if err != nil {
		t.Fatalf("ParseConfig(DefaultConfigFile): %v", err)
	}
	want := DefaultConfig()
	want.Network.ListenIPs = []string{}
	want.Network.Bootstrap = []string{}
	want.Network.StaticRelays = []string{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default config file differs from DefaultConfig (-want +got):\n%s", diff)
	}
}

func TestParseConfigEmptyMeansDefaults(t *testing.T) {
	got, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultConfig(), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseConfigSettings(t *testing.T) {
	got, err := ParseConfig([]byte(`
[network]
port = -1
listen_ips = ["127.0.0.1", "::1"]
bootstrap = ["/ip4/192.0.2.1/tcp/4777/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh"]
mdns = false
port_mapping = true
relay_service = "on"
static_relays = ["/ip4/192.0.2.1/udp/4777/quic-v1/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh"]
[dht]
mode = "server"
lan = false
[api]
listen = "[::1]:5001"
[log]
level = "debug"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Network.Port != -1 || *got.Network.MDNS || !got.Network.PortMapping || *got.DHT.LAN ||
		got.DHT.Mode != "server" || got.API.Listen != "[::1]:5001" || got.Level().String() != "DEBUG" ||
		len(got.Network.ListenIPs) != 2 || len(got.Network.Bootstrap) != 1 ||
		got.Network.RelayService != "on" || len(got.Network.StaticRelays) != 1 {
		t.Errorf("settings not read: %+v", got)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax", "[network\nport = 1", "toml"},
		{"unknown key", "[network]\nprot = 4", "unknown setting(s): network.prot"},
		{"unknown table", "[nework]\nport = 4", "unknown setting(s): nework"},
		{"wrong type", "[network]\nport = \"x\"", "network.port"},
		{"port too big", "[network]\nport = 70000", "network.port 70000"},
		{"port negative", "[network]\nport = -2", "network.port -2"},
		{"listen ip", "[network]\nlisten_ips = [\"nope\"]", `"nope" is not an IP`},
		{"bootstrap", "[network]\nbootstrap = [\"/ip4/1.2.3\"]", `network.bootstrap: "/ip4/1.2.3"`},
		{"connections", "[network]\nmax_connections = -5", "max_connections -5"},
		{"relay service", "[network]\nrelay_service = \"always\"", `network.relay_service "always" is not one of auto, on, off`},
		{"static relay not multiaddr", "[network]\nstatic_relays = [\"/ip4/1.2.3\"]", `network.static_relays: "/ip4/1.2.3" is not a multiaddr`},
		{"static relay no peer", "[network]\nstatic_relays = [\"/ip4/192.0.2.1/tcp/4777\"]", `network.static_relays: "/ip4/192.0.2.1/tcp/4777" does not end in /p2p/<peer ID>`},
		{"static relay no address", "[network]\nstatic_relays = [\"/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh\"]", "has no address"},
		{"static relay relayed", "[network]\nstatic_relays = [\"/ip4/192.0.2.1/tcp/4777/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh/p2p-circuit/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh\"]", "is a relayed address"},
		{"dht mode", "[dht]\nmode = \"fast\"", `dht.mode "fast"`},
		{"api not loopback", "[api]\nlisten = \"0.0.0.0:5001\"", "not a loopback address"},
		{"api not addr", "[api]\nlisten = \"localhost\"", "not an IP:port"},
		{"log level", "[log]\nlevel = \"loud\"", `log.level "loud"`},
		{"too big", strings.Repeat("#", maxConfigSize+1), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseConfig error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(DefaultConfigFile))
	f.Add([]byte("[network]\nport = 1\nbootstrap = [\"/ip4/1.2.3.4/tcp/1\"]"))
	f.Add([]byte("[dht]\nmode = \"client\"\nlan = false\n[api]\nlisten=\"127.0.0.1:1\""))
	f.Add([]byte("a = [[[[[[[[["))
	f.Add([]byte("[network]\nrelay_service = \"on\"\nstatic_relays = [\"/ip4/192.0.2.1/udp/4777/quic-v1/p2p/12D3KooWCdjerAFxxpikqirU1zpF64PQtak8gAtCNYkJxzUm9Cuh\"]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// What parses must be valid and complete.
		if err := c.validate(); err != nil {
			t.Fatalf("ParseConfig accepted an invalid config: %v", err)
		}
		if c.Network.MDNS == nil || c.DHT.LAN == nil || c.DHT.Mode == "" || c.API.Listen == "" || c.Network.RelayService == "" {
			t.Fatalf("defaults not filled in: %+v", c)
		}
	})
}
