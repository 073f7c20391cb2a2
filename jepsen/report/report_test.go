package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
)

func smallInput() Input {
	var ops []history.Op
	for i := range 300 {
		t := int64(i) * 20e6 // 6s of ops
		op := history.Op{Process: i % 5, Node: i%3 + 1, F: "write", Key: "x", Value: "v", Type: history.TypeOK, Invoke: t, Complete: t + int64(1e6+i*1e4)}
		switch i % 37 {
		case 5:
			op.Type, op.Error, op.Complete = history.TypeInfo, "i/o timeout", t+1e9
		case 9:
			op.Type, op.Error = history.TypeFail, "CLUSTERDOWN <no quorum> & more"
		}
		ops = append(ops, op)
	}
	return Input{
		Title:  "orbit jepsen: register, partitions+kills, 3 nodes, seed 7",
		Config: [][2]string{{"nodes", "3"}, {"seed", "7"}, {"replay", `orbit jepsen -seed 7 -workload "register"`}},
		Ops:    ops,
		Faults: []history.Fault{
			{Start: 1e9, End: 2.5e9, Kind: "partition", Detail: "{1,2} | {3}"},
			{Start: 3e9, End: 3.2e9, Kind: "kill", Detail: "node 2"},
			{Start: 4e9, Kind: "clock", Detail: "node 1 +2s"},           // never healed
			{Start: 4.5e9, End: 5e9, Kind: "gremlins", Detail: "<all>"}, // a kind without a fixed colour
		},
		Results: []check.Result{
			{Name: "register", Valid: true, Summary: "write: 280 ok; linearizable"},
		},
		Notes: []string{"recovered 1.4s after heal"},
		Files: []string{"history.jsonl", "faults.log", "linear.html"},
	}
}

// wellFormed parses doc as XML, strictly, and checks every element is
// closed: a stray "<" from unescaped text or a broken SVG would fail here.
func wellFormed(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var stack []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("index.html is not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			stack = append(stack, el.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements: %v", stack)
	}
}

func TestWriteValid(t *testing.T) {
	dir := t.TempDir()
	in := smallInput()
	if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	valid, err := Write(dir, in)
	if err != nil {
		t.Fatal(err)
	}
	if !valid {
		t.Fatal("Write returned invalid for valid results")
	}
	summary, err := os.ReadFile(filepath.Join(dir, "summary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(summary)
	if !strings.HasPrefix(s, "VALID\n") {
		t.Fatalf("summary starts %q", s[:min(len(s), 20)])
	}
	for _, want := range []string{in.Title, "nodes: 3", "register: VALID: write: 280 ok", "recovered 1.4s after heal", "300 ops"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}

	page, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, page)
	h := string(page)
	for _, want := range []string{
		">VALID<", "partition", "kill", "clock", "gremlins", "{1,2} | {3}",
		"never healed", "&lt;all&gt;", "&lt;no quorum&gt; &amp; more", // escaped
		`href="history.jsonl"`, "recovered 1.4s after heal", "<svg", "all 300 ops",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if strings.Contains(h, "ZgotmplZ") {
		t.Errorf("html/template rejected a value in index.html")
	}
	if strings.Contains(h, "<all>") || strings.Contains(h, "http://") && strings.Count(h, "http://") != strings.Count(h, "http://www.w3.org/2000/svg") {
		t.Errorf("index.html has unescaped text or external references")
	}
	// Only the files that exist are linked without a warning.
	if !strings.Contains(h, `faults.log</a> <span class="missing">`) || strings.Contains(h, `history.jsonl</a> <span class="missing">`) {
		t.Errorf("missing files not marked as such")
	}
}

func TestWriteInvalid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "report") // created by Write
	in := smallInput()
	in.Results = append(in.Results,
		check.Result{Name: "set", Summary: "1 lost", Problems: []string{`key s: lost add: process 1 add s "e7"`}},
		check.Result{Name: "register", Unknown: true, Summary: "timed out"})
	valid, err := Write(dir, in)
	if err != nil {
		t.Fatal(err)
	}
	if valid {
		t.Fatal("Write returned valid for invalid results")
	}
	summary, _ := os.ReadFile(filepath.Join(dir, "summary.txt"))
	if !strings.HasPrefix(string(summary), "INVALID\n") || !strings.Contains(string(summary), `  - key s: lost add: process 1 add s "e7"`) || !strings.Contains(string(summary), "register: UNKNOWN") {
		t.Fatalf("summary:\n%s", summary)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	wellFormed(t, page)
	if !strings.Contains(string(page), ">INVALID<") || !strings.Contains(string(page), "lost add: process 1 add s &#34;e7&#34;") {
		t.Errorf("index.html lacks the verdict or the problem")
	}
}

func TestValid(t *testing.T) {
	ok := check.Result{Valid: true}
	for _, c := range []struct {
		rs   []check.Result
		want bool
	}{
		{nil, false},
		{[]check.Result{ok}, true},
		{[]check.Result{ok, {Valid: false}}, false},
		{[]check.Result{{Valid: true, Unknown: true}}, false},
	} {
		if got := Valid(c.rs); got != c.want {
			t.Errorf("Valid(%+v) = %v", c.rs, got)
		}
	}
}

// TestLargeHistoryIsSampled: a long run draws at most maxPoints ops and
// says so.
func TestLargeHistoryIsSampled(t *testing.T) {
	var ops []history.Op
	for i := range 100_000 {
		typ := history.TypeOK
		if i%50 == 0 {
			typ = history.TypeInfo
		}
		ops = append(ops, history.Op{Process: i % 10, F: "incr", Key: "c", Type: typ, Invoke: int64(i) * 1e6, Complete: int64(i)*1e6 + 3e5})
	}
	page, err := HTML(t.TempDir(), Input{Ops: ops, Results: []check.Result{{Name: "counter", Valid: true}}})
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, page)
	h := string(page)
	if !strings.Contains(h, "20000 of 100000 ops, sampled evenly") {
		t.Errorf("no sampling caption")
	}
	if n := strings.Count(h, "h0"); n > maxPoints {
		t.Errorf("%d points drawn, want at most %d", n, maxPoints)
	}
	if len(page) > 4<<20 {
		t.Errorf("index.html is %d bytes", len(page))
	}
}

func TestEmptyRun(t *testing.T) {
	dir := t.TempDir()
	valid, err := Write(dir, Input{})
	if err != nil || valid {
		t.Fatalf("valid %v err %v", valid, err)
	}
	page, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	wellFormed(t, page)
	summary, _ := os.ReadFile(filepath.Join(dir, "summary.txt"))
	if !strings.HasPrefix(string(summary), "INVALID\n") || !strings.Contains(string(summary), "no checker ran") {
		t.Fatalf("summary:\n%s", summary)
	}
}
