#!/usr/bin/env bash
# Workload coverage, measured (issue 10): run a sweep of the simulator with
# Go's coverage instrumentation over the component packages and print, per
# package, the share of statements the sweep reaches, then every function
# in those packages that it never enters (0%), grouped by package.
#
#   SEED..SEED+SEEDS-1 of the KV and Redis scenarios (TestSim, TestRedisSim),
#   SEED..SEED+AVAIL_SEEDS-1 of the availability scenario (TestAvailability,
#   ~30x heavier per seed), SEED..SEED+SEEDS-1 of the cluster scenario
#   (TestSimCluster), the profiles merged (a block counts as reached if any
#   run reached it).
#
# Output is markdown, so that docs/sim-coverage.md can quote it. A failing
# seed still gives its coverage; the script then exits 1 after printing.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
SEED=${SEED:-1}
SEEDS=${SEEDS:-100}
AVAIL_SEEDS=${AVAIL_SEEDS:-10}
# COVER_PROFILE, if set, is where the merged profile is kept (for
# `go tool cover -html=...`).
COVER_PROFILE=${COVER_PROFILE:-}
# Each go test must finish within this (about 2 minutes each on 2 cores at
# the defaults).
TIMEOUT=${TIMEOUT:-20m}

mod=$($GO list -m)
# The component packages: the runtime contract itself (not kernel/prod or
# kernel/grpcnet, which the simulator replaces), storage, consensus, cluster
# management and the pure half of the Redis adapter.
pkgs=(consensus storage kernel cluster adapters/redis adapters/redis/session)
coverpkg=$(printf '%s,' "${pkgs[@]/#/$mod/}")
coverpkg=${coverpkg%,}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

start=$(date +%s)
failed=0
run() { # name, -run pattern, seed count
  echo "== go test ./sim -run '$2' -seed=$SEED -seeds=$3 -coverpkg=... -coverprofile=$1.out" >&2
  if ! $GO test ./sim -run "$2" -seed="$SEED" -seeds="$3" -count=1 -timeout "$TIMEOUT" \
    -coverpkg="$coverpkg" -coverprofile="$tmp/$1.out" >"$tmp/$1.log" 2>&1; then
    failed=1
    echo "sim-coverage: $1 sweep failed (coverage still counted):" >&2
    grep -A1 'FAILED in' "$tmp/$1.log" | head -20 >&2 || true
  fi
  grep -E '^(ok|FAIL)[[:space:]]+github' "$tmp/$1.log" >&2 || true
  [ -s "$tmp/$1.out" ] || { echo "sim-coverage: no profile from the $1 sweep" >&2; cat "$tmp/$1.log" >&2; exit 1; }
}
run kv-redis '^(TestSim|TestRedisSim)$' "$SEEDS"
run avail '^TestAvailability$' "$AVAIL_SEEDS"
run cluster '^TestSimCluster$' "$SEEDS"

# Merge the text profiles: one line per block (file:range, statements),
# the largest count any run gave it.
awk 'FNR == 1 { mode = $0; next }
     { k = $1 " " $2; if (!(k in n) || $3 > n[k]) n[k] = $3 }
     END { print mode; for (k in n) print k, n[k] }' "$tmp/kv-redis.out" "$tmp/avail.out" "$tmp/cluster.out" |
  { read -r mode; echo "$mode"; sort; } >"$tmp/merged.out"
$GO tool cover -func="$tmp/merged.out" >"$tmp/func.txt"
if [ -n "$COVER_PROFILE" ]; then cp "$tmp/merged.out" "$COVER_PROFILE"; fi
wall=$(($(date +%s) - start))

echo "## Statements reached"
echo
echo "| package | reached | statements | % |"
echo "|---|---:|---:|---:|"
for p in "${pkgs[@]}"; do
  # A block's file is $mod/$p/<file>.go: exactly this package, not a sub-package.
  awk -v dir="$mod/$p" -v p="$p" 'NR > 1 {
      f = $1; sub(/:.*/, "", f); sub(/\/[^\/]*$/, "", f)
      if (f != dir) next
      total += $2; if ($3 > 0) hit += $2
    }
    END { printf "| %s | %d | %d | %.1f%% |\n", p, hit, total, total ? 100 * hit / total : 0 }' "$tmp/merged.out"
done
awk 'NR > 1 { total += $2; if ($3 > 0) hit += $2 }
  END { printf "| all | %d | %d | %.1f%% |\n", hit, total, 100 * hit / total }' "$tmp/merged.out"
echo
echo "## Functions never entered (0%)"
for p in "${pkgs[@]}"; do
  # cover -func says 0.0% for a function without statements (an empty
  # body) even when it ran: skip those whose block on the declaration line
  # was reached.
  list=$(awk -v dir="$mod/$p" 'FILENAME != ARGV[2] { if (FNR > 1 && $3 > 0) { k = $1; sub(/\.[0-9]+,.*$/, "", k); ran[k] = 1 }; next }
    $NF == "0.0%" {
      at = $1; sub(/:$/, "", at)
      d = at; sub(/\/[^\/]*$/, "", d)
      if (d != dir || at in ran) next
      sub(/^.*\//, "", at)
      printf "- `%s` %s\n", $2, at
    }' "$tmp/merged.out" "$tmp/func.txt")
  echo
  echo "### $p ($(grep -c . <<<"$list" || true) functions)"
  echo
  if [ -n "$list" ]; then echo "$list"; fi
done
echo
echo "seeds: KV, Redis and cluster $SEED..$((SEED + SEEDS - 1)), availability $SEED..$((SEED + AVAIL_SEEDS - 1)); $(date -u +%Y-%m-%d); wall ${wall}s"
exit "$failed"
