# bench/lib.sh: what every bench script shares; source it after `cd` to the
# repository. It gives log, a temporary directory $tmp removed on exit, and
# pids: every process appended there is stopped (SIGTERM, then waited for)
# on exit. (No INT/TERM trap here: with one set, bash keeps a subshell
# around a backgrounded function, such as pgbench.sh's as_pg, and the
# SIGTERM that cleanup sends it ends the subshell, not the server.)

log() { echo "bench: $*" >&2; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# wait_redis PORT: until a SET through the port answers OK (orbit answers
# PING before its ranges have leaders).
wait_redis() {
  for _ in $(seq 600); do
    [ "$(redis-cli -p "$1" SET bench:probe 1 2>/dev/null)" = "OK" ] && return 0
    sleep 0.1
  done
  log "nothing serving on $1"; exit 1
}

# PGBIN holds PostgreSQL 15's server programs (ORBIT_PG_BIN overrides).
PGBIN=${ORBIT_PG_BIN:-/usr/lib/postgresql/15/bin}

# need_pg: pgbench and PostgreSQL's server programs are installed, or the
# script stops saying what to install.
need_pg() {
  command -v pgbench >/dev/null || { log "pgbench is missing (apt-get install postgresql-client)"; exit 1; }
  [ -x "$PGBIN/initdb" ] || { log "$PGBIN/initdb is missing (apt-get install postgresql-15)"; exit 1; }
}

# as_pg CMD...: PostgreSQL's server programs refuse to run as root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# wait_pg PORT: until psql gets an answer there.
wait_pg() {
  for _ in $(seq 600); do
    psql -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "nothing serving on $1"; exit 1
}

# start_pg PORT: a throwaway PostgreSQL ($PGBIN) in $tmp/pg, fsync on,
# trust authentication, stopped on exit; returns once it answers.
start_pg() {
  chmod 755 "$tmp" # the postgres user reads its data directory there
  mkdir -p "$tmp/pg" && chown postgres "$tmp/pg" 2>/dev/null || true
  as_pg "$PGBIN/initdb" -D "$tmp/pg/data" -U postgres -A trust >"$tmp/initdb.log" 2>&1
  # In the background the function's subshell execs the server, so that
  # cleanup's SIGTERM reaches it (through runuser), not a shell around it
  # (which used to leave PostgreSQL running after the script).
  (exec_pg() { if [ "$(id -u)" = 0 ]; then exec runuser -u postgres -- "$@"; else exec "$@"; fi; }
    exec_pg "$PGBIN/postgres" -D "$tmp/pg/data" -p "$1" -k "$tmp/pg" -c listen_addresses=127.0.0.1) >"$tmp/pg/log" 2>&1 &
  pids+=("$!")
  wait_pg "$1"
}
