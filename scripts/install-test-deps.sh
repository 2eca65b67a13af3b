#!/usr/bin/env bash
# Install the external binaries the test suite needs, if they are missing:
#   promtool, prometheus             (Debian package `prometheus`)
#   prometheus-alertmanager, amtool  (Debian package `prometheus-alertmanager`)
#   chromium                         (Debian package `chromium`; headless browser for
#                                     tests/status_page.rs, which renders the status page)
#   openssl                          (Debian package `openssl`; makes throw-away test
#                                     certificates for tests/credentials.rs)
#
#   bash scripts/install-test-deps.sh
#
# Idempotent: does nothing when everything is already installed. Needs root (or sudo)
# and access to the Debian package archive. The packages' services are not started
# (tests start their own instances on free ports with temporary data dirs).
# Chromium counts as installed when /usr/bin/chromium exists or `chromium` is on PATH.
set -euo pipefail

need=()
for bin in promtool prometheus prometheus-alertmanager amtool; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        need+=("$bin")
    fi
done

have_chromium() {
    [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1
}

packages=()
if [ ${#need[@]} -gt 0 ]; then
    packages+=(prometheus prometheus-alertmanager)
fi
if ! have_chromium; then
    need+=(chromium)
    packages+=(chromium)
fi
if ! command -v openssl >/dev/null 2>&1; then
    need+=(openssl)
    packages+=(openssl)
fi

if [ ${#need[@]} -eq 0 ]; then
    echo "install-test-deps: promtool, prometheus, prometheus-alertmanager, amtool, chromium and openssl are installed"
    exit 0
fi

echo "install-test-deps: missing: ${need[*]}; installing Debian packages ${packages[*]}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-test-deps: must run as root (or with sudo available)" >&2
        exit 1
    fi
fi

# Keep the packages' init scripts from starting system-wide services in containers.
policy_created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    policy_created=1
fi
cleanup() {
    if [ "$policy_created" -eq 1 ]; then
        $SUDO rm -f /usr/sbin/policy-rc.d
    fi
}
trap cleanup EXIT

# Without recommends, chromium still runs headless (--dump-dom, --screenshot): its
# recommends are desktop extras (upower, udev, notification-daemon, printing, mesa
# DRI, fonts-liberation); text renders with the fonts fontconfig pulls in (DejaVu).
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${packages[@]}"

for bin in promtool prometheus prometheus-alertmanager amtool; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "install-test-deps: $bin still missing after install" >&2
        exit 1
    fi
done
if ! have_chromium; then
    echo "install-test-deps: chromium still missing after install" >&2
    exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
    echo "install-test-deps: openssl still missing after install" >&2
    exit 1
fi
echo "install-test-deps: done"
