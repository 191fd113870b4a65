package peer

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/internal/ambient"
)

// notNodeParts are the directories (relative to the module root, with
// everything under them) whose code is not a part of a node and may read
// the real clock and randomness: internal/ambient is the one reader the
// parts fall back on; datadir creates the node key and the API token
// before any node exists; the commands, the simulator and the harness of
// the real-process tests are callers, which choose what a node gets.
var notNodeParts = []string{"internal/ambient", "datadir", "cmd", "simnet", "internal/netnstest"}

// ambientProblems returns each read of the real world's clock or
// randomness in a parsed file: an import of crypto/rand, any use (a call
// or a function value) of time.Now, time.Since or time.Until, any use of
// math/rand's global generator (its seeded constructors and types are
// fine), and the standard library's calls that draw from the system's
// source behind their caller (hpke.Seal, cipher.NewGCMWithRandomNonce,
// ecdh's GenerateKey). Timers and deadlines that are not clock readings (time.After,
// NewTimer, Sleep) are allowed: under testing/synctest they are virtual.
func ambientProblems(fset *token.FileSet, f *ast.File) []string {
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s: "+format, append([]any{fset.Position(n.Pos())}, args...)...))
	}
	names := map[string]string{} // local name → import path, for time and math/rand
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			report(imp, "bad import %s", imp.Path.Value)
			continue
		}
		name := path[strings.LastIndex(path, "/")+1:]
		if path == "math/rand/v2" {
			name = "rand"
		}
		if imp.Name != nil {
			name = imp.Name.Name
		}
		switch path {
		case "crypto/rand":
			report(imp, "imports crypto/rand: take an io.Reader (Rand) instead")
		case "time", "math/rand", "math/rand/v2", "crypto/hpke", "crypto/cipher", "crypto/ecdh":
			names[name] = path
		}
	}
	seeded := []string{"New", "NewPCG", "NewChaCha8", "NewSource", "NewZipf", "Rand", "Source", "PCG", "ChaCha8", "Zipf"}
	// hidden are the standard library's functions that draw from the
	// system's source whatever reader they are given, or with none.
	hidden := map[string][]string{
		"crypto/hpke":   {"Seal", "NewSender"},
		"crypto/cipher": {"NewGCMWithRandomNonce"},
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		// ecdh.X25519().GenerateKey(r) ignores r since Go 1.26.
		if call, ok := sel.X.(*ast.CallExpr); ok && sel.Sel.Name == "GenerateKey" {
			if fn, ok := call.Fun.(*ast.SelectorExpr); ok {
				if x, ok := fn.X.(*ast.Ident); ok && x.Obj == nil && names[x.Name] == "crypto/ecdh" {
					report(sel, "uses ecdh's GenerateKey, which ignores its reader: NewPrivateKey from bytes read from Rand instead")
				}
			}
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok || x.Obj != nil { // x.Obj != nil: a local name, not the package
			return true
		}
		switch names[x.Name] {
		case "time":
			if sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until" {
				report(sel, "uses time.%s: take the clock (Now) instead", sel.Sel.Name)
			}
		case "math/rand", "math/rand/v2":
			if !slices.Contains(seeded, sel.Sel.Name) {
				report(sel, "uses %s.%s, the global generator: seed one from Rand instead", names[x.Name], sel.Sel.Name)
			}
		case "crypto/hpke", "crypto/cipher":
			if slices.Contains(hidden[names[x.Name]], sel.Sel.Name) {
				report(sel, "uses %s.%s, which draws from the system's source: draw from Rand instead", names[x.Name], sel.Sel.Name)
			}
		}
		return true
	})
	return out
}

// nodePackageDirs returns every directory under root that holds Go code
// of a node's parts: all of the module but notNodeParts, testdata and
// hidden directories.
func nodePackageDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		base := d.Name()
		if rel != "." && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || base == "testdata") {
			return filepath.SkipDir
		}
		if slices.ContainsFunc(notNodeParts, func(p string) bool { return rel == p || strings.HasPrefix(rel, p+"/") }) {
			return filepath.SkipDir
		}
		if rel != "." {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		if m, _ := filepath.Glob(filepath.Join(path, "*.go")); len(m) > 0 {
			dirs = append(dirs, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// ambientProblemsIn parses the non-test Go files of dir and returns their
// problems.
func ambientProblemsIn(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ambientProblems(fset, f)...)
	}
	return out
}

// TestNoAmbientReads: no package of a node reads crypto/rand, the real
// clock or math/rand's global generator behind the node's back; each part
// takes the Rand and Now that peer.Options carries (nil falls back on
// internal/ambient). New packages are covered as they appear: the test
// walks the module.
func TestNoAmbientReads(t *testing.T) {
	dirs := nodePackageDirs(t, "..")
	for _, want := range []string{"blob", "blob/pin", "blob/service", "blocks", "blocks/blobdisk", "cell", "cell/core", "chain", "chain/replica", "dht", "discovery", "gossip", "internal/cpace", "message", "message/service", "peer", "prekey", "store", "store/index", "store/remote", "store/service"} {
		if !slices.Contains(dirs, want) {
			t.Errorf("package %s not checked (checked: %v)", want, dirs)
		}
	}
	for _, dir := range dirs {
		for _, p := range ambientProblemsIn(t, filepath.Join("..", dir)) {
			t.Error(p)
		}
	}
}

// TestAmbientProblemsFound: the check finds each kind of read, under any
// import name, and lets timers, seeded generators and local names pass.
func TestAmbientProblemsFound(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      int
	}{
		{"crypto/rand", `import "crypto/rand"; var _ = rand.Reader`, 1},
		{"crypto/rand renamed", `import crand "crypto/rand"; var _ = crand.Reader`, 1},
		{"time.Now call", `import "time"; var _ = time.Now()`, 1},
		{"time.Now value", `import "time"; var now = time.Now`, 1},
		{"time.Since and Until", `import "time"; func f(t time.Time) { _, _ = time.Since(t), time.Until(t) }`, 2},
		{"time renamed", `import tm "time"; var _ = tm.Now()`, 1},
		{"global math/rand", `import "math/rand/v2"; var _ = rand.IntN(3)`, 1},
		{"global math/rand v1", `import "math/rand"; var _ = rand.Intn(3)`, 1},
		{"timers", `import "time"; func f() { <-time.After(time.Second); time.Sleep(1); _ = time.NewTimer(1) }`, 0},
		{"seeded math/rand", `import "math/rand/v2"; var _ *rand.Rand = rand.New(rand.NewPCG(1, 2))`, 0},
		{"hpke.Seal", `import "crypto/hpke"; var _ = hpke.Seal`, 1},
		{"random GCM nonces", `import "crypto/cipher"; var _ = cipher.NewGCMWithRandomNonce`, 1},
		{"ecdh GenerateKey", `import ("crypto/ecdh"; "io"); func f(r io.Reader) { _, _ = ecdh.X25519().GenerateKey(r) }`, 1},
		{"hpke.Open and NewGCM", `import ("crypto/hpke"; "crypto/cipher"); var _, _ = hpke.Open, cipher.NewGCM`, 0},
		{"local name", `import "time"; type clock struct{}; func (clock) Now() time.Time { return time.Time{} }; func f(time clock) { _ = time.Now() }`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", "package x; "+tc.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := ambientProblems(fset, f); len(got) != tc.want {
				t.Errorf("%d problems, want %d: %v", len(got), tc.want, got)
			}
		})
	}
}

// TestInputs: a node hands each part the node's clock and a random stream
// of its own, fixed by Options.Rand; a part's own Rand or Now is kept; with
// no Rand, every part gets the system's.
func TestInputs(t *testing.T) {
	seed := make([]byte, 256)
	for i := range seed {
		seed[i] = byte(i)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := func() Options {
		return Options{Rand: bytes.NewReader(seed), Now: func() time.Time { return at }}
	}
	draw := func(r io.Reader) []byte {
		t.Helper()
		b := make([]byte, 32)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	in, err := opts().inputs()
	if err != nil {
		t.Fatal(err)
	}
	again, err := opts().inputs()
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string][2]io.Reader{
		"discovery": {in.disc.Rand, again.disc.Rand},
		"cell":      {in.cellRand, again.cellRand},
		"chain":     {in.chain.Rand, again.chain.Rand},
		"store":     {in.store.Rand, again.store.Rand},
		"blobs":     {in.blobs.Rand, again.blobs.Rand},
		"prekeys":   {in.prekeys.Rand, again.prekeys.Rand},
		"contacts":  {in.contacts.Rand, again.contacts.Rand},
		"messages":  {in.messages.Rand, again.messages.Rand},
	}
	seen := map[string]string{}
	for part, rs := range streams {
		a, b := draw(rs[0]), draw(rs[1])
		if !bytes.Equal(a, b) {
			t.Errorf("%s: one Options.Rand gave two streams", part)
		}
		if other, ok := seen[string(a)]; ok {
			t.Errorf("%s and %s share a stream", part, other)
		}
		seen[string(a)] = part
	}
	for part, now := range map[string]func() time.Time{"node": in.now, "dht": in.dht.Now, "discovery": in.disc.Now, "chain": in.chain.Now, "store": in.store.Now, "blobs": in.blobs.Now, "prekeys": in.prekeys.Now, "contacts": in.contacts.Now, "messages": in.messages.Now} {
		if got := now(); !got.Equal(at) {
			t.Errorf("%s's clock reads %v, want the node's %v", part, got, at)
		}
	}

	own := opts()
	chainRand := bytes.NewReader(seed)
	own.Chain.Rand = chainRand
	own.Discovery.Now = func() time.Time { return at.Add(time.Hour) }
	in, err = own.inputs()
	if err != nil {
		t.Fatal(err)
	}
	if in.chain.Rand != chainRand || !in.disc.Now().Equal(at.Add(time.Hour)) {
		t.Error("a part's own Rand or Now was replaced")
	}

	in, err = Options{}.inputs()
	if err != nil {
		t.Fatal(err)
	}
	for part, r := range map[string]io.Reader{"discovery": in.disc.Rand, "cell": in.cellRand, "chain": in.chain.Rand, "store": in.store.Rand, "blobs": in.blobs.Rand, "prekeys": in.prekeys.Rand, "contacts": in.contacts.Rand, "messages": in.messages.Rand} {
		if r != ambient.Rand {
			t.Errorf("%s: no Options.Rand, yet not the system's source", part)
		}
	}
	if _, err := (Options{Rand: bytes.NewReader(seed[:40])}).inputs(); err == nil {
		t.Error("a source that ran dry gave every part a stream")
	}
}
