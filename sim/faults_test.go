package sim

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"io"
	"math/big"
	"runtime"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/orbitkernel/orbit/kernel"
)

// Focused tests, one per fault: each shows the fault doing exactly what it
// says, so that a scenario passing under it means something.

// counter is a node that counts messages arriving on port "in", by sender.
func counter(s *Sim, id kernel.NodeID, got map[kernel.NodeID][]byte) {
	s.AddNode(id, func(rt kernel.Runtime) {
		in := rt.Net().Listen("in")
		rt.Go("count", func(ctx context.Context) {
			for {
				env, err := in.Recv(ctx)
				if err != nil {
					return
				}
				got[env.From] = append(got[env.From], env.Body...)
			}
		})
	})
}

// sendFrom sends one byte from node from to node to, from the scheduler side
// of a task on from.
func sendFrom(s *Sim, from, to kernel.NodeID, b byte) {
	s.Node(from).Runtime().Net().Send(to, "in", []byte{b})
}

func TestPartitionDropsMessages(t *testing.T) {
	s := New(1)
	defer s.Close()
	got := map[kernel.NodeID]map[kernel.NodeID][]byte{}
	for id := kernel.NodeID(1); id <= 3; id++ {
		got[id] = map[kernel.NodeID][]byte{}
		counter(s, id, got[id])
	}
	s.RunFor(time.Millisecond)

	s.Net().Partition([]kernel.NodeID{1}, []kernel.NodeID{2, 3})
	sendFrom(s, 1, 2, 'a')
	sendFrom(s, 3, 1, 'b')
	sendFrom(s, 2, 3, 'c') // same side: arrives
	s.RunFor(time.Second)
	if len(got[2][1]) != 0 || len(got[1][3]) != 0 || string(got[3][2]) != "c" {
		t.Fatalf("symmetric partition: 1->2 %q, 3->1 %q, 2->3 %q", got[2][1], got[1][3], got[3][2])
	}

	s.Net().Heal()
	s.Net().PartitionOneWay([]kernel.NodeID{1}, []kernel.NodeID{2})
	sendFrom(s, 1, 2, 'd')
	sendFrom(s, 2, 1, 'e')
	s.RunFor(time.Second)
	if len(got[2][1]) != 0 || string(got[1][2]) != "e" {
		t.Fatalf("one-way cut 1->2: 1->2 got %q, 2->1 got %q", got[2][1], got[1][2])
	}

	// A message already in flight when the cut happens is lost too.
	s.Net().Heal()
	sendFrom(s, 1, 3, 'f')
	s.Net().Isolate(3)
	s.RunFor(time.Second)
	if len(got[3][1]) != 0 {
		t.Fatalf("a message in flight across a new partition arrived: %q", got[3][1])
	}

	s.Net().Heal()
	sendFrom(s, 1, 3, 'g')
	s.RunFor(time.Second)
	if string(got[3][1]) != "g" {
		t.Fatalf("after heal 1->3 got %q", got[3][1])
	}
}

func TestLossDuplicationAndOrder(t *testing.T) {
	s := New(3)
	defer s.Close()
	got := map[kernel.NodeID][]byte{}
	counter(s, 1, map[kernel.NodeID][]byte{})
	counter(s, 2, got)
	s.RunFor(time.Millisecond)

	s.Net().Loss = 1
	sendFrom(s, 1, 2, 'x')
	s.RunFor(time.Second)
	if len(got[1]) != 0 {
		t.Fatalf("with loss 1 a message arrived: %q", got[1])
	}

	s.Net().Loss, s.Net().Dup = 0, 1
	sendFrom(s, 1, 2, 'y')
	s.RunFor(time.Second)
	if string(got[1]) != "yy" {
		t.Fatalf("with dup 1 got %q, want two copies", got[1])
	}

	// Without reordering each link is FIFO whatever the latency draws.
	s.Net().Dup = 0
	s.Net().LatencyMean = 50 * time.Millisecond
	delete(got, 1)
	for b := byte('a'); b <= 'z'; b++ {
		sendFrom(s, 1, 2, b)
	}
	s.RunFor(10 * time.Second)
	if string(got[1]) != "abcdefghijklmnopqrstuvwxyz" {
		t.Fatalf("FIFO link delivered %q", got[1])
	}

	// With reordering, the same latencies let messages overtake.
	s.Net().Reorder = true
	delete(got, 1)
	for b := byte('a'); b <= 'z'; b++ {
		sendFrom(s, 1, 2, b)
	}
	s.RunFor(10 * time.Second)
	if len(got[1]) != 26 || string(got[1]) == "abcdefghijklmnopqrstuvwxyz" {
		t.Fatalf("reordering link delivered %q", got[1])
	}
}

func TestClogHoldsThenDelivers(t *testing.T) {
	s := New(1)
	defer s.Close()
	got := map[kernel.NodeID][]byte{}
	counter(s, 1, map[kernel.NodeID][]byte{})
	counter(s, 2, got)
	s.RunFor(time.Millisecond)
	s.Net().Clog(1, 2, 500*time.Millisecond)
	sendFrom(s, 1, 2, 'a')
	sendFrom(s, 1, 2, 'b')
	s.RunFor(400 * time.Millisecond)
	if len(got[1]) != 0 {
		t.Fatalf("clogged link delivered early: %q", got[1])
	}
	s.RunFor(200 * time.Millisecond)
	if string(got[1]) != "ab" {
		t.Fatalf("after the clog got %q, want \"ab\"", got[1])
	}
}

// diskNode writes a synced file and an unsynced one, then idles; at every
// boot it reports what it finds.
func diskNode(found *[]map[string]string) func(rt kernel.Runtime) {
	return func(rt kernel.Runtime) {
		fs := rt.FS()
		seen := map[string]string{}
		for _, name := range []string{"/synced", "/unsynced"} {
			if f, err := fs.Open(name); err == nil {
				b, _ := io.ReadAll(f)
				f.Close()
				seen[name] = string(b)
			}
		}
		*found = append(*found, seen)
		if len(*found) > 1 {
			return // write only on the first boot
		}
		write := func(name, data string, sync bool) {
			f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
			if err != nil {
				panic(err)
			}
			f.Write([]byte(data))
			if sync {
				f.Sync()
			}
			f.Close()
		}
		write("/synced", "kept", true)
		write("/unsynced", "lost", false)
		d, _ := fs.OpenDir("/")
		d.Sync() // both directory entries are durable; only the data differs
		d.Close()
		f, _ := fs.Create("/synced", vfs.WriteCategoryUnspecified)
		_ = f // truncating /synced without syncing: the crash must undo it
	}
}

func TestCrashKeepsSyncedLosesUnsynced(t *testing.T) {
	s := New(1)
	defer s.Close()
	var found []map[string]string
	n := s.AddNode(1, diskNode(&found))
	s.RunFor(time.Second)
	n.Crash()
	n.Restart()
	s.RunFor(time.Second)
	if len(found) != 2 {
		t.Fatalf("node booted %d times", len(found))
	}
	after := found[1]
	if after["/synced"] != "kept" {
		t.Fatalf("synced data lost or truncation kept: /synced = %q", after["/synced"])
	}
	if after["/unsynced"] != "" {
		t.Fatalf("unsynced data survived a crash with TornPercent 0: %q", after["/unsynced"])
	}
}

func TestTornCrashIsDeterministic(t *testing.T) {
	image := func(pct int) map[string]int64 {
		s := New(5)
		defer s.Close()
		var found []map[string]string
		n := s.AddNode(1, func(rt kernel.Runtime) {
			f, _ := rt.FS().Create("/big", vfs.WriteCategoryUnspecified)
			f.Write(make([]byte, 64<<10)) // 16 blocks, none synced
			d, _ := rt.FS().OpenDir("/")
			d.Sync()
			d.Close()
		})
		_ = found
		n.Disk().SetTornPercent(pct)
		s.RunFor(time.Second)
		n.Crash()
		return n.Disk().Files()
	}
	if a := image(0)["/big"]; a != 0 {
		t.Fatalf("TornPercent 0 kept %d unsynced bytes", a)
	}
	if a := image(100)["/big"]; a != 64<<10 {
		t.Fatalf("TornPercent 100 kept %d of %d bytes", a, 64<<10)
	}
	a, b := image(50)["/big"], image(50)["/big"]
	if a != b {
		t.Fatalf("the same seed tore the disk differently: %d vs %d bytes", a, b)
	}
}

func TestPausedNodeTimersFireLate(t *testing.T) {
	s := New(1)
	defer s.Close()
	var wakes []time.Duration
	n := s.AddNode(1, func(rt kernel.Runtime) {
		rt.Go("ticker", func(ctx context.Context) {
			for rt.Sleep(ctx, 100*time.Millisecond) == nil {
				wakes = append(wakes, rt.Now().Sub(Epoch))
			}
		})
	})
	s.RunFor(150 * time.Millisecond)
	n.Pause()
	s.RunFor(500 * time.Millisecond)
	if len(wakes) != 1 {
		t.Fatalf("a paused node ran: wakes %v", wakes)
	}
	n.Resume()
	s.RunFor(time.Millisecond)
	if len(wakes) != 2 || wakes[1] != 650*time.Millisecond {
		t.Fatalf("wakes %v: the timer due at 200ms should fire at resume, 650ms", wakes)
	}
}

func TestClockDriftAndStepShowInNow(t *testing.T) {
	s := New(1)
	defer s.Close()
	fast := s.AddNode(1, func(kernel.Runtime) {})
	exact := s.AddNode(2, func(kernel.Runtime) {})
	fast.SetClockRate(1.001) // gains a millisecond per second
	s.RunFor(10 * time.Second)
	if d := fast.Runtime().Now().Sub(Epoch); d != 10*time.Second+10*time.Millisecond {
		t.Fatalf("drifting clock reads %v after 10s", d)
	}
	if d := exact.Runtime().Now().Sub(Epoch); d != 10*time.Second {
		t.Fatalf("exact clock reads %v after 10s", d)
	}
	fast.ShiftClock(-time.Second)
	if d := fast.Runtime().Now().Sub(Epoch); d != 9*time.Second+10*time.Millisecond {
		t.Fatalf("after a -1s step the clock reads %v", d)
	}
	// The monotonic clock drifts with the clock but ignores its step.
	if d := fast.Runtime().Monotonic(); d != 10*time.Second+10*time.Millisecond {
		t.Fatalf("after a -1s step the monotonic clock reads %v", d)
	}

	// A sleep is measured on the node's own clock: 1s on a clock running
	// twice as fast takes half a second of true time.
	fast.SetClockRate(2)
	var slept time.Duration
	fast.Runtime().Go("sleeper", func(ctx context.Context) {
		start := s.Elapsed()
		fast.Runtime().Sleep(ctx, time.Second)
		slept = s.Elapsed() - start
	})
	s.RunFor(2 * time.Second)
	if slept != 500*time.Millisecond {
		t.Fatalf("1s on a 2x clock took %v of true time", slept)
	}
}

func TestDiskErrorCrashesNodeNotRun(t *testing.T) {
	s := New(1)
	defer s.Close()
	var writeErr error
	n := s.AddNode(1, func(rt kernel.Runtime) {
		if n := s.Node(1); n.Restarts > 0 {
			return
		}
		f, err := rt.FS().Create("/wal", vfs.WriteCategoryUnspecified)
		if err == nil {
			_, err = f.Write([]byte("entry"))
		}
		if err != nil {
			writeErr = err
			kernel.Crash("wal write: %v", err)
		}
	})
	n.Disk().SetErrorRates(1, 0)
	if err := s.RunFor(time.Second); err != nil {
		t.Fatalf("a disk fault failed the run instead of crashing the node: %v", err)
	}
	if !errors.Is(writeErr, errorfs.ErrInjected) || n.Up() || n.Crashes != 1 {
		t.Fatalf("write error %v, node up %v, crashes %d", writeErr, n.Up(), n.Crashes)
	}
}

func TestSyncLatencyCostsVirtualTime(t *testing.T) {
	s := New(1)
	defer s.Close()
	var took time.Duration
	n := s.AddNode(1, func(rt kernel.Runtime) {
		rt.Go("syncer", func(ctx context.Context) {
			start := s.Elapsed()
			f, _ := rt.FS().Create("/log", vfs.WriteCategoryUnspecified)
			for range 10 {
				f.Write([]byte("x"))
				f.Sync()
				rt.Sleep(ctx, 0) // the latency is paid at the next wait
			}
			took = s.Elapsed() - start
		})
	})
	n.Disk().SetSyncLatency(5 * time.Millisecond)
	s.RunFor(10 * time.Second)
	// Ten exponential draws of mean 5ms: the total is far from zero.
	if took < 10*time.Millisecond {
		t.Fatalf("ten syncs with 5ms mean latency took %v of virtual time", took)
	}
}

func TestBuggifyIsPerSeedAndOffByDefault(t *testing.T) {
	fires := func(seed uint64, enable bool) (on bool, fired int) {
		s := New(seed)
		defer s.Close()
		s.EnableBuggify(enable)
		rt := s.AddNode(1, func(kernel.Runtime) {}).Runtime()
		for range 200 {
			if rt.Buggify("test.site") {
				fired++
			}
		}
		return s.buggify.sites["test.site"] != nil && s.buggify.sites["test.site"].on, fired
	}
	active := 0
	for seed := uint64(1); seed <= 200; seed++ {
		if _, f := fires(seed, false); f != 0 {
			t.Fatalf("seed %d: buggify fired while disabled", seed)
		}
		on, f := fires(seed, true)
		on2, f2 := fires(seed, true)
		if on != on2 || f != f2 {
			t.Fatalf("seed %d: buggify differs between runs", seed)
		}
		if on {
			active++
			if f == 0 || f == 200 {
				t.Fatalf("seed %d: an enabled site fired %d of 200 times", seed, f)
			}
		} else if f != 0 {
			t.Fatalf("seed %d: a disabled site fired", seed)
		}
	}
	if active < 20 || active > 80 {
		t.Fatalf("%d of 200 seeds enabled the site; want about a quarter", active)
	}
}

// etcd Raft draws election timeouts from crypto/rand.Reader; inside a task
// that must follow the seed.
func TestCryptoRandFollowsTheSeed(t *testing.T) {
	draw := func(seed uint64) int64 {
		s := New(seed)
		defer s.Close()
		var got int64
		s.AddNode(1, func(rt kernel.Runtime) {
			n, err := cryptorand.Int(cryptorand.Reader, big.NewInt(1<<62))
			if err != nil {
				panic(err)
			}
			got = n.Int64()
		})
		s.RunFor(time.Second)
		return got
	}
	if a, b, c := draw(1), draw(1), draw(2); a != b || a == c {
		t.Fatalf("crypto/rand in a task: seed 1 gave %d and %d, seed 2 gave %d", a, b, c)
	}
}

// A synced file whose new name was never made durable may vanish or appear
// whole after a torn crash, but its synced data is never damaged.
func TestTornCrashNeverDamagesSyncedData(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		s := New(seed)
		n := s.AddNode(1, func(rt kernel.Runtime) {
			fs := rt.FS()
			f, _ := fs.Create("/tmp-file", vfs.WriteCategoryUnspecified)
			f.Write(make([]byte, 12<<10))
			f.Sync()
			f.Close()
			fs.Rename("/tmp-file", "/final") // the directory is not synced
		})
		n.Disk().SetTornPercent(50)
		s.RunFor(time.Second)
		n.Crash()
		if size, ok := n.Disk().Files()["/final"]; ok && size != 12<<10 {
			t.Fatalf("seed %d: /final survived with %d of %d synced bytes", seed, size, 12<<10)
		}
		s.Close()
	}
}

// Messages that arrive while a node is paused are delivered, in order, when
// it resumes.
func TestPauseKeepsLinksFIFO(t *testing.T) {
	s := New(1)
	defer s.Close()
	got := map[kernel.NodeID][]byte{}
	counter(s, 1, map[kernel.NodeID][]byte{})
	n := counter2(s, 2, got)
	s.RunFor(time.Millisecond)
	n.Pause()
	for b := byte('a'); b <= 'z'; b++ {
		sendFrom(s, 1, 2, b)
	}
	s.RunFor(time.Second)
	if len(got[1]) != 0 {
		t.Fatalf("a paused node received %q", got[1])
	}
	n.Resume()
	s.RunFor(time.Second)
	if string(got[1]) != "abcdefghijklmnopqrstuvwxyz" {
		t.Fatalf("after resume got %q", got[1])
	}
}

func counter2(s *Sim, id kernel.NodeID, got map[kernel.NodeID][]byte) *Node {
	counter(s, id, got)
	return s.Node(id)
}

// A panic in a timer callback is a bug report like a task's; NodeCrash there
// crashes the node.
func TestAfterFuncPanics(t *testing.T) {
	s := New(1)
	defer s.Close()
	n := s.AddNode(1, func(rt kernel.Runtime) {
		rt.AfterFunc(time.Millisecond, func() { kernel.Crash("from a timer") })
	})
	if err := s.RunFor(time.Second); err != nil || n.Up() {
		t.Fatalf("NodeCrash in a timer: run error %v, node up %v", err, n.Up())
	}
	s2 := New(1)
	defer s2.Close()
	s2.AddNode(1, func(rt kernel.Runtime) {
		rt.AfterFunc(time.Millisecond, func() { panic("bug in a timer") })
	})
	var tp *TaskPanic
	if err := s2.RunFor(time.Second); !errors.As(err, &tp) {
		t.Fatalf("a panicking timer: %v, want a TaskPanic", err)
	}
}

// Close ends every task, even one whose deferred code tries to start more.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 50 {
		s := New(1)
		s.AddNode(1, func(rt kernel.Runtime) {
			rt.Go("stubborn", func(ctx context.Context) {
				defer rt.Go("respawn", func(ctx context.Context) { rt.Sleep(ctx, time.Hour) })
				rt.Sleep(ctx, time.Hour)
			})
		})
		s.RunFor(time.Second)
		s.Close()
	}
	// Goroutines that returned may take a moment to be reaped.
	for range 100 {
		if runtime.NumGoroutine() <= before+2 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("goroutines: %d before, %d after 50 closed sims", before, runtime.NumGoroutine())
}

func TestZeroTimeoutIsAlreadyOver(t *testing.T) {
	s := New(1)
	defer s.Close()
	var err error
	s.AddNode(1, func(rt kernel.Runtime) {
		ctx, cancel := rt.WithTimeout(context.Background(), 0)
		defer cancel()
		err = ctx.Err()
	})
	s.RunFor(time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a zero timeout: ctx.Err() = %v", err)
	}
}
