#!/usr/bin/env bash
# Interop test: m365-exporter against an independent fake of Microsoft's
# published formats (tests/interop/fake_microsoft.py), once clean and once
# with faults (429/Retry-After on Graph and listings, 403 AF429 on blobs,
# short string-typed token lifetimes, a subscription to start); then as
# Microsoft's pages show it where they differ from the reference forms
# (`documented`: PascalCase Graph enums, the NextPageUrl header, the tenant
# named by its domain, a managed identity whose IMDS answers 404/410 while
# its host is updated, the Audit Log Query API as its method pages print
# it), and with the unified audit log off, the answer split each way field
# reports show (`audit-off-*`). Each run must report exactly what the clean
# run's rules expect. The clean, faults and documented runs reconcile the
# feed (`activity.reconcile`) against the fake's Audit Log Query API, which
# holds blobs the Management API never lists (and, with faults, a query
# that fails first): the reconciler must find and repair exactly those.
#
#   tests/interop/run.sh [path/to/m365-exporter]     (default target/debug/m365-exporter)
#
# Builds nothing. Exits 0 only when every check of both runs passes; the last
# line is "interop: N passed, M failed". Needs python3 (stdlib only).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/target/debug/m365-exporter}
wait_s=${INTEROP_WAIT:-90}
if [ ! -x "$bin" ]; then
    echo "interop: no exporter binary at $bin (build it first: cargo build)"
    echo "interop: 0 passed, 1 failed"
    exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/m365-interop.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ "${KEEP_INTEROP:-}" = 1 ]; then echo "interop: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url, seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

tenant_id=3f2a7c51-9e0b-4d6a-8c1e-5b7d90a4e2f6
domain=contoso.example
client_id=a8e0c4d2-61f3-4b7e-9d05-2c9b8f1e7a34
secret='Qx8~interop.fake-secret_0123456789abcdef'
publisher=d7b1e2c9-4a6f-4e3b-b0d8-91c5f27a6e13
operations=UserLoginFailed,FileDeleted,DlpRuleMatch
total_pass=0
total_fail=0

one_run() { # label, fake flags...
    local label=$1
    shift
    local fp ep dir
    fp=$(free_port)
    ep=$(free_port)
    dir=$work/$label
    mkdir -p "$dir"
    printf '%s' "$secret" >"$dir/secret"
    chmod 600 "$dir/secret"
    # Graph via "localhost", Management and login via "127.0.0.1": one server,
    # two distinct token audiences, so the fake can check each call's audience.
    local graph="http://localhost:$fp" mgmt="http://127.0.0.1:$fp"
    python3 "$here/fake_microsoft.py" "$fp" --graph-root "$graph" --management-root "$mgmt" \
        --tenant-id "$tenant_id" --client-id "$client_id" --client-secret "$secret" \
        --publisher-id "$publisher" "$@" >"$dir/fake.log" 2>&1 &
    pids+=($!)
    local start_subs=false
    case " $* " in *" --unsubscribed "* | *" --audit-off "*) start_subs=true ;; esac
    # The tenant as the configuration names it (GUID, or the domain with
    # no publisher_id: the GUID then), and its credential.
    local tenant=$tenant_id publisher_line="publisher_id: $publisher"
    case " $* " in *" --domain "*)
        tenant=$domain
        publisher_line="# publisher_id unset: the tenant GUID" ;;
    esac
    # With never-listed blobs: activity.reconcile finds and repairs them
    # into the sink, which compare.py then reads.
    local reconcile="" sink_arg=()
    case " $* " in *" --unlisted "*)
        reconcile="output: $dir/audit.ndjson
      state_file: $dir/state.json
      reconcile: {enabled: true, interval: 10s, settle: 0s, window: 24h}"
        sink_arg=(--sink "$dir/audit.ndjson") ;;
    esac
    local credential="client_secret_file: $dir/secret" env=()
    case " $* " in *" --imds-updating "*)
        credential="managed_identity: {}"
        env=(AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:$fp") ;;
    esac
    cat >"$dir/config.yml" <<EOF
tenants:
  - name: interop
    tenant_id: $tenant
    client_id: $client_id
    $credential
    endpoints:
      login: http://127.0.0.1:$fp
      graph: $graph
      management: $mgmt
    service_health: {enabled: true, interval: 2s}
    messages: {enabled: true, interval: 2s}
    app_credentials: {enabled: true, interval: 2s}
    activity:
      enabled: true
      interval: 2s
      lookback: 30h
      $publisher_line
      start_subscriptions: $start_subs
      operations: [${operations//,/, }]
      $reconcile
EOF
    if ! wait_http "http://127.0.0.1:$fp/_truth" 10; then
        echo "interop[$label]: fake did not start"; cat "$dir/fake.log"
        total_fail=$((total_fail + 1))
        return
    fi
    env -u IDENTITY_ENDPOINT -u IDENTITY_HEADER "${env[@]}" \
        "$bin" --config.file="$dir/config.yml" --web.listen-address="127.0.0.1:$ep" \
        --log.level=info >"$dir/exporter.log" 2>&1 &
    local xp=$!
    pids+=($xp)
    python3 "$here/compare.py" --fake "http://127.0.0.1:$fp" --exporter "http://127.0.0.1:$ep" \
        --tenant interop --operations "$operations" --wait "$wait_s" --label "$label" "${sink_arg[@]}" \
        ${INTEROP_VERBOSE:+--verbose} | tee "$dir/compare.out"
    local res
    res=$(grep '^RESULT ' "$dir/compare.out" | tail -1)
    local p f
    p=$(sed -n 's/.*passed=\([0-9]*\).*/\1/p' <<<"$res")
    f=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$res")
    total_pass=$((total_pass + ${p:-0}))
    total_fail=$((total_fail + ${f:-1}))
    if [ "${f:-1}" != 0 ]; then
        echo "--- exporter log ($label, last 30 lines)"; tail -30 "$dir/exporter.log"
        echo "--- fake log ($label)"; tail -20 "$dir/fake.log"
    fi
    kill "$xp" 2>/dev/null
}

runs=${INTEROP_RUNS:-clean faults documented audit-off-message audit-off-straddle audit-off-code}
for r in $runs; do
    case $r in
    clean) one_run clean --token-lifetime 3599 --unlisted 3 --failed-queries 1 ;;
    faults) one_run faults --faults --token-lifetime 16 --expires-in-string --unsubscribed DLP.All --revoke-after 5 \
        --unlisted 5 ;;
    documented) one_run documented --token-lifetime 3599 --pascal-enums --next-page-header NextPageUrl \
        --domain "$domain" --publisher-id "$tenant_id" --imds-updating 4 --unlisted 3 --query-as-documented ;;
    audit-off-*) one_run "$r" --token-lifetime 3599 --audit-off "${r#audit-off-}" ;;
    *) echo "interop: unknown run $r"; total_fail=$((total_fail + 1)) ;;
    esac
done

echo "interop: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
