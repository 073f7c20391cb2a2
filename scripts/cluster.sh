#!/usr/bin/env bash
# A local three-node cluster in the foreground (`make cluster`): nodes 1-3
# talk gRPC on 127.0.0.1:7001-7003, serve RESP on 6379/6380/6381, the bank
# example's actors on 9190/9191/9192 (orbit actor call --addr) and HTTP
# (/metrics, /readyz, /cluster) on 9090/9091/9092, with their data under
# $DATA/node1..node3 (default ./orbit-data/cluster, apart from `make run`'s
# ./orbit-data/single). Logs go to $DATA/nodeN.log. A node that dies (kill
# it to watch the others carry on) is reported, and the others keep
# running; Ctrl-C (or SIGTERM) stops all of them gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-./orbit-data/cluster}
GO=${GO:-go}
mkdir -p "$DATA"
bin="$DATA/orbit"
$GO build -o "$bin" ./cmd/orbit

peers=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
pids=()
stop() {
  trap - INT TERM EXIT
  echo "cluster: stopping" >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "cluster: stopped" >&2
  exit 0
}
trap stop INT TERM EXIT
for n in 1 2 3; do
  "$bin" serve --node-id "$n" --peers "$peers" --data-dir "$DATA/node$n" \
    --redis-addr "127.0.0.1:$((6378 + n))" --http-addr "127.0.0.1:$((9089 + n))" --pg-addr "127.0.0.1:$((5431 + n))" \
    --actors bank --grpc-addr "127.0.0.1:$((9189 + n))" \
    2>>"$DATA/node$n.log" &
  pids+=("$!")
done
echo "cluster: nodes 1-3 running (pids ${pids[*]}); RESP on 6379 6380 6381, PostgreSQL on 5432 5433 5434, actors (gRPC) on 9190 9191 9192, HTTP on 9090 9091 9092;" >&2
echo "cluster: logs in $DATA/node{1,2,3}.log; Ctrl-C stops them" >&2
# Wait until every node is ready.
for n in 1 2 3; do
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$((9089 + n))" && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -n1 <&3 | grep -q ' 200 ') 2>/dev/null; then
      echo "cluster: node $n ready" >&2; break
    fi
    sleep 0.1
  done
done
# Report each node that exits; the cluster keeps running until Ctrl-C or
# until every node is gone (a cluster of three tolerates one failure: that
# is the point of the demo).
live=("${pids[@]}")
while [ "${#live[@]}" -gt 0 ]; do
  gone=
  set +e
  wait -n -p gone "${live[@]}"
  status=$?
  set -e
  [ -n "$gone" ] || break
  for n in 1 2 3; do
    if [ "${pids[$((n - 1))]}" = "$gone" ]; then
      echo "cluster: node $n (pid $gone) exited with status $status; see $DATA/node$n.log. The others carry on; Ctrl-C stops them" >&2
    fi
  done
  rest=()
  for p in "${live[@]}"; do [ "$p" = "$gone" ] || rest+=("$p"); done
  live=("${rest[@]}")
done
echo "cluster: every node has exited" >&2
