#!/usr/bin/env python3
"""Figures of the running binary (part of `make bench`; not a test):

    scripts/bench-runtime.py BIN [--tenants 1000] [--soak-minutes 0]

- binary size;
- start-up: exec to the first 200 on /-/healthy (median of 5);
- idle RSS with one tenant (service health + messages) after its first refresh;
- RSS with N tenants (default 1,000) after their first refresh, and per tenant:
  (RSS(N) - RSS(1)) / (N - 1);
- a scrape of N tenants over loopback with curl: series, bytes plain and gzip, time;
- with --soak-minutes M: 50 tenants refreshing every 2 s, 5 of them with the
  audit feed, against the simulator with faults on, RSS sampled every 30 s
  (the full soak is `make soak`: 30 minutes).

Everything runs against the built-in simulator on loopback ports.
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SIM_TENANT = "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
SIM_CLIENT = "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5"
SIM_SECRET = "simulator-secret-not-for-production"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def wait(url, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if get(url, timeout=1)[0] == 200:
                return True
        except Exception:
            pass
        time.sleep(0.0005)
    return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in self.procs:
            self.stop(p)


def tenant_yaml(i, sim, activity=False, interval="1h", state_dir=None):
    y = f"""  - name: t{i:04d}
    tenant_id: {SIM_TENANT}
    client_id: {SIM_CLIENT}
    client_secret: {SIM_SECRET}
    endpoints: {{login: "{sim}", graph: "{sim}", management: "{sim}"}}
    service_health: {{enabled: true, interval: {interval}}}
    messages: {{enabled: true, interval: {interval}}}
"""
    if activity:
        y += f"""    activity: {{enabled: true, interval: {interval}, state_file: "{state_dir}/t{i:04d}.json"}}
"""
    return y


def config(path, tenants):
    with open(path, "w") as f:
        f.write("tenants:\n" + "".join(tenants))


def exporter(procs, binary, cfg, port):
    return procs.start([binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=error"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--soak-minutes", type=float, default=0)
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    procs = Procs()
    work = tempfile.mkdtemp(prefix="m365-bench-")
    try:
        print(f"binary: {os.path.getsize(binary) / 1e6:.1f} MB ({binary})")
        sim_port = free_port()
        sim = f"http://127.0.0.1:{sim_port}"
        simargs = [binary, "simulator", f"--listen=127.0.0.1:{sim_port}"]
        if a.soak_minutes:
            simargs.append("--faults")
        procs.start(simargs)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", sim_port), 1).close()
                break
            except OSError:
                time.sleep(0.05)

        cfg1 = os.path.join(work, "one.yml")
        config(cfg1, [tenant_yaml(0, sim)])
        starts = []
        for _ in range(5):
            port = free_port()
            t0 = time.perf_counter()
            p = exporter(procs, binary, cfg1, port)
            ok = wait(f"http://127.0.0.1:{port}/-/healthy", 10)
            starts.append((time.perf_counter() - t0) * 1000)
            assert ok, "exporter did not become healthy"
            procs.stop(p)
        print(f"start-up to /-/healthy: median {statistics.median(starts):.1f} ms "
              f"(min {min(starts):.1f}, max {max(starts):.1f}, 5 runs)")

        def measure(cfg, n):
            port = free_port()
            p = exporter(procs, binary, cfg, port)
            assert wait(f"http://127.0.0.1:{port}/-/ready", 300), f"{n} tenants not ready"
            time.sleep(5)
            r = rss_kib(p.pid)
            return p, port, r

        p, port, rss1 = measure(cfg1, 1)
        print(f"idle RSS, 1 tenant: {rss1 / 1024:.1f} MiB")
        procs.stop(p)

        n = a.tenants
        cfgn = os.path.join(work, "many.yml")
        config(cfgn, [tenant_yaml(i, sim) for i in range(n)])
        p, port, rssn = measure(cfgn, n)
        print(f"RSS, {n} tenants: {rssn / 1024:.1f} MiB; per tenant {(rssn - rss1) / (n - 1):.1f} KiB")
        url = f"http://127.0.0.1:{port}/metrics"
        for enc in ("identity", "gzip"):
            times = []
            for _ in range(10):
                t0 = time.perf_counter()
                out = subprocess.run(["curl", "-s", "-o", os.path.join(work, "body"), "-H",
                                      f"Accept-Encoding: {enc}", "-w", "%{size_download}", url],
                                     capture_output=True, text=True, check=True)
                times.append((time.perf_counter() - t0) * 1000)
            size = int(out.stdout)
            if enc == "identity":
                with open(os.path.join(work, "body"), "rb") as f:
                    series = sum(1 for l in f if l.strip() and not l.startswith(b"#"))
            print(f"scrape {n} tenants, {enc}: {series} series, {size} bytes, "
                  f"median {statistics.median(times):.1f} ms with curl "
                  f"({statistics.median(times) * 1e6 / series:.0f} ns/series)")
        print(f"RSS after 20 scrapes: {rss_kib(p.pid) / 1024:.1f} MiB")
        procs.stop(p)

        if a.soak_minutes:
            state = os.path.join(work, "state")
            os.makedirs(state)
            cfgs = os.path.join(work, "soak.yml")
            config(cfgs, [tenant_yaml(i, sim, activity=i < 5, interval="2s", state_dir=state)
                          for i in range(50)])
            port = free_port()
            p = exporter(procs, binary, cfgs, port)
            assert wait(f"http://127.0.0.1:{port}/-/healthy", 10)
            samples = []
            end = time.monotonic() + a.soak_minutes * 60
            while time.monotonic() < end:
                time.sleep(30)
                try:
                    get(f"http://127.0.0.1:{port}/metrics", {"Accept-Encoding": "gzip"})
                except Exception:
                    pass
                assert p.poll() is None, "exporter died during the soak"
                samples.append(rss_kib(p.pid) / 1024)
                print(f"soak t={len(samples) * 30:>5d}s RSS {samples[-1]:.1f} MiB", flush=True)
            print(f"soak {a.soak_minutes} min, 50 tenants every 2 s, 5 with the audit feed, faults on: "
                  f"RSS first {samples[0]:.1f} MiB, max {max(samples):.1f}, last {samples[-1]:.1f}")
    finally:
        procs.close()


if __name__ == "__main__":
    sys.exit(main())
