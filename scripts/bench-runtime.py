#!/usr/bin/env python3
"""Figures of the running binary (part of `make bench`; not a test):

    scripts/bench-runtime.py BIN [--tenants 1000] [--soak-minutes 0]

- binary size;
- start-up: exec to the first 200 on /-/healthy (median of 5);
- idle RSS with one tenant (service health + messages, default intervals: 60 s
  and 5 min) 5 s after /-/ready (its first refresh), and again 65 s later;
- RSS with N tenants (default 1,000, each its own tenant id) 5 s after /-/ready
  (every tenant refreshed once; first refreshes are spread over 60 s) and again
  65 s later (steady state: every tenant's service health refreshed again), and
  per tenant: (RSS(N) - RSS(1)) / (N - 1), as an operator would read it;
- a scrape of N tenants over loopback with curl: series, bytes plain and gzip, time;
- with --soak-minutes M: 50 tenants refreshing every 2 s, 5 of them with the
  audit feed, against a second simulator with `--faults` (throttling, 503s,
  truncated bodies, AF429 on blobs, 429 on listings) and `--audit-live-every`
  (default 60s: a new audit blob per content type every minute, so the feed
  keeps flowing at a rate the exporter keeps up with under the faults; 5s
  outruns it and measures a growing backlog instead, see BENCHMARKS.md);
  RSS sampled every 30 s with the audit records, backlog and API
  errors/throttles so far (the run fails if the feed stalls or no fault
  shows), then the shape:
  growth after warm-up in MiB per 10 minutes (least squares). `--soak-only`
  skips everything else (the full soak is `make soak`: 30 minutes).
- with --tenant-minutes M, instead of all the above: idle RSS of 1 tenant, then
  N tenants left running M minutes after /-/ready with RSS every 30 s and the
  per-tenant figure against the 1-tenant reading (no scrape: memory held by
  the tenants and the allocator only; `make bench-tenants-30`).

With --heap-profile DHAT_BIN (a `cargo build --profile dhat --features dhat-heap`
binary, `make heap-profile`), instead of all the above: 1 and N tenants run with that
binary, each stopped (SIGTERM) 65 s after /-/ready without a scrape, and
scripts/dhat-per-tenant.py prints where a tenant's heap goes.

Everything runs against the built-in simulator on loopback ports.
"""
import argparse
import gzip
import os
import re
import shutil
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


def plain_tenant_yaml(i, sim):
    """A tenant as an operator configures one: its own id, default intervals."""
    return f"""  - name: t{i:04d}
    tenant_id: t{i:04d}.sim.test
    client_id: {SIM_CLIENT}
    client_secret: {SIM_SECRET}
    endpoints: {{login: "{sim}", graph: "{sim}"}}
"""


def config(path, tenants):
    with open(path, "w") as f:
        f.write("tenants:\n" + "".join(tenants))


def exporter(procs, binary, cfg, port):
    return procs.start([binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=error"])


def simulator(procs, binary, *extra):
    """A simulator process on a free port (any tenant id gets a token); its URL."""
    port = free_port()
    procs.start([binary, "simulator", f"--listen=127.0.0.1:{port}", "--any-tenant", *extra])
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.05)
    return f"http://127.0.0.1:{port}"


def sums(text, names):
    """Sum of every series of each metric family in `names` (plain exposition)."""
    out = dict.fromkeys(names, 0.0)
    for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? (\S+)$", text, re.M):
        if m.group(1) in out:
            out[m.group(1)] += float(m.group(2))
    return out


def slope_per_10min(points):
    """Least-squares slope of (seconds, MiB) points, in MiB per 10 minutes."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(t for t, _ in points)
    my = statistics.fmean(v for _, v in points)
    var = sum((t - mx) ** 2 for t, _ in points)
    return sum((t - mx) * (v - my) for t, v in points) / var * 600 if var else 0.0


SOAK_COUNTERS = ("m365_activity_records_total", "m365_activity_content_fetched_total",
                 "m365_activity_backlog_blobs",
                 "m365_api_requests_total", "m365_api_errors_total", "m365_api_throttled_total")


def soak(procs, binary, work, minutes, feed_every):
    """50 tenants every 2 s, 5 with the audit feed, simulator faults on; RSS every 30 s."""
    sim = simulator(procs, binary, "--faults", f"--audit-live-every={feed_every}")
    state = os.path.join(work, "state")
    os.makedirs(state)
    cfgs = os.path.join(work, "soak.yml")
    # The audit tenants use the simulator's own tenant id (its feed answers only
    # that one); the others each have an id of their own, hence a token of their own.
    tenants = []
    for i in range(50):
        y = tenant_yaml(i, sim, activity=i < 5, interval="2s", state_dir=state)
        if i >= 5:
            y = y.replace(f"tenant_id: {SIM_TENANT}", f"tenant_id: t{i:04d}.sim.test")
        tenants.append(y)
    config(cfgs, tenants)
    port = free_port()
    p = exporter(procs, binary, cfgs, port)
    assert wait(f"http://127.0.0.1:{port}/-/healthy", 10)
    print(f"soak: {minutes:g} min, 50 tenants (service health + messages every 2 s), 5 with the "
          f"audit feed (every 2 s, state files), simulator --faults --audit-live-every={feed_every}; "
          f"exporter pid {p.pid}", flush=True)
    print(f"{'t':>6} {'RSS MiB':>8} {'records':>8} {'blobs':>6} {'backlog':>7} {'requests':>9} "
          f"{'errors':>7} "
          f"{'throttled':>9}", flush=True)
    samples, counters = [], []
    t0 = time.monotonic()
    end = t0 + minutes * 60
    while time.monotonic() < end:
        time.sleep(max(0.0, t0 + (len(samples) + 1) * 30 - time.monotonic()))
        assert p.poll() is None, "exporter died during the soak"
        c = counters[-1] if counters else dict.fromkeys(SOAK_COUNTERS, 0.0)
        try:
            # Ask for gzip, as Prometheus does.
            _, body = get(f"http://127.0.0.1:{port}/metrics", {"Accept-Encoding": "gzip"}, 30)
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            c = sums(body.decode(), SOAK_COUNTERS)
        except Exception as e:  # a slow scrape under load: keep the last counters
            print(f"  scrape failed: {e}", flush=True)
        t = time.monotonic() - t0
        samples.append((t, rss_kib(p.pid) / 1024))
        counters.append(c)
        print(f"{t:>5.0f}s {samples[-1][1]:>8.1f} {c['m365_activity_records_total']:>8.0f} "
              f"{c['m365_activity_content_fetched_total']:>6.0f} "
              f"{c['m365_activity_backlog_blobs']:>7.0f} {c['m365_api_requests_total']:>9.0f} {c['m365_api_errors_total']:>7.0f} "
              f"{c['m365_api_throttled_total']:>9.0f}", flush=True)
    rss = [v for _, v in samples]
    # Warm-up: the first quarter of the run, at most 7 minutes (the baseline
    # grew for 7 minutes, then stayed flat).
    warm = min(minutes * 60 / 4, 420)
    after = [(t, v) for t, v in samples if t >= warm]
    half = counters[len(counters) // 2]
    last = counters[-1]
    flowing = last["m365_activity_records_total"] > half["m365_activity_records_total"]
    faulty = last["m365_api_errors_total"] + last["m365_api_throttled_total"] > 0
    print(f"soak {minutes:g} min: RSS first {rss[0]:.1f} MiB, after warm-up ({warm / 60:.1f} min) "
          f"{after[0][1] if after else rss[-1]:.1f}, max {max(rss):.1f}, last {rss[-1]:.1f}; "
          f"growth after warm-up {slope_per_10min(after):+.2f} MiB per 10 min (least squares over "
          f"{len(after)} samples)")
    print(f"soak audit feed: {last['m365_activity_records_total']:.0f} records in "
          f"{last['m365_activity_content_fetched_total']:.0f} blobs, "
          f"{last['m365_activity_records_total'] - half['m365_activity_records_total']:.0f} in the "
          f"second half; backlog at the end {last['m365_activity_backlog_blobs']:.0f} blobs "
          f"(max {max(c['m365_activity_backlog_blobs'] for c in counters):.0f}); API: {last['m365_api_requests_total']:.0f} requests, "
          f"{last['m365_api_errors_total']:.0f} errors, {last['m365_api_throttled_total']:.0f} "
          f"throttled")
    assert flowing, "the audit feed stalled during the soak"
    assert faulty, "no API error or throttle seen: faults are not on"
    procs.stop(p)


def tenant_curve(procs, binary, work, n, minutes):
    """RSS of n tenants every 30 s for `minutes` after /-/ready, per tenant against 1."""
    sim = simulator(procs, binary)
    cfg1 = os.path.join(work, "curve-one.yml")
    config(cfg1, [plain_tenant_yaml(0, sim)])
    port = free_port()
    p = exporter(procs, binary, cfg1, port)
    assert wait(f"http://127.0.0.1:{port}/-/ready", 60), "1 tenant not ready"
    time.sleep(65)
    one = rss_kib(p.pid)
    procs.stop(p)
    print(f"idle RSS, 1 tenant, 65 s after ready: {one / 1024:.1f} MiB", flush=True)
    cfgn = os.path.join(work, "curve-many.yml")
    config(cfgn, [plain_tenant_yaml(i, sim) for i in range(n)])
    port = free_port()
    t0 = time.monotonic()
    p = exporter(procs, binary, cfgn, port)
    assert wait(f"http://127.0.0.1:{port}/-/ready", 600), f"{n} tenants not ready"
    ready = time.monotonic()
    print(f"{n} tenants ready after {ready - t0:.1f} s; RSS every 30 s (minutes after ready):",
          flush=True)
    samples = []
    while time.monotonic() < ready + minutes * 60:
        time.sleep(max(0.0, ready + (len(samples) + 1) * 30 - time.monotonic()))
        assert p.poll() is None, "exporter died"
        rss = rss_kib(p.pid)
        samples.append(((time.monotonic() - ready) / 60, rss / 1024))
        print(f"  +{samples[-1][0]:5.1f} min  {rss / 1024:6.1f} MiB  "
              f"{(rss - one) / (n - 1):5.1f} KiB per tenant", flush=True)
    after5 = [v for t, v in samples if t >= 5]
    last = samples[-1][1]
    print(f"{n} tenants, {minutes:g} min: RSS {samples[0][1]:.1f} MiB at +0.5 min, "
          f"{after5[0] if after5 else last:.1f} at +5, max {max(v for _, v in samples):.1f}, "
          f"last {last:.1f} MiB = {(last * 1024 - one) / (n - 1):.1f} KiB per tenant; "
          f"from minute 5 on: min {min(after5 or [last]):.1f}, max {max(after5 or [last]):.1f} MiB")
    procs.stop(p)


def heap_profile(procs, binary, dhat_binary, work, n):
    """dhat-heap.json of 1 and n tenants (65 s after /-/ready, no scrape), compared."""
    sim = simulator(procs, binary)  # the plain binary: no profile of the simulator
    out = {}
    for count in (1, n):
        d = os.path.join(work, f"dhat-{count}")
        os.makedirs(d)
        cfg = os.path.join(d, "config.yml")
        config(cfg, [plain_tenant_yaml(i, sim) for i in range(count)])
        port = free_port()
        # dhat writes dhat-heap.json into the working directory on exit.
        p = procs.start([dhat_binary, f"--config.file={cfg}",
                         f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"], cwd=d)
        assert wait(f"http://127.0.0.1:{port}/-/ready", 600), f"{count} tenants not ready"
        time.sleep(65)
        procs.stop(p)
        out[count] = os.path.join(d, "dhat-heap.json")
        keep = f"dhat-heap-{count}.json"
        shutil.copy(out[count], keep)
        print(f"{count} tenant(s): {keep}", flush=True)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "dhat-per-tenant.py"), out[1], out[n],
                    str(n), "--top", "20"], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--soak-minutes", type=float, default=0)
    ap.add_argument("--soak-only", action="store_true", help="only the soak")
    ap.add_argument("--heap-profile", metavar="DHAT_BIN",
                    help="dhat profiles of 1 and --tenants tenants, then per-tenant sites")
    ap.add_argument("--tenant-minutes", type=float, default=0,
                    help="only: N tenants for this many minutes, RSS every 30 s")
    ap.add_argument("--soak-feed-every", default="60s",
                    help="simulator --audit-live-every during the soak")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    # SIGTERM (kill) runs the `finally` below: no exporter or simulator is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    procs = Procs()
    work = tempfile.mkdtemp(prefix="m365-bench-")
    try:
        print(f"binary: {os.path.getsize(binary) / 1e6:.1f} MB ({binary})")
        if a.heap_profile:
            heap_profile(procs, binary, os.path.abspath(a.heap_profile), work, a.tenants)
            return 0
        if a.tenant_minutes:
            tenant_curve(procs, binary, work, a.tenants, a.tenant_minutes)
            return 0
        if a.soak_only:
            soak(procs, binary, work, a.soak_minutes, a.soak_feed_every)
            return 0
        sim = simulator(procs, binary)

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
            """RSS 5 s after /-/ready and 65 s later (KiB), and peak (VmHWM)."""
            port = free_port()
            t0 = time.monotonic()
            p = exporter(procs, binary, cfg, port)
            assert wait(f"http://127.0.0.1:{port}/-/ready", 300), f"{n} tenants not ready"
            ready = time.monotonic() - t0
            time.sleep(5)
            r = rss_kib(p.pid)
            time.sleep(65)
            steady = rss_kib(p.pid)
            with open(f"/proc/{p.pid}/status") as f:
                hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
            return p, port, ready, r, steady, hwm

        cfgm1 = os.path.join(work, "plain-one.yml")
        config(cfgm1, [plain_tenant_yaml(0, sim)])
        p, port, _, rss1, steady1, _ = measure(cfgm1, 1)
        print(f"idle RSS, 1 tenant: {rss1 / 1024:.1f} MiB after its first refresh, "
              f"{steady1 / 1024:.1f} MiB 65 s later")
        procs.stop(p)

        n = a.tenants
        cfgn = os.path.join(work, "many.yml")
        config(cfgn, [plain_tenant_yaml(i, sim) for i in range(n)])
        p, port, ready, rssn, steadyn, hwm = measure(cfgn, n)
        print(f"RSS, {n} tenants: ready after {ready:.1f} s; {rssn / 1024:.1f} MiB 5 s later "
              f"(per tenant {(rssn - rss1) / (n - 1):.1f} KiB), {steadyn / 1024:.1f} MiB 65 s "
              f"later (per tenant {(steadyn - steady1) / (n - 1):.1f} KiB); peak {hwm / 1024:.1f} MiB")
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
            soak(procs, binary, work, a.soak_minutes, a.soak_feed_every)
    finally:
        procs.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
