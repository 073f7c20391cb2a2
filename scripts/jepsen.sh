#!/usr/bin/env bash
# make jepsen: every workload with every nemesis against real orbit serve
# processes (3 nodes), then the register workload on 5 nodes; each run for
# $JEPSEN_DURATION (default 120s). Reports land in $JEPSEN_OUT (default
# jepsen-out/<time>/), one directory per run with an index.html. Exits
# non-zero if any run finds a violation or cannot be carried out.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
duration=${JEPSEN_DURATION:-120s}
seed=${JEPSEN_SEED:-1}
out=${JEPSEN_OUT:-jepsen-out/$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$out"
bin="$out/orbit"
$GO build -o "$bin" ./cmd/orbit || exit 2

status=0
summary=()
n=0
run() { # name, then orbit jepsen flags; each run gets its own seed
  local name=$1; shift
  n=$((n + 1))
  echo "=== jepsen $name: $*"
  "$bin" jepsen --duration "$duration" --seed "$((seed + n - 1))" --out "$out/$name" "$@" >"$out/$name.txt" 2>"$out/$name.stderr"
  local rc=$?
  head -1 "$out/$name.txt" 2>/dev/null | sed "s/^/    /"
  case $rc in
    0) summary+=("VALID    $name   $out/$name/index.html") ;;
    1) summary+=("INVALID  $name   $out/$name/index.html"); status=1 ;;
    *) summary+=("ERROR    $name   $out/$name.stderr"); status=1 ;;
  esac
}
for w in register set counter list; do
  run "$w-3nodes-all" --nodes 3 --workload "$w" --nemesis all
done
run "register-5nodes-all" --nodes 5 --workload register --nemesis all

echo
echo "jepsen results ($duration each, seeds $seed..$((seed + n - 1))):"
printf '  %s\n' "${summary[@]}"
exit $status
