#!/usr/bin/env bash
# make bench: drives dist/qpsmtpd with Postfix's smtp-source on loopback and prints messages per
# second and the server's peak RSS per profile. Not a test: numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
[ -x "$SOURCE" ] || { echo "smtp-source not found: apt-get install postfix (see .ci/run)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/qpbench.XXXXXX")
trap 'kill "${pid:-0}" "${dnspid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=${BENCH_PORT:-2599}
# BENCH_SCALE=0.1 runs a tenth of every profile (quick look).
scale=${BENCH_SCALE:-1}
# BENCH_BINARY=/path/to/qpsmtpd measures another build (e.g. the previous release) the same way.
binary=${BENCH_BINARY:-dist/qpsmtpd}

# profile name | sessions | messages | size | recipients
profiles=(
  "1x2000 one connection, 4KB|1|2000|4096|1"
  "20 sessions x 10000 msgs, 4KB, 5 rcpts|20|10000|4096|5"
  "50 sessions x 2000 msgs, 100KB|50|2000|102400|1"
)

run_profile() { # queue-line label [plugin set: bare|sample]
  local queue="$1" label="$2" set="${3:-bare}"
  # BENCH_ONLY=sample runs one queue/plugin-set row group only.
  if [ -n "${BENCH_ONLY:-}" ] && [ "$BENCH_ONLY" != "$label" ]; then return; fi
  local cfg="$work/config-$label"
  mkdir -p "$cfg"
  cp config/me config/rcpthosts config/databytes config/size_threshold "$cfg"/
  if [ "$set" = sample ]; then
    # qpsmtpd's sample set as shipped, earlytalker without its wait, DNS from a local server.
    cp config/* "$cfg"/ 2>/dev/null || true
    sed -e 's/^earlytalker$/earlytalker wait 0/' -e '/^queue\//d' config/plugins > "$cfg/plugins"
    echo "127.0.0.1:$dnsport" > "$cfg/dns_servers"
  else
    # The foundation's set: relay, rcpt_ok and the core.
    printf "relay\ndont_require_anglebrackets\ncount_unrecognized_commands 4\nrcpt_ok\n" > "$cfg/plugins"
  fi
  echo "$queue" >> "$cfg/plugins"
  : > "$cfg/logging"
  rm -f "$cfg/smtpd.yaml"
  printf "%-10s %-42s %10s %10s %12s\n" "queue" "profile" "messages" "msg/s" "peak RSS MB"
  for p in "${profiles[@]}"; do
    IFS='|' read -r name sessions messages size rcpts <<<"$p"
    messages=$(awk -v m="$messages" -v s="$scale" 'BEGIN { n = int(m * s); print (n < 1 ? 1 : n) }')
    rm -rf "$work/Maildir"
    "$binary" --config "$cfg" -l 127.0.0.1 -p "$port" -c 200 -m 200 2>"$work/server.log" &
    pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
    start=$(date +%s.%N)
    "$SOURCE" -d -s "$sessions" -m "$messages" -l "$size" -r "$rcpts" -f bench@example.net -t bench@example.com "127.0.0.1:$port"
    end=$(date +%s.%N)
    rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rate=$(awk -v m="$messages" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", m / (b - a) }')
    printf "%-10s %-42s %10d %10s %12s\n" "$label" "$name" "$messages" "$rate" "$rss"
  done
}

node_modules/.bin/bun bench/dns.ts > "$work/dns.port" &
dnspid=$!
for _ in $(seq 100); do [ -s "$work/dns.port" ] && break; sleep 0.05; done
dnsport=$(cat "$work/dns.port")

run_profile "queue/discard" discard
run_profile "queue/discard" sample sample
run_profile "queue/maildir $work/Maildir" maildir
