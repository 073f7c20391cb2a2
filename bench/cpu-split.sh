#!/usr/bin/env bash
# bench/cpu-split.sh PROFILE [OPS]: where an orbit CPU profile's time went,
# by the parts of a request's path (as docs/performance.md reports them),
# in seconds of CPU and, given OPS (the operations the profile covered:
# ops/s times the profile's seconds), in microseconds per operation.
# The parts nest (indented): the connection's share includes the client's call into
# consensus, which includes a leased read; the driver's includes
# evaluation and the applies. Profiles come from PROFILE=DIR make
# bench-peers (Go profiles carry their symbols: no binary needed).
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
profile=$1
ops=${2:-0}
GO=${GO:-go}
seconds() { # the CPU seconds of the samples whose stacks match $1
  $GO tool pprof -top -nodecount=1000000 -nodefraction=0 ${1:+-focus="$1"} "$profile" 2>/dev/null |
    sed -n 's/.*accounting for \([0-9.]*\)\(m\?s\),.*/\1 \2/p' | head -1 |
    awk '{ v = $1; if ($2 == "ms") v /= 1000; printf "%.2f", v }'
}
row() { # label, focus
  local s
  s=$(seconds "$2")
  if [ "$ops" != 0 ]; then
    awk -v l="$1" -v s="$s" -v o="$ops" 'BEGIN { printf "%-44s %6.2f s  %6.1f us/op\n", l, s, s * 1e6 / o }'
  else
    printf '%-44s %6.2f s\n' "$1" "$s"
  fi
}
row "all" ""
row "connections (adapters/respwire)" 'respwire'
row "  the call into consensus (Client.Do)" 'consensus\.\(\*Client\)\.Do$'
row "    leased reads (on the connection's task)" 'leasedRead'
row "consensus driver" 'Store\)\.drive$'
row "  evaluating writes" 'Store\)\.evaluate$'
row "  applying (ahead of the cycle's write)" 'Store\)\.applyDurable$'
row "  applying (after it)" 'Store\)\.finish'
row "  Raft" 'go\.etcd\.io/raft/v3'
row "socket reads and writes (RESP and gRPC)" 'syscall\.(read|write)$'
row "syncing the log" 'syncingFile\)\.Sync|SyncData|Fdatasync|fsync'
row "transport (gRPC)" 'grpc'
row "Pebble flushes and compactions" 'compact|runFlush|flush1'
row "garbage collector" 'gcBgMarkWorker|bgsweep|gcAssist'
row "scheduler" 'runtime\.schedule$|findRunnable'
