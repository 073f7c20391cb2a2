#!/usr/bin/env bash
# Installs what the benchmarks against the real peers need (bench/peers.sh,
# `make bench-peers`): everything scripts/install-test-deps.sh installs
# (redis-server and redis-tools, whose redis-benchmark drives the
# Redis-protocol targets; PostgreSQL 15 for bench/pgbench.sh), plus Debian's
# etcd-server (etcd 3.4, /usr/bin/etcd), the Raft-replicated peer.
# Idempotent: installs only what is missing. Needs root and apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-bench-deps: apt-get not found; install ${missing[*]} by hand" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
