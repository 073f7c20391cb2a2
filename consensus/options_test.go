package consensus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOptionsDefaultsAndValidation(t *testing.T) {
	var o Options
	if err := o.EnsureDefaults().Validate(); err != nil {
		t.Fatalf("the defaults are invalid: %v", err)
	}
	if o.TickInterval != DefaultTickInterval || o.ElectionTicks != DefaultElectionTicks || o.HeartbeatTicks != DefaultHeartbeatTicks ||
		o.GroupCommitWait != DefaultGroupCommitWait || o.GroupCommitBusyWrites != DefaultGroupCommitBusyWrites {
		t.Fatalf("EnsureDefaults left %+v", o)
	}
	for _, tc := range []struct {
		set  func(*Options)
		want string
	}{
		{func(o *Options) { o.TickInterval = time.Microsecond }, "TickInterval"},
		{func(o *Options) { o.ElectionTicks = 4; o.HeartbeatTicks = 2 }, "ElectionTicks 4"},
		{func(o *Options) { o.HeartbeatTicks = -1 }, "HeartbeatTicks -1"},
		{func(o *Options) { o.GroupCommitWait = time.Second }, "GroupCommitWait"},
		{func(o *Options) { o.GroupCommitBusyWrites = -3 }, "GroupCommitBusyWrites"},
		{func(o *Options) { o.SlowApply = -time.Millisecond }, "SlowApply"},
	} {
		o := Options{}
		tc.set(&o)
		err := o.EnsureDefaults().Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an ErrInvalidOptions about %s", o, err, tc.want)
		}
	}
	// Every problem at once.
	o = Options{TickInterval: time.Hour, GroupCommitBusyWrites: -1}
	if err := o.EnsureDefaults().Validate(); err == nil || strings.Count(err.Error(), "invalid options") != 2 {
		t.Errorf("two problems: %v", err)
	}
	o = Options{GroupCommitWait: -1} // off: valid
	if err := o.EnsureDefaults().Validate(); err != nil {
		t.Errorf("group commit off: %v", err)
	}
	if s := (&Options{}).EnsureDefaults().String(); !strings.Contains(s, "tick_interval=20ms") || !strings.Contains(s, "election_ticks=10") {
		t.Errorf("String:\n%s", s)
	}
}

// TestOpenRefusesInvalidOptions: a store is never started on options that
// do not hold together.
func TestOpenRefusesInvalidOptions(t *testing.T) {
	_, err := Open(nil, nil, Layout{}, Options{ElectionTicks: 1, HeartbeatTicks: 1})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Open: %v", err)
	}
}

// TestShortTicksServe: a three-node cluster on 5 ms ticks (the timing
// options reach Raft and the driver's clock) elects its leaders and serves
// a write.
func TestShortTicksServe(t *testing.T) {
	c := newTestCluster(t, Options{TickInterval: 5 * time.Millisecond})
	defer c.close()
	cl := NewClient(c.routers[0], "fast")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := cl.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	t.Logf("first write after %v", time.Since(start))
}
