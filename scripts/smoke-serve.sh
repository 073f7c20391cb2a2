#!/usr/bin/env bash
# Smoke test of `orbit serve` (CI runs it): build, start the single-node
# server on free ports with a temporary data directory, wait for /readyz,
# PING / SET / GET with redis-cli, a table created, written and read with
# psql, then SIGTERM and require exit status 0.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'kill -9 "${pid:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/orbit" ./cmd/orbit
# Port 0: the kernel picks free ports; the "listening" log line names them.
"$tmp/orbit" serve --data-dir "$tmp/data" --redis-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --pg-addr 127.0.0.1:0 2>"$tmp/log" &
pid=$!
fail() { echo "smoke: $*" >&2; cat "$tmp/log" >&2; exit 1; }

for _ in $(seq 100); do
  grep -q 'msg="orbit serve: listening"' "$tmp/log" && break
  kill -0 "$pid" 2>/dev/null || fail "orbit serve exited early"
  sleep 0.1
done
line=$(grep 'msg="orbit serve: listening"' "$tmp/log") || fail "no listening line"
redis_port=$(sed -E 's/.* redis=127\.0\.0\.1:([0-9]+).*/\1/' <<<"$line")
http_port=$(sed -E 's/.* http=127\.0\.0\.1:([0-9]+).*/\1/' <<<"$line")
pg_port=$(sed -E 's/.* postgres=127\.0\.0\.1:([0-9]+).*/\1/' <<<"$line")

# GET /readyz with bash's /dev/tcp (no curl needed); prints the status line.
readyz() {
  exec 3<>"/dev/tcp/127.0.0.1/$http_port" || return 1
  printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  head -n1 <&3
  exec 3<&-
}
ready=""
for _ in $(seq 100); do
  if readyz 2>/dev/null | grep -q ' 200 '; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || fail "/readyz never answered ready"

[ "$(redis-cli -p "$redis_port" PING)" = "PONG" ] || fail "PING"
[ "$(redis-cli -p "$redis_port" SET k v)" = "OK" ] || fail "SET k v"
[ "$(redis-cli -p "$redis_port" GET k)" = "v" ] || fail "GET k"
psql_out=$(PGCONNECT_TIMEOUT=10 psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -X -A -t -v ON_ERROR_STOP=1 \
  -c 'CREATE TABLE smoke (id int PRIMARY KEY, v text)' -c "INSERT INTO smoke VALUES (1, 'one'), (2, 'two')" \
  -c 'SELECT v FROM smoke WHERE id = 2' 2>&1) || fail "psql: $psql_out"
[ "$(tail -n1 <<<"$psql_out")" = "two" ] || fail "psql SELECT: $psql_out"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "orbit serve exited $status after SIGTERM"
echo "smoke: orbit serve answered PING, SET, GET and psql, and shut down cleanly"
