#!/usr/bin/env bash
# bench/peers.sh (`make bench-peers`): Orbit side by side with its real
# peers, in one run on this machine, one server (or cluster) at a time:
#
#   redis         redis-server --save '' --appendonly no (no persistence)
#   redis-always  redis-server --appendonly yes --appendfsync always
#   etcd1         etcd, one node
#   etcd3         etcd, three nodes (three processes on localhost)
#   orbit1        orbit serve, one node (syncs every write before the reply)
#   orbit3        orbit serve, three nodes (--peers)
#
# Against the Redis-protocol targets: redis-benchmark -c 50 -d 100 -r 10000
# -t set,get at pipeline depths 1 and 16 (through node 1 of orbit3). Against
# every target: bench/load (closed loop, one connection per client, random
# keys among 10,000, 100-byte values) with 1, 16 and 64 clients, put then get
# (etcd's gets linearizable; the get points run on keys preloaded once); the
# three-node targets get clients round-robin over all their nodes. Prints one
# markdown table of the issue's comparisons (Orbit, peer, ratio Orbit/peer)
# and the full tables of every point. Not part of CI.
#
#   DURATION=10s   each bench/load point
#   N=100000       requests per redis-benchmark test
#   CLIENTS="1 16 64"  bench/load client counts
#   PORT=18000     first of the ports used (PORT to PORT+30)
#   RESULTS=1      also insert the report as a new dated section at the top
#                  of bench/RESULTS.md's history
#   PROFILE=DIR    start orbit with --pprof and save a CPU profile of every
#                  orbit node for each orbit point into DIR
#                  (PROFILE_SECONDS=10 each; a point shorter than that is
#                  profiled with some idle time after it)
#
# Needs redis-server, redis-tools and etcd (scripts/install-bench-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
N=${N:-100000}
CLIENTS=${CLIENTS:-1 16 64}
PORT=${PORT:-18000}
RESULTS=${RESULTS:-}
PROFILE=${PROFILE:-}
PROFILE_SECONDS=${PROFILE_SECONDS:-10}
GO=${GO:-go}

for tool in redis-benchmark redis-server redis-cli etcd curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/install-bench-deps.sh installs it)" >&2; exit 1; }
done


. bench/lib.sh
trap 'exit 130' INT TERM # Ctrl-C still runs cleanup (every server here is started directly)

log "building orbit and bench/load"
$GO build -o "$tmp/orbit" ./cmd/orbit
$GO build -o "$tmp/load" ./bench/load
if [ -n "$PROFILE" ]; then
  mkdir -p "$PROFILE"
  PROFILE=$(cd "$PROFILE" && pwd)
fi

# stop PID...: SIGTERM, then wait for each to exit.
stop() {
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# wait_load TARGET ADDRS: until a put and a get succeed on every address.
wait_load() {
  "$tmp/load" -target "$1" -addrs "$2" -probe 60s || { log "$1 on $2 not ready"; exit 1; }
}

# Profiles: prof_start NAME starts a CPU profile of every orbit node (the HTTP
# addresses in $prof_http) in the background; prof_wait waits for them.
prof_http=()
prof_pids=()
prof_start() {
  [ -n "$PROFILE" ] || return 0
  local i=1 h
  for h in "${prof_http[@]}"; do
    curl -sf -o "$PROFILE/$1-node$i.pprof" "http://$h/debug/pprof/profile?seconds=$PROFILE_SECONDS" &
    prof_pids+=("$!")
    i=$((i + 1))
  done
}
prof_wait() {
  [ -n "$PROFILE" ] || return 0
  local p
  for p in "${prof_pids[@]}"; do wait "$p" || log "a profile failed"; done
  prof_pids=()
}

: >"$tmp/rb"
: >"$tmp/load.tsv"
failed=()

# rb NAME PORT: redis-benchmark SET and GET at pipeline 1 and 16; lines
# "NAME P TEST RPS P50MS" into $tmp/rb.
rb() {
  local name=$1 port=$2 p
  for p in 1 16; do
    log "$name: redis-benchmark -P $p"
    prof_start "$name-redis-benchmark-P$p"
    redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -d 100 -n "$N" -r 10000 -P "$p" -t set,get --csv 2>/dev/null |
      awk -F'","' -v name="$name" -v p="$p" 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $2); print name, p, tolower($1), $2, $5 }' >>"$tmp/rb"
    prof_wait
  done
}

# json_field FIELD: the value of FIELD in the one flat JSON line on stdin.
json_field() {
  awk -v f="\"$1\":" '{ i = index($0, f); if (i == 0) { print "-"; exit } s = substr($0, i + length(f)); sub(/[,}].*/, "", s); gsub(/"/, "", s); print s }'
}

# load_point NAME TARGET ADDRS OP CLIENTS [-preload]: one bench/load run;
# "NAME OP CLIENTS OPS/S P50 P99 MAX ERRORS MISSES" into $tmp/load.tsv.
load_point() {
  local name=$1 target=$2 addrs=$3 op=$4 c=$5; shift 5
  log "$name: bench/load $op, $c clients, $DURATION"
  prof_start "$name-$op-c$c"
  local out rc=0
  out=$("$tmp/load" -target "$target" -addrs "$addrs" -op "$op" -clients "$c" -duration "$DURATION" -json "$@") || rc=$?
  prof_wait
  if [ -z "$out" ]; then
    log "$name $op $c clients: no result (exit $rc)"
    failed+=("$name/$op/$c")
    echo "$name $op $c - - - - failed -" >>"$tmp/load.tsv"
    return 0
  fi
  [ "$rc" -eq 0 ] || failed+=("$name/$op/$c")
  local f vals=()
  for f in ops_per_sec p50_ms p99_ms max_ms errors misses; do vals+=("$(json_field "$f" <<<"$out")"); done
  echo "$name $op $c ${vals[*]}" >>"$tmp/load.tsv"
}

# load_all NAME TARGET ADDRS: every put point, then every get point (the
# first get point, with the most clients, preloads every key).
load_all() {
  local name=$1 target=$2 addrs=$3 c first=1
  for c in $CLIENTS; do load_point "$name" "$target" "$addrs" put "$c"; done
  for c in $(tr ' ' '\n' <<<"$CLIENTS" | sort -rn); do
    if [ "$first" = 1 ]; then
      load_point "$name" "$target" "$addrs" get "$c" -preload
      first=0
    else
      load_point "$name" "$target" "$addrs" get "$c"
    fi
  done
}

load_start=$(awk '{ print $1, $2, $3 }' /proc/loadavg)

# redis-server, no persistence.
p=$PORT
redis-server --port "$p" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pid=$!; pids+=("$pid")
wait_redis "$p"
rb redis "$p"
load_all redis redis "127.0.0.1:$p"
stop "$pid"

# redis-server, every write appended and fsynced before the reply.
p=$((PORT + 1))
mkdir -p "$tmp/redis-always"
redis-server --port "$p" --save '' --appendonly yes --appendfsync always --dir "$tmp/redis-always" >"$tmp/redis-always.log" 2>&1 &
pid=$!; pids+=("$pid")
wait_redis "$p"
rb redis-always "$p"
load_all redis-always redis "127.0.0.1:$p"
stop "$pid"

# etcd_node NAME DIR CLIENT_PORT PEER_PORT INITIAL_CLUSTER: one etcd process.
etcd_node() {
  etcd --name "$1" --data-dir "$2" \
    --listen-client-urls "http://127.0.0.1:$3" --advertise-client-urls "http://127.0.0.1:$3" \
    --listen-peer-urls "http://127.0.0.1:$4" --initial-advertise-peer-urls "http://127.0.0.1:$4" \
    --initial-cluster "$5" --initial-cluster-state new --initial-cluster-token orbit-bench \
    --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) --logger zap --log-level warn \
    >"$2.log" 2>&1 &
  pids+=("$!")
}

# etcd, one node.
c=$((PORT + 10))
etcd_node e1 "$tmp/etcd1" "$c" $((PORT + 11)) "e1=http://127.0.0.1:$((PORT + 11))"
epid=$!
wait_load etcd "127.0.0.1:$c"
load_all etcd1 etcd "127.0.0.1:$c"
stop "$epid"

# etcd, three nodes.
cluster="" addrs="" epids=()
for n in 1 2 3; do
  cluster+="${cluster:+,}e$n=http://127.0.0.1:$((PORT + 11 + 2 * n))"
  addrs+="${addrs:+,}127.0.0.1:$((PORT + 10 + 2 * n))"
done
for n in 1 2 3; do
  etcd_node "e$n" "$tmp/etcd3-$n" $((PORT + 10 + 2 * n)) $((PORT + 11 + 2 * n)) "$cluster"
  epids+=("$!")
done
wait_load etcd "$addrs"
load_all etcd3 etcd "$addrs"
stop "${epids[@]}"

pprof=()
[ -n "$PROFILE" ] && pprof=(--pprof)

# orbit serve, one node.
p=$((PORT + 20)) h=$((PORT + 21))
"$tmp/orbit" serve --data-dir "$tmp/orbit1" --redis-addr "127.0.0.1:$p" --pg-addr "" --http-addr "127.0.0.1:$h" "${pprof[@]}" 2>"$tmp/orbit1.log" &
pid=$!; pids+=("$pid")
prof_http=("127.0.0.1:$h")
wait_redis "$p"
rb orbit1 "$p"
load_all orbit1 redis "127.0.0.1:$p"
stop "$pid"

# orbit serve, three nodes.
peers="" addrs="" opids=() prof_http=()
for n in 1 2 3; do
  peers+="${peers:+,}$n=127.0.0.1:$((PORT + 21 + n))"
  addrs+="${addrs:+,}127.0.0.1:$((PORT + 24 + n))"
  prof_http+=("127.0.0.1:$((PORT + 27 + n))")
done
for n in 1 2 3; do
  "$tmp/orbit" serve --node-id "$n" --peers "$peers" --data-dir "$tmp/orbit3-$n" \
    --redis-addr "127.0.0.1:$((PORT + 24 + n))" --pg-addr "" --http-addr "127.0.0.1:$((PORT + 27 + n))" \
    "${pprof[@]}" 2>"$tmp/orbit3-$n.log" &
  opids+=("$!"); pids+=("$!")
done
for n in 1 2 3; do wait_redis $((PORT + 24 + n)); done
wait_load redis "$addrs"
rb orbit3 $((PORT + 25))
load_all orbit3 redis "$addrs"
stop "${opids[@]}"

# The report.
rbv() { awk -v t="$1" -v p="$2" -v k="$3" -v col="$4" '$1 == t && $2 == p && $3 == k { print $col }' "$tmp/rb"; }
lv() { awk -v t="$1" -v o="$2" -v c="$3" -v col="$4" '$1 == t && $2 == o && $3 == c { print $col }' "$tmp/load.tsv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×", a / b }'; }
num() { awk -v a="$1" 'BEGIN { if (a == "" || a == "-") print "-"; else printf "%\047.0f", a }'; }
msf() { awk -v a="$1" 'BEGIN { if (a == "" || a == "-") print "-"; else printf "%.2f ms", a }'; }
# row LABEL METRIC PEER ORBIT PEERVALUE FORMAT
row() { echo "| $1 | $2 | $3 | $($6 "$4") | $($6 "$5") | $(ratio "$4" "$5") |"; }

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit+=" (with uncommitted changes)"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
report() {
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($cpu); commit $commit; load average at start $load_start."
  echo "bench/load points of $DURATION (keys 10000, values 100 bytes); redis-benchmark -c 50 -d 100 -r 10000 -n $N."
  echo
  echo "Ratios are Orbit / peer: above 1× Orbit is faster for ops/s, below 1× it is faster for latencies."
  echo
  echo "| comparison | metric | peer | Orbit | peer figure | ratio |"
  echo "|---|---|---|---:|---:|---:|"
  row "lone client SET (bench/load put, 1 client), 1 node" ops/s "etcd, 1 node" "$(lv orbit1 put 1 4)" "$(lv etcd1 put 1 4)" num
  row "lone client SET (bench/load put, 1 client), 1 node" p50 "etcd, 1 node" "$(lv orbit1 put 1 5)" "$(lv etcd1 put 1 5)" msf
  row "SET, 50 clients, 1 node (redis-benchmark)" ops/s "Redis appendfsync always" "$(rbv orbit1 1 set 4)" "$(rbv redis-always 1 set 4)" num
  row "GET, 50 clients, 1 node (redis-benchmark)" ops/s "Redis, no persistence" "$(rbv orbit1 1 get 4)" "$(rbv redis 1 get 4)" num
  row "SET, pipeline 16, 50 clients, 1 node" ops/s "Redis appendfsync always" "$(rbv orbit1 16 set 4)" "$(rbv redis-always 16 set 4)" num
  row "GET, pipeline 16, 50 clients, 1 node" ops/s "Redis, no persistence" "$(rbv orbit1 16 get 4)" "$(rbv redis 16 get 4)" num
  row "durable puts, 64 clients, 3 nodes (bench/load)" ops/s "etcd, 3 nodes" "$(lv orbit3 put 64 4)" "$(lv etcd3 put 64 4)" num
  row "durable puts, 64 clients, 3 nodes (bench/load)" p99 "etcd, 3 nodes" "$(lv orbit3 put 64 6)" "$(lv etcd3 put 64 6)" msf
  row "linearizable gets, 64 clients, 3 nodes (bench/load)" ops/s "etcd, 3 nodes" "$(lv orbit3 get 64 4)" "$(lv etcd3 get 64 4)" num
  row "linearizable gets, 64 clients, 3 nodes (bench/load)" p99 "etcd, 3 nodes" "$(lv orbit3 get 64 6)" "$(lv etcd3 get 64 6)" msf
  row "SET, 50 clients, 3 nodes through node 1 (redis-benchmark)" ops/s "Orbit, 1 node" "$(rbv orbit3 1 set 4)" "$(rbv orbit1 1 set 4)" num
  row "GET, 50 clients, 3 nodes through node 1 (redis-benchmark)" ops/s "Orbit, 1 node" "$(rbv orbit3 1 get 4)" "$(rbv orbit1 1 get 4)" num
  echo
  echo "Every bench/load point (closed loop; the 3-node targets' clients round-robin over their nodes):"
  echo
  echo "| target | op | clients | ops/s | p50 | p99 | max | errors | misses |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  local name op c ops p50 p99 mx e m
  for name in redis redis-always etcd1 etcd3 orbit1 orbit3; do
    for op in put get; do
      for c in $CLIENTS; do
        ops= p50= p99= mx= e= m=
        read -r _ _ _ ops p50 p99 mx e m < <(awk -v t="$name" -v o="$op" -v c="$c" '$1 == t && $2 == o && $3 == c' "$tmp/load.tsv") || true
        echo "| $name | $op | $c | $(num "${ops:-}") | $(msf "${p50:-}") | $(msf "${p99:-}") | $(msf "${mx:-}") | ${e:--} | ${m:--} |"
      done
    done
  done
  echo
  echo "Every redis-benchmark point (-c 50; p50 as redis-benchmark reports it):"
  echo
  echo "| target | test | pipeline | ops/s | p50 |"
  echo "|---|---|---:|---:|---:|"
  for name in redis redis-always orbit1 orbit3; do
    for p in 1 16; do
      for t in set get; do
        echo "| $name | ${t^^} | $p | $(num "$(rbv "$name" "$p" "$t" 4)") | $(msf "$(rbv "$name" "$p" "$t" 5)") |"
      done
    done
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo
    echo "FAILED points (errors; see the errors column): ${failed[*]}"
  fi
}

report >"$tmp/report"
echo
cat "$tmp/report"

if [ -n "$RESULTS" ]; then
  section="$tmp/section"
  {
    echo "## $(date -u +%Y-%m-%d): bench/peers.sh (make bench-peers)"
    echo
    echo "\`DURATION=$DURATION N=$N CLIENTS=\"$CLIENTS\" make bench-peers\`"
    echo
    cat "$tmp/report"
  } >"$section"
  # Below the marker (which a blank line follows), else before the first "## ".
  marker='<!-- bench/peers.sh RESULTS=1 inserts new sections below this line -->'
  if grep -qF "$marker" bench/RESULTS.md; then
    awk -v marker="$marker" -v f="$section" '{ print } $0 == marker { print ""; while ((getline l < f) > 0) print l }' bench/RESULTS.md >"$tmp/RESULTS.md"
  else
    awk -v f="$section" '!done && /^## / { while ((getline l < f) > 0) print l; print ""; done = 1 } { print }' bench/RESULTS.md >"$tmp/RESULTS.md"
  fi
  cat "$tmp/RESULTS.md" >bench/RESULTS.md
  log "added the report to bench/RESULTS.md"
fi

[ ${#failed[@]} -eq 0 ] || { log "failed points: ${failed[*]}"; exit 1; }
