#!/usr/bin/env bash
# bench/redis.sh (`make bench-redis`): redis-benchmark against orbit serve
# (a single node, then a local three-node cluster) and against redis-server
# without persistence, in the same run, on this machine; prints a markdown
# table of ops/s and the ratios to redis-server, then the memory each server
# takes per million 100-byte keys. Not part of CI.
#
#   N=50000        requests per redis-benchmark test
#   MEMKEYS=200000 keys loaded to measure memory (scaled to 1M in the table)
#   TESTS=set,get,incr,lpush   PIPELINES="1 16"   CLIENTS=50
#   PORT=17000     first of the ports used (17000-17011)
#
# Every request uses a random key among 100,000 (-r), so a cluster spreads
# them over its ranges; LPUSH always hits one list (one range). Orbit syncs
# every write to disk before acknowledging it (group commit); redis-server
# runs with --save '' --appendonly no. The three nodes of the cluster share
# this machine's CPUs and disk, and redis-benchmark talks to node 1 only
# (which forwards what other nodes lead).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50000}
MEMKEYS=${MEMKEYS:-200000}
TESTS=${TESTS:-set,get,incr,lpush}
PIPELINES=${PIPELINES:-1 16}
CLIENTS=${CLIENTS:-50}
PORT=${PORT:-17000}
GO=${GO:-go}

for tool in redis-benchmark redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install redis-server redis-tools)" >&2; exit 1; }
done

. bench/lib.sh
$GO build -o "$tmp/orbit" ./cmd/orbit


rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# bench_target NAME PORT: one row per test and pipeline depth into $tmp/results.
bench_target() {
  local name=$1 port=$2
  for p in $PIPELINES; do
    log "$name: redis-benchmark -P $p"
    redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -d 100 -n "$N" -r 100000 -P "$p" -t "$TESTS" --csv 2>/dev/null |
      awk -F'","' -v name="$name" -v p="$p" 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $2); print name, p, tolower($1), $2 }' >>"$tmp/results"
  done
}

# load_keys PORT: MEMKEYS SETs of 100-byte values through redis-cli --pipe.
load_keys() {
  awk -v n="$MEMKEYS" 'BEGIN {
    v = sprintf("%0100d", 0)
    for (i = 0; i < n; i++) { k = "mem:" i; printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n", length(k), k, v }
  }' | redis-cli -p "$1" --pipe >/dev/null
}

# memory NAME PORT PID...: RSS growth (summed over PIDs) from loading MEMKEYS keys, in MB per million keys.
memory() {
  local name=$1 port=$2; shift 2
  redis-cli -p "$port" FLUSHALL >/dev/null
  sleep 1
  local before=0 after=0 p
  for p in "$@"; do before=$((before + $(rss_kb "$p"))); done
  load_keys "$port"
  sleep 2
  for p in "$@"; do after=$((after + $(rss_kb "$p"))); done
  local mb
  mb=$(awk -v a="$after" -v b="$before" -v n="$MEMKEYS" 'BEGIN { printf "%.0f", (a - b) / 1024 * 1000000 / n }')
  echo "$name $mb $((after / 1024))" >>"$tmp/memory"
  log "$name: RSS $((before / 1024)) MB -> $((after / 1024)) MB after $MEMKEYS keys"
}

: >"$tmp/results"
: >"$tmp/memory"

# redis-server, no persistence.
rport=$PORT
redis-server --port "$rport" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
rpid=$!
pids+=("$rpid")
wait_redis "$rport"
bench_target redis "$rport"
memory redis "$rport" "$rpid"
kill -TERM "$rpid"; wait "$rpid" 2>/dev/null || true

# orbit serve, one node.
oport=$((PORT + 1))
"$tmp/orbit" serve --data-dir "$tmp/one" --redis-addr "127.0.0.1:$oport" --pg-addr "" --http-addr "127.0.0.1:$((PORT + 2))" 2>"$tmp/one.log" &
opid=$!
pids+=("$opid")
wait_redis "$oport"
bench_target orbit1 "$oport"
memory orbit1 "$oport" "$opid"
du_one=$(du -sm "$tmp/one" | cut -f1)
kill -TERM "$opid"; wait "$opid" 2>/dev/null || true

# orbit serve, three nodes.
peers="1=127.0.0.1:$((PORT + 3)),2=127.0.0.1:$((PORT + 4)),3=127.0.0.1:$((PORT + 5))"
cpids=()
for n in 1 2 3; do
  "$tmp/orbit" serve --node-id "$n" --peers "$peers" --data-dir "$tmp/node$n" \
    --redis-addr "127.0.0.1:$((PORT + 5 + n))" --pg-addr "" --http-addr "127.0.0.1:$((PORT + 8 + n))" 2>"$tmp/node$n.log" &
  cpids+=("$!")
  pids+=("$!")
done
cport=$((PORT + 6))
wait_redis "$cport"
bench_target orbit3 "$cport"
memory orbit3 "$cport" "${cpids[@]}"

# The table.
rate() { awk -v t="$1" -v p="$2" -v k="$3" '$1 == t && $2 == p && $3 == k { print $4 }' "$tmp/results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f×", a / b }'; }
num() { awk -v a="$1" 'BEGIN { if (a == "") print "-"; else printf "%\047.0f", a }'; }
echo
echo "redis-benchmark -c $CLIENTS -d 100 -n $N -r 100000 ($(nproc) CPUs, $(date -u +%Y-%m-%d)); ops/s and ratio to redis-server"
echo
echo "| test | pipeline | redis-server | orbit, 1 node | ratio | orbit, 3 nodes | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for p in $PIPELINES; do
  for t in ${TESTS//,/ }; do
    r=$(rate redis "$p" "$t"); o1=$(rate orbit1 "$p" "$t"); o3=$(rate orbit3 "$p" "$t")
    echo "| ${t^^} | -P $p | $(num "$r") | $(num "$o1") | $(ratio "$o1" "$r") | $(num "$o3") | $(ratio "$o3" "$r") |"
  done
done
echo
echo "Memory: RSS growth from loading $MEMKEYS keys of 100 bytes (mem:0..), scaled to one million keys."
echo
echo "| server | MB per 1M keys | RSS after loading, MB |"
echo "|---|---:|---:|"
while read -r name mb after; do
  case $name in
    redis) label="redis-server" ;;
    orbit1) label="orbit, 1 node (data directory: ${du_one} MB on disk)" ;;
    orbit3) label="orbit, 3 nodes (sum of the three processes; each holds every key)" ;;
  esac
  echo "| $label | $mb | $after |"
done <"$tmp/memory"
