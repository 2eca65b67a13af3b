#!/usr/bin/env bash
# Lint a real scrape: start `m365-exporter demo` on a free port, wait until it
# is ready, fetch /metrics and run `promtool check metrics` on it.
#
#   bash scripts/check-metrics.sh [path/to/m365-exporter]
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/debug/m365-exporter}"
[ -x "$bin" ] || cargo build --quiet
command -v promtool >/dev/null || { echo "check-metrics: promtool missing: bash scripts/install-test-deps.sh" >&2; exit 127; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
out=$(mktemp)
"$bin" demo --web.listen-address="127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log" "$out"' EXIT

# Generous deadlines (a loaded machine is slow), and a failure, not a lint of
# whatever was there, when they pass.
ready=
for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
[ -n "$ready" ] || { echo "check-metrics: the demo never became ready; its log:" >&2; cat "$log" >&2; exit 1; }
# The activity families appear with the audit feed's first poll and first
# blob: wait for them, so that the lint covers them.
want=(m365_activity_listed_until_timestamp_seconds m365_activity_records_total m365_activity_content_fetched_total)
have=
for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/metrics" -o "$out" 2>/dev/null; then
        have=1
        for f in "${want[@]}"; do
            grep -q "^$f{" "$out" || { have=; break; }
        done
        [ -n "$have" ] && break
    fi
    sleep 0.1
done
[ -n "$have" ] || { echo "check-metrics: the activity families (${want[*]}) never appeared" >&2; exit 1; }
curl -fsS -D "$out.headers" "http://127.0.0.1:$port/metrics" -o "$out"
grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$out.headers" \
    || { echo "check-metrics: wrong Content-Type" >&2; cat "$out.headers" >&2; exit 1; }
rm -f "$out.headers"
series=$(grep -vc '^#' "$out")
echo "check-metrics: $(wc -c <"$out") bytes, $series series from the demo"
promtool check metrics <"$out"
echo "check-metrics: promtool check metrics: clean"
# The same through gzip (what Prometheus asks for): compressed, and as clean.
curl -fsS --compressed -D "$out.headers" "http://127.0.0.1:$port/metrics" -o "$out.gz-text"
grep -qi '^content-encoding: gzip' "$out.headers" \
    || { echo "check-metrics: gzip not honoured" >&2; cat "$out.headers" >&2; exit 1; }
promtool check metrics <"$out.gz-text"
echo "check-metrics: gzip scrape: $(grep -vc '^#' "$out.gz-text") series, promtool clean"
rm -f "$out.headers" "$out.gz-text"
