#!/usr/bin/env bash
# bench/memory-at.sh [KEYS] [OUT]: where one node's resident memory lies
# once it holds KEYS keys (default ten million: issue 13's memory goal).
# Starts `orbit serve` (defaults, --pprof) on a fresh data directory,
# writes the keys with bench/fill, then runs redis-benchmark GETs and SETs
# over them, and after each step prints the process's resident memory
# (/proc: anonymous and file-backed), Pebble's C memory
# (orbit_storage_memory_bytes), Go's memory statistics, and saves a Go heap
# profile (in-use space) to OUT (default: a temporary directory, removed).
# docs/performance.md, "Growth and memory at ten million keys", reads it.
# Ten million keys take about 12 minutes on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

keys=${1:-10000000}
out=${2:-$tmp/out}
mkdir -p "$out"
redis_port=6391 http_port=9191

go build -o "$tmp/orbit" ./cmd/orbit
go build -o "$tmp/fill" ./bench/fill
"$tmp/orbit" serve --data-dir "$tmp/data" --redis-addr "127.0.0.1:$redis_port" --pg-addr "" \
  --http-addr "127.0.0.1:$http_port" --pprof >"$tmp/orbit.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_redis "$redis_port"

# snap NAME: the memory figures now, and the heap profile as OUT/heap-NAME.pprof.
snap() {
  echo "=== $1 $(date +%T)"
  grep -E "VmHWM|VmRSS|RssAnon|RssFile" "/proc/$pid/status"
  curl -s "127.0.0.1:$http_port/metrics" | grep -E '^orbit_storage_memory_bytes|^orbit_ranges|^go_gc_gogc_percent'
  curl -s "127.0.0.1:$http_port/debug/pprof/heap?debug=1" |
    grep -E '^# (HeapAlloc|HeapSys|HeapIdle|HeapInuse|HeapReleased|Stack|MSpan|GCSys|NextGC) '
  curl -s "127.0.0.1:$http_port/debug/pprof/heap?gc=1" >"$out/heap-$1.pprof"
}

snap start
log "writing $keys keys"
"$tmp/fill" -addr "127.0.0.1:$redis_port" -keys "$keys" | tail -1
snap filled
redis-benchmark -p "$redis_port" -c 50 -d 100 -r "$keys" -n 400000 -t get -q | tr '\r' '\n' | grep "per second" | tail -1
snap after-get
redis-benchmark -p "$redis_port" -c 50 -d 100 -r "$keys" -n 150000 -t set -q | tr '\r' '\n' | grep "per second" | tail -1
snap after-set
