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
