package jepsen

import (
	"flag"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// shellSplit splits a command line as a POSIX shell does for the words
// ReplayCommand writes: blanks separate words, single quotes quote.
func shellSplit(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case !quoted && r == '\\':
			escaped, inWord = true, true
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("\"$`*?;&|<>()", r):
			t.Fatalf("unquoted shell metacharacter %q in %s", r, s)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %s", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// parseReplay parses a printed replay command with the flag set `orbit
// jepsen` uses.
func parseReplay(t *testing.T, cmd string) Config {
	t.Helper()
	words := shellSplit(t, cmd)
	if len(words) < 2 || words[0] != "orbit" || words[1] != "jepsen" {
		t.Fatalf("not an orbit jepsen command: %s", cmd)
	}
	var got Config
	fs := flag.NewFlagSet("jepsen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	got.RegisterFlags(fs)
	if err := fs.Parse(words[2:]); err != nil {
		t.Fatalf("the replay command does not parse: %v\n%s", err, cmd)
	}
	if fs.NArg() != 0 {
		t.Fatalf("stray arguments %q in %s", fs.Args(), cmd)
	}
	return got
}

// TestReplayCommandRoundTrip: the command a report prints parses, with the
// real flag set, back to the configuration that ran.
func TestReplayCommandRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Nodes: 5, Duration: 90 * time.Second, Workload: "list", Nemeses: []string{"partition", "kill", "slow-leader"}, Rate: 137.25,
			Concurrency: 7, Seed: -3, Recovery: 45 * time.Second, RecoveryBound: 1500 * time.Millisecond, AvailabilityFloor: 0.35,
			LeaderRange: 2, OpTimeout: 2500 * time.Millisecond, Mutation: "local-reads"},
		{Workload: "register", Nemeses: nil, Seed: 1},                                  // no nemesis
		{Workload: "set", Nemeses: slices.Clone(AllNemeses), Rate: 1e-3},               // every nemesis, an odd rate
		{Workload: "counter", Nemeses: []string{"pause-leader"}, Mutation: "it's odd"}, // a value that needs quotes
	} {
		cfg.defaults()
		cmd := cfg.ReplayCommand()
		if strings.Contains(cmd, "+") && !strings.Contains(cmd, "'") {
			t.Errorf("nemeses joined with +: %s", cmd)
		}
		got := parseReplay(t, cmd)
		got.defaults()
		want := cfg
		want.Logf, got.Logf = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of\n  %s\ngave %+v\nwant %+v", cmd, got, want)
		}
	}
}

// TestReplayFlagsCoverTheFlagSet: every flag but --out and --binary is
// printed, so a new flag cannot be left out of the replay command.
func TestReplayFlagsCoverTheFlagSet(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("jepsen", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "out" && f.Name != "binary" && !slices.Contains(replayFlags, f.Name) {
			t.Errorf("flag --%s is not in replayFlags", f.Name)
		}
	})
	for _, name := range replayFlags {
		if fs.Lookup(name) == nil {
			t.Errorf("replayFlags names --%s, which does not exist", name)
		}
	}
}

func TestNemesisFlag(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("jepsen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if !slices.Equal(cfg.Nemeses, []string{"partition", "kill"}) {
		t.Errorf("default nemeses %v", cfg.Nemeses)
	}
	// The flag package reports a Value's error with %v: only its text
	// survives.
	err := fs.Parse([]string{"--nemesis", "partition+kill"})
	if err == nil || !strings.Contains(err.Error(), (&UnknownNemesisError{Name: "partition+kill"}).Error()) {
		t.Errorf("--nemesis partition+kill: %v", err)
	}
	if err := fs.Parse([]string{"--nemesis", "all"}); err != nil || !slices.Equal(cfg.Nemeses, AllNemeses) {
		t.Errorf("--nemesis all: %v %v", err, cfg.Nemeses)
	}
	if err := fs.Parse([]string{"--nemesis", "none"}); err != nil || cfg.Nemeses != nil {
		t.Errorf("--nemesis none: %v %v", err, cfg.Nemeses)
	}
}
