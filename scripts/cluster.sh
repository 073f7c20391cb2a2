#!/usr/bin/env bash
# A local three-node cluster in the foreground (`make cluster`): nodes 1-3
# talk gRPC on 127.0.0.1:7001-7003, serve RESP on 6379/6380/6381 and HTTP
# (/metrics, /readyz, /cluster) on 9090/9091/9092, with their data under
# $DATA/node1..node3 (default ./orbit-data). Logs go to $DATA/nodeN.log.
# Ctrl-C (or SIGTERM) stops all three gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-./orbit-data}
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
}
trap stop INT TERM EXIT
for n in 1 2 3; do
  "$bin" serve --node-id "$n" --peers "$peers" --data-dir "$DATA/node$n" \
    --redis-addr "127.0.0.1:$((6378 + n))" --http-addr "127.0.0.1:$((9089 + n))" \
    2>>"$DATA/node$n.log" &
  pids+=("$!")
done
echo "cluster: nodes 1-3 running (pids ${pids[*]}); RESP on 6379 6380 6381, HTTP on 9090 9091 9092;" >&2
echo "cluster: logs in $DATA/node{1,2,3}.log; Ctrl-C stops them" >&2
# Wait until every node is ready, then until any exits (or Ctrl-C).
for n in 1 2 3; do
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$((9089 + n))" && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -n1 <&3 | grep -q ' 200 ') 2>/dev/null; then
      echo "cluster: node $n ready" >&2; break
    fi
    sleep 0.1
  done
done
wait -n "${pids[@]}" || true
echo "cluster: a node exited; see the logs" >&2
