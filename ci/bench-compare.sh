#!/usr/bin/env bash
# ci/bench.sh compare (see ci/bench.sh): drill's load generator beside oha at
# the same open-loop rates against the same nginx (one worker, core 1); each
# generator pinned to core 0 and measured with /usr/bin/time. TLS=1 compares
# over https (nginx with a certificate from a throwaway CA; drill trusts the
# CA through SSL_CERT_FILE, oha runs with --insecure).
set -euo pipefail
cd "$(dirname "$0")/.."
rates="${RATES:-200 5000 20000 40000 80000}"
each="${SECONDS_EACH:-10}"
command -v nginx >/dev/null || { apt-get update -q && apt-get install -y -q nginx-light || apt-get install -y -q nginx; }
command -v oha >/dev/null || [ -x "$HOME/.cargo/bin/oha" ] || cargo install oha --locked
oha="$(command -v oha || echo "$HOME/.cargo/bin/oha")"
[ -x /usr/bin/time ] || apt-get install -y -q time
# DRILL_BIN=path benchmarks a prebuilt binary instead of this tree's.
if [ -n "${DRILL_BIN:-}" ]; then bin="$DRILL_BIN"; else
  cargo build --release --locked -q
  bin="$PWD/target/release/drill"
fi
work="$(mktemp -d -t drill-compare.XXXXXX)"
export DRILL_STATE_DIR="$work/state" CI=1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
sport=$(free_port)
mkdir -p "$work/nginx/logs"
scheme=http
listen="listen 127.0.0.1:$port backlog=4096;"
if [ "${TLS:-}" = 1 ]; then
  scheme=https
  mkdir -p "$work/tls"
  (cd "$work/tls"
   openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA" 2>/dev/null
   openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" 2>/dev/null
   echo "subjectAltName=IP:127.0.0.1" > ext.cnf
   openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf 2>/dev/null)
  listen="listen 127.0.0.1:$port ssl backlog=4096; ssl_certificate $work/tls/srv.pem; ssl_certificate_key $work/tls/srv.key; ssl_session_cache shared:SSL:10m;"
  export SSL_CERT_FILE="$work/tls/ca.pem"
fi
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server {
    $listen
    location / { return 200 "ok\n"; }
  }
  server {
    listen 127.0.0.1:$sport;
    location = /nginx-status { stub_status; }
  }
}
CONF
taskset -c 1 nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true' EXIT
sleep 0.5
cat > "$work/drill.toml" <<TOML
[targets.nginx]
kind = "http"
url = "$scheme://127.0.0.1:$port"
TOML
# Requests nginx has answered so far (its status page's own request excluded
# by the difference of two reads): each tool is charged for what it sent,
# warmup, preflight and all.
served() {
  python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().split()[9].decode())' "http://127.0.0.1:$sport/nginx-status"
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# One drill run: `drill_run RATE WORKERS CPUS` prints "cpu_s rss_kib served achieved lag_p99_ms".
drill_run() {
  local rate=$1 workers=$2 cpus=$3 dir="$work/drill-$1-$2"
  mkdir -p "$dir"
  cat > "$dir/bench.toml" <<TOML
description = "compare: $rate req/s"
target = "nginx"
[load]
path = "/"
rate = $rate
timeout = "2s"
workers = $workers
[phases]
warmup = "1s"
baseline = "${each}s"
recovery = "1s"
TOML
  local before; before=$(served)
  (cd "$work" && /usr/bin/time -f "%U %S %M" -o "$dir/time" \
    taskset -c "$cpus" "$bin" run "$dir/bench.toml" --quiet --report-dir "$dir/report" >/dev/null) || true
  python3 - "$dir/time" "$dir/report/results.json" $(( $(served) - before - 1 )) <<'PY'
import json, sys
u, s, m = open(sys.argv[1]).read().split()[-3:]
l = json.load(open(sys.argv[2]))["load"]
print(float(u) + float(s), int(m), sys.argv[3], l["achieved_rate"], l["lag_p99_ms"])
PY
}

# One oha run: prints "cpu_s rss_kib served achieved".
oha_run() {
  local rate=$1 dir="$work/oha-$1"
  mkdir -p "$dir"
  local before; before=$(served)
  /usr/bin/time -f "%U %S %M" -o "$dir/time" \
    taskset -c 0 "$oha" -z "${each}s" -q "$rate" --latency-correction -c 200 --no-tui \
      --insecure --output-format json "$scheme://127.0.0.1:$port/" > "$dir/out.json" 2>/dev/null || true
  python3 - "$dir/time" "$dir/out.json" $(( $(served) - before - 1 )) <<'PY'
import json, sys
u, s, m = open(sys.argv[1]).read().split()[-3:]
r = json.load(open(sys.argv[2]))
print(float(u) + float(s), int(m), sys.argv[3], r["summary"]["requestsPerSec"])
PY
}

rows=()
for rate in $rates; do
  d=$(drill_run "$rate" 1 0)
  o=$(oha_run "$rate")
  rows+=("$rate 1 $d $o")
  echo "rate $rate: drill $d | oha $o" >&2
done
if [ -n "${WORKERS:-}" ]; then
  for rate in $rates; do
    d=$(drill_run "$rate" "$WORKERS" 0,1)
    rows+=("$rate $WORKERS $d - - - -")
    echo "rate $rate workers $WORKERS: drill $d" >&2
  done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '%s\n' "${rows[@]}" | python3 -c '
import sys
print("| rate asked | workers | drill achieved | drill send-lag p99 | drill CPU-s | oha CPU-s | drill CPU-s /100k | oha CPU-s /100k | ratio drill/oha | drill RSS | oha RSS | oha achieved |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for line in sys.stdin:
    f = line.split()
    rate, w = int(f[0]), f[1]
    dc, dm, dn, da, dl = float(f[2]), int(f[3]), int(f[4]), float(f[5]), float(f[6])
    per = lambda c, n: c / n * 1e5 if n else float("nan")
    if f[7] == "-":
        print(f"| {rate:,} | {w} | {da:,.0f} | {dl:.2f} ms | {dc:.2f} | — | {per(dc, dn):.2f} | — | — | {dm/1024:.0f} MiB | — | — |")
        continue
    oc, om, on, oa = float(f[7]), int(f[8]), int(f[9]), float(f[10])
    ratio = per(dc, dn) / per(oc, on) if on else float("nan")
    print(f"| {rate:,} | {w} | {da:,.0f} | {dl:.2f} ms | {dc:.2f} | {oc:.2f} | {per(dc, dn):.2f} | {per(oc, on):.2f} | {ratio:.2f} | {dm/1024:.0f} MiB | {om/1024:.0f} MiB | {oa:,.0f} |")
'
