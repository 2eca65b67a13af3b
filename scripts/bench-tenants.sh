#!/usr/bin/env bash
# Memory per tenant and first-refresh spread, measured on the release binary against the
# built-in simulator (a separate process, so only the exporter's memory is counted).
#
#   bash scripts/bench-tenants.sh [TENANT_COUNTS...]     # default: 1 1000
#
# For each count: a config of N tenants (service_health every 60s, messages every 5m,
# both on, the `incident` scenario), the exporter started, /-/ready awaited, VmRSS read
# from /proc 2 s later (every tenant refreshed once), again 60 s later (steady state:
# every tenant's service health refreshed again; no scrape yet), then once more after one
# scrape of /metrics (whose buffers the allocator may keep), VmHWM (peak), and the
# per-tenant figure (RSS(N) - RSS(1)) / (N - 1) at each point; the first refresh times of the `messages`
# collector (5m interval: each tenant has refreshed it exactly once) summarised. Figures go to stdout;
# BENCHMARKS.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 1000)

cargo build --release --quiet
bin=target/release/m365-exporter
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

sim_port=$(free_port)
"$bin" simulator --listen="127.0.0.1:$sim_port" --any-tenant >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$sim_port/" && break; sleep 0.1; done
sim="http://127.0.0.1:$sim_port"

rss_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }

for n in "${counts[@]}"; do
    cfg="$work/config-$n.yml"
    {
        echo "defaults:"
        echo "  service_health: {interval: 60s}"
        echo "  messages: {interval: 5m}"
        echo "tenants:"
        for i in $(seq 0 $((n - 1))); do
            printf '  - name: t%04d\n    tenant_id: t%04d.sim.test\n    client_id: 0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5\n    client_secret: simulator-secret-not-for-production\n    endpoints: {login: "%s", graph: "%s"}\n' "$i" "$i" "$sim" "$sim"
        done
    } >"$cfg"
    port=$(free_port)
    start=$(date +%s.%N)
    "$bin" --config.file="$cfg" --web.listen-address="127.0.0.1:$port" --log.level=warn >"$work/exp-$n.log" 2>&1 &
    pid=$!
    pids+=($pid)
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/-/ready")" = 200 ]; do sleep 0.5; done
    ready=$(date +%s.%N)
    sleep 2
    rss=$(rss_kb "$pid" VmRSS)
    sleep 60
    rss_steady=$(rss_kb "$pid" VmRSS)
    curl -s "http://127.0.0.1:$port/metrics" >"$work/metrics-$n.txt"
    rss_scraped=$(rss_kb "$pid" VmRSS)
    hwm=$(rss_kb "$pid" VmHWM)
    [ -n "${base:-}" ] || base="$rss $rss_steady $rss_scraped"
    python3 - "$n" "$start" "$ready" "$rss" "$hwm" "$work/metrics-$n.txt" "$rss_scraped" "$rss_steady" $base <<'PY'
import re, sys, collections
n, start, ready, rss, hwm, path, scraped, steady, b0, b1, b2 = sys.argv[1:]
n = int(n); start = float(start); ready = float(ready)
text = open(path).read()
stamps = [float(m.group(1)) for m in re.finditer(
    r'^m365_collector_last_success_timestamp_seconds\{[^}]*collector="messages"[^}]*\} (\S+)$', text, re.M)]
series = sum(1 for l in text.splitlines() if l and not l.startswith('#'))
print(f"tenants={n} ready_after={ready-start:.1f}s rss={int(rss)/1024:.1f}MiB "
      f"rss_60s_later={int(steady)/1024:.1f}MiB "
      f"rss_after_one_scrape={int(scraped)/1024:.1f}MiB peak={int(hwm)/1024:.1f}MiB "
      f"series={series} scrape_bytes={len(text)}")
if n > 1:  # against the first count's figures (run `1` first)
    per = lambda a, b: (int(a) - int(b)) / (n - 1)
    print(f"  per tenant: {per(rss, b0):.1f} KiB at ready, {per(steady, b1):.1f} KiB 60 s later, "
          f"{per(scraped, b2):.1f} KiB after one scrape")
if len(stamps) > 1:
    lo, hi = min(stamps), max(stamps)
    per_s = collections.Counter(int(s - lo) for s in stamps)
    print(f"  first 'messages' refreshes: {len(stamps)} over {hi-lo:.1f}s, "
          f"busiest second {max(per_s.values())}, mean {len(stamps)/max(hi-lo,1):.1f}/s")
PY
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
