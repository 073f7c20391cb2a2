#!/usr/bin/env bash
# make jepsen: every workload (bank and txn-list: cross-range
# transactions; sql-bank: SQL transactions over the PostgreSQL wire) with every nemesis against real orbit serve
# processes (3 nodes), then the register workload on 5 nodes, then the
# register workload under the leader nemeses alone (kill-leader,
# pause-leader, slow-leader: issue 11's recovery and availability
# verdicts); each run for $JEPSEN_DURATION (default 120s). Reports land
# in $JEPSEN_OUT (default jepsen-out/<time>/), one directory per run with
# an index.html. Exits non-zero if any run finds a violation, misses an
# availability verdict, or cannot be carried out.
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
rows=()
n=0
run() { # name, then orbit jepsen flags; each run gets its own seed
  local name=$1; shift
  n=$((n + 1))
  echo "=== jepsen $name: $*"
  "$bin" jepsen --duration "$duration" --seed "$((seed + n - 1))" --out "$out/$name" "$@" >"$out/$name.txt" 2>"$out/$name.stderr"
  local rc=$?
  head -1 "$out/$name.txt" 2>/dev/null | sed "s/^/    /"
  local verdict link
  case $rc in
    0) verdict=VALID; link="$name/index.html" ;;
    1) verdict=INVALID; link="$name/index.html"; status=1 ;;
    *) verdict=ERROR; link="$name.stderr"; status=1 ;;
  esac
  summary+=("$(printf '%-8s %-22s %s' "$verdict" "$name" "$out/$link")")
  rows+=("<tr><td class=\"$verdict\">$verdict</td><td><a href=\"$link\">$name</a></td><td><code>orbit jepsen $*</code></td></tr>")
}
for w in register set counter list bank txn-list sql-bank; do
  run "$w-3nodes-all" --nodes 3 --workload "$w" --nemesis all
done
run "register-5nodes-all" --nodes 5 --workload register --nemesis all
run "register-3nodes-leaders" --nodes 3 --workload register --nemesis kill-leader,pause-leader,slow-leader

# One page that opens every run's report.
{
  echo "<!doctype html><html><head><meta charset=\"utf-8\"><title>orbit jepsen: make jepsen</title>"
  echo "<style>body{font:15px system-ui,sans-serif;margin:2em}td{padding:.3em .8em}.VALID{color:#080;font-weight:bold}.INVALID,.ERROR{color:#c00;font-weight:bold}</style></head><body>"
  if [ $status -eq 0 ]; then echo "<h1 class=\"VALID\">VALID: every run passed</h1>"; else echo "<h1 class=\"INVALID\">INVALID: a run failed</h1>"; fi
  echo "<p>make jepsen, $(date -u +%Y-%m-%dT%H:%M:%SZ): every workload with every nemesis, $duration each. Each run's page has its history, faults, checks and a timeline.</p><table>"
  printf '%s\n' "${rows[@]}"
  echo "</table></body></html>"
} >"$out/index.html"

echo
echo "report: $out/index.html"
echo "jepsen results ($duration each, seeds $seed..$((seed + n - 1))):"
printf '  %s\n' "${summary[@]}"
exit $status
