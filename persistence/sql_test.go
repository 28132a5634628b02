package persistence_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSQLIsNeverBuiltFromInput checks, in every non-test Go file of this
// package and its helpers, that each SQL text handed to pgx (Exec, Query,
// QueryRow, Batch.Queue) is a constant — a literal, a named constant, or a
// concatenation of those — or an identifier quoted by pgx.Identifier.
// Values always travel as parameters.
func TestSQLIsNeverBuiltFromInput(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	var files []*ast.File
	for _, dir := range []string{".", "persistencetest"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	consts := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if d, ok := n.(*ast.GenDecl); ok && d.Tok == token.CONST {
				for _, s := range d.Specs {
					for _, name := range s.(*ast.ValueSpec).Names {
						consts[name.Name] = true
					}
				}
			}
			return true
		})
	}
	var constant func(e ast.Expr) bool
	constant = func(e ast.Expr) bool {
		switch e := e.(type) {
		case *ast.BasicLit:
			return e.Kind == token.STRING
		case *ast.Ident:
			return consts[e.Name]
		case *ast.ParenExpr:
			return constant(e.X)
		case *ast.BinaryExpr:
			return e.Op == token.ADD && constant(e.X) && constant(e.Y)
		case *ast.CallExpr: // pgx.Identifier{…}.Sanitize() quotes an identifier
			sel, ok := e.Fun.(*ast.SelectorExpr)
			return ok && sel.Sel.Name == "Sanitize"
		case *ast.SelectorExpr: // a field holding one of the constant query texts above
			return e.Sel.Name == "sql"
		}
		return false
	}
	calls := 0
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			argIdx := map[string]int{"Exec": 1, "Query": 1, "QueryRow": 1, "Queue": 0}
			i, ok := argIdx[sel.Sel.Name]
			if !ok || len(call.Args) <= i {
				return true
			}
			calls++
			if !constant(call.Args[i]) {
				t.Errorf("%s: SQL of %s is not a constant", fset.Position(call.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if calls < 20 {
		t.Fatalf("checked %d SQL calls; the scan is not finding them", calls)
	}
	if _, err := os.Stat("batch.go"); err != nil {
		t.Fatal(err)
	}
}
