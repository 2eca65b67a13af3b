#!/usr/bin/env bash
# Validate and unit-test the Prometheus alerting rules shipped in alerts/.
#
#   bash scripts/check-alerts.sh
#
# Runs `promtool check rules` on alerts/*.rules.yml and the optional
# alerts/optional/*.rules.yml, and `promtool test rules` on alerts/tests/*.yml and
# alerts/optional/tests/*.yml. Exits non-zero on any failure, or when promtool is missing
# (install it with `bash scripts/install-test-deps.sh`).
set -euo pipefail

cd "$(dirname "$0")/.."

PROMTOOL="${PROMTOOL:-promtool}"
if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
    echo "check-alerts: promtool not found (PROMTOOL=$PROMTOOL)." >&2
    echo "check-alerts: install it with: bash scripts/install-test-deps.sh" >&2
    exit 127
fi

shopt -s nullglob
rules=(alerts/*.rules.yml alerts/optional/*.rules.yml)
tests=(alerts/tests/*.yml alerts/optional/tests/*.yml)
if [ ${#rules[@]} -eq 0 ]; then
    echo "check-alerts: no alerts/*.rules.yml found" >&2
    exit 1
fi
if [ ${#tests[@]} -eq 0 ]; then
    echo "check-alerts: no alerts/tests/*.yml found" >&2
    exit 1
fi

echo "check-alerts: $("$PROMTOOL" --version 2>&1 | head -n1)"
"$PROMTOOL" check rules "${rules[@]}"
"$PROMTOOL" test rules "${tests[@]}"
echo "check-alerts: ${#rules[@]} rule file(s) valid, ${#tests[@]} test file(s) passed"
