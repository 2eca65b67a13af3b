#!/usr/bin/env python3
"""A valid scrape during a flood of wrong passwords (`make bench-auth-flood`;
not a test; BENCHMARKS.md, issue 27):

    scripts/bench-auth-flood.py BIN [--scrapes 1000] [--flooders 2] [--threads 16] [--runs 3]

The release binary serves /metrics over TLS with one basic-auth user (bcrypt
cost 10, as an operator would hash it) for one tenant against `BIN
simulator`. Three kinds of process, each on its own, so that no client's
work is timed as the server's:

- flooders (FLOODERS processes of THREADS threads, each thread one keep-alive
  TLS connection): GET /metrics with a new wrong password every time, as
  fast as the answers come, until the scraper is done; every answer's status
  and time are kept;
- the scraper: one keep-alive TLS connection, the right password
  (remembered by the exporter after its first use), SCRAPES sequential
  scrapes, each timed from the request to the last byte of the body;
- the exporter itself.

Each run: the scraper alone first (the baseline), then again during the
flood, which starts 2 s before it. Printed: p50/p99/max of the valid scrape
(baseline and flood), of the refusals by status (401: a bcrypt comparison
said no; 429: every comparison slot was busy), their counts, and the load
average around the run. Run it under `nice -n -10` on a shared machine (the
make target does) so other builds disturb less; the children inherit it.
"""
import argparse
import base64
import http.client
import importlib.util
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("bench_runtime", os.path.join(HERE, "bench-runtime.py"))
rt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rt)

USER = "prometheus"
PASSWORD = "correct horse battery staple"
# bcrypt (cost 10) of PASSWORD, made once with Python's crypt (libxcrypt):
# a constant, so the script needs no bcrypt module.
HASH = "$2b$10$FLfYXeaG5P6T0Ruv9YxyH.a74H0Dbg4ET619se5yGblPkzOwo0tfC"


def auth(password):
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def connect(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)


def fetch(conn, headers):
    """One GET /metrics on `conn`: (status, seconds to the body's last byte)."""
    t = time.perf_counter()
    conn.request("GET", "/metrics", headers=headers)
    r = conn.getresponse()
    r.read()
    took = time.perf_counter() - t
    if r.getheader("Connection", "").lower() == "close":
        conn.close()
    return r.status, took


def scraper(port, cafile, n):
    """Role: N timed scrapes with the right password, as JSON on stdout."""
    conn = connect(port, cafile)
    status, _ = fetch(conn, auth(PASSWORD))  # remembered from here on
    assert status == 200, f"the right password got {status}"
    took, statuses = [], {}
    for _ in range(n):
        status, t = fetch(conn, auth(PASSWORD))
        statuses[status] = statuses.get(status, 0) + 1
        took.append(t)
    json.dump({"took": took, "statuses": statuses}, sys.stdout)


def flooder(port, cafile, threads, stop_file):
    """Role: wrong passwords from `threads` connections until `stop_file`."""
    results = []
    lock = threading.Lock()

    def one(k):
        conn, i, mine = connect(port, cafile), 0, []
        while not os.path.exists(stop_file):
            i += 1
            try:
                mine.append(fetch(conn, auth(f"guess {k}-{i}")))
            except (OSError, http.client.HTTPException):
                mine.append((0, 0.0))
                conn.close()
                conn = connect(port, cafile)
        with lock:
            results.extend(mine)

    ts = [threading.Thread(target=one, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    json.dump(results, sys.stdout)


def pct(xs, q):
    """The q-quantile (nearest rank) of xs, in ms."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, -(-len(s) * q // 1) - 1))
    return s[int(k)] * 1000


def summary(xs):
    return f"p50 {pct(xs, 0.5):.2f} / p99 {pct(xs, 0.99):.2f} / max {max(xs) * 1000:.1f} ms (n={len(xs)})"


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tls_files(work):
    cert, key = os.path.join(work, "server.crt"), os.path.join(work, "server.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def run_scraper(port, cafile, n):
    out = subprocess.run([sys.executable, __file__, "--role", "scrape", "--port", str(port),
                          "--cafile", cafile, "--scrapes", str(n)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?")
    ap.add_argument("--scrapes", type=int, default=1000)
    ap.add_argument("--flooders", type=int, default=2)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--role", choices=["scrape", "flood"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--cafile")
    ap.add_argument("--stop-file")
    a = ap.parse_args()
    if a.role == "scrape":
        return scraper(a.port, a.cafile, a.scrapes)
    if a.role == "flood":
        return flooder(a.port, a.cafile, a.threads, a.stop_file)

    procs = rt.Procs()
    work = tempfile.mkdtemp(prefix="auth-flood-")
    try:
        cert, key = tls_files(work)
        web = os.path.join(work, "web.yml")
        with open(web, "w") as f:
            f.write(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
                    f"basic_auth_users:\n  {USER}: '{HASH}'\n")
        sim = rt.simulator(procs, a.binary)
        cfg = os.path.join(work, "config.yml")
        rt.config(cfg, [rt.tenant_yaml(0, sim)])
        port = rt.free_port()
        exp = procs.start([a.binary, f"--config.file={cfg}", f"--web.config.file={web}",
                           f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"])
        end = time.monotonic() + 30
        while True:
            try:
                conn = connect(port, cert)
                if fetch(conn, auth(PASSWORD))[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < end and exp.poll() is None, "the exporter did not start"
            time.sleep(0.1)
        print(f"nice {os.nice(0)}; {a.flooders} flooders x {a.threads} connections; "
              f"{a.scrapes} valid scrapes per run; bcrypt cost 10")
        for run in range(1, a.runs + 1):
            before = load()
            base = run_scraper(port, cert, a.scrapes)
            stop = os.path.join(work, f"stop-{run}")
            flood = [subprocess.Popen([sys.executable, __file__, "--role", "flood", "--port", str(port),
                                       "--cafile", cert, "--threads", str(a.threads), "--stop-file", stop],
                                      stdout=subprocess.PIPE, text=True)
                     for _ in range(a.flooders)]
            time.sleep(2)
            t = time.monotonic()
            during = run_scraper(port, cert, a.scrapes)
            secs = time.monotonic() - t
            open(stop, "w").close()
            refusals = []
            for p in flood:
                out, _ = p.communicate()
                refusals.extend(json.loads(out))
            after = load()
            by = {}
            for status, took in refusals:
                by.setdefault(status, []).append(took)
            print(f"run {run} (load {before} -> {after}):")
            print(f"  valid, alone:       {summary(base['took'])} statuses {base['statuses']}")
            print(f"  valid, during flood: {summary(during['took'])} statuses {during['statuses']}")
            for status in sorted(by):
                print(f"  wrong password -> {status}: {len(by[status])} ({len(by[status]) / secs:.0f}/s), "
                      f"{summary(by[status]) if status else 'connection errors'}")
            assert set(during["statuses"]) == {"200"}, during["statuses"]  # JSON keys are text
            assert 200 not in by, "a wrong password got in"
    finally:
        procs.close()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
