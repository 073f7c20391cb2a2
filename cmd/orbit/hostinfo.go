package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// hostInfo is session.Options.HostInfo: INFO's memory and cpu sections,
// read from the Go runtime and the kernel. used_memory is what the Go heap
// and runtime hold (runtime.MemStats.Sys minus what was returned to the
// OS); used_memory_rss is the process's resident set. Pebble's block cache
// and memtables are allocated outside the Go heap and show only in the RSS.
type hostInfo struct {
	mu   sync.Mutex
	peak uint64
}

func (h *hostInfo) section(name string) []string {
	switch name {
	case "memory":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		used := ms.Sys - ms.HeapReleased
		h.mu.Lock()
		h.peak = max(h.peak, used)
		peak := h.peak
		h.mu.Unlock()
		rss := residentBytes()
		ratio := 0.0
		if used > 0 {
			ratio = float64(rss) / float64(used)
		}
		return []string{
			fmt.Sprintf("used_memory:%d", used),
			"used_memory_human:" + humanBytes(used),
			fmt.Sprintf("used_memory_rss:%d", rss),
			"used_memory_rss_human:" + humanBytes(rss),
			fmt.Sprintf("used_memory_peak:%d", peak),
			"used_memory_peak_human:" + humanBytes(peak),
			fmt.Sprintf("orbit_go_heap_alloc:%d", ms.HeapAlloc),
			"maxmemory:0",
			"maxmemory_human:0B",
			"maxmemory_policy:noeviction",
			fmt.Sprintf("mem_fragmentation_ratio:%.2f", ratio),
		}
	case "cpu":
		var self, children syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
		secs := func(tv syscall.Timeval) string {
			return fmt.Sprintf("%d.%06d", tv.Sec, tv.Usec)
		}
		return []string{
			"used_cpu_sys:" + secs(self.Stime),
			"used_cpu_user:" + secs(self.Utime),
			"used_cpu_sys_children:" + secs(children.Stime),
			"used_cpu_user_children:" + secs(children.Utime),
		}
	}
	return nil
}

// residentBytes is the process's resident set size (Linux /proc; 0
// elsewhere).
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// humanBytes is Redis's bytesToHuman: "1.50M".
func humanBytes(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "K", "M", "G", "T"} {
		if f < 1024 || u == "T" {
			if u == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.2f%s", f, u)
		}
		f /= 1024
	}
	return ""
}
