package history

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecorderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	r := NewRecorder(&buf, time.Now())
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				inv := r.Since()
				r.Record(Op{Process: p, F: "add", Key: "s", Value: string(rune('a' + i%26)), Type: TypeOK, Invoke: inv, Complete: r.Since()})
			}
		}()
	}
	wg.Wait()
	r.Record(Op{Process: 9, F: "read-set", Key: "s", Values: []string{"a", "b"}, Type: TypeOK, Invoke: 5, Complete: 7})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	ops := r.Ops()
	if len(ops) != 401 {
		t.Fatalf("got %d ops, want 401", len(ops))
	}
	path := filepath.Join(t.TempDir(), "history.jsonl")
	// A run killed while writing leaves a truncated last line; it is dropped.
	data := append(buf.Bytes(), []byte(`{"process":3,"f":"ad`)...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(ops) {
		t.Fatalf("read back %d ops, want %d", len(back), len(ops))
	}
	for i := range ops {
		if ops[i].String() != back[i].String() || strings.Join(ops[i].Values, ",") != strings.Join(back[i].Values, ",") {
			t.Fatalf("op %d: wrote %v, read %v", i, ops[i], back[i])
		}
	}
}

func TestReadRejectsCorruptMiddle(t *testing.T) {
	in := `{"process":1,"f":"read","type":"ok"}` + "\nnot json\n" + `{"process":2,"f":"read","type":"ok"}` + "\n"
	if _, err := Read(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want an error naming line 2, got %v", err)
	}
}

func TestFaultLog(t *testing.T) {
	var buf bytes.Buffer
	l := NewFaultLog(&buf, time.Now())
	a := l.Begin("partition", "{1,2} | {3}")
	b := l.Begin("kill", "node 2")
	l.End(a)
	l.End(a) // twice: ignored
	l.Note("healed everything")
	l.End(99) // unknown: ignored
	c := l.Begin("partition", "{1,2} | {3}")
	_ = c // left open: the run stopped first
	l.End(b)

	fs := l.Faults()
	if len(fs) != 3 {
		t.Fatalf("got %d faults, want 3", len(fs))
	}
	if fs[0].End == 0 || fs[1].End == 0 || fs[2].End != 0 {
		t.Fatalf("ends wrong: %+v", fs)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"start partition {1,2} | {3}", "start kill node 2", "end partition {1,2} | {3}", "healed everything", "start partition {1,2} | {3}", "end kill node 2"}
	if len(lines) != len(want) {
		t.Fatalf("log:\n%s", buf.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], "+") || !strings.HasSuffix(lines[i], "s "+w) {
			t.Errorf("line %d = %q, want +N.NNNs %s", i, lines[i], w)
		}
	}

	back, err := ParseFaultLog(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 3 {
		t.Fatalf("parsed %d faults, want 3: %+v", len(back), back)
	}
	for i := range fs {
		if back[i].Kind != fs[i].Kind || back[i].Detail != fs[i].Detail || (back[i].End == 0) != (fs[i].End == 0) {
			t.Errorf("fault %d: logged %+v, parsed %+v", i, fs[i], back[i])
		}
		// The log keeps milliseconds.
		if d := back[i].Start - fs[i].Start; d < -1e6 || d > 1e6 {
			t.Errorf("fault %d: start %d parsed as %d", i, fs[i].Start, back[i].Start)
		}
	}
}

func TestSeconds(t *testing.T) {
	if got := Seconds(12_345_600_000); got != "+12.346s" {
		t.Fatalf("Seconds = %q", got)
	}
}
