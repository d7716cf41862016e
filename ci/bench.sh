#!/usr/bin/env bash
# Load-generator benchmarks (run by hand, not in CI):
#   ci/bench.sh rate     10,000 req/s open loop for 30 s on one core against a
#                        local server on the other: achieved rate, send-lag p99
#   ci/bench.sh memory   a 10-minute drill at 5,000 req/s: peak resident memory
#   ci/bench.sh compare  drill's generator beside oha at 200, 5k, 20k, 40k and
#                        80k req/s, 10 s each, against one nginx worker pinned
#                        to core 1 (the generator on core 0): CPU-s (user+sys
#                        from /usr/bin/time) per 100k requests nginx answered
#                        (its stub_status: warmup and preflight included, the
#                        same count for both tools), peak RSS,
#                        achieved rate, send-lag p99, and the ratios drill/oha.
#                        RATES="..." and SECONDS_EACH=N override; WORKERS=2
#                        adds drill rows with two workers on both cores.
#   ci/bench.sh stall    80,000 req/s for 30 s against a listener that accepts
#                        and never answers (10 s timeout): the in-flight limit
#                        holds (10,000 connections, the rest counted as
#                        `saturated`) and peak RSS stays bounded.
# Figures come from the drill's own results.json and /proc (VmHWM).
# DRILL_BIN=path runs a prebuilt drill instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-rate}"
if [ "$mode" = compare ]; then
  exec bash ci/bench-compare.sh
fi
# DRILL_BIN=path benchmarks a prebuilt binary instead of this tree's.
if [ -n "${DRILL_BIN:-}" ]; then bin="$DRILL_BIN"; else
  cargo build --release --locked -q
  bin="$PWD/target/release/drill"
fi
work="$(mktemp -d -t drill-bench.XXXXXX)"
export DRILL_STATE_DIR="$work/state" CI=1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

if [ "$mode" = stall ]; then
  # A target that answers drill's preflight (its first connection), then
  # accepts every connection and never answers.
  exec 3> >(taskset -c 1 python3 -c '
import collections, resource, socket, sys
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(4096)
held = collections.deque(maxlen=15000)  # drill holds at most 10,000; older ones it closed
c = l.accept()[0]; c.recv(65536)
c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"); c.close()
while True: held.append(l.accept()[0])' "$port" >/dev/null)
else
  # The server: one lab service process (no service time) pinned to core 1.
  exec 3> >(taskset -c 1 "$bin" lab serve --spec "{\"run_id\":\"bench\",\"component\":\"productpage\",\"region\":\"primary\",\"port\":$port,\"role\":{\"role\":\"service\",\"service_time\":\"0s\"}}" >/dev/null)
fi
sleep 0.5
cat > "$work/drill.toml" <<TOML
[targets.bench]
kind = "http"
url = "http://127.0.0.1:$port"
TOML
case "$mode" in
  rate) rate=10000; baseline="30s"; timeout="2s" ;;
  memory) rate=5000; baseline="10m"; timeout="2s" ;;
  stall) rate=80000; baseline="30s"; timeout="10s" ;;
  *) echo "usage: ci/bench.sh rate|memory|stall|compare" >&2; exit 2 ;;
esac
cat > "$work/bench.toml" <<TOML
description = "generator benchmark: $rate req/s for $baseline"
target = "bench"
[load]
path = "/productpage"
rate = $rate
timeout = "$timeout"
[phases]
warmup = "2s"
baseline = "$baseline"
recovery = "10s"
TOML
cd "$work"
# The generator pinned to core 0; peak RSS sampled from /proc.
taskset -c 0 "$bin" run bench.toml --quiet --report-dir "$work/report" >/dev/null &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
  sleep 1
done
wait "$pid" || true
exec 3>&-
python3 - "$work/report/results.json" "$peak" "$rate" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); peak_kib = int(sys.argv[2]); rate = float(sys.argv[3])
b = r["phases"]["baseline"]; l = r["load"]
print(f"scheduled rate      {rate:.0f} req/s")
print(f"achieved rate       {l['achieved_rate']:.1f} req/s ({(l['achieved_rate']/rate-1)*100:+.2f}%)")
print(f"sent                {l['sent']}")
print(f"send lag p99 / max  {l['lag_p99_ms']:.3f} ms / {l['lag_max_ms']:.3f} ms")
print(f"baseline requests   {b['requests']} good {b['good']}  p50 {b['p50_ms']} ms  p99 {b['p99_ms']} ms  p99.9 {b['p999_ms']} ms")
print(f"not sent (in-flight limit {l['max_in_flight']})  {l['not_sent']}")
print(f"peak RSS (VmHWM)    {peak_kib/1024:.1f} MiB")
PY
