#!/usr/bin/env bash
# The container image, built and run for real:
#   bash tests/image/run.sh STATIC_BINARY
#
# Builds the Dockerfile's `prebuilt` target (the scratch runtime stage with
# the given static binary; the Rust builder stage is not used, as no
# registry is reachable from CI), then: runs `demo` in the image, scrapes
# /metrics and the status page from the host, checks the process runs as
# uid 65532, runs the `healthcheck` subcommand (by address, by the name
# `localhost` from /etc/hosts, and from a second container by the first
# one's name through podman's DNS with no hosts file: name resolution works
# in an image without libc's files), checks the image metadata, and removes
# the containers, network and image. Prints the image size.
#
# Needs podman (Debian `podman`, `runc`; installed by
# scripts/install-test-deps.sh). Fails, never skips, when podman cannot run
# containers. `runc` and fixed ulimits because crun fails on hybrid cgroups
# and raising rlimits is not permitted on the CI machines.
set -euo pipefail

bin=${1:?usage: tests/image/run.sh STATIC_BINARY}
root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "image test: FAIL: $*" >&2; exit 1; }

[ -x "$bin" ] || fail "$bin is not an executable (build it with: make static)"
if readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    fail "$bin is dynamically linked; the scratch image needs a static binary (+crt-static)"
fi
command -v podman >/dev/null || fail "podman is not installed: run bash scripts/install-test-deps.sh"
command -v runc >/dev/null || fail "runc is not installed: run bash scripts/install-test-deps.sh"
podman=(podman)
run_opts=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
"${podman[@]}" info >/dev/null 2>&1 || fail "podman cannot run here: $(podman info 2>&1 | tail -3)"

tag="localhost/m365-exporter:test-$$"
name="m365-exporter-test-$$"
net="m365-exporter-test-$$"
ctx=$(mktemp -d)
cleanup() {
    "${podman[@]}" rm -f "$name" >/dev/null 2>&1 || true
    "${podman[@]}" network rm -f "$net" >/dev/null 2>&1 || true
    "${podman[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
    rm -rf "$ctx"
}
trap cleanup EXIT

# The build context holds the binary only (debug info stripped, as the
# builder stage does for release builds).
strip -o "$ctx/m365-exporter" "$bin"
echo "image test: building $tag (target prebuilt)"
"${podman[@]}" build --quiet --format docker --target prebuilt \
    --build-arg M365_EXPORTER_REVISION="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
    -f "$root/Dockerfile" -t "$tag" "$ctx" >/dev/null \
    || fail "podman build failed"
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$tag")
echo "image test: image size ${size} bytes ($(( size / 1024 / 1024 )) MiB)"

# Metadata the runtime relies on.
inspect() { "${podman[@]}" image inspect --format "$1" "$tag"; }
[ "$(inspect '{{.Config.User}}')" = "65532:65532" ] || fail "USER is $(inspect '{{.Config.User}}')"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"9865/tcp"' || fail "port 9865 not exposed"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/m365-exporter"]' ] || fail "ENTRYPOINT is $(inspect '{{json .Config.Entrypoint}}')"
inspect '{{json .Config.Healthcheck}}' | grep -q healthcheck || fail "no HEALTHCHECK"
inspect '{{index .Config.Labels "org.opencontainers.image.title"}}' | grep -qx m365-exporter || fail "OCI labels missing"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "image test: running demo, published on 127.0.0.1:$port"
# A network of its own: podman's DNS (aardvark-dns) resolves container names on it.
"${podman[@]}" network create "$net" >/dev/null || fail "podman network create failed"
# podman may complain that it cannot register the HEALTHCHECK timer with
# systemd (no systemd in CI containers): harmless, the check is run below.
"${podman[@]}" run "${run_opts[@]}" -d --name "$name" --network "$net" -p "127.0.0.1:$port:9865" "$tag" \
    demo --web.listen-address=:9865 >/dev/null 2>"$ctx/run.err" \
    || fail "podman run failed: $(cat "$ctx/run.err")"

metrics=""
for _ in $(seq 1 120); do
    metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
    if grep -q '^m365_collector_success{tenant="contoso",collector="service_health"} 1' <<<"$metrics" \
        && grep -q '^m365_collector_success{tenant="contoso",collector="messages"} 1' <<<"$metrics"; then
        break
    fi
    sleep 0.5
done
grep -q '^m365_collector_success{tenant="contoso",collector="service_health"} 1' <<<"$metrics" \
    || fail "no successful service_health refresh scraped from the container; logs:
$("${podman[@]}" logs "$name" 2>&1 | tail -20)"
grep -q '^m365_service_status{' <<<"$metrics" || fail "no m365_service_status in /metrics"
echo "image test: scraped $(grep -c '^m365_' <<<"$metrics") m365_ samples from the container"
curl -fsS --max-time 5 "http://127.0.0.1:$port/" | grep -q 'Microsoft 365 status' \
    || fail "status page not served"

pid=$("${podman[@]}" inspect --format '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
[ "$uid" = "65532 65532 65532 65532" ] || fail "the exporter runs as uid '$uid', not 65532"
echo "image test: process $pid runs as uid 65532"

"${podman[@]}" exec "$name" /m365-exporter healthcheck || fail "healthcheck failed"
"${podman[@]}" exec "$name" /m365-exporter healthcheck --web.listen-address=localhost:9865 \
    || fail "healthcheck via the name localhost failed (name resolution in the image)"
"${podman[@]}" healthcheck run "$name" >/dev/null 2>&1 || fail "podman healthcheck run: unhealthy"
if "${podman[@]}" exec "$name" /m365-exporter healthcheck --web.listen-address=127.0.0.1:1 --timeout=2s 2>/dev/null; then
    fail "healthcheck of a closed port succeeded"
fi
# DNS: a second container without /etc/hosts asks the first by name.
"${podman[@]}" run "${run_opts[@]}" --rm --no-hosts --network "$net" "$tag" \
    healthcheck --web.listen-address="$name:9865" 2>"$ctx/dns.err" \
    || fail "healthcheck by container name (DNS) failed: $(grep -v systemd "$ctx/dns.err")"
echo "image test: name resolution by DNS works in the image"
echo "image test: healthcheck passes (and fails for a closed port)"

"${podman[@]}" rm -f "$name" >/dev/null
"${podman[@]}" container exists "$name" && fail "container not removed"
echo "image test: OK"
