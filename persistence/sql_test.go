package persistence_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSQLIsNeverBuiltFromInput checks, in every non-test Go file of this
// package and of persistencetest, that each SQL text handed to pgx (Exec,
// Query, QueryRow, Batch.Queue) is constant; see sqlCheck for what counts.
// Values always travel as parameters.
func TestSQLIsNeverBuiltFromInput(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{".", "persistencetest"} {
		paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		var files []*ast.File
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
		c := newSQLCheck(fset, files)
		for _, pos := range c.nonConstant() {
			t.Errorf("%s: the SQL text is not a constant", pos)
		}
		// The scan must find the package's queries: this many at least.
		if min := map[string]int{".": 30, "persistencetest": 5}[dir]; c.calls < min {
			t.Errorf("%s: checked %d SQL calls, want at least %d; the scan is not finding them", dir, c.calls, min)
		}
	}
}

// TestSQLCheckFlagsBuiltSQL runs the check over code that builds SQL in
// each way it must refuse, beside the forms it accepts: it flags exactly
// the lines marked "// built".
func TestSQLCheckFlagsBuiltSQL(t *testing.T) {
	t.Parallel()
	const src = `package p

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

type statement struct {
	sql  string
	args []any
}

type statements []statement

func (s *statements) Queue(sql string, args ...any) { *s = append(*s, statement{sql, args}) }

type loose struct{ sql string }

const base = "SELECT 1 FROM t"

var fixed = []struct{ name, sql string }{{"a", "SELECT a"}, {name: "b", sql: base + " WHERE b"}}

var built = []struct{ name, sql string }{{"c", "SELECT " + name()}}

func name() string { return "c" }

func quote(s string) pgx.Identifier { return pgx.Identifier{s} }

func run(tx pgx.Tx, b *statements, in string) {
	tx.Exec(ctx, base+" WHERE x = $1", in)
	tx.Exec(ctx, ("SELECT 2"))
	tx.Exec(ctx, "SELECT "+in) // built
	tx.Query(ctx, fmt.Sprintf("SELECT %s", in)) // built
	for _, q := range fixed {
		tx.QueryRow(ctx, q.sql)
	}
	for _, q := range built {
		tx.QueryRow(ctx, q.sql) // built
	}
	b.Queue("SELECT 3")
	b.Queue(in) // built
	for _, st := range *b {
		tx.Exec(ctx, st.sql, st.args...)
	}
	tx.Exec(ctx, "DROP DATABASE "+pgx.Identifier{in}.Sanitize())
	tx.Exec(ctx, "DROP DATABASE "+quote(in).Sanitize()) // built
	l := loose{sql: "SELECT 4"}
	l.sql = in
	tx.Exec(ctx, l.sql) // built
	q := "SELECT 5"
	tx.Exec(ctx, q)
	r := "SELECT 6"
	r += in
	tx.Exec(ctx, r) // built
	var unset loose
	_ = unset
	tx.Exec(ctx, in) // built
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, cg := range f.Comments {
		if strings.TrimSpace(cg.Text()) == "built" {
			want = append(want, fset.Position(cg.Pos()).Line)
		}
	}
	var got []int
	for _, pos := range newSQLCheck(fset, []*ast.File{f}).nonConstant() {
		got = append(got, pos.Line)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("flagged lines %v, want %v", got, want)
	}
}

// sqlSinks are the methods that take SQL text, and the position of the text
// among their arguments. Calls are matched by method name alone, whatever
// the receiver, which can only check more calls than needed.
var sqlSinks = map[string]int{"Exec": 1, "Query": 1, "QueryRow": 1, "Queue": 0}

// sqlCheck finds the SQL texts of one package that are not constant. A
// text is constant when it is:
//   - a constant expression (literals, named constants, their
//     concatenation), as the type checker evaluates it;
//   - a concatenation of constant texts;
//   - pgx.Identifier{…}.Sanitize(), a quoted identifier;
//   - a struct field or a variable every value of which, anywhere in the
//     package (composite literals, assignments), is constant, and that is
//     given at least one;
//   - a parameter of a function that is itself a sink at that position
//     (statements.Queue): every call of it is checked in its turn.
//
// The package is type-checked without its imports (each is an empty
// package), which is enough to resolve its own fields, variables and
// parameters.
type sqlCheck struct {
	fset  *token.FileSet
	files []*ast.File
	info  *types.Info
	// values lists what each field and variable is given.
	values map[*types.Var][]ast.Expr
	// params maps a function's parameters to the function's name and
	// their position.
	params map[*types.Var]param
	// calls counts the sink calls checked.
	calls int
}

type param struct {
	fn    string
	index int
}

func newSQLCheck(fset *token.FileSet, files []*ast.File) *sqlCheck {
	c := &sqlCheck{
		fset: fset, files: files,
		info: &types.Info{
			Types:      map[ast.Expr]types.TypeAndValue{},
			Defs:       map[*ast.Ident]types.Object{},
			Uses:       map[*ast.Ident]types.Object{},
			Selections: map[*ast.SelectorExpr]*types.Selection{},
		},
		values: map[*types.Var][]ast.Expr{},
		params: map[*types.Var]param{},
	}
	conf := types.Config{Importer: emptyImporter{}, Error: func(error) {}}
	_, _ = conf.Check("checked", fset, files, c.info)
	for _, f := range files {
		ast.Inspect(f, c.collect)
	}
	return c
}

// collect records the values given to fields and variables, and the
// parameters of named functions.
func (c *sqlCheck) collect(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.FuncDecl:
		i := 0
		for _, field := range n.Type.Params.List {
			for _, name := range field.Names {
				if v, ok := c.info.Defs[name].(*types.Var); ok {
					c.params[v] = param{n.Name.Name, i}
				}
				i++
			}
		}
	case *ast.CompositeLit:
		tv, ok := c.info.Types[n]
		if !ok {
			return true
		}
		typ := tv.Type.Underlying()
		if p, ok := typ.(*types.Pointer); ok {
			typ = p.Elem().Underlying()
		}
		st, ok := typ.(*types.Struct)
		if !ok {
			return true
		}
		for i, elt := range n.Elts {
			if kv, ok := elt.(*ast.KeyValueExpr); ok {
				if key, ok := kv.Key.(*ast.Ident); ok {
					if v, ok := c.info.Uses[key].(*types.Var); ok {
						c.values[v] = append(c.values[v], kv.Value)
					}
				}
			} else if i < st.NumFields() {
				c.values[st.Field(i)] = append(c.values[st.Field(i)], elt)
			}
		}
	case *ast.AssignStmt:
		for i, lhs := range n.Lhs {
			v := c.assigned(lhs)
			if v == nil {
				continue
			}
			switch {
			case n.Tok != token.ASSIGN && n.Tok != token.DEFINE:
				// x += y: the result is constant only if both are; recorded
				// as the binary expression it stands for.
				op := map[token.Token]token.Token{token.ADD_ASSIGN: token.ADD}[n.Tok]
				c.values[v] = append(c.values[v], &ast.BinaryExpr{X: lhs, Op: op, Y: n.Rhs[0]})
			case len(n.Lhs) == len(n.Rhs):
				c.values[v] = append(c.values[v], n.Rhs[i])
			default: // x, y := f(): not a constant
				c.values[v] = append(c.values[v], &ast.BadExpr{})
			}
		}
	case *ast.ValueSpec:
		for i, name := range n.Names {
			if v, ok := c.info.Defs[name].(*types.Var); ok && i < len(n.Values) {
				c.values[v] = append(c.values[v], n.Values[i])
			}
		}
	}
	return true
}

// assigned is the field or variable an assignment's left side names.
func (c *sqlCheck) assigned(lhs ast.Expr) *types.Var {
	switch lhs := lhs.(type) {
	case *ast.Ident:
		if v, ok := c.info.Defs[lhs].(*types.Var); ok {
			return v
		}
		v, _ := c.info.Uses[lhs].(*types.Var)
		return v
	case *ast.SelectorExpr:
		if sel, ok := c.info.Selections[lhs]; ok && sel.Kind() == types.FieldVal {
			v, _ := sel.Obj().(*types.Var)
			return v
		}
	}
	return nil
}

// nonConstant returns the positions of the sink calls whose SQL text is not
// constant, in file order.
func (c *sqlCheck) nonConstant() []token.Position {
	var out []token.Position
	for _, f := range c.files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			i, ok := sqlSinks[sel.Sel.Name]
			if !ok || len(call.Args) <= i {
				return true
			}
			c.calls++
			if !c.constant(call.Args[i], map[*types.Var]bool{}) {
				out = append(out, c.fset.Position(call.Pos()))
			}
			return true
		})
	}
	return out
}

// constant reports whether e is a constant SQL text; seen guards against
// cycles through fields and variables.
func (c *sqlCheck) constant(e ast.Expr, seen map[*types.Var]bool) bool {
	if tv, ok := c.info.Types[e]; ok && tv.Value != nil {
		return true
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.ParenExpr:
		return c.constant(e.X, seen)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && c.constant(e.X, seen) && c.constant(e.Y, seen)
	case *ast.CallExpr:
		return isSanitizedIdentifier(e)
	case *ast.Ident:
		v, ok := c.info.Uses[e].(*types.Var)
		if !ok {
			return false
		}
		if p, ok := c.params[v]; ok {
			i, sink := sqlSinks[p.fn]
			return sink && i == p.index
		}
		return c.allConstant(v, seen)
	case *ast.SelectorExpr:
		sel, ok := c.info.Selections[e]
		if !ok || sel.Kind() != types.FieldVal {
			return false
		}
		v, _ := sel.Obj().(*types.Var)
		return v != nil && c.allConstant(v, seen)
	}
	return false
}

// allConstant reports whether v is given at least one value and only
// constant ones.
func (c *sqlCheck) allConstant(v *types.Var, seen map[*types.Var]bool) bool {
	if seen[v] {
		return true // the cycle adds no value of its own
	}
	seen[v] = true
	values := c.values[v]
	if len(values) == 0 {
		return false
	}
	for _, x := range values {
		if !c.constant(x, seen) {
			return false
		}
	}
	return true
}

// isSanitizedIdentifier reports whether call is pgx.Identifier{…}.Sanitize().
func isSanitizedIdentifier(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Sanitize" || len(call.Args) != 0 {
		return false
	}
	lit, ok := sel.X.(*ast.CompositeLit)
	if !ok {
		return false
	}
	typ, ok := lit.Type.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := typ.X.(*ast.Ident)
	return ok && pkg.Name == "pgx" && typ.Sel.Name == "Identifier"
}

// emptyImporter imports every package as an empty one: the check needs
// only the checked package's own objects.
type emptyImporter struct{}

func (emptyImporter) Import(path string) (*types.Package, error) {
	parts := strings.Split(path, "/")
	name := parts[len(parts)-1]
	if len(parts) > 1 && len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
		name = parts[len(parts)-2] // github.com/jackc/pgx/v5 is package pgx
	}
	pkg := types.NewPackage(path, name)
	pkg.MarkComplete()
	return pkg, nil
}
