#!/usr/bin/env bash
# A 7-day catch-up of a large tenant's audit feed, measured (not part of `make test`):
#
#   make soak-activity                      # 1,000,000 records in 2,000 blobs
#   scripts/soak-activity.sh BIN RECORDS BLOBS_PER_TYPE
#   SOAK_EXTRA="concurrency: 16, max_inflight_bytes: 8MiB" scripts/soak-activity.sh ...
#   SOAK_RPM=2000 SOAK_WRAP="valgrind --tool=callgrind --callgrind-out-file=cg.out" scripts/soak-activity.sh BIN 30000 24
#
# Starts the simulator with RECORDS records spread over the last 6.5 days
# (examples/soak_sim.rs), runs the exporter BIN under /usr/bin/time -v with a
# state file and an output sink until the backlog is drained, then reports wall
# time against what the request budget allows for the requests actually made,
# CPU seconds of the exporter alone (per million records), peak RSS, bytes
# written by the process besides the sink (the checkpoint: state file and id
# log) and whether every record is in the sink exactly once. Records come from
# the simulator's generator (src/simulator/records/: 1-3 KB, realistic
# shapes); SOAK_RPM sets requests_per_minute (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-target/release/m365-exporter}"
RECORDS="${2:-1000000}"
PER_TYPE="${3:-400}"
SIM="${SOAK_SIM:-target/release/examples/soak_sim}"
RPM="${SOAK_RPM:-2000}"
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
# Up to 10 minutes: generating 3 M records takes the simulator minutes on a busy machine.
for _ in $(seq 1 3000); do [ -s "$work/sim.out" ] && break; sleep 0.2; done
[ -s "$work/sim.out" ] || { echo "soak: the simulator did not start"; cat "$work/sim.err"; exit 1; }
read -r url blobs ids served_bytes <"$work/sim.out"
echo "soak: simulator $url: $blobs blobs, $ids records, $((served_bytes / 1024 / 1024)) MiB of blobs ($((served_bytes / ids)) B per record on average)"

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
    activity: {enabled: true, interval: 10s, lookback: 7d, requests_per_minute: $RPM,
               state_file: "$work/state.json", output: "$work/audit.ndjson"${SOAK_EXTRA:+, $SOAK_EXTRA}}
YAML

start=$(date +%s.%N)
# SOAK_WRAP: a profiler in front of the exporter, e.g.
# SOAK_WRAP="valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out" SOAK_RPM=2000
/usr/bin/time -v -o "$work/time.txt" ${SOAK_WRAP:-} "$BIN" --config.file "$work/config.yml" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn 2>"$work/exporter.log" &
timepid=$!
pids+=($timepid)
sleep 1
expid="$(pgrep -P "$timepid" | head -1)"
metric() {
    curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" 'index($1, m) == 1 && (length($1) == length(m) || substr($1, length(m) + 1, 1) ~ /[{ ,]/) {s += $2} END {printf "%d", s}'
}
first_at="" all_at=""
while :; do
    fetched=$(metric m365_activity_content_fetched_total || echo 0)
    backlog=$(metric m365_activity_backlog_blobs || echo 0)
    now=$(date +%s.%N)
    [ -z "$first_at" ] && [ "${fetched:-0}" -gt 0 ] && first_at=$now
    [ -z "$all_at" ] && [ "${fetched:-0}" -ge "$blobs" ] && all_at=$now
    [ "${fetched:-0}" -ge "$blobs" ] && [ "${backlog:-1}" -eq 0 ] && break
    kill -0 "$expid" 2>/dev/null || { echo "soak: exporter died"; cat "$work/exporter.log"; exit 1; }
    sleep 0.25
done
drained=$(date +%s.%N)
# Every request to the Management API takes a token from the budget (retries
# aside: none without faults); the login is not budgeted.
requests=$(metric 'm365_api_requests_total{tenant="soak",api="management"' || echo 0)
wchar=$(awk '/^wchar/ {print $2}' "/proc/$expid/io")
kill -TERM "$expid"
wait "$timepid" || true

sink_bytes=$(stat -c %s "$work/audit.ndjson")
lines=$(wc -l <"$work/audit.ndjson")
unique=$(python3 -c 'import json,sys; print(len({json.loads(l)["Id"] for l in open(sys.argv[1])}))' "$work/audit.ndjson")
user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")
faults=$(awk -F': ' '/Minor .*page faults/ {print $2}' "$work/time.txt")
switches=$(awk -F': ' '/Voluntary context switches/ {print $2}' "$work/time.txt")
python3 - "$drained" "$start" "$requests" "$RPM" "$user" "$sys" "$ids" "$first_at" "$all_at" <<'PY'
import sys
drained, start, requests, rpm, user, sys_, records, first_at, all_at = map(float, sys.argv[1:])
# The catch-up ends when the last blob is fetched and applied (its records
# counted and handed to the sink): the live counter shows it at once. The
# backlog gauge comes from the activity collector's status, rendered every
# `interval` (10 s here), so "drained" is seen up to 10 s later.
wall = all_at - start
print(f"soak: first blob fetched after {first_at - start:.1f} s, the last after {wall:.1f} s; "
      f"backlog shown empty after {drained - start:.1f} s (status rendered every 10 s; polled every 0.25 s)")
# The budget (src/activity/client.rs budget_quota): a bucket of rpm/4
# requests, refilled at rpm/60 per second.
burst, rate = rpm // 4, rpm / 60
allowed = max(0.0, requests - burst) / rate
print(f"soak: catch-up {wall:.1f} s wall; {requests:.0f} Management API requests at "
      f"{rpm:.0f}/min (burst {burst:.0f}) need >= {allowed:.1f} s: wall / budget = "
      + (f"{wall / allowed:.2f}" if allowed > 0 else "n/a (within the burst)"))
cpu = user + sys_
print(f"soak: CPU {cpu:.2f} s (user {user:.2f}, sys {sys_:.2f}): "
      f"{cpu * 1e6 / records:.2f} CPU-s per million records")
PY
echo "soak: peak RSS $((rss / 1024)) MiB; $faults minor page faults, $switches voluntary context switches"
echo "soak: written besides the sink (checkpoint) $(( (wchar - sink_bytes) / 1024 / 1024 )) MiB; sink $((sink_bytes / 1024 / 1024)) MiB"
echo "soak: sink lines $lines, distinct ids $unique, records served $ids"
[ "$lines" -eq "$ids" ] && [ "$unique" -eq "$ids" ] && echo "soak: every record once" || { echo "soak: sink is NOT exactly once"; exit 1; }
