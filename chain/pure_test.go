package chain

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The package is a pure core (doc.go): no I/O, no clock, no goroutines,
// no logging. pureProblems enforces it on the package's source.

// pureImports are the imports the package may use; a path ending in "/..."
// allows everything under it.
var pureImports = []string{
	"bytes", "cmp", "crypto/...", "encoding/binary", "errors", "fmt", "io",
	"maps", "math", "math/bits", "slices", "sort", "strconv", "strings",
	"unicode/utf8",
	"github.com/ipfs/go-cid",
	"github.com/exopeer/exopeer/internal/growbuf", // io only
	"github.com/multiformats/go-multihash",
	"github.com/ipld/go-ipld-prime/...",
	"github.com/libp2p/go-libp2p/core/crypto",
	"github.com/libp2p/go-libp2p/core/peer",
	"golang.org/x/crypto/chacha20poly1305",
}

// impureImports are refused even where pureImports would allow them, with
// everything under them.
var impureImports = []string{
	"os", "net", "time", "sync", "log", "math/rand", "crypto/rand",
	"context", "runtime", "unsafe", "reflect", "syscall",
}

func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

func importAllowed(path string) bool {
	if slices.ContainsFunc(impureImports, func(root string) bool { return under(path, root) }) {
		return false
	}
	return slices.ContainsFunc(pureImports, func(p string) bool {
		if root, ok := strings.CutSuffix(p, "/..."); ok {
			return under(path, root)
		}
		return path == p
	})
}

// pureProblems returns what breaks purity in a parsed file: imports off
// the list, go statements, selects, channels, time.Now, and the print
// builtins.
func pureProblems(fset *token.FileSet, f *ast.File) []string {
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s: "+format, append([]any{fset.Position(n.Pos())}, args...)...))
	}
	timeName := ""
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			report(imp, "bad import %s", imp.Path.Value)
			continue
		}
		if !importAllowed(path) {
			report(imp, "imports %q", path)
		}
		if path == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n, "go statement")
		case *ast.SelectStmt:
			report(n, "select statement")
		case *ast.ChanType:
			report(n, "channel type")
		case *ast.SendStmt:
			report(n, "channel send")
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				report(n, "channel receive")
			}
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && timeName != "" && x.Name == timeName && n.Sel.Name == "Now" {
				report(n, "calls time.Now")
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "print" || id.Name == "println") {
				report(n, "calls %s", id.Name)
			}
		}
		return true
	})
	return out
}

func TestPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != "chain" {
			continue
		}
		checked++
		for _, p := range pureProblems(fset, f) {
			t.Errorf("package chain is not pure: %s", p)
		}
	}
	if checked < 5 {
		t.Errorf("checked %d files of package chain, want at least 5", checked)
	}
}

// TestPureProblems checks the checker.
func TestPureProblems(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"allowed", `import ("bytes"; "crypto/sha256"; "crypto/ed25519"; "github.com/ipld/go-ipld-prime/codec/dagcbor"; "github.com/ipfs/go-cid")`, ""},
		{"os", `import "os"`, `imports "os"`},
		{"net", `import "net"`, `imports "net"`},
		{"net/netip", `import "net/netip"`, `imports "net/netip"`},
		{"time", `import "time"`, `imports "time"`},
		{"sync", `import "sync"`, `imports "sync"`},
		{"sync/atomic", `import "sync/atomic"`, `imports "sync/atomic"`},
		{"log", `import "log"`, `imports "log"`},
		{"log/slog", `import "log/slog"`, `imports "log/slog"`},
		{"math/rand", `import "math/rand"`, `imports "math/rand"`},
		{"math/rand/v2", `import "math/rand/v2"`, `imports "math/rand/v2"`},
		{"crypto/rand", `import "crypto/rand"`, `imports "crypto/rand"`},
		{"crypto/rand renamed", `import cr "crypto/rand"`, `imports "crypto/rand"`},
		{"context", `import "context"`, `imports "context"`},
		{"runtime", `import "runtime"`, `imports "runtime"`},
		{"unlisted", `import "encoding/json"`, `imports "encoding/json"`},
		{"unlisted libp2p", `import "github.com/libp2p/go-libp2p/core/host"`, `imports "github.com/libp2p/go-libp2p/core/host"`},
		{"prefix of a listed path", `import "github.com/ipfs/go-cidutil"`, `imports "github.com/ipfs/go-cidutil"`},
		{"go statement", `func f() { go f() }`, "go statement"},
		{"select", `func f() { select {} }`, "select statement"},
		{"channel type", `var c chan int`, "channel type"},
		{"receive-only channel", `func f(c <-chan int) {}`, "channel type"},
		{"receive", `func f(g func() any) { <-g().(chan int) }`, "channel receive"},
		{"time.Now", `import "time"; var now = time.Now`, "calls time.Now"},
		{"time.Now renamed", `import tm "time"; func f() { tm.Now() }`, "calls time.Now"},
		{"println", `func f() { println("x") }`, "calls println"},
		{"a method named Now", `type c struct{}; func (c) Now() {}; func f() { c{}.Now() }`, ""},
		{"plain code", `func f(b []byte) int { for range b {}; return len(b) }`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", "package chain\n"+tt.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := pureProblems(fset, f)
			if tt.want == "" && len(got) > 0 {
				t.Errorf("problems %q, want none", got)
			}
			if tt.want != "" && !slices.ContainsFunc(got, func(p string) bool { return strings.HasSuffix(p, tt.want) }) {
				t.Errorf("problems %q, want one ending in %q", got, tt.want)
			}
		})
	}
}
