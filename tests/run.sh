#!/usr/bin/env bash
# Runs every gate and test and ends with one line: `N passed, N failed[, N skipped]`.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=node_modules/.bin
passed=0 failed=0 skipped=0
log=$(mktemp -d)
# Everything the tests and the daemons they start put in the temp dir goes here, and goes away.
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/qpsmtpd-tests.XXXXXX")
chmod 1777 "$TMPDIR" # as /tmp: daemons and smtp-sink running as nobody use it too
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

echo "== type check (tsc)"
if $BIN/tsc -p . >"$log/tsc.txt" 2>&1; then passed=$((passed + 1)); else cat "$log/tsc.txt"; failed=$((failed + 1)); fi

echo "== lint and format (deno lint, deno fmt --check)"
if $BIN/deno lint >"$log/lint.txt" 2>&1 && $BIN/deno fmt --check >>"$log/lint.txt" 2>&1; then passed=$((passed + 1)); else cat "$log/lint.txt"; failed=$((failed + 1)); fi

echo "== bun test (unit, conformance, end to end)"
$BIN/bun test --timeout 60000 2>&1 | tee "$log/bun.txt"
count() { grep -Eo "^ *[0-9]+ $1\$" "$log/bun.txt" | tail -1 | tr -dc 0-9; }
p=$(count pass); f=$(count fail); s=$(count skip)
if [ -z "$p$f" ]; then echo "bun test printed no summary"; failed=$((failed + 1)); fi
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))

echo "== fuzz (20 s against dist/qpsmtpd: crashes, hangs, open relay, memory)"
if $BIN/bun tools/fuzz.ts --seconds 20 >"$log/fuzz.txt" 2>&1; then passed=$((passed + 1)); tail -1 "$log/fuzz.txt"; else cat "$log/fuzz.txt"; failed=$((failed + 1)); fi

echo "== deno (the server runs under Deno)"
NO_COLOR=1 $BIN/deno test -A --no-check --config deno.json tests/runtime/deno/smoke.ts tests/runtime/deno/proxy_smoke.ts tests/runtime/deno/workers_smoke.ts 2>&1 | tee "$log/deno.txt"
dp=$(grep -Eo "[0-9]+ passed" "$log/deno.txt" | tail -1 | tr -dc 0-9)
df=$(grep -Eo "[0-9]+ failed" "$log/deno.txt" | tail -1 | tr -dc 0-9)
if [ -z "$dp$df" ]; then echo "deno test printed no summary"; failed=$((failed + 1)); fi
passed=$((passed + ${dp:-0})); failed=$((failed + ${df:-0}))

rm -rf "$log"
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ]
