// Package lint checks the mechanical half of Orbit's runtime contract
// (DESIGN.md, section "The runtime contract"): component code touches time,
// concurrency, randomness and files only through kernel.Runtime, so that the
// simulator can replace every one of them and replay a run exactly from its
// seed. A single wall-clock read,
// bare goroutine, raw channel wait, global random draw or real file access
// in a component silently breaks determinism: the run still passes, but the
// same seed no longer gives the same trace.
//
// The lint is purely syntactic (go/parser and go/ast, no type checking): a
// package name is resolved through the file's import specs, renamed imports
// included, and an identifier the parser resolved to a local declaration is
// never mistaken for a package. Rules:
//
//   - wallclock: time.Now, time.Sleep, time.After, timers, tickers,
//     time.Since/Until, and context deadlines on wall time
//     (context.WithTimeout, context.WithDeadline and their Cause variants).
//     Use Runtime.Now, Sleep, AfterFunc, WithTimeout.
//   - goroutine: any go statement. Use Runtime.Go.
//   - channel: select statements, channel receives and channel sends. Block
//     only in runtime primitives (Mailbox, Future, Cond, Sleep, Net).
//   - globalrand: importing crypto/rand, or using math/rand's package-level
//     source (rand.IntN, rand.Shuffle, ...). Constructors and types are fine.
//     Use Runtime.Rand.
//   - osfile: the os package's filesystem functions. Use Runtime.FS.
//
// Not caught without type information: ranging over a channel, and methods
// of a value obtained elsewhere (a *time.Timer handed in, say).
//
// The tests in this package run the lint over the component packages; the
// production runtime (kernel/prod) and network (kernel/grpcnet) are exempted
// by the allow-list below, where every exemption carries its reason.
package lint

import (
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// rule is the short name of one determinism rule, as printed in reports.
type rule string

const (
	ruleWallclock  rule = "wallclock"
	ruleGoroutine  rule = "goroutine"
	ruleChannel    rule = "channel"
	ruleGlobalRand rule = "globalrand"
	ruleOSFile     rule = "osfile"
)

// allRules lists every rule; an allowance with Rules: allRules exempts a
// path from the whole contract.
var allRules = []rule{ruleWallclock, ruleGoroutine, ruleChannel, ruleGlobalRand, ruleOSFile}

// target is a directory of component code to lint, relative to the repo root.
type target struct {
	Dir string
	// Recursive includes sub-directories (sub-packages).
	Recursive bool
}

// targets are the directories bound by the runtime contract. The root kernel
// package is linted on its own: of its sub-packages, node assembly runs
// under the simulator and is a target; kernel/prod and kernel/grpcnet wire
// real resources together (exempt below).
var targets = []target{
	{Dir: "storage", Recursive: true},
	{Dir: "consensus", Recursive: true},
	// Cluster management (directory, joins, removals, the rebalancer):
	// the simulator's cluster scenario runs it as orbit serve does.
	{Dir: "cluster", Recursive: true},
	// Node assembly: orbit serve and the simulator build nodes with it.
	{Dir: "kernel/node", Recursive: true},
	// The hybrid logical clock: every MVCC timestamp is its reading.
	{Dir: "kernel/hlc", Recursive: true},
	{Dir: "txn", Recursive: true},
	{Dir: "query", Recursive: true},
	{Dir: "kernel/actor", Recursive: true},
	{Dir: "kernel", Recursive: false},
	{Dir: "kernel/prod", Recursive: true},
	// Linted although exempt from most rules, so that the exemption below
	// stays as narrow as it says.
	{Dir: "kernel/grpcnet", Recursive: true},
	// The pure half of the Redis adapter (the command layer, its state
	// machine and the session layer in adapters/redis/session): the
	// simulator drives it, and a run must replay the same from its seed. The wire half (adapters/respwire: sockets,
	// a goroutine pair per connection, read deadlines) and the binary
	// (cmd/orbit) are the production edge and deliberately not targets,
	// like kernel/prod is exempt below.
	{Dir: "adapters/redis", Recursive: true},
}

// allowance exempts a directory (and everything below it) or a single file
// from some rules.
type allowance struct {
	// Path is a directory or file relative to the repo root, with slashes.
	Path  string
	Rules []rule
	// Why must say why determinism is not at stake there.
	Why string
}

// allowed is the complete list of exemptions. Keep it short: every entry is
// a place the simulator cannot see into.
var allowed = []allowance{
	{
		Path:  "kernel/prod",
		Rules: allRules,
		Why:   "the production runtime is where goroutines, the wall clock, real randomness and the real filesystem are supposed to live; the simulator replaces it wholesale",
	},
	{
		Path:  "kernel/grpcnet",
		Rules: []rule{ruleWallclock, ruleGoroutine, ruleChannel, ruleGlobalRand},
		Why: "the production network is the edge of the production runtime: it owns real sockets, a goroutine per peer stream, " +
			"dial timeouts and jittered reconnect backoff on the wall clock; the simulator uses its own network instead. " +
			"It has no business with files, so osfile still applies",
	},
	{
		Path:  "storage/wait.go",
		Rules: []rule{ruleGoroutine, ruleChannel},
		Why: "a task waits here for Pebble's own goroutines (a flush, a compaction, an open) while holding the processor, " +
			"so that nothing else of the simulation runs meanwhile; the wait must also end on a fatal error, " +
			"which no runtime primitive can observe on Pebble's goroutine",
	},
}

// violation is one finding of the lint.
type violation struct {
	Pos  token.Position // Filename is relative to the repo root
	Rule rule
	Msg  string
}

func (v violation) String() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", v.Pos.Filename, v.Pos.Line, v.Pos.Column, v.Rule, v.Msg)
}

// pkgRule says which package-level names of one standard package are off
// limits to components, and under which rule.
type pkgRule struct {
	rule   rule
	banned func(name string) bool
	// use names the runtime replacement, for the message.
	use string
}

// restricted maps an import path to its rule. Packages not listed here are
// not inspected.
var restricted = map[string]pkgRule{
	"time": {ruleWallclock, in(
		"Now", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick", "Since", "Until",
	), "use the Runtime's Now, Sleep or AfterFunc"},
	"context": {ruleWallclock, in(
		"WithTimeout", "WithDeadline", "WithTimeoutCause", "WithDeadlineCause",
		// AfterFunc runs its function on a goroutine of its own, outside
		// the runtime's tasks: a simulator run stops being reproducible.
		"AfterFunc",
	), "a wall-clock deadline or a goroutine outside the runtime; use Runtime.WithTimeout, or a task (Runtime.Go)"},
	"os": {ruleOSFile, in(
		"Open", "Create", "OpenFile", "ReadFile", "WriteFile", "Remove", "RemoveAll",
		"Rename", "Mkdir", "MkdirAll", "MkdirTemp", "CreateTemp", "ReadDir", "Stat",
		"Lstat", "Truncate", "Chdir", "Link", "Symlink", "Chmod", "DirFS",
		// The rest of os's ways into the real filesystem.
		"Chtimes", "Chown", "Lchown", "Readlink", "CopyFS", "OpenRoot", "OpenInRoot",
	), "the real filesystem; use Runtime.FS (vfs.FS)"},
	// For math/rand everything is banned except what builds a private,
	// seedable generator: a deny-by-default list also catches functions
	// that future Go releases add to the global source.
	"math/rand":    {ruleGlobalRand, notIn(randPrivate...), "the process-global random source; use Runtime.Rand"},
	"math/rand/v2": {ruleGlobalRand, notIn(randPrivate...), "the process-global random source; use Runtime.Rand"},
}

// randPrivate are the math/rand(/v2) names that do not touch the global
// source: constructors and types.
var randPrivate = []string{
	"New", "NewPCG", "NewChaCha8", "NewSource", "NewZipf",
	"Rand", "Source", "Source64", "PCG", "ChaCha8", "Zipf",
}

// bannedImports are packages a component may not import at all.
var bannedImports = map[string]violation{
	"crypto/rand": {Rule: ruleGlobalRand, Msg: `import of "crypto/rand": unseeded randomness; use Runtime.Rand`},
}

func in(names ...string) func(string) bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return func(name string) bool { return set[name] }
}

func notIn(names ...string) func(string) bool {
	isIn := in(names...)
	return func(name string) bool { return !isIn(name) }
}

// lintTree lints the non-test Go files of dir (relative to root) and, if
// recursive, of its sub-directories, skipping testdata and the directories
// the go tool ignores. A missing dir yields nothing: some components do not
// exist yet. Reported file names are relative to root.
func lintTree(root, dir string, recursive bool) ([]violation, error) {
	start := filepath.Join(root, filepath.FromSlash(dir))
	if _, err := os.Stat(start); os.IsNotExist(err) {
		return nil, nil
	}
	var out []violation
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != start && (!recursive || ignoredDir(d.Name())) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		vs, err := lintFile(path, filepath.ToSlash(rel))
		out = append(out, vs...)
		return err
	})
	return out, err
}

// ignoredDir reports whether the go tool (and so the lint) ignores a
// directory of this name.
func ignoredDir(name string) bool {
	return name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// lintFile parses one file and returns its violations, reported under name.
func lintFile(path, name string) ([]violation, error) {
	fset := token.NewFileSet()
	// Mode 0 keeps the parser's object resolution, which checkSelector uses
	// to tell local variables from package names.
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	c := &checker{fset: fset, name: name, imports: map[string]string{}}
	c.checkImports(f)
	ast.Inspect(f, c.visit)
	return c.found, nil
}

// checker collects the violations of one file.
type checker struct {
	fset    *token.FileSet
	name    string
	imports map[string]string // local package name -> import path, restricted packages only
	found   []violation
}

func (c *checker) report(pos token.Pos, r rule, format string, args ...any) {
	p := c.fset.Position(pos)
	p.Filename = c.name
	c.found = append(c.found, violation{Pos: p, Rule: r, Msg: fmt.Sprintf(format, args...)})
}

// checkImports flags banned imports and records the local name of each
// restricted package, so that `clock "time"` is checked like "time".
func (c *checker) checkImports(f *ast.File) {
	for _, spec := range f.Imports {
		path, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			continue // the parser accepted it, so this cannot happen
		}
		if v, ok := bannedImports[path]; ok {
			c.report(spec.Pos(), v.Rule, "%s", v.Msg)
			continue
		}
		pr, ok := restricted[path]
		if !ok {
			continue
		}
		switch local := importName(spec, path); local {
		case "_":
			// A blank import cannot be referred to.
		case ".":
			// The selectors this lint looks for would vanish.
			c.report(spec.Pos(), pr.rule, "dot import of %q hides its uses from the determinism lint", path)
		default:
			c.imports[local] = path
		}
	}
}

// importName is the name a file uses for an import: the explicit rename or
// the package's default name.
func importName(spec *ast.ImportSpec, path string) string {
	if spec.Name != nil {
		return spec.Name.Name
	}
	return defaultName(path)
}

// defaultName is the last path element that is not a major-version suffix
// ("math/rand/v2" is rand). The standard packages checked here all follow
// that convention.
func defaultName(path string) string {
	elems := strings.Split(path, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && isMajorVersion(last) {
		return elems[len(elems)-2]
	}
	return last
}

func isMajorVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	_, err := strconv.Atoi(s[1:])
	return err == nil
}

// visit is the ast.Inspect callback for everything but imports.
func (c *checker) visit(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.GoStmt:
		c.report(n.Pos(), ruleGoroutine, "go statement; start tasks with Runtime.Go")
	case *ast.SelectStmt:
		c.report(n.Pos(), ruleChannel, "select statement; the scheduler cannot see or order this wait, block in a runtime primitive (Mailbox, Future, Cond)")
		c.visitSelectBodies(n)
		return false // its comm clauses are part of this one report
	case *ast.SendStmt:
		c.report(n.Arrow, ruleChannel, "channel send; use a kernel.Mailbox")
	case *ast.UnaryExpr:
		if n.Op == token.ARROW {
			c.report(n.OpPos, ruleChannel, "channel receive; block in a runtime primitive (Mailbox, Future, Cond)")
		}
	case *ast.SelectorExpr:
		c.checkSelector(n)
	}
	return true
}

// visitSelectBodies lints the statements under each case of a select, but
// not the case's send or receive, which the select's report covers.
func (c *checker) visitSelectBodies(s *ast.SelectStmt) {
	for _, clause := range s.Body.List {
		for _, stmt := range clause.(*ast.CommClause).Body {
			ast.Inspect(stmt, c.visit)
		}
	}
}

// checkSelector flags pkg.Name when pkg is a restricted import and Name is
// banned. Calls and plain references (f := time.Now) are both caught.
func (c *checker) checkSelector(sel *ast.SelectorExpr) {
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return
	}
	// The parser resolves identifiers declared in the file (locals,
	// parameters, package-level declarations) and leaves package names
	// unresolved, so a local `rand := rt.Rand()` is not the rand package.
	if id.Obj != nil {
		return
	}
	path, ok := c.imports[id.Name]
	if !ok {
		return
	}
	pr := restricted[path]
	if !pr.banned(sel.Sel.Name) {
		return
	}
	what := id.Name + "." + sel.Sel.Name
	if id.Name != defaultName(path) {
		what += fmt.Sprintf(" (%s is %q)", id.Name, path) // a renamed import
	}
	c.report(sel.Pos(), pr.rule, "%s: %s", what, pr.use)
}

// exempt reports whether the allow-list excuses v.
func exempt(v violation) bool {
	for _, a := range allowed {
		if covers(a.Path, v.Pos.Filename) && slices.Contains(a.Rules, v.Rule) {
			return true
		}
	}
	return false
}

// covers reports whether allow-list path p (a directory or a file) covers
// the file name.
func covers(p, name string) bool {
	return name == p || strings.HasPrefix(name, p+"/")
}

// sortViolations orders findings by file, line and column, so reports are
// stable and easy to read.
func sortViolations(vs []violation) {
	slices.SortFunc(vs, func(a, b violation) int {
		return cmp.Or(
			cmp.Compare(a.Pos.Filename, b.Pos.Filename),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
		)
	})
}
