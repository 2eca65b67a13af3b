#!/usr/bin/env bash
# The alert rules' runbook links, all made from one base URL.
#
# Every rule in alerts/ has `runbook_url: <base>#<alert name in lower case>`
# (the heading anchors of docs/runbook.md). The shipped base is the
# repository's runbook, `repository` of Cargo.toml + /blob/main/docs/runbook.md.
# To send on-call people to your own wiki instead:
#
#   bash scripts/runbook-url.sh                    # print the shipped base
#   bash scripts/runbook-url.sh render BASE FILE   # FILE with its links on BASE, to stdout:
#       bash scripts/runbook-url.sh render https://wiki.example.com/m365-runbook \
#           alerts/m365-exporter.rules.yml > /etc/prometheus/rules/m365-exporter.rules.yml
#   RUNBOOK_BASE=BASE bash scripts/gen-prometheusrule.sh   # the Kubernetes PrometheusRule
#   bash scripts/runbook-url.sh set [BASE]         # rewrite alerts/ (rules and their
#       promtool tests) and deploy/kubernetes/base/prometheusrule.yaml in place; without
#       BASE, the shipped one (after changing `repository` in Cargo.toml, for a fork)
#
# BASE is either a page whose anchors are the alert names in lower case
# (`BASE#m365serviceincident`), or a pattern with `{alertname}` for one page
# per alert (`https://wiki.example.com/runbooks/{alertname}` gives
# `.../runbooks/M365ServiceIncident`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

default_base() {
    local repo
    repo=$(sed -n 's/^repository = "\(.*\)"$/\1/p' "$root/Cargo.toml")
    if [ -z "$repo" ]; then
        echo "runbook-url: Cargo.toml has no repository = \"...\"" >&2
        exit 1
    fi
    echo "$repo/blob/main/docs/runbook.md"
}

# render BASE < rules-or-test-file: each runbook_url rewritten for the alert it
# belongs to (the last `alert:` of a rule file, `alertname:` of a test case).
render() {
    awk -v base="$1" '
        match($0, /^[[:space:]]*(- )?alert(name)?:[[:space:]]*/) {
            name = substr($0, RLENGTH + 1)
            sub(/[[:space:]]+$/, "", name)
        }
        match($0, /^[[:space:]]*runbook_url:[[:space:]]*/) {
            if (name == "") { print "runbook-url: runbook_url before any alert" > "/dev/stderr"; exit 1 }
            url = base
            i = index(url, "{alertname}")
            if (i) url = substr(url, 1, i - 1) name substr(url, i + length("{alertname}"))
            else url = url "#" tolower(name)
            print substr($0, 1, RLENGTH) url
            next
        }
        { print }
    '
}

case "${1:-}" in
"")
    default_base
    ;;
render)
    [ $# -ge 3 ] || { echo "usage: $0 render BASE FILE..." >&2; exit 2; }
    base=$2
    shift 2
    for f in "$@"; do render "$base" < "$f"; done
    ;;
set)
    base=${2:-$(default_base)}
    cd "$root"
    shopt -s nullglob
    for f in alerts/*.rules.yml alerts/optional/*.rules.yml alerts/tests/*.yml alerts/optional/tests/*.yml; do
        render "$base" < "$f" > "$f.tmp"
        mv "$f.tmp" "$f"
    done
    bash scripts/gen-prometheusrule.sh > deploy/kubernetes/base/prometheusrule.yaml
    echo "runbook-url: alerts/ and the PrometheusRule link to $base"
    ;;
*)
    echo "usage: $0 [render BASE FILE... | set [BASE]]" >&2
    exit 2
    ;;
esac
