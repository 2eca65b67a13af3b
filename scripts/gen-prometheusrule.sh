#!/usr/bin/env bash
# Generate deploy/kubernetes/base/prometheusrule.yaml (a Prometheus Operator
# PrometheusRule) from the alert rules in alerts/*.rules.yml, so the two never
# drift. tests/deploy.rs fails when the committed file differs from what this
# prints: after changing alerts/, run
#
#   bash scripts/gen-prometheusrule.sh > deploy/kubernetes/base/prometheusrule.yaml
#
# Each rules file's `groups:` list is copied verbatim (indented under `spec:`),
# so the rules are exactly the ones promtool tests. With RUNBOOK_BASE set, the
# runbook links point there instead (scripts/runbook-url.sh), e.g. for a
# PrometheusRule of your own that links to your wiki:
#
#   RUNBOOK_BASE=https://wiki.example.com/m365-runbook bash scripts/gen-prometheusrule.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cat <<'HEAD'
# GENERATED from alerts/*.rules.yml by scripts/gen-prometheusrule.sh: do not edit.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: m365-exporter
  labels:
    # Match your Prometheus' ruleSelector (kube-prometheus-stack selects
    # `release: <its release name>` by default).
    role: alert-rules
spec:
  groups:
HEAD
for f in alerts/*.rules.yml; do
    echo "    # from $f"
    # The lines after `groups:`, each indented two more spaces.
    if [ -n "${RUNBOOK_BASE:-}" ]; then
        bash scripts/runbook-url.sh render "$RUNBOOK_BASE" "$f"
    else
        cat "$f"
    fi | awk 'found { if ($0 == "") print ""; else print "  " $0 } /^groups:[[:space:]]*$/ { found = 1 }'
done
