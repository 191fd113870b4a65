package purity

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
)

// TestModule checks the checker on the packages of testdata/mod, a module
// of its own, through `go list` as Check does.
func TestModule(t *testing.T) {
	tests := []struct {
		pkg  string
		want []string // each must end a problem; none: no problem at all
	}{
		{"clean", nil},
		{"core", []string{`example.com/mod/core -> example.com/mod/helper imports "net"`}},
		{"helper", []string{`example.com/mod/helper imports "net"`}},
		{"clock", []string{"lib.go:9:2: go statement", "lib.go:9:19: reads the clock: time.Now", "lib.go:8:12: channel type", "lib.go:9:14: channel send", "lib.go:10:9: channel receive"}},
		{"web", []string{"reaches net/http/httptest (the network): example.com/mod/web -> net/http/httptest"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			pkgs, err := List("testdata/mod", "./"+tt.pkg, "GOWORK=off", "GOFLAGS=-mod=mod")
			if err != nil {
				t.Fatal(err)
			}
			got, files, err := Problems("example.com/mod/"+tt.pkg, pkgs, ParseDir)
			if err != nil {
				t.Fatal(err)
			}
			if files != 1 {
				t.Errorf("checked %d files of the package, want 1", files)
			}
			if len(tt.want) == 0 && len(got) > 0 {
				t.Errorf("problems %q, want none", got)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(p string) bool { return strings.HasSuffix(p, w) }) {
					t.Errorf("problems %q, want one ending in %q", got, w)
				}
			}
		})
	}
}

// TestGraph checks the judgement of a made-up graph: what is forbidden
// anywhere, what only checked packages may not import, vetted libraries.
func TestGraph(t *testing.T) {
	mod := &struct{ Path string }{"example.com/m"}
	lib := &struct{ Path string }{"example.com/lib"}
	cid := &struct{ Path string }{"github.com/ipfs/go-cid"}
	std := func(path string, imports ...string) Package {
		return Package{ImportPath: path, Standard: true, Imports: imports}
	}
	graph := func(rootImports []string, more ...Package) []Package {
		pkgs := []Package{
			std("fmt", "os"), std("os", "syscall"), std("syscall"), std("net", "os"),
			std("crypto/rand", "os"), std("sync"), std("log/slog", "os"), std("time"),
			{ImportPath: "github.com/ipfs/go-cid", Module: cid, Imports: []string{"fmt", "net"}},
			{ImportPath: "example.com/lib", Module: lib, Imports: []string{"fmt"}},
		}
		pkgs = append(pkgs, more...)
		return append(pkgs, Package{ImportPath: "example.com/m/core", Module: mod, GoFiles: []string{"core.go"}, Imports: rootImports})
	}
	tests := []struct {
		name    string
		imports []string
		more    []Package
		want    string // the end of a problem; "": none
	}{
		{"std data", []string{"fmt", "time"}, nil, ""},
		{"vetted library reaching net", []string{"github.com/ipfs/go-cid"}, nil, ""},
		{"os", []string{"os"}, nil, `example.com/m/core imports "os"`},
		{"crypto/rand", []string{"crypto/rand"}, nil, `example.com/m/core imports "crypto/rand"`},
		{"sync", []string{"sync"}, nil, `example.com/m/core imports "sync"`},
		{"unvetted library", []string{"example.com/lib"}, nil, "depends on example.com/lib, a library not vetted for pure cores (see Vetted): example.com/m/core -> example.com/lib"},
		{"ours, impure", []string{"example.com/m/util"},
			[]Package{{ImportPath: "example.com/m/util", Module: mod, Imports: []string{"net"}}},
			`example.com/m/core -> example.com/m/util imports "net"`},
		{"slog through a vetted library", []string{"github.com/mr-tron/base58"},
			[]Package{{ImportPath: "github.com/mr-tron/base58", Module: &struct{ Path string }{"github.com/mr-tron/base58"}, Imports: []string{"log/slog"}}},
			"reaches log/slog (logging): example.com/m/core -> github.com/mr-tron/base58 -> log/slog"},
		{"forbidden deep down", []string{"example.com/m/util"},
			[]Package{
				{ImportPath: "example.com/m/util", Module: mod, Imports: []string{"github.com/multiformats/go-multiaddr"}},
				{ImportPath: "github.com/multiformats/go-multiaddr", Module: &struct{ Path string }{"github.com/multiformats/go-multiaddr"}, Imports: []string{"github.com/exopeer/exopeer/internal/ambient"}},
				{ImportPath: "github.com/exopeer/exopeer/internal/ambient", Module: &struct{ Path string }{"github.com/exopeer/exopeer"}, Imports: []string{"crypto/rand"}},
			},
			"reaches github.com/exopeer/exopeer/internal/ambient (the real clock and randomness): example.com/m/core -> example.com/m/util -> github.com/multiformats/go-multiaddr -> github.com/exopeer/exopeer/internal/ambient"},
		{"the cell shell, not its core", []string{"github.com/exopeer/exopeer/cell"},
			[]Package{{ImportPath: "github.com/exopeer/exopeer/cell", Module: mod}},
			"reaches github.com/exopeer/exopeer/cell (a shell (streams, the datastore, gossip)): example.com/m/core -> github.com/exopeer/exopeer/cell"},
		{"the store's shell, not its core", []string{"github.com/exopeer/exopeer/store/service"},
			[]Package{{ImportPath: "github.com/exopeer/exopeer/store/service", Module: mod}},
			"reaches github.com/exopeer/exopeer/store/service (a shell (the chain, the index, streams)): example.com/m/core -> github.com/exopeer/exopeer/store/service"},
		{"the blobs' shell", []string{"github.com/exopeer/exopeer/blob/service"},
			[]Package{{ImportPath: "github.com/exopeer/exopeer/blob/service", Module: mod}},
			"reaches github.com/exopeer/exopeer/blob/service (a shell (the block store, the exchange, files)): example.com/m/core -> github.com/exopeer/exopeer/blob/service"},
		{"a package that does not build", []string{"example.com/m/broken"},
			[]Package{{ImportPath: "example.com/m/broken", Module: mod, Error: &struct{ Err string }{"no Go files"}}},
			"example.com/m/core -> example.com/m/broken: no Go files"},
	}
	src := func(fset *token.FileSet, p Package) ([]*ast.File, error) {
		if len(p.GoFiles) == 0 {
			return nil, nil
		}
		f, err := parser.ParseFile(fset, "core.go", "package core\n", 0)
		return []*ast.File{f}, err
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, files, err := Problems("example.com/m/core", graph(tt.imports, tt.more...), src)
			if err != nil {
				t.Fatal(err)
			}
			if files != 1 {
				t.Errorf("checked %d files of the root, want 1", files)
			}
			if tt.want == "" && len(got) > 0 {
				t.Errorf("problems %q, want none", got)
			}
			if tt.want != "" && !slices.ContainsFunc(got, func(p string) bool { return strings.HasSuffix(p, tt.want) }) {
				t.Errorf("problems %q, want one ending in %q", got, tt.want)
			}
		})
	}
}

// TestFileProblems checks the source checks.
func TestFileProblems(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"go statement", `func f() { go f() }`, "go statement"},
		{"select", `func f() { select {} }`, "select statement"},
		{"channel type", `var c chan int`, "channel type"},
		{"receive-only channel", `func f(c <-chan int) {}`, "channel type"},
		{"receive", `func f(g func() any) { <-g().(chan int) }`, "channel receive"},
		{"send", `func f(g func() any) { g().(chan int) <- 1 }`, "channel send"},
		{"time.Now", `import "time"; var now = time.Now`, "reads the clock: time.Now"},
		{"time.Now renamed", `import tm "time"; func f() { tm.Now() }`, "reads the clock: time.Now"},
		{"time.Since", `import "time"; func f(t time.Time) { time.Since(t) }`, "reads the clock: time.Since"},
		{"time.Sleep", `import "time"; func f() { time.Sleep(1) }`, "reads the clock: time.Sleep"},
		{"time.NewTimer", `import "time"; func f() { time.NewTimer(1) }`, "reads the clock: time.NewTimer"},
		{"time dot-imported", `import . "time"; var d Duration`, "dot-imports time"},
		{"println", `func f() { println("x") }`, "calls println"},
		{"time values", `import "time"; func f(t time.Time, d time.Duration) time.Time { return t.Add(d).Truncate(time.Second) }`, ""},
		{"a method named Now", `type c struct{}; func (c) Now() {}; func f() { c{}.Now() }`, ""},
		{"plain code", `func f(b []byte) int { for range b {}; return len(b) }`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", "package p\n"+tt.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := FileProblems(fset, f)
			if tt.want == "" && len(got) > 0 {
				t.Errorf("problems %q, want none", got)
			}
			if tt.want != "" && !slices.ContainsFunc(got, func(p string) bool { return strings.HasSuffix(p, tt.want) }) {
				t.Errorf("problems %q, want one ending in %q", got, tt.want)
			}
		})
	}
}

// TestImportAllowed checks the standard packages a checked package may
// import itself.
func TestImportAllowed(t *testing.T) {
	for _, path := range []string{"bytes", "crypto/sha256", "crypto/ed25519", "crypto/hpke", "time", "encoding/binary", "unicode/utf8"} {
		if !importAllowed(path, true) {
			t.Errorf("%s refused", path)
		}
	}
	for _, path := range []string{"os", "net", "net/netip", "sync", "sync/atomic", "log", "log/slog", "math/rand", "math/rand/v2",
		"crypto/rand", "context", "runtime", "unsafe", "reflect", "syscall", "encoding/json", "bufio", "os/exec", "net/http"} {
		if importAllowed(path, true) {
			t.Errorf("%s allowed", path)
		}
	}
}
