#!/usr/bin/env bash
# make bench: bench/bench.ts does the work (see its header); this raises the descriptor limit for
# the idle-connection profile and records a full run at scale 1 in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v smtp-source >/dev/null || [ -x /usr/sbin/smtp-source ] ||
  { echo "smtp-source and smtp-sink not found: apt-get install postfix (tools/debian-packages)"; exit 1; }
# 10,000 held connections need that many descriptors in the server and in the client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "${BENCH_SCALE:-1}" = 1 ] && [ -z "${BENCH_ONLY:-}" ] && [ -z "${BENCH_BINARY:-}" ]; then
  export BENCH_RESULTS=${BENCH_RESULTS:-bench/RESULTS.md}
fi
# What the bench and the daemons it starts (redis-server, spamd, clamd) leave in the temp dir
# goes here, and goes away with it, as in tests/run.sh.
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/qpsmtpd-bench.XXXXXX")
chmod 1777 "$TMPDIR"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
node_modules/.bin/bun bench/bench.ts
