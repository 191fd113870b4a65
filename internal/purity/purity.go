// Package purity checks, from a package's tests, that the package is a pure
// core: no network, no disk, no clock, no randomness of its own, no
// logging, no goroutines, and none of exopeer's shells, in its own source
// or in anything it imports, transitively. It does for exopeer what
// tailscale's tstest/deptest does for tailscale: it lists the package's
// dependencies with `go list -deps -json` and judges the graph.
//
// # What a pure core may reach
//
// Libraries a core needs (libp2p's key and peer ID types, go-cid, the
// standard library's crypto and fmt) pull in os, net, sync or crypto/rand
// themselves: fmt imports os, crypto/x509 and go-multiaddr import net.
// Forbidding those packages anywhere in the graph would forbid every core;
// allowing them everywhere would mean nothing. So the graph is judged in
// three ways:
//
//   - Forbidden (anywhere in the graph, however reached): what only a
//     shell has any use for: serving or calling over HTTP or RPC, running
//     processes, signals, structured logging (log/slog), libp2p's network
//     stack (core/host, core/network, core/routing, p2p/...), gossip
//     (memberlist), storage (go-datastore, leveldb, boxo, SQLite), the DHT,
//     and exopeer's shells (cell, chain/replica, gossip, discovery, dht,
//     blocks, store/service, store/index, store/remote, blob, blob/pin,
//     blob/service, peer, datadir, simnet, the commands, the API) and
//     internal/ambient, the one reader of the real clock and randomness.
//     A core that reaches one of them is not a core, whatever the path.
//
//   - Checked packages: the package under test and every package of the
//     same module it imports, transitively. Each may import only the
//     standard packages of Allowed (data, encoding, crypto without
//     crypto/rand, time for its values) and third-party packages under
//     Vetted; and its source may not start goroutines, use channels or
//     select, read the clock (time.Now, Since, Until, Sleep, After,
//     AfterFunc, Tick, NewTimer, NewTicker) or call print or println. So
//     a core that imports a package of ours that imports net is caught at
//     that package, as is a core that reads the clock through a helper.
//
//   - Vetted libraries: the third-party packages a core may use, each
//     listed with why. Their own imports are theirs (go-multiaddr imports
//     net to parse IP addresses, libp2p's crypto imports crypto/rand for
//     key generation a core does not call): the graph's walk judges them
//     by the Forbidden list only. A third-party package that is not under
//     Vetted is a problem: a new dependency of a core needs a look and a
//     line here.
//
// The standard library is judged the same way as vetted libraries: fmt's
// import of os, or crypto/hpke drawing its ephemeral keys from the
// system's randomness, are the standard library's business; a checked
// package importing os or crypto/rand itself is not.
package purity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Package is what the check needs of one package of `go list -json`.
type Package struct {
	ImportPath string
	Dir        string
	Standard   bool
	Module     *struct{ Path string }
	GoFiles    []string
	Imports    []string
	Error      *struct{ Err string }
}

// Forbidden lists the packages no pure core may reach, each with why; an
// entry stands for itself and everything under it, except those ending in
// "=", which stand for exactly that path.
var Forbidden = map[string]string{
	"net/http":   "the network",
	"net/rpc":    "the network",
	"net/smtp":   "the network",
	"os/exec":    "processes",
	"os/signal":  "signals",
	"os/user":    "the system's users",
	"plugin":     "loading code",
	"log/slog":   "logging",
	"log/syslog": "logging",

	"github.com/libp2p/go-libp2p/core/host":      "the network",
	"github.com/libp2p/go-libp2p/core/network":   "the network",
	"github.com/libp2p/go-libp2p/core/routing":   "the network",
	"github.com/libp2p/go-libp2p/core/discovery": "the network",
	"github.com/libp2p/go-libp2p/p2p":            "the network",
	"github.com/libp2p/go-libp2p-kad-dht":        "the network",
	"github.com/quic-go/quic-go":                 "the network",
	"github.com/hashicorp/memberlist":            "gossip",
	"github.com/ipfs/go-datastore":               "the disk",
	"github.com/ipfs/go-ds-leveldb":              "the disk",
	"github.com/syndtr/goleveldb":                "the disk",
	"github.com/ipfs/boxo":                       "the disk and the network",
	"modernc.org/sqlite":                         "the disk",
	"github.com/prometheus/client_golang":        "metrics, a shell's business",

	"github.com/exopeer/exopeer/cell=":             "a shell (streams, the datastore, gossip)",
	"github.com/exopeer/exopeer/chain/replica":     "a shell (the block store, sync)",
	"github.com/exopeer/exopeer/gossip":            "a shell (memberlist)",
	"github.com/exopeer/exopeer/discovery":         "a shell (mDNS, the DHT)",
	"github.com/exopeer/exopeer/dht":               "a shell (the DHT)",
	"github.com/exopeer/exopeer/blocks":            "a shell (the block store)",
	"github.com/exopeer/exopeer/store/service":     "a shell (the chain, the index, streams)",
	"github.com/exopeer/exopeer/store/index":       "the disk (SQLite)",
	"github.com/exopeer/exopeer/store/remote":      "a shell (streams)",
	"github.com/exopeer/exopeer/blob=":             "a shell (blocks, goroutines)",
	"github.com/exopeer/exopeer/blob/pin":          "a shell (the datastore, the block store)",
	"github.com/exopeer/exopeer/blob/service":      "a shell (the block store, the exchange, files)",
	"github.com/exopeer/exopeer/peer":              "the node's wiring",
	"github.com/exopeer/exopeer/datadir":           "the disk",
	"github.com/exopeer/exopeer/simnet":            "the simulator",
	"github.com/exopeer/exopeer/cmd":               "a command",
	"github.com/exopeer/exopeer/api":               "the control API",
	"github.com/exopeer/exopeer/client":            "the control API",
	"github.com/exopeer/exopeer/internal/ambient":  "the real clock and randomness",
	"github.com/exopeer/exopeer/internal/leaktest": "tests only",
}

// Allowed lists the standard packages a checked package may import; an
// entry ending in "/..." allows everything under it. Refused lists the
// exceptions under allowed trees. time is allowed for its values (Time,
// Duration); reading its clock is refused in the source.
var (
	Allowed = []string{
		"bytes", "cmp", "crypto", "crypto/...", "embed", "encoding/base32", "encoding/base64",
		"encoding/binary", "encoding/hex", "errors", "fmt", "hash", "io",
		"iter", "maps", "math", "math/big", "math/bits", "slices", "sort",
		"strconv", "strings", "time", "unicode", "unicode/utf8",
	}
	Refused = []string{"crypto/rand"}
)

// Vetted lists the third-party packages a pure core may use (each path
// stands for itself and everything under it), with what they are for.
// Their own imports are not checked, only the Forbidden list.
var Vetted = map[string]string{
	"github.com/libp2p/go-libp2p/core/crypto":         "key types and signatures (keys are made by shells)",
	"github.com/libp2p/go-libp2p/core/peer":           "peer IDs",
	"github.com/libp2p/go-libp2p/core/record":         "imported by core/peer",
	"github.com/libp2p/go-libp2p/core/internal/catch": "imported by core/crypto",
	"github.com/libp2p/go-buffer-pool":                "imported by core/record",
	"github.com/multiformats/go-multiaddr":            "imported by core/peer; parses addresses, dials nothing",
	"github.com/multiformats/go-multicodec":           "multiformats' codes",
	"github.com/multiformats/go-multihash":            "the hashes of CIDs",
	"github.com/multiformats/go-multibase":            "the text of CIDs",
	"github.com/multiformats/go-base32":               "the text of CIDs",
	"github.com/multiformats/go-base36":               "the text of CIDs",
	"github.com/multiformats/go-varint":               "the varints of CIDs",
	"github.com/mr-tron/base58":                       "the text of peer IDs",
	"github.com/ipfs/go-cid":                          "CIDs",
	"github.com/ipld/go-ipld-prime":                   "dag-cbor, the chain entries' encoding",
	"github.com/polydawn/refmt":                       "imported by go-ipld-prime's dag-cbor",
	"github.com/decred/dcrd/dcrec/secp256k1":          "imported by core/crypto",
	"google.golang.org/protobuf":                      "imported by core/crypto (key encoding)",
	"golang.org/x/crypto":                             "chacha20poly1305, blake2",
	"golang.org/x/sys/cpu":                            "CPU features, for hashes",
	"golang.org/x/exp/slices":                         "imported by go-multiaddr",
	"lukechampine.com/blake3":                         "a multihash",
	"github.com/klauspost/cpuid":                      "CPU features, for blake3",
	"github.com/spaolacci/murmur3":                    "a multihash",
	"github.com/minio/sha256-simd":                    "a multihash",
	"github.com/gtank/ristretto255":                   "CPace's group",
	"filippo.io/edwards25519":                         "ristretto255's curve",
	"github.com/cloudflare/circl/dh/x25519":           "the ratchet's X25519 (constant time, faster than crypto/ecdh's)",
	"github.com/cloudflare/circl/math/fp25519":        "imported by CIRCL's x25519",
	"github.com/cloudflare/circl/internal/conv":       "imported by CIRCL's fp25519",
}

// under reports whether path is root or below it.
func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// forbidden returns why path is forbidden, or "".
func forbidden(path string) string {
	for root, why := range Forbidden {
		if exact, ok := strings.CutSuffix(root, "="); ok {
			if path == exact {
				return why
			}
			continue
		}
		if under(path, root) {
			return why
		}
	}
	return ""
}

func vetted(path string) bool {
	for root := range Vetted {
		if under(path, root) {
			return true
		}
	}
	return false
}

// importAllowed reports whether a checked package may import path.
func importAllowed(path string, std bool) bool {
	if forbidden(path) != "" {
		return false
	}
	if !std {
		return false // ours are checked on their own; third-party must be vetted
	}
	if slices.ContainsFunc(Refused, func(r string) bool { return under(path, r) }) {
		return false
	}
	return slices.ContainsFunc(Allowed, func(p string) bool {
		if root, ok := strings.CutSuffix(p, "/..."); ok {
			return under(path, root)
		}
		return path == p
	})
}

// ErrGoList means `go list` failed.
var ErrGoList = errors.New("purity: go list")

// List runs `go list -deps -json pattern` in dir and returns the packages.
func List(dir, pattern string, env ...string) ([]Package, error) {
	cmd := exec.Command("go", "list", "-deps", "-json", pattern)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(cmd.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w %s in %s: %w: %s", ErrGoList, pattern, dir, err, stderr.Bytes())
	}
	var pkgs []Package
	d := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := d.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%w %s: decode: %w", ErrGoList, pattern, err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// Check reports, as errors of t, everything that keeps the package in the
// current directory (the package whose test calls it) from being a pure
// core, and fails if it checked fewer than minFiles source files of the
// package itself (so that a check that looks at nothing cannot pass).
func Check(t testing.TB, minFiles int) {
	t.Helper()
	pkgs, err := List(".", ".")
	if err != nil {
		t.Fatal(err)
	}
	root := pkgs[len(pkgs)-1] // go list -deps lists a package after its dependencies
	problems, files, err := Problems(root.ImportPath, pkgs, ParseDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("package %s is not pure: %s", root.ImportPath, p)
	}
	if files < minFiles {
		t.Errorf("checked %d files of package %s, want at least %d", files, root.ImportPath, minFiles)
	}
}
