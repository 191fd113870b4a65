package datadir

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The layers of the configuration, lowest first: DefaultConfig, then
// config.toml, then the environment, then the command line. Resolve lays
// them over each other, in this one place.
//
// Every setting of config.toml has an environment variable: EXOPEER_, then
// its key upper-cased with dots as underscores, the leading "network."
// dropped (network.port is EXOPEER_PORT, network.resources.memory_mib is
// EXOPEER_RESOURCES_MEMORY_MIB, dht.mode is EXOPEER_DHT_MODE, log.level is
// EXOPEER_LOG_LEVEL). Lists (listen_ips, bootstrap) are separated by commas
// or spaces. A variable set to the empty string is not set.

// Source says which layer an effective setting came from.
type Source string

// The layers, lowest first.
const (
	SourceDefault Source = "default"
	SourceFile    Source = "file"
	SourceEnv     Source = "env"
	SourceFlag    Source = "flag"
)

// Sources maps each setting's key (as in config.toml: "network.port") to the
// layer its effective value came from.
type Sources map[string]Source

var (
	// ErrBadEnv marks an environment variable whose value is not one of
	// its setting's.
	ErrBadEnv = errors.New("datadir: bad environment variable")
	// ErrBadFlag marks a command-line flag whose value is not one of its
	// setting's.
	ErrBadFlag = errors.New("datadir: bad flag")
)

// Setting describes one layered setting: its key in config.toml, its
// environment variable, and its command-line flag ("" if it has none).
type Setting struct {
	Key  string
	Env  string
	Flag string
	// Adds is true if the flag adds to the value of the layers below
	// rather than replacing it (--bootstrap adds peers).
	Adds bool

	get func(*Config) any
	set func(*Config, string) error
}

// Settings returns every layered setting, in the order of config.toml.
func Settings() []Setting { return settings }

var settings = []Setting{
	intSetting("network.port", "port", func(c *Config) *int { return &c.Network.Port }),
	listSetting("network.listen_ips", "", func(c *Config) *[]string { return &c.Network.ListenIPs }),
	{Key: "network.bootstrap", Flag: "bootstrap", Adds: true,
		get: func(c *Config) any { return nonNil(c.Network.Bootstrap) },
		set: func(c *Config, s string) error { c.Network.Bootstrap = splitList(s); return nil }},
	boolPtrSetting("network.mdns", "mdns", func(c *Config) **bool { return &c.Network.MDNS }),
	boolSetting("network.port_mapping", "", func(c *Config) *bool { return &c.Network.PortMapping }),
	stringSetting("network.relay_service", "", func(c *Config) *string { return &c.Network.RelayService }),
	listSetting("network.static_relays", "", func(c *Config) *[]string { return &c.Network.StaticRelays }),
	intSetting("network.max_connections", "", func(c *Config) *int { return &c.Network.MaxConnections }),
	intSetting("network.resources.memory_mib", "", func(c *Config) *int { return &c.Network.Resources.MemoryMiB }),
	intSetting("network.resources.peer_streams", "", func(c *Config) *int { return &c.Network.Resources.PeerStreams }),
	intSetting("network.resources.protocol_streams", "", func(c *Config) *int { return &c.Network.Resources.ProtocolStreams }),
	intSetting("network.resources.protocol_peer_streams", "", func(c *Config) *int { return &c.Network.Resources.ProtocolPeerStreams }),
	intSetting("network.resources.protocol_memory_mib", "", func(c *Config) *int { return &c.Network.Resources.ProtocolMemoryMiB }),
	stringSetting("dht.mode", "dht-mode", func(c *Config) *string { return &c.DHT.Mode }),
	boolPtrSetting("dht.lan", "dht-lan", func(c *Config) **bool { return &c.DHT.LAN }),
	stringSetting("api.listen", "api", func(c *Config) *string { return &c.API.Listen }),
	stringSetting("log.level", "log-level", func(c *Config) *string { return &c.Log.Level }),
	stringSetting("blobs.policy", "", func(c *Config) *string { return &c.Blobs.Policy }),
	intSetting("blobs.pin_budget_mib", "", func(c *Config) *int { return &c.Blobs.PinBudgetMiB }),
	intSetting("blobs.disk_budget_mib", "", func(c *Config) *int { return &c.Blobs.DiskBudgetMiB }),
}

func init() {
	for i := range settings {
		settings[i].Env = "EXOPEER_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(settings[i].Key, "network."), ".", "_"))
	}
}

// Value returns the value of the setting in c: an int, a bool, a string or
// a []string.
func (s Setting) Value(c Config) any { return s.get(&c) }

// Resolve lays the environment and the flags over file (config.toml as
// ReadConfigFile read it, itself over the defaults), checks the result as
// a config file is checked, and says where each setting came from. env
// looks a variable up (os.Getenv; nil: no environment); flags maps the
// flags given on the command line, by name without dashes, to their values
// (a list flag's values joined by commas). A bad value is an error naming
// its variable (ErrBadEnv) or flag (ErrBadFlag); so is a value that parses
// but fails the config's checks.
func Resolve(file FileConfig, env func(string) string, flags map[string]string) (Config, Sources, error) {
	c := file.Config.WithDefaults()
	src := make(Sources, len(settings))
	from := make(map[string]string) // key -> the variable or flag that set it
	known := make(map[string]bool)
	var errs []error
	for _, s := range settings {
		src[s.Key] = SourceDefault
		if file.Keys[s.Key] {
			src[s.Key] = SourceFile
		}
		if env != nil {
			if v := env(s.Env); v != "" {
				if err := s.set(&c, v); err != nil {
					errs = append(errs, fmt.Errorf("%w: %s=%q: %w", ErrBadEnv, s.Env, v, err))
				} else {
					src[s.Key], from[s.Key] = SourceEnv, s.Env
				}
			}
		}
		if s.Flag == "" {
			continue
		}
		known[s.Flag] = true
		v, ok := flags[s.Flag]
		if !ok {
			continue
		}
		if s.Adds {
			v = strings.Join(append(s.get(&c).([]string), splitList(v)...), ",")
		}
		if err := s.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%w: --%s %q: %w", ErrBadFlag, s.Flag, v, err))
		} else {
			src[s.Key], from[s.Key] = SourceFlag, "--"+s.Flag
		}
	}
	for f := range flags {
		if !known[f] {
			errs = append(errs, fmt.Errorf("%w: --%s is not a setting", ErrBadFlag, f))
		}
	}
	if len(errs) > 0 {
		return Config{}, nil, errors.Join(errs...)
	}
	if err := c.Check(); err != nil {
		return Config{}, nil, blame(err, from)
	}
	return c, src, nil
}

// blame names, in each of the config's complaints, the variable or flag
// that set the value complained of, and marks the error as theirs.
func blame(err error, from map[string]string) error {
	var lines []string
	var byEnv, byFlag bool
	for l := range strings.Lines(err.Error()) {
		l = strings.TrimSuffix(l, "\n")
		key, _, _ := strings.Cut(l, " ")
		key = strings.TrimSuffix(key, ":")
		if f, ok := from[key]; ok {
			l += " (set by " + f + ")"
			byFlag = byFlag || strings.HasPrefix(f, "--")
			byEnv = byEnv || !strings.HasPrefix(f, "--")
		}
		lines = append(lines, l)
	}
	msg := strings.Join(lines, "\n")
	switch {
	case byFlag:
		return fmt.Errorf("%w: %s", ErrBadFlag, msg)
	case byEnv:
		return fmt.Errorf("%w: %s", ErrBadEnv, msg)
	}
	return fmt.Errorf("config: %w", err)
}

// FileConfig is config.toml as read: its config, defaults filled in, and
// the keys it sets.
type FileConfig struct {
	Config Config
	Keys   map[string]bool // "network.port", ...
	Path   string
	Exists bool // false: there is no file, Config is DefaultConfig
}

// ReadConfigFile reads the config file at path, as LoadConfig does, and
// notes which keys it sets. A missing file is not an error: it is the
// defaults, with Exists false.
func ReadConfigFile(path string) (FileConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return FileConfig{Config: DefaultConfig(), Path: path}, nil
	}
	if err != nil {
		return FileConfig{}, fmt.Errorf("read config: %w", err)
	}
	c, keys, err := parseConfig(data)
	if err != nil {
		return FileConfig{}, fmt.Errorf("config %s: %w", path, err)
	}
	return FileConfig{Config: c, Keys: keys, Path: path, Exists: true}, nil
}

// splitList splits a list given in one string at commas and spaces.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// parseBool reads a boolean setting: true, 1, yes, on or false, 0, no, off.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, errors.New("not true or false")
}

func intSetting(key, flag string, p func(*Config) *int) Setting {
	return Setting{Key: key, Flag: flag,
		get: func(c *Config) any { return *p(c) },
		set: func(c *Config, s string) error {
			v, err := strconv.Atoi(s)
			if err != nil {
				return errors.New("not a whole number")
			}
			*p(c) = v
			return nil
		}}
}

func boolSetting(key, flag string, p func(*Config) *bool) Setting {
	return Setting{Key: key, Flag: flag,
		get: func(c *Config) any { return *p(c) },
		set: func(c *Config, s string) error {
			v, err := parseBool(s)
			if err != nil {
				return err
			}
			*p(c) = v
			return nil
		}}
}

func boolPtrSetting(key, flag string, p func(*Config) **bool) Setting {
	return Setting{Key: key, Flag: flag,
		get: func(c *Config) any { return *p(c) != nil && **p(c) },
		set: func(c *Config, s string) error {
			v, err := parseBool(s)
			if err != nil {
				return err
			}
			*p(c) = &v
			return nil
		}}
}

func stringSetting(key, flag string, p func(*Config) *string) Setting {
	return Setting{Key: key, Flag: flag,
		get: func(c *Config) any { return *p(c) },
		set: func(c *Config, s string) error { *p(c) = s; return nil }}
}

func listSetting(key, flag string, p func(*Config) *[]string) Setting {
	return Setting{Key: key, Flag: flag,
		get: func(c *Config) any { return nonNil(*p(c)) },
		set: func(c *Config, s string) error { *p(c) = splitList(s); return nil }}
}
