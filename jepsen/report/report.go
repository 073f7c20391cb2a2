// Package report writes what a Jepsen run found as a directory a person
// can open: summary.txt for terminals and CI logs, index.html for
// understanding what happened, with a timeline of the ops against the
// faults.
//
// The HTML is self-contained (inline CSS and SVG, no scripts, no external
// assets) so that a report directory copied off a CI machine or attached
// to a bug still renders years later.
package report

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/avail"
	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
)

// Input is everything a report shows.
type Input struct {
	Title string // e.g. "orbit jepsen: register, partitions+kills, 3 nodes, seed 7"
	// Config is ordered key/value lines shown at the top: nodes, duration,
	// workload, nemesis, rate, concurrency, seed, the command to replay.
	Config  [][2]string
	Ops     []history.Op
	Faults  []history.Fault
	Results []check.Result
	Notes   []string // e.g. "recovered 1.4s after heal"
	// Files are paths relative to the report directory to link:
	// history.jsonl, faults.log, node logs, Porcupine's HTML.
	Files []string
	// Availability is the per-fault analysis (avail.Analyze); nil: the
	// section is left out.
	Availability *avail.Report
}

// Valid reports whether every checker found the history valid. An Unknown
// result is not valid, and neither is an empty list: a run that checked
// nothing has shown nothing.
func Valid(results []check.Result) bool {
	if len(results) == 0 {
		return false
	}
	for _, r := range results {
		if !r.Valid || r.Unknown {
			return false
		}
	}
	return true
}

// Write writes dir/summary.txt and dir/index.html, creating dir, and
// returns Valid(in.Results).
func Write(dir string, in Input) (valid bool, err error) {
	valid = Valid(in.Results)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return valid, fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(Summary(in)), 0o644); err != nil {
		return valid, fmt.Errorf("report: %w", err)
	}
	page, err := HTML(dir, in)
	if err != nil {
		return valid, err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), page, 0o644); err != nil {
		return valid, fmt.Errorf("report: %w", err)
	}
	return valid, nil
}

// verdict is the one word a report leads with.
func verdict(results []check.Result) string {
	if Valid(results) {
		return "VALID"
	}
	return "INVALID"
}

// resultWord is one checker's verdict.
func resultWord(r check.Result) string {
	switch {
	case r.Unknown:
		return "UNKNOWN"
	case r.Valid:
		return "VALID"
	}
	return "INVALID"
}

// opCounts is "1234 ops (1000 ok, 10 fail, 224 info) over +60.000s".
func opCounts(ops []history.Op, endNS int64) string {
	var okN, failN, infoN int
	for _, op := range ops {
		switch op.Type {
		case history.TypeOK:
			okN++
		case history.TypeFail:
			failN++
		default:
			infoN++
		}
	}
	return fmt.Sprintf("%d ops (%d ok, %d fail, %d info) over %.3fs", len(ops), okN, failN, infoN, float64(endNS)/1e9)
}

// Summary is summary.txt: the verdict alone on the first line, so that a
// script can read it with head -1, then the configuration, each checker's
// line and problems, and the notes.
func Summary(in Input) string {
	var b strings.Builder
	b.WriteString(verdict(in.Results) + "\n")
	if in.Title != "" {
		b.WriteString(in.Title + "\n")
	}
	b.WriteString("\n")
	for _, kv := range in.Config {
		fmt.Fprintf(&b, "%s: %s\n", kv[0], kv[1])
	}
	fmt.Fprintf(&b, "ops: %s\n", opCounts(in.Ops, runEnd(in.Ops, in.Faults)))
	fmt.Fprintf(&b, "faults: %d\n", len(in.Faults))
	b.WriteString("\n")
	if len(in.Results) == 0 {
		b.WriteString("no checker ran\n")
	}
	for _, r := range in.Results {
		fmt.Fprintf(&b, "%s: %s: %s\n", r.Name, resultWord(r), r.Summary)
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
	}
	if s := faultsText(in.Availability); s != "" {
		b.WriteString("\n" + s)
	}
	if len(in.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range in.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	return b.String()
}

// pageData is what the template sees.
type pageData struct {
	Title    string
	Verdict  string
	Valid    bool
	Config   [][2]string
	OpCounts string
	Results  []pageResult
	Notes    []string
	Timeline template.HTML
	// Quantiles and NodeRates are the charts under the timeline (empty
	// when there are no ok ops).
	Quantiles, NodeRates template.HTML
	Calm                 string
	FaultRows            []faultRow
	Kinds                []pageKind
	Faults               []pageFault
	Files                []pageFile
	Colours              map[string]string
}

type pageResult struct {
	check.Result
	Word string
}

type pageKind struct{ Name, Colour string }

type pageFault struct {
	Kind, Colour, Detail, Start, End, Duration string
}

type pageFile struct {
	Path    string
	Missing bool
}

// HTML renders index.html. dir is only used to mark linked files that are
// missing.
func HTML(dir string, in Input) ([]byte, error) {
	t := newTimeline(in.Ops, in.Faults)
	d := pageData{
		Title:    in.Title,
		Verdict:  verdict(in.Results),
		Valid:    Valid(in.Results),
		Config:   in.Config,
		OpCounts: opCounts(in.Ops, t.endNS),
		Notes:    in.Notes,
		// The SVG is built with every text escaped (see esc), so it is
		// safe to include as is.
		Timeline:  template.HTML(t.svg()),
		Quantiles: template.HTML(t.quantileSVG(in.Ops)),
		NodeRates: template.HTML(t.nodeSVG(in.Ops)),
		FaultRows: faultRows(in.Availability),
		Colours:   typeColour,
	}
	if in.Availability != nil {
		d.Calm = calmText(in.Availability.Calm)
	}
	if d.Title == "" {
		d.Title = "orbit jepsen run"
	}
	for _, r := range in.Results {
		d.Results = append(d.Results, pageResult{Result: r, Word: resultWord(r)})
	}
	for _, k := range t.kinds {
		d.Kinds = append(d.Kinds, pageKind{k, t.colours[k]})
	}
	for _, i := range sortedFaults(t) {
		f := t.faults[i]
		end := history.Seconds(f.End)
		if t.open[i] {
			end = "never healed"
		}
		d.Faults = append(d.Faults, pageFault{
			Kind: f.Kind, Colour: t.colours[f.Kind], Detail: f.Detail,
			Start: history.Seconds(f.Start), End: end, Duration: Duration(f.End - f.Start),
		})
	}
	for _, f := range in.Files {
		_, err := os.Stat(filepath.Join(dir, f))
		d.Files = append(d.Files, pageFile{Path: f, Missing: err != nil})
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("report: rendering index.html: %w", err)
	}
	return buf.Bytes(), nil
}

// page is index.html. It is written as well-formed XML (void elements
// closed, numeric character references only) so that tests, and any tool,
// can parse it with an XML parser.
var page = template.Must(template.New("index.html").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>{{.Verdict}}: {{.Title}}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1160px; color: #222; padding: 0 16px; }
h1 { font-size: 20px; font-weight: normal; margin: 0 0 12px 0; }
h2 { font-size: 16px; margin: 28px 0 8px 0; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.verdict { font-size: 44px; font-weight: bold; letter-spacing: 2px; padding: 10px 20px; border-radius: 6px; display: inline-block; margin-bottom: 10px; color: #fff; }
.verdict.valid, .word.valid { background: #2e8b57; }
.verdict.invalid, .word.invalid { background: #c0392b; }
.word.unknown { background: #d68910; }
.word { color: #fff; font-weight: bold; padding: 2px 8px; border-radius: 4px; font-size: 12px; margin-right: 8px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 3px 12px 3px 0; text-align: left; vertical-align: top; }
th { color: #555; font-weight: normal; white-space: nowrap; }
td.mono, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.result { margin: 10px 0 16px 0; }
.summary { font-size: 13px; color: #333; margin: 4px 0; }
ul.problems { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; margin: 4px 0; padding-left: 20px; }
ul.problems li { margin: 3px 0; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: middle; }
.legend span.item { margin-right: 16px; font-size: 12px; }
svg.timeline { max-width: 100%; height: auto; }
svg .section { fill: #333; font-weight: bold; }
.missing { color: #c0392b; }
</style>
</head>
<body>
<div class="verdict {{if .Valid}}valid{{else}}invalid{{end}}">{{.Verdict}}</div>
<h1>{{.Title}}</h1>
<table class="config">
{{range .Config}}<tr><th>{{index . 0}}</th><td class="mono">{{index . 1}}</td></tr>
{{end}}<tr><th>ops</th><td class="mono">{{.OpCounts}}</td></tr>
</table>

<h2>Results</h2>
{{if not .Results}}<p class="summary">No checker ran, so nothing was shown.</p>{{end}}
{{range .Results}}<div class="result">
<span class="word {{if .Unknown}}unknown{{else if .Valid}}valid{{else}}invalid{{end}}">{{.Word}}</span><b>{{.Name}}</b>
<div class="summary">{{.Summary}}</div>
{{if .Problems}}<ul class="problems">
{{range .Problems}}<li>{{.}}</li>
{{end}}</ul>{{end}}
</div>
{{end}}
{{if .Notes}}<h2>Notes</h2>
<ul>
{{range .Notes}}<li>{{.}}</li>
{{end}}</ul>{{end}}

<h2>Timeline</h2>
<div class="legend">
<span class="item"><span class="swatch" style="background: {{index .Colours "ok"}}"></span>ok</span>
<span class="item"><span class="swatch" style="background: {{index .Colours "fail"}}"></span>fail</span>
<span class="item"><span class="swatch" style="background: {{index .Colours "info"}}"></span>info (unknown outcome)</span>
{{range .Kinds}}<span class="item"><span class="swatch" style="background: {{.Colour}}; opacity: 0.6"></span>{{.Name}}</span>
{{end}}</div>
{{.Timeline}}
{{if .Quantiles}}
<h2>Latency by operation</h2>
<p class="summary">p50, p95 and p99 of ok operations' latency in 1 s windows (by invocation; log scale). Failed and timed-out operations are in the timeline above.</p>
{{.Quantiles}}{{end}}
{{if .NodeRates}}
<h2>Throughput by node</h2>
<p class="summary">ok operations completed per second through each node's clients (the node they are bound to).</p>
{{.NodeRates}}{{end}}

{{if .FaultRows}}<h2>Availability and recovery per fault</h2>
<p class="summary">Calm: {{.Calm}} (outside every fault and the second after it). Recovery: the time until a node's clients had an ok operation, invoked after the fault's start (or end), on every range they tried; the slowest range is named.</p>
{{range .FaultRows}}<div class="result">
<b>{{.Title}}</b> <span class="mono">{{.When}}</span>
<div class="summary">{{.Availability}}</div>
<table>
<tr><th>node</th><th>after the start</th><th>after the end</th><th>during the fault</th></tr>
{{range .Nodes}}<tr><td class="mono">{{.Node}}</td><td class="mono">{{.FromStart}}</td><td class="mono">{{.FromEnd}}</td><td class="mono">{{.Rate}}</td></tr>
{{end}}</table>
{{if .Offline}}<ul class="problems">
{{range .Offline}}<li>{{.}}</li>
{{end}}</ul>{{end}}
</div>
{{end}}{{end}}

<h2>Faults</h2>
{{if .Faults}}<table>
<tr><th>kind</th><th>detail</th><th>start</th><th>end</th><th>duration</th></tr>
{{range .Faults}}<tr><td><span class="swatch" style="background: {{.Colour}}"></span>{{.Kind}}</td><td class="mono">{{.Detail}}</td><td class="mono">{{.Start}}</td><td class="mono">{{.End}}</td><td class="mono">{{.Duration}}</td></tr>
{{end}}</table>{{else}}<p class="summary">No faults were injected.</p>{{end}}

{{if .Files}}<h2>Files</h2>
<ul>
{{range .Files}}<li><a href="{{.Path}}">{{.Path}}</a>{{if .Missing}} <span class="missing">(missing)</span>{{end}}</li>
{{end}}</ul>{{end}}
</body>
</html>
`))
