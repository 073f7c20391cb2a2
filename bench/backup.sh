#!/usr/bin/env bash
# bench/backup.sh (`make bench-backup`): how long a backup and a restore
# of pgbench's tables take with orbit backup (one node) and with
# PostgreSQL 15's pg_dump / pg_restore in the same run, on this machine;
# prints a markdown table with the ratios. Not part of CI.
#
#   SCALE=1       pgbench -i scale (100,000 accounts per unit)
#   PORT=17200    first of the ports used (17200-17210)
#
#   KEYS=100000  Redis keys (100-byte strings) for the Redis part
#
# PostgreSQL: pg_dump -Fc (its custom format, compressed) of the database,
# then pg_restore into a new database. Redis (7.0, no persistence
# configured, no delay before a diskless sync, whose 5 s default would
# dominate): redis-cli --rdb (an RDB snapshot taken through the
# replication protocol), then a new redis-server loading that file; Orbit
# backs up and restores the same keys through its Redis keyspace. Orbit: orbit backup create into a
# directory (one transaction's snapshot of the keyspace; a directory of
# checksummed files), then orbit backup restore into a new node (written
# back through transactions). Both write their files to the same disk.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${SCALE:-1}
PORT=${PORT:-17200}
GO=${GO:-go}

. bench/lib.sh
need_pg
$GO build -o "$tmp/orbit" ./cmd/orbit

wait_http() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "nothing ready on $1"; exit 1
}
# timed NAME CMD...: runs CMD, appends "NAME SECONDS" to $tmp/results.
timed() {
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" >"$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$name $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')" >>"$tmp/results"
}
rows() { psql -h 127.0.0.1 -p "$1" -U postgres -d "$2" -Atc 'SELECT count(*), sum(abalance) FROM pgbench_accounts'; }
: >"$tmp/results"

# PostgreSQL 15.
pgport=$PORT
start_pg "$pgport"
log "postgres: pgbench -i -s $SCALE"
pgbench -h 127.0.0.1 -p "$pgport" -U postgres -i -s "$SCALE" -q postgres >"$tmp/pg-init.log" 2>&1
pgbench -h 127.0.0.1 -p "$pgport" -U postgres -b tpcb-like -T 3 -n postgres >/dev/null 2>&1 || true
want_pg=$(rows "$pgport" postgres)
log "postgres: pg_dump, pg_restore"
timed pg_dump pg_dump -h 127.0.0.1 -p "$pgport" -U postgres -Fc -f "$tmp/pg.dump" postgres
psql -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -qc 'CREATE DATABASE restored' >/dev/null
timed pg_restore pg_restore -h 127.0.0.1 -p "$pgport" -U postgres -d restored "$tmp/pg.dump"
got_pg=$(rows "$pgport" restored)
[ "$want_pg" = "$got_pg" ] || { log "pg_restore: $got_pg, want $want_pg"; exit 1; }

# orbit serve, one node; the restore goes into a second one.
serve() { # NAME BASEPORT
  "$tmp/orbit" serve --data-dir "$tmp/$1" --pg-addr "127.0.0.1:$2" --redis-addr "127.0.0.1:$(($2 + 1))" \
    --http-addr "127.0.0.1:$(($2 + 2))" --grpc-addr off 2>"$tmp/$1.log" &
  pids+=("$!")
  wait_pg "$2"; wait_http "$(($2 + 2))"
}
src=$((PORT + 1)) dst=$((PORT + 5))
serve src "$src"
log "orbit: pgbench -i -s $SCALE"
pgbench -h 127.0.0.1 -p "$src" -U postgres -i -s "$SCALE" -q postgres >"$tmp/orbit-init.log" 2>&1
pgbench -h 127.0.0.1 -p "$src" -U postgres -b tpcb-like -T 3 -n postgres >/dev/null 2>&1 || true
want_orbit=$(rows "$src" postgres)
log "orbit: backup create, restore"
timed orbit_backup "$tmp/orbit" backup create "$tmp/orbit-backup" --addr "127.0.0.1:$((src + 2))"
serve dst "$dst"
timed orbit_restore "$tmp/orbit" backup restore "$tmp/orbit-backup" --addr "127.0.0.1:$((dst + 2))"
got_orbit=$(rows "$dst" postgres)
[ "$want_orbit" = "$got_orbit" ] || { log "orbit restore: $got_orbit, want $want_orbit"; exit 1; }

# Redis: the same KEYS keys in redis-server and in a third orbit node.
KEYS=${KEYS:-100000}
keys() { # the RESP of KEYS SETs, for redis-cli --pipe
  awk -v n="$KEYS" 'BEGIN { v = sprintf("%0100d", 7); for (i = 0; i < n; i++) { k = "key:" i; printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n", length(k), k, v } }'
}
rport=$((PORT + 20))
redis-server --port "$rport" --save '' --appendonly no --repl-diskless-sync-delay 0 --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
keys | redis-cli -p "$rport" --pipe >"$tmp/redis-load.log"
log "redis: --rdb, load"
mkdir -p "$tmp/rdb"
timed redis_backup redis-cli -p "$rport" --rdb "$tmp/rdb/dump.rdb"
rload=$((PORT + 21))
load_rdb() {
  redis-server --port "$rload" --save '' --appendonly no --dir "$tmp/rdb" --dbfilename dump.rdb >"$tmp/redis2.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 3000); do
    [ "$(redis-cli -p "$rload" dbsize 2>/dev/null)" = "$KEYS" ] && return 0
    sleep 0.01
  done
  return 1
}
timed redis_restore load_rdb
rsrc=$((PORT + 9)) rdst=$((PORT + 13))
serve rsrc "$rsrc"
keys | redis-cli -p "$((rsrc + 1))" --pipe >"$tmp/orbit-redis-load.log"
[ "$(redis-cli -p "$((rsrc + 1))" dbsize)" = "$KEYS" ] || { log "orbit: the keys did not load"; exit 1; }
log "orbit: backup create, restore (Redis keys)"
timed orbit_redis_backup "$tmp/orbit" backup create "$tmp/orbit-redis-backup" --addr "127.0.0.1:$((rsrc + 2))"
serve rdst "$rdst"
timed orbit_redis_restore "$tmp/orbit" backup restore "$tmp/orbit-redis-backup" --addr "127.0.0.1:$((rdst + 2))"
got=$(redis-cli -p "$((rdst + 1))" dbsize)
[ "$got" = "$KEYS" ] || { log "orbit redis restore: $got keys, want $KEYS"; exit 1; }

# The tables.
secs() { awk -v n="$1" '$1 == n { print $2 }' "$tmp/results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
size() { du -sk "$1" | awk '{ printf "%.1f MB", $1 / 1024 }'; }
# table TITLE PEER PEER_BACKUP PEER_RESTORE PEER_FILES ORBIT_BACKUP ORBIT_RESTORE ORBIT_FILES BACKUP_STEP RESTORE_STEP
table() {
  echo
  echo "$1"
  echo
  echo "| step | $2 | Orbit, 1 node | ratio |"
  echo "|---|---:|---:|---:|"
  echo "| backup ($9) | $(secs "$3") s | $(secs "$6") s | $(ratio "$(secs "$6")" "$(secs "$3")") |"
  echo "| restore (${10}) | $(secs "$4") s | $(secs "$7") s | $(ratio "$(secs "$7")" "$(secs "$4")") |"
  echo "| files | $(size "$5") | $(size "$8") | |"
}
table "pgbench -s $SCALE tables (${want_orbit%%|*} accounts), $(nproc) CPUs, $(date -u +%Y-%m-%d); seconds, ratio Orbit / PostgreSQL (below 1× Orbit is faster)" \
  "PostgreSQL 15" pg_dump pg_restore "$tmp/pg.dump" orbit_backup orbit_restore "$tmp/orbit-backup" \
  "pg_dump -Fc / orbit backup create" "pg_restore / orbit backup restore"
table "$KEYS Redis keys of 100 bytes; seconds, ratio Orbit / Redis 7.0" \
  "Redis" redis_backup redis_restore "$tmp/rdb" orbit_redis_backup orbit_redis_restore "$tmp/orbit-redis-backup" \
  "redis-cli --rdb / orbit backup create" "redis-server loading it / orbit backup restore"
