#!/usr/bin/env bash
# Installs what the tests need beyond Go: redis-server and redis-tools, the
# reference the Redis differential test (adapters/redis) compares against;
# PostgreSQL 15 (postgres, initdb, pgbench) and its client psql, the
# reference of the SQL tests (query, cmd/orbit) and the client the smoke
# test uses.
# Idempotent: installs only what is missing. Needs root and apt-get.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client-15)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: apt-get not found; install ${missing[*]} by hand" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
