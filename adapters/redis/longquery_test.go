package redis

import "testing"

// TestLongQueries: the queries that walk a range's keys are long
// (consensus runs them off its driver), under every wrapper the session
// puts around a command; keyed commands are not.
func TestLongQueries(t *testing.T) {
	var sm StateMachine
	start := []byte("s")
	wrap := func(cmd []byte) []byte {
		return WithNotify(NotifyKeyspace|NotifyGeneric, WithObjectConfig(DefaultObjectConfig(), InDB(3, cmd)))
	}
	for _, tc := range []struct {
		name string
		cmd  []byte
		long bool
	}{
		{"DBSIZE's count", CountCommand(start), true},
		{"INFO's key statistics", KeyStatsCommand(start), true},
		{"RANDOMKEY", RandomKeyCommand(start), true},
		{"a SCAN page", ScanCommand(start, nil, 10, ScanOptions{}), true},
		{"GET", ExecCommand([][]byte{[]byte("GET"), []byte("k")}), false},
		{"a sweep's dry run", SweepCommand(start, nil, 20), false},
		{"truncated", []byte{cmdVersion}, false},
		{"another version", []byte{cmdVersion + 1, opCount}, false},
	} {
		if got := sm.LongQuery(tc.cmd); got != tc.long {
			t.Errorf("%s: long %t, want %t", tc.name, got, tc.long)
		}
		if tc.cmd[0] != cmdVersion || len(tc.cmd) < 2 {
			continue
		}
		if got := sm.LongQuery(wrap(tc.cmd)); got != tc.long {
			t.Errorf("%s in database 3, with OBJECT's configuration and notifications: long %t, want %t", tc.name, got, tc.long)
		}
	}
}
