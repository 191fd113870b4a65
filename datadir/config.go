package datadir

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// DefaultPort is the TCP and QUIC port a node listens on unless told
// otherwise. When it is taken, the node falls back to a free port and says so.
const DefaultPort = 4777

// Config is the node's configuration, read from config.toml in the data dir.
// Every field's zero value means "the default" unless its doc says otherwise.
type Config struct {
	Network NetworkConfig `toml:"network"`
	DHT     DHTConfig     `toml:"dht"`
	API     APIConfig     `toml:"api"`
	Log     LogConfig     `toml:"log"`
	Blobs   BlobsConfig   `toml:"blobs"`
}

// BlobsConfig is the node's blobs and the cell's files on this device.
type BlobsConfig struct {
	// Policy says which of the cell's files this device keeps: "all",
	// "none" (each fetched when opened) or "budget" (the newest files up to
	// PinBudgetMiB). Empty means "all".
	Policy string `toml:"policy"`
	// PinBudgetMiB is the files kept under the "budget" policy, in MiB of
	// content.
	PinBudgetMiB int `toml:"pin_budget_mib"`
	// DiskBudgetMiB is the blob blocks on disk, in MiB, past which the
	// node collects the unpinned ones by itself. 0: never by itself.
	DiskBudgetMiB int `toml:"disk_budget_mib"`
}

// NetworkConfig is the libp2p host and peer discovery.
type NetworkConfig struct {
	// Port is the TCP and QUIC (UDP) port. 0 means DefaultPort; -1 means a
	// free port chosen by the system.
	Port int `toml:"port"`
	// ListenIPs are the IP addresses to listen on. Empty: every interface,
	// IPv4 and IPv6 ("0.0.0.0" and "::").
	ListenIPs []string `toml:"listen_ips"`
	// Bootstrap lists multiaddrs, each ending in /p2p/<peer ID>, dialled at
	// start and kept connected. Empty: none (exopeer has no default public
	// bootstrap peers).
	Bootstrap []string `toml:"bootstrap"`
	// MDNS finds peers on the LAN by multicast DNS. Default true; set
	// "mdns = false" to switch it off.
	MDNS *bool `toml:"mdns"`
	// PortMapping asks the router for a port mapping by UPnP or NAT-PMP.
	// Off unless set to true.
	PortMapping bool `toml:"port_mapping"`
	// MaxConnections is the connection manager's high water mark; it trims
	// to three quarters of it. 0 means 400.
	MaxConnections int `toml:"max_connections"`
	// RelayService says when the node relays for its cell's members and
	// its contacts' devices (circuit relay v2, to them only): "auto"
	// (while reachable from the internet), "on" (always: a machine known
	// to be public) or "off". Empty means "auto".
	RelayService string `toml:"relay_service"`
	// StaticRelays lists relays' multiaddrs, each ending in /p2p/<peer
	// ID>, on which the node reserves a slot when behind NAT, after its
	// cell's own relays (for a cell with no public device).
	StaticRelays []string `toml:"static_relays"`
	// Resources is the resource manager's limits on what peers may hold.
	Resources ResourceConfig `toml:"resources"`
}

// DHTConfig is the private Kademlia DHT.
type DHTConfig struct {
	// Mode is "auto" (server when reachable from the internet, client
	// otherwise), "server" or "client". Empty means "auto".
	Mode string `toml:"mode"`
	// LAN runs a second DHT table for peers on private networks, in server
	// mode, as Kubo does. Default true.
	LAN *bool `toml:"lan"`
}

// APIConfig is the local control API used by the CLI.
type APIConfig struct {
	// Listen is the loopback TCP address of the control API. Empty means
	// "127.0.0.1:0" (a free port, written to the data dir's api file).
	Listen string `toml:"listen"`
}

// LogConfig is the node's log.
type LogConfig struct {
	// Level is "debug", "info", "warn" or "error". Empty means "info".
	Level string `toml:"level"`
}

// DefaultConfig returns the configuration of a fresh data dir.
func DefaultConfig() Config {
	on := true
	return Config{
		Network: NetworkConfig{Port: DefaultPort, MDNS: &on, MaxConnections: 400, RelayService: "auto", Resources: ResourceConfig{}.WithDefaults()},
		DHT:     DHTConfig{Mode: "auto", LAN: &on},
		API:     APIConfig{Listen: "127.0.0.1:0"},
		Log:     LogConfig{Level: "info"},
		Blobs:   BlobsConfig{Policy: "all"},
	}
}

// WithDefaults fills in the zero fields from DefaultConfig.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.Network.Port == 0 {
		c.Network.Port = d.Network.Port
	}
	if c.Network.MDNS == nil {
		c.Network.MDNS = d.Network.MDNS
	}
	if c.Network.MaxConnections == 0 {
		c.Network.MaxConnections = d.Network.MaxConnections
	}
	if c.Network.RelayService == "" {
		c.Network.RelayService = d.Network.RelayService
	}
	c.Network.Resources = c.Network.Resources.WithDefaults()
	if c.DHT.Mode == "" {
		c.DHT.Mode = d.DHT.Mode
	}
	if c.DHT.LAN == nil {
		c.DHT.LAN = d.DHT.LAN
	}
	if c.API.Listen == "" {
		c.API.Listen = d.API.Listen
	}
	if c.Log.Level == "" {
		c.Log.Level = d.Log.Level
	}
	if c.Blobs.Policy == "" {
		c.Blobs.Policy = d.Blobs.Policy
	}
	return c
}

// validate rejects nonsense with messages naming the setting.
func (c Config) validate() error {
	var errs []error
	if p := c.Network.Port; p < -1 || p > 65535 {
		errs = append(errs, fmt.Errorf("network.port %d is not a port (1-65535, or -1 for any free port)", p))
	}
	for _, ip := range c.Network.ListenIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			errs = append(errs, fmt.Errorf("network.listen_ips: %q is not an IP address", ip))
		}
	}
	for _, b := range c.Network.Bootstrap {
		if _, err := ma.NewMultiaddr(b); err != nil {
			errs = append(errs, fmt.Errorf("network.bootstrap: %q is not a multiaddr: %w", b, err))
		}
	}
	if !slices.Contains([]string{"auto", "on", "off"}, c.Network.RelayService) {
		errs = append(errs, fmt.Errorf("network.relay_service %q is not one of auto, on, off", c.Network.RelayService))
	}
	for _, r := range c.Network.StaticRelays {
		if err := checkRelayAddr(r); err != nil {
			errs = append(errs, fmt.Errorf("network.static_relays: %w", err))
		}
	}
	if c.Network.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("network.max_connections %d is negative", c.Network.MaxConnections))
	}
	errs = append(errs, c.Network.Resources.validate()...)
	if !slices.Contains([]string{"auto", "server", "client"}, c.DHT.Mode) {
		errs = append(errs, fmt.Errorf("dht.mode %q is not one of auto, server, client", c.DHT.Mode))
	}
	if ap, err := netip.ParseAddrPort(c.API.Listen); err != nil {
		errs = append(errs, fmt.Errorf("api.listen %q is not an IP:port address", c.API.Listen))
	} else if !ap.Addr().IsLoopback() {
		errs = append(errs, fmt.Errorf("api.listen %q is not a loopback address; the control API never leaves the machine", c.API.Listen))
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		errs = append(errs, err)
	}
	switch c.Blobs.Policy {
	case "all", "none":
	case "budget":
		if c.Blobs.PinBudgetMiB <= 0 {
			errs = append(errs, fmt.Errorf("blobs.policy \"budget\" needs blobs.pin_budget_mib > 0"))
		}
	default:
		errs = append(errs, fmt.Errorf("blobs.policy %q is not one of all, none, budget", c.Blobs.Policy))
	}
	const maxMiB int64 = 1 << 40 // 1 EiB: past it the bytes overflow
	if b := c.Blobs.PinBudgetMiB; b < 0 || int64(b) > maxMiB {
		errs = append(errs, fmt.Errorf("blobs.pin_budget_mib %d is not within 0 to %d", b, maxMiB))
	}
	if b := c.Blobs.DiskBudgetMiB; b < 0 || int64(b) > maxMiB {
		errs = append(errs, fmt.Errorf("blobs.disk_budget_mib %d is not within 0 to %d", b, maxMiB))
	}
	return errors.Join(errs...)
}

// checkRelayAddr checks a static relay's address: a multiaddr, not a
// relayed one, an address followed by /p2p/<peer ID>.
func checkRelayAddr(s string) error {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return fmt.Errorf("%q is not a multiaddr: %w", s, err)
	}
	if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return fmt.Errorf("%q is a relayed address, not a relay's", s)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return fmt.Errorf("%q does not end in /p2p/<peer ID>: %w", s, err)
	}
	if len(ai.Addrs) == 0 {
		return fmt.Errorf("%q has no address before its /p2p/<peer ID>", s)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log.level %q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

// Level returns the configured log level.
func (c Config) Level() slog.Level {
	l, _ := parseLevel(c.WithDefaults().Log.Level)
	return l
}

// maxConfigSize bounds config.toml: a larger file is a mistake, not a config.
const maxConfigSize = 1 << 20

// ParseConfig decodes config.toml bytes, fills in defaults and validates.
// Unknown keys are an error (a typo must not be silently ignored).
func ParseConfig(data []byte) (Config, error) {
	c, _, err := parseConfig(data)
	return c, err
}

// parseConfig is ParseConfig that also returns the keys the file sets
// ("network.port", ...).
func parseConfig(data []byte) (Config, map[string]bool, error) {
	if len(data) > maxConfigSize {
		return Config{}, nil, fmt.Errorf("config is %d bytes, larger than %d", len(data), maxConfigSize)
	}
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		return Config{}, nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, nil, fmt.Errorf("unknown setting(s): %s", strings.Join(keys, ", "))
	}
	set := make(map[string]bool)
	for _, k := range md.Keys() {
		set[k.String()] = true
	}
	c = c.WithDefaults()
	if err := c.validate(); err != nil {
		return Config{}, nil, err
	}
	return c, set, nil
}

// LoadConfig reads and parses the config file at path. Its errors name the
// file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// DefaultConfigFile is the commented config.toml written on first run.
const DefaultConfigFile = `# exopeer node configuration.
# Every setting is optional: delete a line to get its default.
# Edit while the node is stopped; it is read at start.

[network]
# TCP and QUIC (UDP) port, one for both. If it is taken, the node falls back
# to a free port and says so. -1 always picks a free port.
port = 4777

# IP addresses to listen on. Empty: every interface, IPv4 and IPv6.
listen_ips = []

# Peers to dial at start and keep connected, as multiaddrs ending in
# /p2p/<peer ID>, e.g. "/ip4/192.0.2.7/udp/4777/quic-v1/p2p/12D3KooW...".
# exopeer has no default public bootstrap peers.
bootstrap = []

# Find peers on the local network by multicast DNS.
mdns = true

# Ask the router for a port mapping by UPnP / NAT-PMP. Off by default.
port_mapping = false

# Relay for this cell's devices and its contacts' devices (circuit relay v2,
# to them only), so that devices behind NAT can be reached: "auto" while
# this device is reachable from the internet, "on" always (a server known
# to be public), "off" never.
relay_service = "auto"

# Relays to reserve a slot on when behind NAT, after the cell's own public
# devices, as multiaddrs ending in /p2p/<peer ID>: for a cell with no
# public device. Their circuits may be limited in time and bytes (blobs
# then need a direct path).
static_relays = []

# Connection manager high water mark; trimmed to three quarters of it.
max_connections = 400

# The libp2p resource manager: what peers may hold of this node at once.
# A stream over a limit is refused when it opens; a stream's buffers grow
# only while its protocol, its peer and the node have memory left.
# The exopeer protocols are /exopeer/cell/join, /exopeer/cell/roster,
# /exopeer/chain/sync, /exopeer/gossip/packet, /exopeer/gossip/stream,
# /exopeer/ping, /exopeer/kad, /exopeer/lan/kad, /exopeer/ipfs/bitswap.
[network.resources]
# Memory the whole libp2p stack may hold, in MiB; connection and file
# descriptor limits scale with it. 0: one eighth of the machine's memory,
# at least 128.
memory_mib = 0
# Inbound streams one peer may have open at once, all protocols together.
peer_streams = 128
# Inbound streams open at once on one exopeer protocol, all peers together.
protocol_streams = 256
# Inbound streams one peer may have open at once on one exopeer protocol
# (on the join protocol, 2 at most).
protocol_peer_streams = 16
# Buffer memory of one exopeer protocol's streams, all peers together, in
# MiB; one peer may hold a quarter of it, one stream an eighth.
protocol_memory_mib = 64

[dht]
# "auto": DHT server when reachable from the internet, client otherwise;
# or "server", or "client".
mode = "auto"

# Also run a LAN-only DHT table (server mode) for peers on private networks.
lan = true

[api]
# Loopback address of the local control API used by the exopeer CLI.
# Port 0 picks a free port; the address is written to the data dir's api file.
listen = "127.0.0.1:0"

[log]
# debug, info, warn or error.
level = "info"

[blobs]
# Which of the cell's files this device keeps: "all", "none" (a file is
# fetched when opened, and kept until the next collection), or "budget"
# (the newest files whose sizes add up to pin_budget_mib).
policy = "all"
# MiB of files kept under the "budget" policy.
pin_budget_mib = 0
# MiB of blob blocks on disk past which the node collects the blocks no
# kept file or pin needs, by itself. 0: only by hand (exopeer blob gc).
disk_budget_mib = 0
`

// Check fills in defaults and validates c in place, as ParseConfig does for
// a file; the CLI uses it after laying its flags over the file's values.
func (c *Config) Check() error {
	*c = c.WithDefaults()
	return c.validate()
}
