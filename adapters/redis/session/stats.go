package session

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// cmdStats are the counters of INFO's stats, commandstats and errorstats
// sections, counted as Redis counts them: a command's calls and time once
// it ran; rejected_calls for one refused before it ran (a wrong arity, a
// command not allowed in the connection's state); failed_calls for one
// that ran and answered an error; every error reply by its code.
type cmdStats struct {
	mu          sync.Mutex
	connections int64 // connections received since start
	commands    int64 // commands processed since start
	byName      map[string]*cmdStat
	errors      map[string]int64 // error replies by code (the first word)
	// Commands in the current second and the one before it, for
	// instantaneous_ops_per_sec.
	second          int64
	thisSec, before int64
}

type cmdStat struct {
	calls, usec, rejected, failed int64
}

func newCmdStats() *cmdStats {
	return &cmdStats{byName: map[string]*cmdStat{}, errors: map[string]int64{}}
}

func (s *cmdStats) connected() {
	s.mu.Lock()
	s.connections++
	s.mu.Unlock()
}

// record counts one command (name as in the command table; "" for an
// unknown command) that ran (ran false: rejected before it ran) for took,
// and its replies' errors.
func (s *cmdStats) record(name string, ran bool, now time.Time, took time.Duration, replies []redis.Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := false
	for _, r := range replies {
		if r.Kind == redis.KindError {
			code, _, _ := strings.Cut(string(r.Str), " ")
			s.errors[code]++
			failed = true
		}
	}
	if name == "" {
		return // an unknown command counts only as an error reply
	}
	st := s.byName[name]
	if st == nil {
		st = &cmdStat{}
		s.byName[name] = st
	}
	switch {
	case !ran:
		st.rejected++
		return
	case failed:
		st.failed++
	}
	st.calls++
	st.usec += took.Microseconds()
	s.commands++
	sec := now.Unix()
	switch sec {
	case s.second:
	case s.second + 1:
		s.second, s.before, s.thisSec = sec, s.thisSec, 0
	default:
		s.second, s.before, s.thisSec = sec, 0, 0
	}
	s.thisSec++
}

// statsLines is INFO's stats section.
func (s *cmdStats) statsLines(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	perSec := int64(0)
	switch now.Unix() {
	case s.second:
		perSec = s.before
	case s.second + 1:
		perSec = s.thisSec
	}
	var errs int64
	for _, n := range s.errors {
		errs += n
	}
	return []string{
		fmt.Sprintf("total_connections_received:%d", s.connections),
		fmt.Sprintf("total_commands_processed:%d", s.commands),
		fmt.Sprintf("instantaneous_ops_per_sec:%d", perSec),
		"rejected_connections:0",
		"evicted_keys:0", // no eviction: maxmemory is 0
		fmt.Sprintf("total_error_replies:%d", errs),
	}
}

// commandLines is INFO's commandstats section, by command name.
func (s *cmdStats) commandLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, name := range sortedKeys(s.byName) {
		st := s.byName[name]
		perCall := 0.0
		if st.calls > 0 {
			perCall = float64(st.usec) / float64(st.calls)
		}
		out = append(out, fmt.Sprintf("cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d",
			strings.ReplaceAll(name, " ", "|"), st.calls, st.usec, perCall, st.rejected, st.failed))
	}
	return out
}

// errorLines is INFO's errorstats section.
func (s *cmdStats) errorLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := make([]string, 0, len(s.errors))
	for c := range s.errors {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	out := make([]string, 0, len(codes))
	for _, c := range codes {
		out = append(out, fmt.Sprintf("errorstat_%s:count=%d", c, s.errors[c]))
	}
	return out
}
