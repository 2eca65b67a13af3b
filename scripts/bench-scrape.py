#!/usr/bin/env python3
"""Scrape cost on the SERVER side, over loopback with a real HTTP client
(part of `make bench`; not a test):

    scripts/bench-scrape.py BIN [--tenants 200,1000] [--scrapes 200]

For each tenant count: the release binary against `BIN simulator` (service
health + messages per tenant, 1 h intervals, so nothing refreshes while it is
measured), then curl fetches /metrics SCRAPES times on one keep-alive
connection, plain and then with `--compressed` (gzip). The exporter's CPU time
(user + system, every thread, from /proc/PID/task/*/schedstat in ns) before
and after, divided by the scrapes and by the series, is the server's cost:
curl's own work is not in it. Also checks that the gzip body is one member
that decodes (Python's gzip/zlib) to exactly the plain body.
"""
import argparse
import gzip
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("bench_runtime", os.path.join(HERE, "bench-runtime.py"))
rt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rt)


def cpu_ns(pid):
    """CPU time of every thread of `pid`, in ns (schedstat: on-CPU time)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just exited
    return total


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def curl(url, n, compressed):
    args = ["curl", "-s", "--fail"] + (["--compressed"] if compressed else []) + [url] * n
    subprocess.run(args, stdout=subprocess.DEVNULL, check=True)


def fetch(url, gz):
    status, body = rt.get(url, {"Accept-Encoding": "gzip"} if gz else {}, timeout=60)
    assert status == 200
    return body


def one_member(gz_body):
    d = zlib.decompressobj(wbits=31)  # gzip wrapper, one member
    out = d.decompress(gz_body) + d.flush()
    assert d.eof and not d.unused_data, "more than one gzip member"
    return out


def steady(body):
    """A body without the process_* sample lines."""
    return b"\n".join(l for l in body.split(b"\n") if not l.startswith(b"process_"))


def measure(binary, sim, work, n, scrapes, procs):
    cfg = os.path.join(work, f"t{n}.yml")
    rt.config(cfg, [rt.tenant_yaml(i, sim) for i in range(n)])
    port = rt.free_port()
    p = rt.exporter(procs, binary, cfg, port)
    url = f"http://127.0.0.1:{port}/metrics"
    assert rt.wait(f"http://127.0.0.1:{port}/-/ready", 300), f"{n} tenants not ready"
    time.sleep(2)
    t0 = cpu_ns(p.pid)
    gz = fetch(url, True)  # the first gzip scrape fills the segment cache
    first_gz_ms = (cpu_ns(p.pid) - t0) / 1e6
    plain = fetch(url, False)
    # The process_* samples (CPU time, RSS) move between two scrapes: compared without them.
    assert (steady(one_member(gz)) == steady(plain) and
            steady(gzip.decompress(gz)) == steady(plain)), "gzip body is not the plain body"
    series = sum(1 for l in plain.split(b"\n") if l and not l.startswith(b"#"))
    res = {}
    for enc, compressed in (("plain", False), ("gzip", True)):
        curl(url, 3, compressed)  # warm
        c0, w0 = cpu_ns(p.pid), time.perf_counter()
        curl(url, scrapes, compressed)
        cpu = (cpu_ns(p.pid) - c0) / scrapes
        wall = (time.perf_counter() - w0) / scrapes
        res[enc] = (cpu, wall)
        print(f"  {n} tenants, {enc:5s}: server CPU {cpu / 1e6:6.2f} ms/scrape = "
              f"{cpu / series:5.0f} ns/series; wall with curl {wall * 1e3:6.2f} ms "
              f"({wall * 1e9 / series:.0f} ns/series)", flush=True)
    ratio = res["gzip"][0] / res["plain"][0]
    print(f"scrape {n} tenants: {series} series, plain {len(plain)} bytes, gzip {len(gz)} bytes "
          f"({len(plain) / len(gz):.1f}x smaller); server CPU per series plain "
          f"{res['plain'][0] / series:.0f} ns, gzip {res['gzip'][0] / series:.0f} ns "
          f"(gzip/plain {ratio:.2f}x); first gzip scrape (cache empty) {first_gz_ms:.1f} ms CPU; "
          f"RSS {rt.rss_kib(p.pid) / 1024:.1f} MiB", flush=True)
    procs.stop(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--tenants", default="200,1000")
    ap.add_argument("--scrapes", type=int, default=200)
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    procs = rt.Procs()
    work = tempfile.mkdtemp(prefix="m365-bench-scrape-")
    try:
        sim_port = rt.free_port()
        sim = f"http://127.0.0.1:{sim_port}"
        procs.start([binary, "simulator", f"--listen=127.0.0.1:{sim_port}"])
        deadline = time.monotonic() + 10
        while not port_open(sim_port) and time.monotonic() < deadline:
            time.sleep(0.05)
        print(f"server CPU per scrape, {a.scrapes} scrapes with curl on one connection "
              f"(load: {os.getloadavg()[0]:.1f})")
        for n in (int(x) for x in a.tenants.split(",")):
            measure(binary, sim, work, n, a.scrapes, procs)
    finally:
        procs.close()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
