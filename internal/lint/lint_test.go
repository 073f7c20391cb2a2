package lint

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRuntimeContract lints the component packages of the repository and
// lists every violation the allow-list does not excuse.
func TestRuntimeContract(t *testing.T) {
	root := repoRoot(t)
	var bad []violation
	for _, tg := range targets {
		vs, err := lintTree(root, tg.Dir, tg.Recursive)
		if err != nil {
			t.Fatalf("linting %s: %v", tg.Dir, err)
		}
		for _, v := range vs {
			if !exempt(v) {
				bad = append(bad, v)
			}
		}
	}
	if len(bad) == 0 {
		return
	}
	sortViolations(bad)
	var b strings.Builder
	fmt.Fprintf(&b, "%d violation(s) of the runtime contract (DESIGN.md, \"The runtime contract\"):\n", len(bad))
	for _, v := range bad {
		fmt.Fprintf(&b, "\t%s\n", v)
	}
	b.WriteString("Route these through kernel.Runtime (Now, Sleep, AfterFunc, WithTimeout, Go, Rand, FS, Mailbox/Future),\n" +
		"or, if the code truly is outside the simulator's reach, add an entry with a Why to `allowed` in internal/lint/lint.go.")
	t.Error(b.String())
}

// TestLintCatchesViolations proves the lint can fail: every rule fires on
// the bad fixture exactly where its "want" comments say, and the good
// fixture, full of near misses, stays clean.
func TestLintCatchesViolations(t *testing.T) {
	root := repoRoot(t)
	const badDir = "internal/lint/testdata/bad"

	want := wantedFindings(t, filepath.Join(root, badDir))
	got, err := lintTree(root, badDir, true)
	if err != nil {
		t.Fatal(err)
	}
	gotSet := map[finding]bool{}
	for _, v := range got {
		f := finding{v.Pos.Filename, v.Pos.Line, v.Rule}
		gotSet[f] = true
		if !want[f] {
			t.Errorf("unexpected report: %s", v)
		}
	}
	for f := range want {
		if !gotSet[f] {
			t.Errorf("%s:%d: missing report for rule %s", f.file, f.line, f.rule)
		}
	}
	// The fixture must exercise every rule, or a rule could silently stop
	// working.
	for _, r := range allRules {
		if !slices.ContainsFunc(got, func(v violation) bool { return v.Rule == r }) {
			t.Errorf("rule %s never reported on %s; add a case for it to the fixture", r, badDir)
		}
	}

	good, err := lintTree(root, "internal/lint/testdata/good", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range good {
		t.Errorf("false positive on allowed code: %s", v)
	}
}

// TestAllowListIsUsed keeps the allow-list honest: each entry names an
// existing path, lists rules, and says why.
func TestAllowListIsUsed(t *testing.T) {
	root := repoRoot(t)
	for _, a := range allowed {
		if strings.TrimSpace(a.Why) == "" {
			t.Errorf("allow-list entry %q has no Why", a.Path)
		}
		if len(a.Rules) == 0 {
			t.Errorf("allow-list entry %q exempts no rules", a.Path)
		}
		if a.Path == "" || filepath.IsAbs(a.Path) || strings.HasSuffix(a.Path, "/") {
			t.Errorf("allow-list entry %q: want a clean path relative to the repo root", a.Path)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(a.Path))); err != nil {
			t.Errorf("allow-list entry %q is stale: %v", a.Path, err)
		}
	}
}

// finding is what a "want" comment promises: a rule reported on a line.
type finding struct {
	file string
	line int
	rule rule
}

// wantedFindings reads the "// want rule..." comments of the Go files in
// dir, keyed by repo-relative file name as the lint reports it.
func wantedFindings(t *testing.T, dir string) map[finding]bool {
	t.Helper()
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixture files in %s (err %v)", dir, err)
	}
	want := map[finding]bool{}
	for _, path := range files {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range allComments(f) {
			rules, ok := strings.CutPrefix(c.Text, "// want ")
			if !ok {
				continue
			}
			line := fset.Position(c.Pos()).Line
			for _, r := range strings.Fields(rules) {
				want[finding{filepath.ToSlash(rel), line, rule(r)}] = true
			}
		}
	}
	return want
}

func allComments(f *ast.File) []*ast.Comment {
	var cs []*ast.Comment
	for _, g := range f.Comments {
		cs = append(cs, g.List...)
	}
	return cs
}

// repoRoot walks up from the test's working directory (this package) to the
// directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the lint package")
		}
		dir = parent
	}
}
