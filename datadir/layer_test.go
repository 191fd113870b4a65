package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
)

func fileConfig(t *testing.T, text string) FileConfig {
	t.Helper()
	path := filepath.Join(t.TempDir(), ConfigFile)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	fc, err := ReadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fc
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestResolveLayers: each layer overrides the one below it, and the
// sources say which one each value came from.
func TestResolveLayers(t *testing.T) {
	file := fileConfig(t, "[network]\nport = 5000\nmdns = false\n[dht]\nmode = \"client\"\n[log]\nlevel = \"warn\"\n")
	env := envOf(map[string]string{"EXOPEER_MDNS": "yes", "EXOPEER_DHT_MODE": "server", "EXOPEER_LOG_LEVEL": "debug"})
	flags := map[string]string{"dht-mode": "auto", "api": "127.0.0.1:9000"}
	c, src, err := Resolve(file, env, flags)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want any
		src  Source
	}{
		{"network.port", 5000, SourceFile},           // file over default
		{"network.mdns", true, SourceEnv},            // env over file
		{"dht.mode", "auto", SourceFlag},             // flag over env over file
		{"log.level", "debug", SourceEnv},            // env over file
		{"api.listen", "127.0.0.1:9000", SourceFlag}, // flag over default
		{"dht.lan", true, SourceDefault},
		{"network.max_connections", 400, SourceDefault},
	}
	for _, tt := range tests {
		s := setting(t, tt.key)
		if got := s.Value(c); !cmp.Equal(got, tt.want) || src[tt.key] != tt.src {
			t.Errorf("%s = %v from %s, want %v from %s", tt.key, got, src[tt.key], tt.want, tt.src)
		}
	}
	if len(src) != len(Settings()) {
		t.Errorf("%d sources for %d settings", len(src), len(Settings()))
	}
}

func setting(t *testing.T, key string) Setting {
	t.Helper()
	i := slices.IndexFunc(Settings(), func(s Setting) bool { return s.Key == key })
	if i < 0 {
		t.Fatalf("no setting %s", key)
	}
	return Settings()[i]
}

// TestResolveNoFile: with no config file, everything is a default but
// what the environment and the flags set; an empty variable is unset.
func TestResolveNoFile(t *testing.T) {
	fc, err := ReadConfigFile(filepath.Join(t.TempDir(), "missing", ConfigFile))
	if err != nil || fc.Exists {
		t.Fatalf("missing file: %+v, %v", fc, err)
	}
	c, src, err := Resolve(fc, envOf(map[string]string{"EXOPEER_PORT": "", "EXOPEER_LISTEN_IPS": "127.0.0.1, ::1"}), map[string]string{"port": "-1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.Port != -1 || src["network.port"] != SourceFlag {
		t.Errorf("port %d from %s", c.Network.Port, src["network.port"])
	}
	if !slices.Equal(c.Network.ListenIPs, []string{"127.0.0.1", "::1"}) || src["network.listen_ips"] != SourceEnv {
		t.Errorf("listen_ips %q from %s", c.Network.ListenIPs, src["network.listen_ips"])
	}
	if src["log.level"] != SourceDefault || c.Log.Level != "info" {
		t.Errorf("log.level %q from %s", c.Log.Level, src["log.level"])
	}
}

// TestResolveBootstrapFlagAdds: --bootstrap adds peers to those of the
// layers below, as it always did.
func TestResolveBootstrapFlagAdds(t *testing.T) {
	const a, b = "/ip4/192.0.2.1/tcp/4777/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", "/ip4/192.0.2.2/tcp/4777/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	file := fileConfig(t, "[network]\nbootstrap = [\""+a+"\"]\n")
	c, src, err := Resolve(file, nil, map[string]string{"bootstrap": b})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Network.Bootstrap, []string{a, b}) || src["network.bootstrap"] != SourceFlag {
		t.Errorf("bootstrap %q from %s", c.Network.Bootstrap, src["network.bootstrap"])
	}
}

// TestResolveBadValues: a bad value is an error naming the variable or
// flag that gave it, whether it does not parse or fails the config's
// checks; a bad file value is the file's error.
func TestResolveBadValues(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		flags map[string]string
		is    error
		want  string
	}{
		{"env not a number", map[string]string{"EXOPEER_PORT": "many"}, nil, ErrBadEnv, `EXOPEER_PORT="many": not a whole number`},
		{"env not a bool", map[string]string{"EXOPEER_DHT_LAN": "maybe"}, nil, ErrBadEnv, `EXOPEER_DHT_LAN="maybe": not true or false`},
		{"env out of range", map[string]string{"EXOPEER_PORT": "70000"}, nil, ErrBadEnv, "network.port 70000 is not a port (1-65535, or -1 for any free port) (set by EXOPEER_PORT)"},
		{"env not loopback", map[string]string{"EXOPEER_API_LISTEN": "0.0.0.0:1"}, nil, ErrBadEnv, "(set by EXOPEER_API_LISTEN)"},
		{"env bad level", map[string]string{"EXOPEER_LOG_LEVEL": "loud"}, nil, ErrBadEnv, "(set by EXOPEER_LOG_LEVEL)"},
		{"flag not a bool", nil, map[string]string{"mdns": "maybe"}, ErrBadFlag, `--mdns "maybe": not true or false`},
		{"flag bad mode", nil, map[string]string{"dht-mode": "both"}, ErrBadFlag, `dht.mode "both" is not one of auto, server, client (set by --dht-mode)`},
		{"flag over a bad env", map[string]string{"EXOPEER_PORT": "1"}, map[string]string{"port": "x"}, ErrBadFlag, `--port "x"`},
		{"unknown flag", nil, map[string]string{"colour": "red"}, ErrBadFlag, "--colour is not a setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Resolve(FileConfig{Config: DefaultConfig()}, envOf(tt.env), tt.flags)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %v with %q", err, tt.is, tt.want)
			}
		})
	}
}

// TestSettingsCoverConfigFile: every setting of config.toml is layered,
// each with its own variable named by the rule.
func TestSettingsCoverConfigFile(t *testing.T) {
	var raw map[string]any
	if _, err := toml.Decode(DefaultConfigFile, &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			keys = append(keys, prefix+k)
		}
	}
	walk("", raw)
	var got []string
	envs := map[string]bool{}
	for _, s := range Settings() {
		got = append(got, s.Key)
		want := "EXOPEER_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(s.Key, "network."), ".", "_"))
		if s.Env != want || envs[s.Env] {
			t.Errorf("%s: variable %s (want %s, once)", s.Key, s.Env, want)
		}
		envs[s.Env] = true
	}
	slices.Sort(keys)
	slices.Sort(got)
	if diff := cmp.Diff(keys, got); diff != "" {
		t.Errorf("settings differ from config.toml's keys (-file +settings):\n%s", diff)
	}
}

// TestSettingsCoverConfig: every field of Config, as config.toml names
// it, is a layered setting, so that a field added to Config and not to
// the settings (nor to the commented DefaultConfigFile, which
// TestSettingsCoverConfigFile reads) fails here: its variable would not be
// read and `exopeer config show` would not show it.
func TestSettingsCoverConfig(t *testing.T) {
	var keys []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				t.Fatalf("%s%s has no toml name", prefix, f.Name)
			}
			if f.Type.Kind() == reflect.Struct {
				walk(prefix+name+".", f.Type)
				continue
			}
			keys = append(keys, prefix+name)
		}
	}
	walk("", reflect.TypeFor[Config]())
	var got []string
	for _, s := range Settings() {
		got = append(got, s.Key)
	}
	slices.Sort(keys)
	slices.Sort(got)
	if diff := cmp.Diff(keys, got); diff != "" {
		t.Errorf("settings differ from Config's fields (-Config +settings):\n%s", diff)
	}
}

// FuzzResolve: any value of any variable or flag resolves to a config
// that passes the config's checks, or to an error naming it; never a
// panic.
func FuzzResolve(f *testing.F) {
	f.Add(0, "4777", false)
	f.Add(2, "a, b,,c", true)
	f.Add(3, "On", false)
	f.Add(11, "both", true)
	f.Add(13, "", false)
	f.Add(-1, "\x00", true)
	f.Fuzz(func(t *testing.T, i int, v string, asFlag bool) {
		ss := Settings()
		s := ss[((i%len(ss))+len(ss))%len(ss)]
		var env func(string) string
		var flags map[string]string
		name := s.Env
		if asFlag && s.Flag != "" {
			flags, name = map[string]string{s.Flag: v}, "--"+s.Flag
		} else {
			env = envOf(map[string]string{s.Env: v})
		}
		c, src, err := Resolve(FileConfig{Config: DefaultConfig()}, env, flags)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%q: error %q does not name it", name, v, err)
			}
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("%s=%q resolved to an invalid config: %v", name, v, err)
		}
		if v != "" && src[s.Key] == SourceDefault {
			t.Fatalf("%s=%q: source %s", name, v, src[s.Key])
		}
	})
}
