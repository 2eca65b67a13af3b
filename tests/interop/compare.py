#!/usr/bin/env python3
"""Compare what m365-exporter reports with what the independent fake served.

Expected values are derived here from the fake's raw served data (/_truth)
by the rules the exporter documents (docs/metrics.md, README.md), and from
the fake's request log (/_requests).  The exporter's /metrics is polled until
every check passes on two consecutive rounds or the deadline passes; then the
last round's diff is printed.

Usage: compare.py --fake URL --exporter URL --tenant NAME
                  [--operations a,b] [--wait 90] [--label clean]
Last line: "RESULT <label> passed=N failed=M".
"""

import argparse
import json
import math
import re
import sys
import time
import urllib.request
from datetime import datetime, timezone

OPERATIONAL = {"serviceOperational", "serviceRestored", "falsePositive",
               "postIncidentReviewPublished", "resolved", "resolvedExternal",
               "mitigated", "mitigatedExternal"}
CATEGORIES = ["preventOrFixIssue", "planForChange", "stayInformed"]
SEVERITIES = ["normal", "high", "critical"]
CONTENT_TYPES = ["Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint",
                 "Audit.General", "DLP.All"]
# Graph v1.0 schema's enum members: a value matching one in any case is
# exported in this spelling; anything else verbatim.
ENUMS = {
    "status": ["serviceOperational", "investigating", "restoringService", "verifyingService",
               "serviceRestored", "postIncidentReviewPublished", "serviceDegradation",
               "serviceInterruption", "extendedRecovery", "falsePositive", "investigationSuspended",
               "resolved", "mitigatedExternal", "mitigated", "resolvedExternal", "confirmed",
               "reported", "unknownFutureValue"],
    "classification": ["advisory", "incident", "unknownFutureValue"],
    "origin": ["microsoft", "thirdParty", "customer", "unknownFutureValue"],
    "category": ["preventOrFixIssue", "planForChange", "stayInformed", "unknownFutureValue"],
    "severity": ["normal", "high", "critical", "unknownFutureValue"],
}


def canon(field, v):
    if v is None:
        return v
    for m in ENUMS[field]:
        if m.lower() == v.lower():
            return m
    return v


def canonical(obj):
    """A Graph object with its enum values in the schema's spelling."""
    out = dict(obj)
    for f in ENUMS:
        if isinstance(out.get(f), str):
            out[f] = canon(f, out[f])
    return out


def error_label(code, status):
    """The exporter's error_code label of an answer: the code when it is one
    (a non-code, e.g. a split exception text, is no code), else HTTP<status>."""
    if code and re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", code):
        return code
    return "HTTP%d" % status


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8")


# ------------------------------------------------------------ exposition parser

def parse_labels(s, i):
    """s[i] == '{'; return (labels dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        while s[i] in " ,":
            i += 1
        if s[i] == "}":
            return labels, i + 1
        eq = s.index("=", i)
        name = s[i:eq].strip()
        assert s[eq + 1] == '"', s
        j = eq + 2
        val = []
        while s[j] != '"':
            if s[j] == "\\":
                nxt = s[j + 1]
                val.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
                j += 2
            else:
                val.append(s[j])
                j += 1
        labels[name] = "".join(val)
        i = j + 1


def parse_metrics(text):
    """name -> list of (labels dict, value)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        b = line.find("{")
        sp = line.find(" ")
        if b != -1 and (sp == -1 or b < sp):
            name = line[:b]
            labels, k = parse_labels(line, b)
            rest = line[k:].split()
        else:
            name = line[:sp]
            labels = {}
            rest = line[sp:].split()
        out.setdefault(name, []).append((labels, float(rest[0])))
    return out


def series(metrics, name, tenant):
    """{frozenset(labels without tenant, without empty values): value}."""
    d = {}
    for labels, v in metrics.get(name, []):
        if labels.get("tenant") != tenant:
            continue
        key = frozenset((k, v2) for k, v2 in labels.items() if k != "tenant" and v2 != "")
        d[key] = v
    return d


def fmt_key(k):
    return "{" + ",".join('%s="%s"' % kv for kv in sorted(k)) + "}"


def graph_ts(s):
    """Graph DateTimeOffset -> unix seconds (any number of fractional digits)."""
    if s is None:
        return None
    s = s.strip()
    assert s.endswith("Z"), s
    s = s[:-1]
    frac = 0.0
    if "." in s:
        s, f = s.split(".")
        frac = float("0." + f)
    dt = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return dt.timestamp() + frac


def record_ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


# ------------------------------------------------------------ expectations

def expected_health(truth, now):
    # Served PascalCase or camelCase: expected in the schema's camelCase.
    g = {k: [canonical(o) for o in v] for k, v in truth["graph"].items()}
    ov = g["healthOverviews"]
    exp = {}

    def put(fam, labels, v):
        exp.setdefault(fam, {})[frozenset((k, x) for k, x in labels.items() if x != "")] = v

    id_by_name = {o["service"]: o["id"] for o in ov}
    for o in ov:
        put("m365_service_info", {"service_id": o["id"], "service_name": o["service"]}, 1)
        put("m365_service_status", {"service_id": o["id"], "status": o["status"]}, 1)
        put("m365_service_operational", {"service_id": o["id"]}, 1 if o["status"] in OPERATIONAL else 0)
        for c in ("incident", "advisory"):
            put("m365_service_issues_active", {"service_id": o["id"], "classification": c}, 0)
    for fam in ("m365_service_issue_info", "m365_service_issue_start_timestamp_seconds",
                "m365_service_issue_last_update_timestamp_seconds"):
        exp.setdefault(fam, {})
    for i in g["issues"]:
        if i["isResolved"]:
            continue
        # issues name the service by display name; one absent from healthOverviews
        # has no id, so its name is the only identifier there is
        sid = id_by_name.get(i["service"], i["service"])
        key = frozenset({"service_id": sid, "classification": i["classification"]}.items())
        exp["m365_service_issues_active"][key] = exp["m365_service_issues_active"].get(key, 0) + 1
        put("m365_service_issue_info", {
            "issue_id": i["id"], "service_id": sid, "classification": i["classification"],
            "status": i["status"], "origin": i["origin"] or "", "feature_group": i["featureGroup"] or "",
            "title": i["title"] or ""}, 1)
        if i["startDateTime"]:
            put("m365_service_issue_start_timestamp_seconds", {"issue_id": i["id"]}, graph_ts(i["startDateTime"]))
        if i["lastModifiedDateTime"]:
            put("m365_service_issue_last_update_timestamp_seconds", {"issue_id": i["id"]},
                graph_ts(i["lastModifiedDateTime"]))
    for c in CATEGORIES:
        for s in SEVERITIES:
            put("m365_service_messages", {"category": c, "severity": s}, 0)
    for s in SEVERITIES:
        put("m365_service_messages_major_change", {"severity": s}, 0)
        put("m365_service_messages_action_required", {"severity": s}, 0)
    nxt = None
    for m in g["messages"]:
        k = frozenset({"category": m["category"], "severity": m["severity"]}.items())
        exp["m365_service_messages"][k] = exp["m365_service_messages"].get(k, 0) + 1
        ks = frozenset({"severity": m["severity"]}.items())
        if m["isMajorChange"] is True:
            exp["m365_service_messages_major_change"][ks] += 1
        t = graph_ts(m["actionRequiredByDateTime"])
        if t is not None and t > now:
            exp["m365_service_messages_action_required"][ks] += 1
            nxt = t if nxt is None else min(nxt, t)
    exp["m365_service_message_next_action_required_timestamp_seconds"] = {}
    if nxt is not None:
        put("m365_service_message_next_action_required_timestamp_seconds", {}, nxt)
    return exp


# The track record's window: service_health.history_window's default.
HISTORY_WINDOW = 30 * 86400
TRACKED = ("incident", "advisory")


def union_length(spans):
    total, cur = 0.0, None
    for s, e in sorted(spans):
        if cur is not None and s <= cur[1]:
            cur = (cur[0], max(cur[1], e))
        else:
            if cur is not None:
                total += cur[1] - cur[0]
            cur = (s, e)
    return total + (cur[1] - cur[0] if cur is not None else 0.0)


def expected_track_record(truth, now):
    """The track-record families, read independently from the served issues
    by docs/track-record.md's rules: resolved issues cover [start, end],
    open ones [start, now], clipped to the window; falsePositive nowhere;
    the union per service and classification; enums in any case."""
    g = truth["graph"]
    ov = g["healthOverviews"]
    id_by_name = {o["service"]: o["id"] for o in ov}
    lo = now - HISTORY_WINDOW
    per = {}

    def rec(sid):
        return per.setdefault(sid, {"pir": 0, **{c: {"spans": [], "started": 0, "resolved": 0, "ttr": []}
                                                 for c in TRACKED}})

    for o in ov:
        rec(o["id"])
    for i in g["issues"]:
        cls = (i.get("classification") or "").lower()
        status = (i.get("status") or "").lower()
        if cls not in TRACKED or status == "falsepositive":
            continue
        start = graph_ts(i.get("startDateTime"))
        if start is None:
            continue
        end = (graph_ts(i.get("endDateTime")) or graph_ts(i.get("lastModifiedDateTime"))) if i["isResolved"] else now
        if end is None:
            continue
        end = max(end, start)
        if start > now or end < lo:
            continue
        r = rec(id_by_name.get(i["service"], i["service"]))
        f = r[cls]
        f["spans"].append((max(start, lo), min(end, now)))
        if lo <= start <= now:
            f["started"] += 1
        if i["isResolved"] and lo <= end <= now:
            f["resolved"] += 1
            f["ttr"].append(end - start)
        if status == "postincidentreviewpublished":
            r["pir"] += 1
    exp = {f: {} for f in ("m365_service_history_window_seconds", "m365_service_impact_seconds",
                           "m365_service_availability_ratio", "m365_service_issues_started",
                           "m365_service_issues_resolved", "m365_service_time_to_resolve_mean_seconds",
                           "m365_service_time_to_resolve_max_seconds", "m365_service_post_incident_reviews")}
    exp["m365_service_history_window_seconds"][frozenset()] = HISTORY_WINDOW
    for sid, r in per.items():
        k = frozenset({"service_id": sid}.items())
        impact = {c: union_length(r[c]["spans"]) for c in TRACKED}
        exp["m365_service_availability_ratio"][k] = 1 - impact["incident"] / HISTORY_WINDOW
        exp["m365_service_post_incident_reviews"][k] = r["pir"]
        for c in TRACKED:
            kc = frozenset({"service_id": sid, "classification": c}.items())
            exp["m365_service_impact_seconds"][kc] = impact[c]
            exp["m365_service_issues_started"][kc] = r[c]["started"]
            exp["m365_service_issues_resolved"][kc] = r[c]["resolved"]
            if r[c]["ttr"]:
                exp["m365_service_time_to_resolve_mean_seconds"][kc] = sum(r[c]["ttr"]) / len(r[c]["ttr"])
                exp["m365_service_time_to_resolve_max_seconds"][kc] = max(r[c]["ttr"])
    return exp


def expected_reconcile(truth):
    """The reconciler's figures as the fake counts them: per audit-log query
    (what the fake answered), each record it served is matched when a listed
    blob the exporter could fetch holds it, else missing, and repaired (the
    fake never lists it, so only the query's auditData can deliver it)."""
    delivered = set()
    full = {}
    for b in truth["blobs"] + truth.get("unlisted", []):
        for rec in b["full"]:
            full.setdefault(rec["Id"].lower(), (b["contentType"], rec))
    for b in truth["blobs"]:
        if not b["gone"]:
            delivered.update(r[0].lower() for r in b["records"])
    rec = {"windows": {"complete": 0, "repaired": 0, "incomplete": 0, "failed": 0},
           "records": {ct: {"matched": 0, "missing": 0, "repaired": 0} for ct in CONTENT_TYPES},
           "repaired": {}, "until": None, "queries": truth.get("queries", [])}
    for q in rec["queries"]:
        if q["fails"]:
            rec["windows"]["failed"] += 1
            continue
        missing = 0
        for rid, ct in q["records"]:
            if rid.lower() in delivered:
                rec["records"][ct]["matched"] += 1
            else:
                missing += 1
                rec["records"][ct]["missing"] += 1
                rec["records"][ct]["repaired"] += 1
                rec["repaired"][rid.lower()] = full[rid.lower()]
        rec["windows"]["repaired" if missing else "complete"] += 1
        rec["until"] = q["end"] if rec["until"] is None else max(rec["until"], q["end"])
    rec["delivered"] = delivered
    rec["full"] = full
    return rec


def expected_activity(truth, operations, repaired=None):
    """Per content type, what the feed counts; `repaired`: Id -> (content
    type, record) written from the Audit Log Query API (counted like any
    record, without a delay)."""
    per = {ct: {"blobs": 0, "gone": 0, "records": {}, "dups": 0, "unique": 0,
                "repaired": 0, "newest": None} for ct in CONTENT_TYPES}
    seen = set()
    # A duplicated record's delay is measured against whichever of its blobs
    # the exporter applied first, which throttling may reorder: bound it.
    delays = {}
    for b in truth["blobs"]:
        ct = b["contentType"]
        p = per[ct]
        p["blobs"] += 1
        created = b["contentCreatedUnix"]
        p["newest"] = created if p["newest"] is None else max(p["newest"], created)
        if b["gone"]:  # AF20051: never served, its records are lost
            p["gone"] += 1
            continue
        for rid, workload, op, ctime in b["records"]:
            delays.setdefault((ct, rid.lower()), []).append(max(0.0, created - record_ts(ctime)))
            if rid.lower() in seen:
                p["dups"] += 1
                continue
            seen.add(rid.lower())
            p["unique"] += 1
            lab = {"workload": workload}
            if op in operations:
                lab["operation"] = op
            k = frozenset(lab.items())
            p["records"][k] = p["records"].get(k, 0) + 1
    for ct, r in (repaired or {}).values():
        p = per[ct]
        p["unique"] += 1
        p["repaired"] += 1
        lab = {"workload": r["Workload"]}
        if r["Operation"] in operations:
            lab["operation"] = r["Operation"]
        k = frozenset(lab.items())
        p["records"][k] = p["records"].get(k, 0) + 1
    for ct in CONTENT_TYPES:
        ds = [d for (c, _), d in delays.items() if c == ct]
        # the exporter keeps contentCreated in whole seconds: up to 1 s less per record
        per[ct]["delay_lo"] = sum(min(d) for d in ds) - len(ds) - 0.01
        per[ct]["delay_hi"] = sum(max(d) for d in ds) + 0.01
    return per


# ------------------------------------------------------------ checks

class Checks:
    def __init__(self):
        self.results = []   # (name, ok, detail)

    def add(self, name, ok, detail=""):
        self.results.append((name, bool(ok), detail))

    def compare_family(self, fam, exp, got, tol=0.0):
        lines = []
        for k in sorted(set(exp) | set(got), key=fmt_key):
            e, g = exp.get(k), got.get(k)
            if e is None:
                lines.append("  extra    %s%s = %g" % (fam, fmt_key(k), g))
            elif g is None:
                lines.append("  missing  %s%s (want %r)" % (fam, fmt_key(k), e))
            elif abs(e - g) > tol:
                lines.append("  differs  %s%s got %r want %r" % (fam, fmt_key(k), g, e))
        self.add("%s (%d series)" % (fam, len(exp)), not lines, "\n".join(lines))

    @property
    def failed(self):
        return [r for r in self.results if not r[1]]


def read_sink(path):
    """The exporter's output file: one JSON object per line (a last line
    still being written is left for the next round)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    lines = data.split(b"\n")
    return [json.loads(x) for x in lines[:-1] if x.strip()]


def check_reconcile(c, args, truth, metrics, reqs, recon):
    """activity.reconcile against the fake's Audit Log Query API: the window
    queried, the counters, and the sink (every record of the fake's truth
    exactly once, the repaired ones as the Management API serves them)."""
    T = args.tenant
    creates = [r for r in reqs if r.get("list") == "audit_query_create" and r["status"] == 201]
    ok = [q for q in recon["queries"] if not q["fails"]]
    c.add("audit-log queries: %d failed as the fake made them (%d), then one that succeeded (%d)" % (
        sum(1 for q in recon["queries"] if q["fails"]), truth["failed_queries"], len(ok)),
        len(ok) == 1 and len(creates) == truth["failed_queries"] + 1,
        "  queries: %r" % [(q["id"], q["fails"], len(q["records"])) for q in recon["queries"]])
    started = truth["started"]
    for q in recon["queries"]:
        # the first window: from the feed's lookback (30 h) to the last
        # midnight UTC (window: 24h, settle: 0s). The exporter's lookback
        # start is whole seconds, the fake's start time is not: an exporter
        # started within the fake's second starts up to 1 s before it.
        c.add("query %s... over [lookback start, last midnight UTC)" % q["id"][:8],
              -1 < q["start"] - (started - 30 * 3600) <= 60 and q["end"] % 86400 == 0
              and started - 86400 < q["end"] <= time.time(),
              "  window %s .. %s, fake started %s" % (q["start"], q["end"], started))
    gets = [r for r in reqs if r.get("list") == "audit_query_get" and r["status"] == 200]
    c.add("query status polled until done (%s)" % ",".join(r.get("query_status", "?") for r in gets),
          any(r.get("query_status") in ("succeeded", "failed") for r in gets))
    pages = [r for r in reqs if r.get("list") == "audit_query_records" and r["status"] == 200]
    served = sum(len(q["records"]) for q in ok)
    c.add("every records page read, following @odata.nextLink (%d pages)" % len(pages),
          any(r.get("items", 0) for r in pages) or served == 0)

    got = series(metrics, "m365_activity_reconcile_windows_total", T)
    for result, want in recon["windows"].items():
        g = got.get(frozenset({"result": result}.items()))
        c.add("m365_activity_reconcile_windows_total{result=%s} == %d" % (result, want), g == want,
              "got %r" % g)
    got = series(metrics, "m365_activity_reconcile_records_total", T)
    gauge = series(metrics, "m365_activity_reconcile_missing_records", T)
    for ct in CONTENT_TYPES:
        for result, want in recon["records"][ct].items():
            g = got.get(frozenset({"content_type": ct, "result": result}.items()))
            c.add("m365_activity_reconcile_records_total{content_type=%s,result=%s} == %d" % (ct, result, want),
                  g == want, "got %r" % g)
        g = gauge.get(frozenset({"content_type": ct}.items()))
        c.add("m365_activity_reconcile_missing_records{content_type=%s} == 0" % ct, g == 0, "got %r" % g)
    g = series(metrics, "m365_activity_reconciled_until_timestamp_seconds", T).get(frozenset())
    c.add("m365_activity_reconciled_until_timestamp_seconds == the window's end (%r)" % recon["until"],
          g is not None and g == recon["until"], "got %r" % g)
    g = series(metrics, "m365_activity_reconcile_stalled_after_seconds", T).get(frozenset())
    c.add("m365_activity_reconcile_stalled_after_seconds == settle + window + 2 x interval (86420)",
          g == 86420, "got %r" % g)

    # The sink: each record the feed delivered or the reconciler repaired,
    # exactly once, as the Management API serves it.
    lines = read_sink(args.sink)
    want = set(recon["delivered"]) | set(recon["repaired"])
    if lines is None:
        c.add("the sink %s exists" % args.sink, False)
        return
    counts, differ = {}, []
    for obj in lines:
        rid = str(obj.get("Id", "")).lower()
        counts[rid] = counts.get(rid, 0) + 1
        exp = recon["full"].get(rid)
        if exp is not None and obj != exp[1]:
            differ.append("  %s: %s" % (rid, json.dumps(obj, sort_keys=True)[:300]))
    twice = [k for k, v in counts.items() if v > 1]
    absent = sorted(want - set(counts))
    extra = sorted(set(counts) - want)
    c.add("the sink holds every record of the fake's truth exactly once (%d records, %d repaired)" % (
        len(want), len(recon["repaired"])),
        not twice and not absent and not extra,
        "  twice: %s\n  missing: %s\n  unexpected: %s" % (twice[:5], absent[:5], extra[:5]))
    c.add("each sink line is its record as the Management API serves it (no Graph annotation)",
          not differ, "\n".join(differ[:5]))


def evaluate(args, truth, metrics, reqs_before, reqs_after):
    c = Checks()
    T = args.tenant
    now = time.time()
    ops = set(x for x in args.operations.split(",") if x)

    # --- the exporter's own endpoints (/metrics, /probe)
    ctype = metrics.pop("__content_type__")
    c.add("/metrics Content-Type is text/plain; version=0.0.4; charset=utf-8",
          ctype == "text/plain; version=0.0.4; charset=utf-8", "got %r" % ctype)
    probe = parse_metrics(metrics.pop("__probe__"))
    diffs = []
    for name in sorted(n for n in metrics if n.startswith("m365_service") or n.startswith("m365_activity_content")):
        a, b = series(metrics, name, T), series(probe, name, T)
        if a != b:
            diffs.append("  %s: /metrics %d series, /probe %d" % (name, len(a), len(b)))
    c.add("/probe?target=%s serves the tenant's service and content series as /metrics does" % T,
          not diffs, "\n".join(diffs))

    # --- exporter health
    for coll in ("service_health", "messages", "activity", "app_credentials"):
        want = 0 if coll == "activity" and truth.get("audit_off") else 1
        got = series(metrics, "m365_collector_success", T).get(frozenset({"collector": coll}.items()))
        c.add("m365_collector_success{collector=%s} == %d" % (coll, want), got == want, "got %r" % got)

    # --- service health and messages, every family of docs/metrics.md
    exp = expected_health(truth, now)
    for fam, e in exp.items():
        tol = 0.0015 if "timestamp" in fam else 0.0
        c.compare_family(fam, e, series(metrics, fam, T), tol)

    # --- the track record, from the same issues (open ones grow with the
    # clock: the exporter's refresh and this reading are seconds apart;
    # timestamps are kept to the millisecond)
    for fam, e in expected_track_record(truth, now).items():
        tol = {"m365_service_impact_seconds": 10.0,
               "m365_service_availability_ratio": 10.0 / HISTORY_WINDOW}.get(fam, 0.01)
        c.compare_family(fam, e, series(metrics, fam, T), tol)

    # --- the app registration's own credentials (collector app_credentials)
    app = truth["application"]
    want = {}
    for typ, key in (("secret", "passwordCredentials"), ("certificate", "keyCredentials")):
        for cred in app[key] or []:
            want[frozenset({"type": typ, "key_id": cred["keyId"]}.items())] = graph_ts(cred["endDateTime"])
    c.compare_family("m365_app_credential_expiry_timestamp_seconds", want,
                     series(metrics, "m365_app_credential_expiry_timestamp_seconds", T), 0.0015)
    app_reqs = [r for r in reqs_after if r.get("list") == "applications"]
    c.add("applications(appId=...) asked with $select=passwordCredentials,keyCredentials",
          app_reqs and all(sorted(r.get("select") or []) == ["keyCredentials", "passwordCredentials"]
                           for r in app_reqs if r["status"] == 200),
          "requests: %r" % [(r["path"], r.get("select")) for r in app_reqs[:3]])

    # --- activity
    recon = expected_reconcile(truth) if args.sink else None
    act = expected_activity(truth, ops, recon["repaired"] if recon else None)
    total_records = 0
    audit_off = truth.get("audit_off")
    for ct in ([] if audit_off else CONTENT_TYPES):
        p = act[ct]
        total_records += p["unique"]
        ctk = frozenset({"content_type": ct}.items())

        def one(fam, want, tol=0.0):
            got = series(metrics, fam, T).get(ctk)
            ok = got is not None and want is not None and abs(got - want) <= tol
            c.add("%s{content_type=%s} == %s" % (fam, ct, want if want is None else round(want, 3)),
                  ok, "got %r want %r" % (got, want))

        one("m365_activity_subscription_enabled", 1)
        one("m365_activity_content_listed_total", p["blobs"])
        one("m365_activity_content_fetched_total", p["blobs"] - p["gone"])
        one("m365_activity_content_expired_total", p["gone"])
        one("m365_activity_listing_gaps_total", 0)
        one("m365_activity_backlog_blobs", 0)
        one("m365_activity_blob_lag_seconds", 0)
        one("m365_activity_records_duplicate_total", p["dups"])
        one("m365_activity_record_delay_seconds_count", p["unique"] - p["repaired"])
        got = series(metrics, "m365_activity_record_delay_seconds_sum", T).get(ctk)
        c.add("m365_activity_record_delay_seconds_sum{content_type=%s} in [%.0f, %.0f]" % (ct, p["delay_lo"], p["delay_hi"]),
              got is not None and p["delay_lo"] <= got <= p["delay_hi"], "got %r" % got)
        one("m365_activity_last_content_created_timestamp_seconds", p["newest"], tol=1.0)
        got = {}
        for k, v in series(metrics, "m365_activity_records_total", T).items():
            d = dict(k)
            if d.pop("content_type", None) == ct:
                got[frozenset(d.items())] = v
        # zero-valued series are fine (counters pre-created); compare non-zero
        got = {k: v for k, v in got.items() if v != 0}
        c.compare_family("m365_activity_records_total{content_type=%s} %d records" % (ct, p["unique"]),
                         p["records"], got)

    if recon is not None:
        check_reconcile(c, args, truth, metrics, reqs_after, recon)

    # --- the fake's request log
    reqs = reqs_after
    mgmt = [r for r in reqs if r["api"] == "management"]
    if audit_off:
        # The unified audit log off (split %s): reported as such, /start
        # once per content type (again only after 15 minutes), nothing listed.
        starts = [r for r in mgmt if r.get("op") == "subscriptions/start"]
        listed = [r for r in mgmt if r.get("op") in ("subscriptions/content", "audit")]
        c.add("audit log off (%s split): /start once per content type (%d), nothing listed (%d)" % (
            audit_off, len(starts), len(listed)),
            sorted(r.get("contentType") for r in starts) == sorted(CONTENT_TYPES) and not listed,
            "  starts: %r" % [r.get("contentType") for r in starts])
        for ct in CONTENT_TYPES:
            got = series(metrics, "m365_activity_subscription_enabled", T).get(frozenset({"content_type": ct}.items()))
            c.add("m365_activity_subscription_enabled{content_type=%s} == 0" % ct, got == 0, "got %r" % got)
        page = metrics.get("__status_page__", "")
        c.add("the status page says the unified audit log is off",
              "unified audit log off" in page, "page: %r" % page[:300])
    missing = [r for r in mgmt if r["publisher"] is None]
    wrong = [r for r in mgmt if r["publisher"] not in (None, truth["publisher_id"])]
    c.add("PublisherIdentifier on every management request (%d requests)" % len(mgmt),
          not missing and not wrong,
          "\n".join("  %s %s %s?%s" % ("missing" if r["publisher"] is None else "wrong=" + r["publisher"],
                                       r["method"], r["path"], r["query"]) for r in (missing + wrong)[:20]))
    revoked_at = truth.get("revoked_at")
    unauth = [r for r in reqs if r.get("auth") and r["auth"] != "revoked"]
    late401 = [r for r in reqs if r.get("auth") == "revoked" and r["t"] > revoked_at + 5]
    if truth.get("revoke_after", -1) >= 0:
        # asked for: the check below must not vanish because the timer has not fired
        c.add("the fake revoked every token (--revoke-after %gs)" % truth["revoke_after"],
              revoked_at is not None, "  the revocation timer has not fired")
    if revoked_at is not None:
        n401 = sum(1 for r in reqs if r.get("auth") == "revoked")
        c.add("after a token revocation the exporter renews at once (%d x 401, none later than 5 s)" % n401,
              not late401, "\n".join("  %.1fs after revocation: %s %s" % (r["t"] - revoked_at, r["method"], r["path"])
                                     for r in late401[:10]))
    c.add("every Graph/Management call carries a valid bearer token of the API's audience",
          not unauth, "\n".join("  %s %s %s: %s" % (r["api"], r["method"], r["path"], r["auth"]) for r in unauth[:20]))
    rejected = [r for r in reqs if r["api"] in ("graph", "management", "login", "openid", "unknown")
                and r["status"] >= 400 and not r.get("throttled") and not r.get("transient")
                and r.get("code") != "AF20051" and r.get("auth") != "revoked"
                and not (audit_off and r.get("op") == "subscriptions/start")
                and not (r.get("op") == "subscriptions/content" and r["status"] == 400
                         and r.get("contentType") in truth["unsubscribed_at_start"])]
    c.add("no request rejected by the fake (bad window, bad route, bad token request)",
          not rejected, "\n".join("  %s %s %s?%s -> %s %s" % (r["api"], r["method"], r["path"], r["query"], r["status"],
                                                            r.get("window", "")) for r in rejected[:20]))

    blobs = [] if audit_off else truth["blobs"]
    gets = [r for r in mgmt if r.get("op") == "audit"]
    throttled = [r for r in gets if r.get("throttled")]
    ok200 = {}
    for r in gets:
        if r["status"] == 200 or r.get("code") == "AF20051":
            ok200[r["contentId"]] = ok200.get(r["contentId"], 0) + 1
    c.add("blob GETs (%d) == blobs (%d) + throttled retries (%d)" % (len(gets), len(blobs), len(throttled)),
          len(gets) == len(blobs) + len(throttled),
          "  blobs fetched more than once: %s\n  never fetched: %s" % (
              [k for k, v in ok200.items() if v > 1][:5],
              [b["contentId"] for b in blobs if b["contentId"] not in ok200][:5]))
    if truth.get("domain"):
        # tenant_id is the domain: the GUID looked up once (discovery), then
        # in every Management URL (the fake answers AF20013 otherwise).
        lookups = [r for r in reqs if r["api"] == "openid"]
        guid_paths = all("/%s/activity/feed/" % truth["tenant_id"] in r["path"] for r in mgmt)
        c.add("a domain tenant_id: one discovery lookup (%d), the GUID in every Management URL" % len(lookups),
              len(lookups) == 1 and guid_paths and mgmt,
              "  paths: %r" % sorted({r["path"].split("/activity/")[0] for r in mgmt})[:5])

    # tokens: one per audience per lifetime
    life = truth["token_lifetime"]
    auds = {truth["graph_root"]: [], truth["management_root"]: []}
    if truth.get("imds_updating"):
        # A managed identity while IMDS's host is updated: 404, then 410,
        # retried (not reported) until tokens come; every attempt counted.
        imds = [r for r in reqs if r.get("imds")]
        statuses = [r["status"] for r in imds]
        failures = sum(v for k, v in series(metrics, "m365_auth_token_requests_total", T).items()
                       if dict(k).get("result") == "failure")
        c.add("IMDS updating: 404 and 410 retried until a token (%s), each attempt counted (%g failures)" % (
            ",".join(str(x) for x in statuses[:12]), failures),
            404 in statuses and 410 in statuses and statuses.count(200) >= 2
            and failures == sum(1 for x in statuses if x != 200),
            "  answers: %r" % statuses)
    # Issued tokens (IMDS's 404/410 while updating are attempts, not issues).
    logins = [r for r in reqs if r["api"] == "login" and r["status"] == 200]
    for r in logins:
        auds.setdefault(r.get("audience"), []).append(r["t"])
    detail = []
    ok = True
    for aud, ts in auds.items():
        ts.sort()
        span = (ts[-1] - ts[0]) if ts else 0
        allowed = 1 + int(span // (0.5 * life)) if ts else 1
        # a revocation legitimately forces one early renewal per audience
        gaps = [b - a for a, b in zip(ts, ts[1:])
                if not (revoked_at is not None and a <= revoked_at < b)]
        if revoked_at is not None and any(t > revoked_at for t in ts):
            allowed += 1
        if not ts or len(ts) > allowed or any(g < 0.5 * life for g in gaps):
            ok = False
        detail.append("  %s: %d token requests over %.0fs (lifetime %ds), gaps %s" % (
            aud, len(ts), span, life, [round(g, 1) for g in gaps]))
    c.add("token requests <= 1 per audience per token lifetime (%s)" % ", ".join(
        "%d" % len(v) for v in auds.values()), ok, "\n".join(detail))

    # the exporter's own API counters vs. what the fake saw (bounded by the
    # request log taken before and after the scrape)
    def counted(rs, api, pred=lambda r: True):
        return sum(1 for r in rs if r["api"] == api and pred(r))

    def fake_op(r):
        if r["api"] == "graph":
            return r.get("list")
        return {"subscriptions/list": "subscriptions_list", "subscriptions/start": "subscriptions_start",
                "subscriptions/content": "content_list", "audit": "blob"}.get(r.get("op"), r.get("op"))

    for api in ("graph", "management"):
        mine = {}
        for k, v in series(metrics, "m365_api_requests_total", T).items():
            d = dict(k)
            if d.get("api") == api:
                key = (d.get("operation"), d.get("code"))
                mine[key] = mine.get(key, 0) + v
        theirs = {}
        for r in reqs_after:
            if r["api"] == api:
                key = (fake_op(r), str(r["status"]))
                theirs[key] = theirs.get(key, 0) + 1
        got = sum(mine.values())
        lo, hi = counted(reqs_before, api), counted(reqs_after, api)
        c.add("m365_api_requests_total{api=%s} (%g) == requests the fake answered [%d..%d]" % (api, got, lo, hi),
              lo <= got <= hi, "\n".join("  operation=%s code=%s: exporter %g, fake %d" % (k[0], k[1], mine.get(k, 0), theirs.get(k, 0))
                                         for k in sorted(set(mine) | set(theirs), key=str) if mine.get(k, 0) != theirs.get(k, 0)))
        got = sum(v for k, v in series(metrics, "m365_api_throttled_total", T).items() if dict(k).get("api") == api)
        lo = counted(reqs_before, api, lambda r: r.get("throttled"))
        hi = counted(reqs_after, api, lambda r: r.get("throttled"))
        c.add("m365_api_throttled_total{api=%s} (%g) == throttled answers [%d..%d]" % (api, got, lo, hi),
              lo <= got <= hi)
    # error answers by Microsoft's error code
    for api in ("graph", "management"):
        mine = {}
        for k, v in series(metrics, "m365_api_errors_total", T).items():
            d = dict(k)
            if d.get("api") == api:
                mine[d.get("error_code")] = mine.get(d.get("error_code"), 0) + v
        lo, hi = {}, {}
        for rs, into in ((reqs_before, lo), (reqs_after, hi)):
            for r in rs:
                if r["api"] == api and r["status"] >= 400:
                    code = error_label(r.get("code"), r["status"])
                    into[code] = into.get(code, 0) + 1
        bad = [(k, mine.get(k, 0), lo.get(k, 0), hi.get(k, 0)) for k in sorted(set(mine) | set(hi))
               if not lo.get(k, 0) <= mine.get(k, 0) <= hi.get(k, 0)]
        c.add("m365_api_errors_total{api=%s} by error_code == error answers %s" % (api, json.dumps(hi, sort_keys=True)),
              not bad, "\n".join("  error_code=%s: exporter %g, fake [%d..%d]" % b for b in bad))

    # the cached token's expiry: issued + expires_in, per audience
    exp_gauge = series(metrics, "m365_auth_token_expiry_timestamp_seconds", T)
    for aud, ts in auds.items():
        got = exp_gauge.get(frozenset({"audience": aud}.items()))
        want = (ts[-1] + life) if ts else None
        c.add("m365_auth_token_expiry_timestamp_seconds{audience=%s} == last issue + %ds" % (aud, life),
              got is not None and want is not None and abs(got - want) <= 3,
              "got %r want %r (labels seen: %s)" % (got, want, [fmt_key(k) for k in exp_gauge]))

    got = sum(v for k, v in series(metrics, "m365_auth_token_requests_total", T).items())
    lo, hi = counted(reqs_before, "login"), counted(reqs_after, "login")
    c.add("m365_auth_token_requests_total (%g) == token requests [%d..%d]" % (got, lo, hi), lo <= got <= hi)

    stats = {
        "series_compared": sum(len(e) for e in exp.values()) + sum(len(a["records"]) for a in act.values()) + 11 * len(CONTENT_TYPES),
        "records_unique": total_records,
        "records_served": sum(len(b["records"]) for b in blobs),
        "blobs": len(blobs),
        "blob_gets": len(gets),
        "blob_throttled": len(throttled),
        "listing_calls": sum(1 for r in mgmt if r.get("op") == "subscriptions/content"),
        "listing_throttled": sum(1 for r in mgmt if r.get("op") == "subscriptions/content" and r.get("throttled")),
        "graph_calls": counted(reqs, "graph"),
        "graph_throttled": counted(reqs, "graph", lambda r: r.get("throttled")),
        "token_requests": {a: len(v) for a, v in auds.items()},
        "management_calls": len(mgmt),
    }
    return c, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fake", required=True)
    ap.add_argument("--exporter", required=True)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--operations", default="")
    ap.add_argument("--wait", type=float, default=90)
    ap.add_argument("--label", default="run")
    ap.add_argument("--sink", default=None, help="the exporter's activity.output (with reconcile)")
    ap.add_argument("--verbose", action="store_true", help="print the failing checks of every round")
    args = ap.parse_args()
    deadline = time.time() + args.wait
    streak = 0
    checks = stats = None
    while True:
        try:
            before = json.loads(get(args.fake + "/_requests"))
            # a request the fake logged a moment ago may still be in the
            # exporter's hands (body being read, not yet counted)
            time.sleep(0.3)
            with urllib.request.urlopen(args.exporter + "/metrics", timeout=5) as r:
                ctype = r.headers.get("Content-Type")
                text = r.read().decode("utf-8")
            metrics = parse_metrics(text)
            metrics["__content_type__"] = ctype
            metrics["__probe__"] = get(args.exporter + "/probe?target=" + args.tenant)
            metrics["__status_page__"] = get(args.exporter + "/")
            after = json.loads(get(args.fake + "/_requests"))
            truth = json.loads(get(args.fake + "/_truth"))
            checks, stats = evaluate(args, truth, metrics, before, after)
            settled = (truth["late_published"] and not checks.failed
                       and (truth["revoke_after"] < 0 or truth["revoked_at"] is not None))
        except Exception as e:  # exporter not up yet
            settled = False
            if time.time() > deadline:
                print("interop[%s]: cannot evaluate: %r" % (args.label, e))
                print("RESULT %s passed=0 failed=1" % args.label)
                return 1
        if args.verbose and checks is not None:
            print("  [%.1fs] failing: %s" % (args.wait - (deadline - time.time()),
                                           "; ".join(r[0] for r in checks.failed)[:400]), flush=True)
        streak = streak + 1 if settled else 0
        if streak >= 2 or time.time() > deadline:
            break
        time.sleep(1.5)
    if checks is None:
        print("RESULT %s passed=0 failed=1" % args.label)
        return 1
    waited = args.wait - (deadline - time.time())
    print("== interop[%s]: %s after %.1fs" % (args.label, "settled" if streak >= 2 else "DID NOT SETTLE", waited))
    # A round that did not settle fails even if its last evaluation passed:
    # late content unpublished, or a revocation not yet made, is unchecked.
    checks.add("the round settled (two clean evaluations in a row, late content published) within %gs" % args.wait,
               streak >= 2, "  late_published=%r revoked_at=%r" % (truth.get("late_published") if truth else None,
                                                                   truth.get("revoked_at") if truth else None))
    for name, ok, detail in checks.results:
        print("  %s  %s" % ("ok  " if ok else "FAIL", name))
        if not ok and detail:
            print(detail)
    print("  figures: " + json.dumps(stats, sort_keys=True))
    passed = sum(1 for r in checks.results if r[1])
    failed = len(checks.results) - passed
    print("RESULT %s passed=%d failed=%d" % (args.label, passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
