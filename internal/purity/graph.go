package purity

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
)

// ParseFunc returns the parsed source files of a checked package.
type ParseFunc func(fset *token.FileSet, p Package) ([]*ast.File, error)

// ParseDir parses p's GoFiles from p.Dir.
func ParseDir(fset *token.FileSet, p Package) ([]*ast.File, error) {
	var files []*ast.File
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// Problems judges the dependency graph pkgs (root and every package it
// imports, transitively, as `go list -deps` lists them) by the rules of
// the package doc, and returns what it found, each with the import path
// that leads to it, and the number of source files of root it checked.
func Problems(root string, pkgs []Package, parse ParseFunc) (problems []string, rootFiles int, err error) {
	byPath := make(map[string]*Package, len(pkgs))
	for i := range pkgs {
		byPath[pkgs[i].ImportPath] = &pkgs[i]
	}
	r := byPath[root]
	if r == nil {
		return nil, 0, fmt.Errorf("purity: %s is not in the graph", root)
	}
	ours := func(p *Package) bool {
		if p == r {
			return true
		}
		return !p.Standard && p.Module != nil && r.Module != nil && p.Module.Path == r.Module.Path
	}
	via := paths(root, byPath)
	fset := token.NewFileSet()
	// In go list's order: dependencies first, root last.
	for i := range pkgs {
		p := &pkgs[i]
		at, reached := via[p.ImportPath]
		if !reached {
			continue // only under a forbidden package, or not imported at all
		}
		if p.Error != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", at, p.Error.Err))
		}
		if why := forbidden(p.ImportPath); why != "" {
			problems = append(problems, fmt.Sprintf("reaches %s (%s): %s", p.ImportPath, why, at))
			continue
		}
		switch {
		case p.Standard:
		case ours(p):
			for _, imp := range p.Imports {
				q := byPath[imp]
				if q != nil && (ours(q) || forbidden(imp) != "") {
					continue // judged on its own
				}
				std := q == nil || q.Standard
				if !importAllowed(imp, std) && (std || !vetted(imp)) {
					problems = append(problems, fmt.Sprintf("%s imports %q", at, imp))
				}
			}
			files, err := parse(fset, *p)
			if err != nil {
				return nil, 0, fmt.Errorf("purity: %s: %w", p.ImportPath, err)
			}
			for _, f := range files {
				problems = append(problems, FileProblems(fset, f)...)
			}
			if p == r {
				rootFiles = len(files)
			}
		case !vetted(p.ImportPath):
			problems = append(problems, fmt.Sprintf("depends on %s, a library not vetted for pure cores (see Vetted): %s", p.ImportPath, at))
		}
	}
	return problems, rootFiles, nil
}

// paths returns, for every package reachable from root, a shortest import
// path to it, as "root -> a -> b", not going through forbidden packages.
func paths(root string, byPath map[string]*Package) map[string]string {
	via := map[string]string{root: root}
	queue := []string{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := byPath[cur]
		if p == nil {
			continue
		}
		if cur != root && forbidden(cur) != "" {
			continue // reported itself; what is under it is its business
		}
		for _, imp := range p.Imports {
			if _, seen := via[imp]; !seen {
				via[imp] = via[cur] + " -> " + imp
				queue = append(queue, imp)
			}
		}
	}
	return via
}

// clockFuncs are the functions of package time that read or wait on the
// real clock.
var clockFuncs = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}

// FileProblems returns what breaks purity in the source of one file: go
// statements, select statements, channels, the clock of package time, and
// the print builtins. (Imports are judged on the package's graph.)
func FileProblems(fset *token.FileSet, f *ast.File) []string {
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
		if path == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
			if timeName == "." {
				report(imp, "dot-imports time")
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
			if x, ok := n.X.(*ast.Ident); ok && timeName != "" && x.Name == timeName && slices.Contains(clockFuncs, n.Sel.Name) {
				report(n, "reads the clock: time.%s", n.Sel.Name)
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
