#!/usr/bin/env bash
# A 7-day catch-up of a large tenant's audit feed, measured (not part of `make test`):
#
#   make soak-activity                      # 1,000,000 records in 2,000 blobs
#   scripts/soak-activity.sh BIN RECORDS BLOBS_PER_TYPE
#   SOAK_EXTRA="concurrency: 16, max_inflight_bytes: 8MiB" scripts/soak-activity.sh ...
#
# Starts the simulator with RECORDS records spread over the last 6.5 days
# (examples/soak_sim.rs), runs the exporter BIN under /usr/bin/time -v with a
# state file and an output sink until the backlog is drained, then reports wall
# time, CPU seconds, peak RSS, bytes written by the process besides the sink
# (the checkpoint: state file and id log) and whether every record is in the
# sink exactly once.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-target/release/m365-exporter}"
RECORDS="${2:-1000000}"
PER_TYPE="${3:-400}"
SIM="${SOAK_SIM:-target/release/examples/soak_sim}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$SIM" "$RECORDS" "$PER_TYPE" >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$work/sim.out" ] && break; sleep 0.2; done
read -r url blobs ids <"$work/sim.out"
echo "soak: simulator $url: $blobs blobs, $ids records"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/config.yml" <<YAML
tenants:
  - name: soak
    tenant_id: 8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b
    client_id: 0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5
    client_secret: simulator-secret-not-for-production
    endpoints: {login: "$url", graph: "$url", management: "$url"}
    service_health: {enabled: false}
    messages: {enabled: false}
    activity: {enabled: true, interval: 10s, lookback: 7d, requests_per_minute: 2000,
               state_file: "$work/state.json", output: "$work/audit.ndjson"${SOAK_EXTRA:+, $SOAK_EXTRA}}
YAML

start=$(date +%s.%N)
/usr/bin/time -v -o "$work/time.txt" "$BIN" --config.file "$work/config.yml" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn 2>"$work/exporter.log" &
timepid=$!
pids+=($timepid)
sleep 1
expid="$(pgrep -P "$timepid" | head -1)"
metric() {
    curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {s += $2} END {printf "%d", s}'
}
while :; do
    fetched=$(metric m365_activity_content_fetched_total || echo 0)
    backlog=$(metric m365_activity_backlog_blobs || echo 0)
    [ "${fetched:-0}" -ge "$blobs" ] && [ "${backlog:-1}" -eq 0 ] && break
    kill -0 "$expid" 2>/dev/null || { echo "soak: exporter died"; cat "$work/exporter.log"; exit 1; }
    sleep 1
done
drained=$(date +%s.%N)
wchar=$(awk '/^wchar/ {print $2}' "/proc/$expid/io")
kill -TERM "$expid"
wait "$timepid" || true

sink_bytes=$(stat -c %s "$work/audit.ndjson")
lines=$(wc -l <"$work/audit.ndjson")
unique=$(python3 -c 'import json,sys; print(len({json.loads(l)["Id"] for l in open(sys.argv[1])}))' "$work/audit.ndjson")
user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")
echo "soak: drained in $(python3 -c "print(round($drained - $start, 1))") s wall"
echo "soak: CPU $(python3 -c "print(round($user + $sys, 1))") s (user $user, sys $sys)"
echo "soak: peak RSS $((rss / 1024)) MiB"
echo "soak: written besides the sink (checkpoint) $(( (wchar - sink_bytes) / 1024 / 1024 )) MiB; sink $((sink_bytes / 1024 / 1024)) MiB"
echo "soak: sink lines $lines, distinct ids $unique, records served $ids"
[ "$lines" -eq "$ids" ] && [ "$unique" -eq "$ids" ] && echo "soak: every record once" || { echo "soak: sink is NOT exactly once"; exit 1; }
