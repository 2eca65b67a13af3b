#!/usr/bin/env python3
"""Generate the Grafana dashboards of m365-exporter.

    python3 dashboards/generate.py        # rewrites dashboards/*.json

The JSON files are the shipped artefact (importable and provisionable as they are);
this script only keeps the four dashboards consistent. Conventions, checked by
tests/dashboards.rs and, against a real Prometheus, by tests/prometheus_e2e.rs:
  - a `datasource` variable of type prometheus used by every panel and target;
  - `job` and `tenant` variables (multi-value, include All); the service-health dashboard
    also a `service_id` variable that lists the services the exporter exports (it
    follows `service_health.services`), applied to every service-scoped query;
  - fixed `uid`, `id: null`, a unit and a description on every panel;
  - `__inputs` with one Prometheus data source, so Grafana's import asks for it (it
    becomes the `datasource` variable's default; provisioning ignores `__inputs` and
    the variable falls back to the default data source);
  - rates (rate()/irate(), over `$__rate_interval` or an alert's own window) in rate
    units (reqps, ops, cps) or shares in percentunit; counts are increase() over a
    fixed window the title names ("per hour"), never over `$__rate_interval`, whose
    value would change with the zoom;
  - counters (`_total`, `_bucket`, `_count`, `_sum`) only inside rate()/increase();
  - stat colours follow the alert policy: red only where a critical alert pages,
    orange/yellow where a warning alert fires, named in the panel's description;
    advisories and bare "not operational" are informational (blue);
  - every metric name is in docs/metrics.md (or Prometheus' own `up`/`scrape_*`), and
    every metric there is shown by some panel.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", tenant=~"$tenant"'
RI = "$__rate_interval"
# Counts are per hour: the window of the alerts that count (M365AuditContentExpired,
# M365AuditContentQuarantined), and the same number whatever the zoom.
HOUR = "1h"
# The Grafana import prompt: one Prometheus data source.
DS_INPUT = "DS_PROMETHEUS"


def sel(extra=""):
    return "{" + SEL + (", " + extra if extra else "") + "}"


SVC = 'service_id=~"$service_id"'


def ssel(extra=""):
    """Selector of a service-scoped metric: job, tenant and the chosen services."""
    return sel(SVC + (", " + extra if extra else ""))


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    t = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "refId": ref,
    }
    if fmt != "time_series":
        t["format"] = fmt
    return t


def thresholds(*steps):
    out = [{"color": steps[0], "value": None}]
    for value, color in zip(steps[1::2], steps[2::2]):
        out.append({"color": color, "value": value})
    return {"mode": "absolute", "steps": out}


MGMT = sel('api="management"')


class Layout:
    def __init__(self):
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def place(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def id(self):
        i = self.next_id
        self.next_id += 1
        return i


def panel(lay, kind, title, description, unit, targets, w=12, h=8, defaults=None,
          options=None, overrides=None, transformations=None, mappings=None):
    fd = {"unit": unit, "mappings": mappings or []}
    if kind == "timeseries":
        fd["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                        "showPoints": "never", "spanNulls": False}
        fd["color"] = {"mode": "palette-classic"}
    if defaults:
        fd.update(defaults)
    p = {
        "id": lay.id(),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": lay.place(w, h),
        "fieldConfig": {"defaults": fd, "overrides": overrides or []},
        "options": options or {},
        "targets": targets,
    }
    if kind == "timeseries" and not options:
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    if transformations:
        p["transformations"] = transformations
    return p


def stat(lay, title, description, unit, expr, legend, steps, w=6, h=4, mappings=None):
    return panel(lay, "stat", title, description, unit, [target(expr, legend)], w=w, h=h,
                 defaults={"thresholds": thresholds(*steps), "color": {"mode": "thresholds"}},
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "background", "graphMode": "area", "textMode": "auto",
                          "orientation": "auto", "justifyMode": "auto"},
                 mappings=mappings)


def state_timeline(lay, title, description, expr, legend, mappings, w=24, h=10):
    return panel(lay, "state-timeline", title, description, "none", [target(expr, legend)], w=w, h=h,
                 defaults={"color": {"mode": "thresholds"}, "thresholds": thresholds("green"),
                           "custom": {"fillOpacity": 80, "lineWidth": 0}},
                 options={"showValue": "auto", "mergeValues": True, "rowHeight": 0.9,
                          "alignValue": "left",
                          "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                          "tooltip": {"mode": "single", "sort": "none"}},
                 mappings=mappings)


def value_mappings(entries):
    opts = {}
    for i, (value, text, color) in enumerate(entries):
        opts[str(value)] = {"text": text, "color": color, "index": i}
    return [{"type": "value", "options": opts}]


def timeseries(lay, title, description, unit, targets, w=12, h=8, stack=False):
    p = panel(lay, "timeseries", title, description, unit, targets, w=w, h=h)
    if stack:
        p["fieldConfig"]["defaults"]["custom"]["stacking"] = {"mode": "normal", "group": "A"}
    return p


def row(lay, title):
    """A row header across the full width; the panels after it follow below."""
    if lay.x:
        lay.x, lay.y, lay.row_h = 0, lay.y + lay.row_h, 0
    pos = lay.place(24, 1)
    lay.x, lay.y, lay.row_h = 0, lay.y + 1, 0
    return {"id": lay.id(), "type": "row", "title": title, "collapsed": False,
            "gridPos": pos, "panels": []}


def zero_fallback(expr, by, fallback_metric, fallback_extra="", fn="rate", window=RI):
    """`expr or <same grouping of a series that always exists> * 0`: zero lines instead of no data.
    `fn` and `window` as in `expr`, so a count panel stays free of rates; `fn=None` for a gauge."""
    series = (f"{fn}({fallback_metric}{sel(fallback_extra)}[{window}])" if fn
              else f"{fallback_metric}{sel(fallback_extra)}")
    return f"{expr}\nor\nsum by ({by}) ({series}) * 0"


def hourly(metric, by, fallback_metric, extra=""):
    """Events of a counter per hour (a fixed window: the value does not change with the zoom),
    with zero lines while none happened."""
    return zero_fallback(f"sum by ({by}) (increase({metric}{sel(extra)}[{HOUR}]))", by,
                         fallback_metric, fn="increase", window=HOUR)


def variables(services=False):
    return _variables() + ([service_variable()] if services else [])


def service_variable():
    q = 'label_values(m365_service_info{job=~"$job", tenant=~"$tenant"}, service_id)'
    return {"name": "service_id", "label": "Service", "type": "query", "datasource": DS,
            "description": "Services the exporter exports (m365_service_info): those chosen with "
                           "service_health.services in its configuration.",
            "definition": q, "query": {"query": q, "refId": "service_id"},
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0, "includeAll": True, "allValue": ".*", "multi": True, "options": [],
            "refresh": 2, "regex": "", "sort": 1, "skipUrlSync": False}


def _variables():
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         # Filled in by Grafana's import from the data source chosen for __inputs.
         "current": {"selected": False, "text": "${" + DS_INPUT + "}", "value": "${" + DS_INPUT + "}"},
         "hide": 0, "includeAll": False, "multi": False, "options": [],
         "refresh": 1, "regex": "", "skipUrlSync": False},
        {"name": "job", "label": "Job", "type": "query", "datasource": DS,
         "definition": "label_values(m365_collector_success, job)",
         "query": {"query": "label_values(m365_collector_success, job)", "refId": "job"},
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
         "hide": 0, "includeAll": True, "allValue": ".*", "multi": True, "options": [],
         "refresh": 2, "regex": "", "sort": 1, "skipUrlSync": False},
        {"name": "tenant", "label": "Tenant", "type": "query", "datasource": DS,
         "definition": 'label_values(m365_collector_success{job=~"$job"}, tenant)',
         "query": {"query": 'label_values(m365_collector_success{job=~"$job"}, tenant)', "refId": "tenant"},
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
         "hide": 0, "includeAll": True, "allValue": ".*", "multi": True, "options": [],
         "refresh": 2, "regex": "", "sort": 1, "skipUrlSync": False},
    ]


def requires(panels):
    """`__requires` of Grafana's export format: Grafana, the data source plugin and every panel type."""
    types = sorted({p["type"] for p in panels if p["type"] != "row"} |
                   {c["type"] for p in panels for c in p.get("panels", [])})
    return ([{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
             {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}] +
            [{"type": "panel", "id": t, "name": PANEL_NAMES[t], "version": ""} for t in types])


PANEL_NAMES = {"bargauge": "Bar gauge", "stat": "Stat", "state-timeline": "State timeline",
               "table": "Table", "timeseries": "Time series"}


def dashboard(uid, title, description, panels, services=False):
    return {
        "__inputs": [{"name": DS_INPUT, "label": "Prometheus",
                      "description": "The Prometheus that scrapes m365-exporter",
                      "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "__requires": requires(panels),
        "annotations": {"list": []},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"asDropdown": False, "icon": "external link", "includeVars": True,
                   "keepTime": True, "tags": ["m365-exporter"], "targetBlank": False,
                   "title": "M365 dashboards", "type": "dashboards"}],
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["m365-exporter", "microsoft-365"],
        "templating": {"list": variables(services)},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# --- M365 service health -------------------------------------------------------------

STATUSES = [  # (Graph status, code, color); operational ones first
    ("serviceOperational", 0, "green"),
    ("serviceRestored", 1, "green"),
    ("postIncidentReviewPublished", 2, "green"),
    ("falsePositive", 3, "green"),
    ("resolved", 4, "green"),
    ("resolvedExternal", 5, "green"),
    ("mitigated", 6, "green"),
    ("mitigatedExternal", 7, "green"),
    ("investigating", 10, "yellow"),
    ("investigationSuspended", 11, "yellow"),
    ("reported", 12, "yellow"),
    ("confirmed", 13, "orange"),
    ("verifyingService", 14, "yellow"),
    ("restoringService", 15, "orange"),
    ("extendedRecovery", 16, "orange"),
    ("serviceDegradation", 20, "orange"),
    ("serviceInterruption", 30, "red"),
]


def status_code_expr():
    terms = ["(m365_service_status" + ssel("status=" + json.dumps(s)) + f" * {c})" for s, c, _ in STATUSES]
    terms.append(f"(m365_service_status{ssel()} * -1)")
    return "max by (tenant, service_id) (\n  " + "\n  or ".join(terms) + "\n)"


def zero_by_service(expr):
    """`expr or 0 per tenant`: a stat reads 0, not "No data", while nothing matches."""
    return f"{expr}\nor\nsum by (tenant) (m365_service_info{ssel()}) * 0"


ISSUE_LABELS = "service_id, classification, status, origin, feature_group, title"


def issue_join(metric):
    return (f"{metric}{sel()}\n* on (job, instance, tenant, issue_id) group_left ({ISSUE_LABELS})\n"
            f"m365_service_issue_info{ssel()}\n* 1000")


def service_health():
    lay = Layout()
    p = []
    # The headline follows the alert policy: red is what pages (an interruption),
    # orange what opens a ticket (an incident); advisories and "not operational"
    # without an incident are nearly always there somewhere, so they inform (blue).
    p.append(stat(lay, "Services interrupted",
                  "Services whose Microsoft status is serviceInterruption, per tenant. Red: "
                  "M365ServiceInterruption pages after 5 minutes.",
                  "none",
                  zero_by_service("sum by (tenant) (m365_service_status"
                                  + ssel('status="serviceInterruption"') + ")"),
                  "{{tenant}}", ("green", 1, "red"), w=5))
    p.append(stat(lay, "Active incidents",
                  "Unresolved service-health issues classified as incident, per tenant. Orange: "
                  "M365ServiceIncident opens a ticket after 10 minutes (a warning; it does not page).",
                  "none", "sum by (tenant) (m365_service_issues_active" + ssel('classification="incident"') + ")",
                  "{{tenant}}", ("green", 1, "orange"), w=5))
    p.append(stat(lay, "Active advisories",
                  "Unresolved service-health issues classified as advisory, per tenant: usually "
                  "limited impact; informational, no alert by default.",
                  "none", "sum by (tenant) (m365_service_issues_active" + ssel('classification="advisory"') + ")",
                  "{{tenant}}", ("blue",), w=5))
    p.append(stat(lay, "Services not operational",
                  "Services whose current Microsoft status is not an operational one "
                  "(m365_service_operational == 0), advisories included, per tenant: "
                  "informational, no alert by default (the optional M365ServiceNotOperational "
                  "rule alerts on it).",
                  "none", f"sum by (tenant) (1 - m365_service_operational{ssel()})", "{{tenant}}",
                  ("blue",), w=4))
    p.append(stat(lay, "Next action-required deadline",
                  "Soonest future actionRequiredByDateTime of the message-center posts, per tenant.",
                  "dateTimeFromNow",
                  f"min by (tenant) (m365_service_message_next_action_required_timestamp_seconds{sel()}) * 1000",
                  "{{tenant}}", ("blue",), w=5))
    status_map = value_mappings([(c, s, col) for s, c, col in STATUSES] + [(-1, "other status", "purple")])
    p.append(state_timeline(lay, "Service status",
                            "Current Microsoft status of every service per tenant (Graph healthOverviews). "
                            "Green: operational; yellow: investigating; orange: degradation or recovery; "
                            "red: serviceInterruption; purple: a status this dashboard does not know yet.",
                            status_code_expr(), "{{tenant}} · {{service_id}}", status_map, h=14))
    p.append(panel(lay, "table", "Active issues",
                   "Unresolved incidents and advisories (m365_service_issue_info) with their start and "
                   "last update (m365_service_issue_start/last_update_timestamp_seconds).",
                   "dateTimeAsIso",
                   [target(issue_join("m365_service_issue_start_timestamp_seconds"), ref="A",
                           instant=True, fmt="table"),
                    target(issue_join("m365_service_issue_last_update_timestamp_seconds"), ref="B",
                           instant=True, fmt="table")],
                   w=24, h=10,
                   options={"showHeader": True, "cellHeight": "sm",
                            "sortBy": [{"displayName": "Last update", "desc": True}]},
                   transformations=[
                       {"id": "merge", "options": {}},
                       {"id": "organize", "options": {
                           "excludeByName": {"Time": True, "job": True, "instance": True, "__name__": True},
                           "indexByName": {"tenant": 0, "service_id": 1, "issue_id": 2, "classification": 3,
                                           "status": 4, "title": 5, "feature_group": 6, "origin": 7,
                                           "Value #A": 8, "Value #B": 9},
                           "renameByName": {"service_id": "Service", "issue_id": "Issue",
                                            "classification": "Class", "status": "Status",
                                            "title": "Title", "feature_group": "Feature group",
                                            "origin": "Origin", "tenant": "Tenant",
                                            "Value #A": "Start", "Value #B": "Last update"}}},
                   ]))
    p.append(timeseries(lay, "Active issues by service",
                        "Unresolved issues per service and classification (incident, advisory).",
                        "none",
                        [target(f"sum by (tenant, service_id, classification) (m365_service_issues_active{ssel()})",
                                "{{tenant}} {{service_id}} {{classification}}")], stack=True))
    p.append(timeseries(lay, "Message-center posts by category and severity",
                        "Message-center posts currently listed, by category (preventOrFixIssue, "
                        "planForChange, stayInformed) and severity (normal, high, critical).",
                        "none",
                        [target(f"sum by (tenant, category, severity) (m365_service_messages{sel()})",
                                "{{tenant}} {{category}} / {{severity}}")], stack=True))
    p.append(timeseries(lay, "Major changes and action-required posts",
                        "Message-center posts flagged as major change, and posts whose "
                        "actionRequiredByDateTime lies in the future, by severity.",
                        "none",
                        [target(f"sum by (tenant, severity) (m365_service_messages_major_change{sel()})",
                                "{{tenant}} major change / {{severity}}", ref="A"),
                         target(f"sum by (tenant, severity) (m365_service_messages_action_required{sel()})",
                                "{{tenant}} action required / {{severity}}", ref="B")]))
    p.append(timeseries(lay, "Time to next action-required deadline",
                        "Time left until the soonest actionRequiredByDateTime of the message-center posts.",
                        "s",
                        [target(f"m365_service_message_next_action_required_timestamp_seconds{sel()} - time()",
                                "{{tenant}}")]))
    p.append(panel(lay, "table", "Services",
                   "Services Microsoft reports for each tenant: service_id (used by the alerts) and "
                   "display name.", "none",
                   [target(f"m365_service_info{ssel()}", ref="A", instant=True, fmt="table")],
                   w=24, h=8, options={"showHeader": True, "cellHeight": "sm"},
                   transformations=[{"id": "organize", "options": {
                       "excludeByName": {"Time": True, "Value": True, "job": True, "instance": True,
                                         "__name__": True},
                       "renameByName": {"tenant": "Tenant", "service_id": "Service id",
                                        "service_name": "Service"}}}]))
    return dashboard("m365-service-health", "M365 service health",
                     "Microsoft 365 service health per tenant (Microsoft Graph serviceAnnouncement): "
                     "service status, incidents, advisories and message-center posts. The Service "
                     "variable lists the services the exporter exports (service_health.services).",
                     p, services=True)


# --- M365 track record ---------------------------------------------------------------

# What the optional M365ServiceAvailabilityBelowTarget watches, and the line below which
# a month usually breaches a 99.9 % SLA twice over.
AVAILABILITY_TARGET = 0.999
AVAILABILITY_LOW = 0.99


def service_bars(lay, title, description, unit, targets, w=12, h=10, steps=("blue",), extra=None):
    """A horizontal bar per tenant and service (instant queries): the window's figures."""
    defaults = {"color": {"mode": "thresholds"}, "thresholds": thresholds(*steps), "min": 0}
    defaults.update(extra or {})
    return panel(lay, "bargauge", title, description, unit, targets, w=w, h=h, defaults=defaults,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "orientation": "horizontal", "displayMode": "basic",
                          "showUnfilled": True, "valueMode": "color", "namePlacement": "left"})


INCIDENT = ssel('classification="incident"')
ADVISORY = ssel('classification="advisory"')


def track_record():
    lay = Layout()
    p = []
    window = "m365_service_history_window_seconds"
    p.append(stat(lay, "Window",
                  "The track record's rolling window (service_health.history_window, 30 days by "
                  "default): every figure below covers the last this long, from Microsoft's own "
                  "issue history, resolved issues included.",
                  "s", f"max by (tenant) ({window}{sel()})", "{{tenant}}", ("blue",), w=6))
    p.append(stat(lay, "Incidents started in the window",
                  "Incidents whose start lies in the window, all chosen services, per tenant.",
                  "none",
                  f"sum by (tenant) (m365_service_issues_started{INCIDENT})",
                  "{{tenant}}", ("blue",), w=6))
    p.append(stat(lay, "Post-incident reviews",
                  "Issues of the window whose status is postIncidentReviewPublished, per tenant: "
                  "Microsoft published a review (admin center → Health → Service health → History).",
                  "none", f"sum by (tenant) (m365_service_post_incident_reviews{ssel()})",
                  "{{tenant}}", ("blue",), w=6))
    p.append(stat(lay, "Least available service",
                  "The lowest availability of any chosen service over the window, per tenant.",
                  "percentunit", f"min by (tenant) (m365_service_availability_ratio{ssel()})",
                  "{{tenant}}", ("blue",), w=6))
    avail = service_bars(
        lay, "Availability per service",
        "Share of the window without a Microsoft incident (m365_service_availability_ratio = "
        "1 − incident seconds / window; advisories and falsePositive issues excluded, parallel "
        "incidents counted once), least available first. Green from 99.9 %, yellow from 99 %, "
        "orange below: the optional M365ServiceAvailabilityBelowTarget warns under 99.9 %. "
        "Microsoft's SLA credits are computed from Microsoft's own figures, not these.",
        "percentunit",
        [target(f"sort(min by (tenant, service_id) (m365_service_availability_ratio{ssel()}))",
                "{{tenant}} {{service_id}}", instant=True)],
        w=24, h=12,
        steps=("orange", AVAILABILITY_LOW, "yellow", AVAILABILITY_TARGET, "green"),
        extra={"max": 1, "min": AVAILABILITY_LOW - 0.01, "decimals": 3})
    p.append(avail)
    p.append(service_bars(
        lay, "Incident minutes per service",
        "Minutes of the window under at least one incident (m365_service_impact_seconds, "
        "classification incident), most first.",
        "m",
        [target("sort_desc(sum by (tenant, service_id) (m365_service_impact_seconds"
                f"{INCIDENT})) / 60",
                "{{tenant}} {{service_id}}", instant=True)]))
    p.append(service_bars(
        lay, "Advisory minutes per service",
        "Minutes of the window under at least one advisory (limited impact; not in availability).",
        "m",
        [target("sort_desc(sum by (tenant, service_id) (m365_service_impact_seconds"
                f"{ADVISORY})) / 60",
                "{{tenant}} {{service_id}}", instant=True)]))
    p.append(panel(lay, "table", "Issues started and resolved per service",
                   "Per service and classification: issues whose start lies in the window "
                   "(m365_service_issues_started) and issues that ended in it "
                   "(m365_service_issues_resolved); an incident that began before the window and "
                   "ended in it is resolved but not started.",
                   "none",
                   [target(f"m365_service_issues_started{ssel()}", ref="A", instant=True, fmt="table"),
                    target(f"m365_service_issues_resolved{ssel()}", ref="B", instant=True, fmt="table")],
                   w=12, h=10,
                   options={"showHeader": True, "cellHeight": "sm",
                            "sortBy": [{"displayName": "Started", "desc": True}]},
                   transformations=[
                       {"id": "merge", "options": {}},
                       {"id": "organize", "options": {
                           "excludeByName": {"Time": True, "job": True, "instance": True, "__name__": True},
                           "indexByName": {"tenant": 0, "service_id": 1, "classification": 2,
                                           "Value #A": 3, "Value #B": 4},
                           "renameByName": {"tenant": "Tenant", "service_id": "Service",
                                            "classification": "Class", "Value #A": "Started",
                                            "Value #B": "Resolved"}}},
                   ]))
    p.append(panel(lay, "table", "Time to resolve",
                   "Mean and longest end − start of the issues resolved in the window "
                   "(m365_service_time_to_resolve_mean_seconds / _max_seconds), per service and "
                   "classification; services with nothing resolved are not listed.",
                   "s",
                   [target(f"m365_service_time_to_resolve_mean_seconds{ssel()}", ref="A",
                           instant=True, fmt="table"),
                    target(f"m365_service_time_to_resolve_max_seconds{ssel()}", ref="B",
                           instant=True, fmt="table")],
                   w=12, h=10,
                   options={"showHeader": True, "cellHeight": "sm",
                            "sortBy": [{"displayName": "Longest", "desc": True}]},
                   transformations=[
                       {"id": "merge", "options": {}},
                       {"id": "organize", "options": {
                           "excludeByName": {"Time": True, "job": True, "instance": True, "__name__": True},
                           "indexByName": {"tenant": 0, "service_id": 1, "classification": 2,
                                           "Value #A": 3, "Value #B": 4},
                           "renameByName": {"tenant": "Tenant", "service_id": "Service",
                                            "classification": "Class", "Value #A": "Mean",
                                            "Value #B": "Longest"}}},
                   ]))
    p.append(service_bars(
        lay, "Post-incident reviews per service",
        "Issues of the window whose status is postIncidentReviewPublished, per service.",
        "none",
        [target(f"sort_desc(sum by (tenant, service_id) (m365_service_post_incident_reviews{ssel()}))",
                "{{tenant}} {{service_id}}", instant=True)], w=24, h=8))
    p.append(state_timeline(
        lay, "Issues on a timeline",
        "Each unresolved issue (m365_service_issue_info) while the exporter saw it open, over "
        "the dashboard's time range (30 days by default; Prometheus keeps what it scraped). "
        "Issues resolved before the exporter ran are in the figures above and in "
        "`m365-exporter report`.",
        f"max by (tenant, service_id, issue_id, classification) (m365_service_issue_info{ssel()})",
        "{{tenant}} {{service_id}} {{issue_id}} {{classification}}",
        value_mappings([(1, "open", "orange")]), h=10))
    status_map = value_mappings([(c, s, col) for s, c, col in STATUSES] + [(-1, "other status", "purple")])
    p.append(state_timeline(
        lay, "Service status history",
        "Microsoft's status of every chosen service over the dashboard's time range "
        "(m365_service_status, as scraped). Green: operational; yellow: investigating; orange: "
        "degradation or recovery; red: serviceInterruption.",
        status_code_expr(), "{{tenant}} · {{service_id}}", status_map, h=12))
    d = dashboard("m365-track-record", "M365 track record",
                  "Microsoft 365 track record per tenant and service over a rolling window "
                  "(service_health.history_window): availability, incident and advisory minutes, "
                  "issues started and resolved, time to resolve and post-incident reviews, from "
                  "Microsoft's own service-health issue history (Graph serviceAnnouncement/issues). "
                  "For monthly service reviews; `m365-exporter report` prints the same figures.",
                  p, services=True)
    d["time"] = {"from": "now-30d", "to": "now"}
    d["refresh"] = "5m"
    return d


# --- M365 audit feed -----------------------------------------------------------------

def audit_feed():
    lay = Layout()
    p = []
    p.append(stat(lay, "Disabled subscriptions",
                  "Content types whose Management Activity API subscription is not enabled. "
                  "Orange: M365AuditSubscriptionDisabled warns after 15 minutes (set "
                  "activity.start_subscriptions: true to have the exporter start them).",
                  "none", f"sum by (tenant) (1 - m365_activity_subscription_enabled{sel()})", "{{tenant}}",
                  ("green", 1, "orange")))
    p.append(stat(lay, "Backlog",
                  "Content blobs listed but not yet downloaded, all content types. Yellow from "
                  "100: M365AuditBacklogGrowing warns when it keeps growing for an hour.",
                  "none", f"sum by (tenant) (m365_activity_backlog_blobs{sel()})", "{{tenant}}",
                  ("green", 100, "yellow")))
    p.append(stat(lay, "Max blob lag",
                  "Age of the oldest listed but not downloaded blob (content expires after 7 days). "
                  "Yellow from 2 h: M365AuditBlobLagHigh warns; red from 5 days: "
                  "M365AuditBlobLagNearExpiry pages.",
                  "s", f"max by (tenant) (m365_activity_blob_lag_seconds{sel()})", "{{tenant}}",
                  ("green", 7200, "yellow", 432000, "red")))
    p.append(stat(lay, "Newest content age",
                  "Time since the newest contentCreated seen across content types. Events usually "
                  "appear 60–90 minutes after they happen; the first content can take up to 12 h "
                  "after subscribing. Orange from 6 h: M365AuditFeedStalled warns.",
                  "s",
                  f"time() - max by (tenant) (m365_activity_last_content_created_timestamp_seconds{sel()} > 0)",
                  "{{tenant}}", ("green", 21600, "orange")))
    p.append(state_timeline(lay, "Subscription state",
                            "Management Activity API subscription per content type: enabled or disabled "
                            "(AF20022 no subscription, AF20023 disabled by an admin).",
                            f"max by (tenant, content_type) (m365_activity_subscription_enabled{sel()})",
                            "{{tenant}} · {{content_type}}",
                            value_mappings([(1, "enabled", "green"), (0, "disabled", "red")]), h=7))
    p.append(timeseries(lay, "Backlog by content type",
                        "Content blobs listed but not yet downloaded (m365_activity_backlog_blobs).",
                        "none",
                        [target(f"sum by (tenant, content_type) (m365_activity_backlog_blobs{sel()})",
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Blob lag",
                        "now − contentCreated of the oldest unfetched blob, computed at scrape time (it keeps "
                        "growing while the feed hangs); 0 when nothing waits. "
                        "Microsoft deletes content 7 days after creation (AF20051).",
                        "s",
                        [target(f"max by (tenant, content_type) (m365_activity_blob_lag_seconds{sel()})",
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Listed until (cursor age)",
                        "now − the end of the last content window listed completely, per content type "
                        "(m365_activity_listed_until_timestamp_seconds). About one interval when healthy; "
                        "grows while a type cannot list (permission, hang, throttling) even if others flow.",
                        "s",
                        [target("time() - max by (tenant, content_type) "
                                f"(m365_activity_listed_until_timestamp_seconds{sel()})",
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Oldest pending blob",
                        "contentCreated of the oldest listed blob not yet downloaded "
                        "(m365_activity_oldest_pending_content_created_timestamp_seconds), as its age; "
                        "the blob lag is computed from it at scrape time. 0 when nothing waits.",
                        "s",
                        [target(zero_fallback(
                            "time() - min by (tenant, content_type) "
                            f"(m365_activity_oldest_pending_content_created_timestamp_seconds{sel()})",
                            "tenant, content_type", "m365_activity_backlog_blobs", fn=None),
                            "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Time since last error by content type",
                        "now − the last failed Management API call (or unparsable blob) per content type "
                        "(m365_activity_last_error_timestamp_seconds), AF20051 (expired) included. Small and steady: "
                        "that type keeps failing.",
                        "s",
                        [target("time() - max by (tenant, content_type) "
                                f"(m365_activity_last_error_timestamp_seconds{sel()})",
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Listing gaps per hour",
                        "Content blobs found only by the daily sweep, older than the re-listed overlap "
                        "(m365_activity_listing_gaps_total), in the hour before each point: Microsoft "
                        "indexed them late; consider a longer activity.overlap.",
                        "none",
                        [target(hourly("m365_activity_listing_gaps_total", "tenant, content_type",
                                       "m365_activity_content_listed_total"),
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Quarantined blobs per hour",
                        "Content blobs that never parsed, kept aside raw beside the state file and taken "
                        "out of the backlog (m365_activity_content_quarantined_total), in the hour "
                        "before each point; above 0 M365AuditContentQuarantined warns.",
                        "none",
                        [target(hourly("m365_activity_content_quarantined_total", "tenant, content_type",
                                       "m365_activity_content_listed_total"),
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "State resets per hour",
                        "Times a tenant's feed state was set aside or refused "
                        "(m365_activity_state_resets_total: a corrupt state file resumed from the id "
                        "log, an unknown file at activity.output moved aside), in the hour before each "
                        "point. Above 0: read the exporter's log and the README's Security section.",
                        "none",
                        [target(hourly("m365_activity_state_resets_total", "tenant",
                                       "m365_activity_content_listed_total"),
                                "{{tenant}}")]))
    p.append(timeseries(lay, "Newest content age",
                        "now − newest contentCreated seen, per content type. Grows steadily when the "
                        "feed has stalled.",
                        "s",
                        [target("time() - max by (tenant, content_type) "
                                f"(m365_activity_last_content_created_timestamp_seconds{sel()} > 0)",
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Record delay percentiles",
                        "contentCreated − CreationTime of the audit records (how late Microsoft publishes "
                        "them), 50th/90th/99th percentile from the m365_activity_record_delay_seconds "
                        "histogram.",
                        "s",
                        [target(f"histogram_quantile({q}, sum by (tenant, content_type, le) "
                                f"(rate(m365_activity_record_delay_seconds_bucket{sel()}[{RI}])))",
                                f"{{{{tenant}}}} {{{{content_type}}}} p{int(q * 100)}", ref=ref)
                         for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))]))
    p.append(timeseries(lay, "Records per second by workload",
                        "New (not duplicate) audit records per second by Workload.",
                        "cps",
                        [target(f"sum by (tenant, workload) (rate(m365_activity_records_total{sel()}[{RI}]))",
                                "{{tenant}} {{workload}}")], stack=True))
    p.append(timeseries(lay, "Content blobs listed and fetched",
                        "Content blobs listed and downloaded per second, per content type.",
                        "cps",
                        [target(f"sum by (tenant, content_type) (rate(m365_activity_content_listed_total{sel()}[{RI}]))",
                                "{{tenant}} {{content_type}} listed", ref="A"),
                         target(f"sum by (tenant, content_type) (rate(m365_activity_content_fetched_total{sel()}[{RI}]))",
                                "{{tenant}} {{content_type}} fetched", ref="B")]))
    p.append(timeseries(lay, "Duplicate records",
                        "Audit records whose Id was seen before (Microsoft delivers duplicates), per second.",
                        "cps",
                        [target(zero_fallback(
                            f"sum by (tenant, content_type) (rate(m365_activity_records_duplicate_total{sel()}[{RI}]))",
                            "tenant, content_type", "m365_activity_content_listed_total"),
                            "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Management API throttling",
                        "Management Activity API requests throttled per second (HTTP 429, or 403 with "
                        "AF429), by operation. Throttling is per tenant, about 2,000 requests/min.",
                        "reqps",
                        [target(zero_fallback(
                            f"sum by (tenant, operation) (rate(m365_api_throttled_total{MGMT}[{RI}]))",
                            "tenant, operation", "m365_api_requests_total", 'api="management"'),
                            "{{tenant}} {{operation}}")]))
    p.append(timeseries(lay, "Expired content per hour (audit data lost)",
                        "Content blobs that expired (AF20051, older than 7 days) before they were "
                        "downloaded, in the hour before each point: their audit records are lost; "
                        "above 0 M365AuditContentExpired pages.",
                        "none",
                        [target(hourly("m365_activity_content_expired_total", "tenant, content_type",
                                       "m365_activity_content_listed_total"),
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Management API errors by code",
                        "Management Activity API errors by Microsoft error code (AF10001 permission, "
                        "AF20022 no subscription, AF20023 disabled, AF20051 expired, AF429 throttled, …).",
                        "reqps",
                        [target(zero_fallback(
                            f"sum by (tenant, error_code) (rate(m365_api_errors_total{MGMT}[{RI}]))",
                            "tenant", "m365_api_requests_total", 'api="management"'),
                            "{{tenant}} {{error_code}}")], w=24))
    # Webhooks: which path brings the content, and whether notifications arrive.
    p.append(row(lay, "Webhook"))
    p.append(state_timeline(lay, "Webhook registered",
                            "Per content type of tenants with activity.webhook: whether subscriptions/list "
                            "shows this exporter's webhook enabled. Disabled or expired webhooks are "
                            "re-registered at most every 15 minutes; listing carries the feed meanwhile.",
                            f"max by (tenant, content_type) (m365_activity_webhook_enabled{sel()})",
                            "{{tenant}} {{content_type}}",
                            value_mappings([(1, "registered", "green"), (0, "not registered", "red")]),
                            w=12, h=8))
    p.append(timeseries(lay, "Time since last notification",
                        "now − the last webhook notification naming the content type. After "
                        "activity.webhook.silence without one, listing returns to the normal interval.",
                        "s",
                        [target("time() - max by (tenant, content_type) "
                                f"(m365_activity_webhook_last_notification_timestamp_seconds{sel()})",
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Content discovered by source",
                        "New content blobs per second by the path that announced them first: webhook "
                        "(notification) or listing (the safety-net poll). Listing taking over means "
                        "notifications stopped or arrive late.",
                        "cps",
                        [target(f"sum by (tenant, source) (rate(m365_activity_content_discovered_total{sel()}[{RI}]))",
                                "{{tenant}} {{source}}")], stack=True))
    p.append(timeseries(lay, "Webhook requests by result",
                        "Webhook POSTs and items per second by result: accepted and foreign count content "
                        "items; validation, unauthorized (wrong Webhook-AuthID), malformed, too_large "
                        "count requests.",
                        "cps",
                        [target(f"sum by (tenant, result) (rate(m365_activity_webhook_notifications_total{sel()}[{RI}]))",
                                "{{tenant}} {{result}}")]))
    # Completeness: the feed reconciled against the Audit Log Query API (activity.reconcile).
    p.append(row(lay, "Completeness"))
    p.append(timeseries(lay, "Proven complete until (age)",
                        "now − the end of the newest window reconciled against Microsoft's Audit Log "
                        "Query API without failure (activity.reconcile): the feed is proven complete, or "
                        "repaired, up to there. It trails now by settle + window + interval at most; "
                        "beyond settle + window + 2 × interval M365AuditReconcileStalled fires.",
                        "s",
                        [target(f"time() - max by (tenant) (m365_activity_reconciled_until_timestamp_seconds{sel()})",
                                "{{tenant}}"),
                         target(f"max by (tenant) (m365_activity_reconcile_stalled_after_seconds{sel()})",
                                "{{tenant}} stalled after", ref="B")]))
    p.append(timeseries(lay, "Records still missing after repair",
                        "Records the Audit Log Query API holds that are still missing from the feed after "
                        "repair, in the last reconciled window, by content type (0 when complete); above "
                        "0 M365AuditFeedIncomplete fires.",
                        "none",
                        [target(f"max by (tenant, content_type) (m365_activity_reconcile_missing_records{sel()})",
                                "{{tenant}} {{content_type}}")]))
    p.append(timeseries(lay, "Reconciled records per hour by result",
                        "Records of reconciled windows in the hour before each point: matched (the feed had "
                        "delivered them), missing (it had not), repaired (written to the sink from the "
                        "query's auditData). Missing records recovered by re-listing count as listing gaps.",
                        "none",
                        [target(f"sum by (tenant, content_type, result) "
                                f"(increase(m365_activity_reconcile_records_total{sel()}[{HOUR}]))",
                                "{{tenant}} {{content_type}} {{result}}")]))
    p.append(timeseries(lay, "Reconciled windows per hour by result",
                        "Windows reconciled in the hour before each point: complete, repaired, incomplete "
                        "(records still missing, or a truncated reference), failed (no usable answer; "
                        "retried later).",
                        "none",
                        [target(f"sum by (tenant, result) "
                                f"(increase(m365_activity_reconcile_windows_total{sel()}[{HOUR}]))",
                                "{{tenant}} {{result}}")], stack=True))
    return dashboard("m365-audit-feed", "M365 audit feed",
                     "Office 365 Management Activity API per tenant and content type: subscriptions, "
                     "backlog, blob lag, record delay, record rates, throttling and expired content.", p)


# --- M365 exporter -------------------------------------------------------------------

def exporter():
    lay = Layout()
    p = []
    p.append(state_timeline(lay, "Collector success",
                            "Whether the last refresh of each collector (service_health, messages, "
                            "activity, app_credentials) succeeded.",
                            f"max by (tenant, collector) (m365_collector_success{sel()})",
                            "{{tenant}} · {{collector}}",
                            value_mappings([(1, "ok", "green"), (0, "failed", "red")]), h=7))
    p.append(timeseries(lay, "Time since last successful refresh",
                        "now − m365_collector_last_success_timestamp_seconds, per collector, "
                        "beside now − its start (a collector with no success yet shows only that).",
                        "s",
                        [target("time() - max by (tenant, collector) "
                                f"(m365_collector_last_success_timestamp_seconds{sel()})",
                                "{{tenant}} {{collector}}"),
                         target("3 * max by (tenant, collector) "
                                f"(m365_collector_interval_seconds{sel()}) + 300",
                                "{{tenant}} {{collector}} stale threshold (M365CollectorStale)",
                                ref="B"),
                         # Before a first success there is no last success:
                         # the time since start is what M365CollectorNeverSucceeded watches.
                         target("time() - max by (tenant, collector) "
                                f"(m365_collector_start_timestamp_seconds{sel()})",
                                "{{tenant}} {{collector}} since start (M365CollectorNeverSucceeded)",
                                ref="C")]))
    p.append(timeseries(lay, "Refresh duration",
                        "Duration of the last refresh of each collector.",
                        "s",
                        [target(f"max by (tenant, collector) (m365_collector_duration_seconds{sel()})",
                                "{{tenant}} {{collector}}")]))
    p.append(timeseries(lay, "Collector panics",
                        "Collector tasks caught panicking and restarted, per second. Any value "
                        "above 0 is a bug: report it with the panic message from the logs.",
                        "ops",
                        [target(zero_fallback(
                            f"sum by (tenant, collector) (rate(m365_collector_panics_total{sel()}[{RI}]))",
                            "tenant, collector", "m365_collector_success"),
                            "{{tenant}} {{collector}}")]))
    p.append(timeseries(lay, "API requests by api, operation and code",
                        "Requests to Microsoft per second by api (graph, management, login), operation "
                        "and HTTP status code (`error` for transport failures).",
                        "reqps",
                        [target("sum by (tenant, api, operation, code) "
                                f"(rate(m365_api_requests_total{sel()}[{RI}]))",
                                "{{tenant}} {{api}} {{operation}} {{code}}")], stack=True))
    p.append(timeseries(lay, "API request latency (p95)",
                        "95th percentile of the request duration to Microsoft by api and operation, "
                        "all tenants together (the histogram has no tenant label, so it stays small "
                        "at any tenant count).",
                        "s",
                        [target("histogram_quantile(0.95, sum by (api, operation, le) "
                                f"(rate(m365_api_request_duration_seconds_bucket{{job=~\"$job\"}}[{RI}])))",
                                "{{api}} {{operation}}")]))
    p.append(timeseries(lay, "Throttled requests",
                        "Requests throttled by Microsoft per second (HTTP 429, or 403 with AF429), by "
                        "api and operation.",
                        "reqps",
                        [target(zero_fallback(
                            f"sum by (tenant, api, operation) (rate(m365_api_throttled_total{sel()}[{RI}]))",
                            "tenant, api, operation", "m365_api_requests_total"),
                            "{{tenant}} {{api}} {{operation}}")]))
    p.append(throttled_share(lay))
    p.append(timeseries(lay, "API errors by Microsoft error code",
                        "Errors returned by Microsoft per second, by api and error code.",
                        "reqps",
                        [target(zero_fallback(
                            f"sum by (tenant, api, error_code) (rate(m365_api_errors_total{sel()}[{RI}]))",
                            "tenant, api", "m365_api_requests_total"),
                            "{{tenant}} {{api}} {{error_code}}")]))
    p.append(timeseries(lay, "Token requests per hour",
                        "Access-token requests by result, in the hour before each point. Tokens are "
                        "reused until shortly before they expire, so a healthy tenant shows a few "
                        "successes per hour; failures and no success for 30 minutes: "
                        "M365TokenRenewalFailing pages.",
                        "none",
                        [target("sum by (tenant, result) "
                                f"(increase(m365_auth_token_requests_total{sel()}[{HOUR}]))",
                                "{{tenant}} {{result}}")]))
    p.append(timeseries(lay, "Token and certificate expiry",
                        "Time left until the cached access token of each audience expires, and until the "
                        "client certificate expires (only when a certificate is configured).",
                        "s",
                        [target("min by (tenant, audience) "
                                f"(m365_auth_token_expiry_timestamp_seconds{sel()}) - time()",
                                "{{tenant}} token {{audience}}", ref="A"),
                         target(f"min by (tenant) (m365_auth_certificate_expiry_timestamp_seconds{sel()}) - time()",
                                "{{tenant}} certificate", ref="B")]))
    p.append(panel(lay, "bargauge", "App registration credential expiry",
                   "Time left until each client secret and certificate of the exporter's own app "
                   "registration expires (m365_app_credential_expiry_timestamp_seconds; collector "
                   "app_credentials, needs Application.Read.All). Orange under 30 days "
                   "(M365AppCredentialExpiringSoon warns), red under 7 (it pages); below zero: "
                   "expired but still listed in the app. Rotate without downtime: add a new "
                   "credential, deploy it, then remove the old one.",
                   "s",
                   [target(f"min by (tenant, type, key_id) (m365_app_credential_expiry_timestamp_seconds{sel()}) - time()",
                           "{{tenant}} {{type}} {{key_id}}", instant=True)],
                   w=24, h=6,
                   defaults={"min": 0, "max": 90 * 86400, "color": {"mode": "thresholds"},
                             "thresholds": thresholds("red", 7 * 86400, "orange", 30 * 86400, "green")},
                   options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "orientation": "horizontal", "displayMode": "basic",
                            "showUnfilled": True, "valueMode": "color", "namePlacement": "left"}))
    p.append(timeseries(lay, "Scrape duration",
                        "How long Prometheus takes to scrape the exporter (scrape_duration_seconds). "
                        "/metrics never calls Microsoft, so this should stay in milliseconds.",
                        "s",
                        [target('scrape_duration_seconds{job=~"$job"}', "{{job}} {{instance}}")]))
    p.append(timeseries(lay, "Samples per scrape",
                        "Samples exposed by the exporter per scrape (scrape_samples_scraped).",
                        "none",
                        [target('scrape_samples_scraped{job=~"$job"}', "{{job}} {{instance}}")]))
    p.append(state_timeline(lay, "Target up",
                            "Whether Prometheus can scrape the exporter (up).",
                            'up{job=~"$job"}', "{{job}} {{instance}}",
                            value_mappings([(1, "up", "green"), (0, "down", "red")]), w=12, h=8))
    p.extend(process_panels(lay))
    p.append(state_timeline(lay, "Configuration reload",
                            "Whether the last configuration load or reload (SIGHUP, POST /-/reload) "
                            "succeeded (m365_config_last_reload_successful); a refused one leaves the "
                            "previous configuration running.",
                            'm365_config_last_reload_successful{job=~"$job"}', "{{instance}}",
                            value_mappings([(1, "ok", "green"), (0, "refused", "red")]), w=12, h=8))
    p.append(timeseries(lay, "Time since last configuration load",
                        "now − m365_config_last_reload_success_timestamp_seconds: time since the "
                        "configuration was last loaded successfully (start or reload).",
                        "s",
                        [target('time() - m365_config_last_reload_success_timestamp_seconds{job=~"$job"}',
                                "{{instance}}")], w=12, h=5))
    p.append(panel(lay, "table", "Build info",
                   "Version and revision of each running exporter (m365_exporter_build_info).", "none",
                   [target('m365_exporter_build_info{job=~"$job"}', ref="A", instant=True, fmt="table")],
                   w=12, h=5, options={"showHeader": True, "cellHeight": "sm"},
                   transformations=[{"id": "organize", "options": {
                       "excludeByName": {"Time": True, "Value": True, "__name__": True}}}]))
    return dashboard("m365-exporter", "M365 exporter",
                     "Health of m365-exporter itself: collectors, requests to Microsoft, throttling, "
                     "tokens and scrapes.", p)


# M365ExporterRestarting: more than this many starts in its window.
RESTART_WINDOW = "30m"
RESTARTS_ALLOWED = 2


def process_panels(lay):
    """The exporter process: memory, CPU, restarts, file descriptors (the process_* families,
    read from /proc/self at each scrape of /metrics)."""
    job = '{job=~"$job"}'
    restarts = timeseries(
        lay, "Restarts",
        f"Starts of each exporter in the {RESTART_WINDOW} before each point "
        f"(changes of process_start_time_seconds): what M365ExporterRestarting watches. "
        f"Above the {RESTARTS_ALLOWED} line it warns (a crash loop: out-of-memory kills, failing "
        "probes, panics).",
        "none",
        [target(f"changes(process_start_time_seconds{job}[{RESTART_WINDOW}])", "{{instance}}")],
        w=12, h=8)
    d = restarts["fieldConfig"]["defaults"]
    d["min"] = 0
    d["thresholds"] = thresholds("green", RESTARTS_ALLOWED + 0.5, "orange")
    d["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    fds = timeseries(
        lay, "File descriptors in use",
        "Open file descriptors of each exporter as a share of its limit "
        "(process_open_fds / process_max_fds): sockets to Microsoft and to scrapers, the audit "
        "feed's files. Near 100 % new connections and files fail: raise the limit "
        "(LimitNOFILE, the container's ulimit).",
        "percentunit",
        [target(f"process_open_fds{job} / process_max_fds{job}", "{{instance}}")],
        w=12, h=8)
    fds["fieldConfig"]["defaults"]["min"] = 0
    return [
        timeseries(lay, "Resident memory",
                   "Resident memory of each exporter (process_resident_memory_bytes). It should "
                   "stay flat for weeks at a level set by the tenant count (BENCHMARKS.md); a "
                   "climb to the memory limit before each restart means out-of-memory kills.",
                   "bytes",
                   [target(f"process_resident_memory_bytes{job}", "{{instance}}")]),
        timeseries(lay, "CPU",
                   "CPU time of each exporter per second, user and system together "
                   "(rate of process_cpu_seconds_total): 1 = one core busy.",
                   "percentunit",
                   [target(f"rate(process_cpu_seconds_total{job}[{RI}])", "{{instance}}")]),
        restarts,
        fds,
        timeseries(lay, "Virtual memory",
                   "Address space of each exporter (process_virtual_memory_bytes), and its limit "
                   "(process_virtual_memory_max_bytes, RLIMIT_AS) where one is set: no limit line "
                   "when unlimited (2^64). Far above the resident memory by design (thread stacks, "
                   "the allocator's reserved arenas); only the limit matters.",
                   "bytes",
                   [target(f"process_virtual_memory_bytes{job}", "{{instance}}"),
                    target(f"process_virtual_memory_max_bytes{job} < {UNLIMITED}",
                           "{{instance}} limit", ref="B")]),
    ]


# process_virtual_memory_max_bytes when RLIMIT_AS is unlimited is 2^64; anything below 2^63
# is a real limit.
UNLIMITED = "2^63"


# What M365APIThrottled computes: the share of a tenant's requests to an API that were
# throttled, over the alert's own 10-minute window, against its 10 % line.
THROTTLED_WINDOW = "10m"
THROTTLED_SHARE = 0.1


def throttled_share(lay):
    w = THROTTLED_WINDOW
    expr = (f"sum by (tenant, api) (rate(m365_api_throttled_total{sel()}[{w}]))\n/\n"
            f"sum by (tenant, api) (rate(m365_api_requests_total{sel()}[{w}]))")
    p = timeseries(lay, "Throttled share of requests",
                   "Share of each tenant's requests to an API (graph, management, login) that "
                   f"Microsoft throttled (HTTP 429, or 403 with AF429) over {w}: what "
                   f"M365APIThrottled watches. Above the {THROTTLED_SHARE:.0%} line for 15 minutes "
                   "it warns.",
                   "percentunit",
                   [target(zero_fallback(expr, "tenant, api", "m365_api_requests_total", window=w),
                           "{{tenant}} {{api}}")])
    d = p["fieldConfig"]["defaults"]
    d["min"] = 0
    d["max"] = 1
    d["thresholds"] = thresholds("green", THROTTLED_SHARE, "orange")
    d["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    return p


def main():
    for name, dash in (("m365-service-health.json", service_health()),
                       ("m365-audit-feed.json", audit_feed()),
                       ("m365-exporter.json", exporter()),
                       ("m365-track-record.json", track_record())):
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            json.dump(dash, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print(f"wrote dashboards/{name}: {len(dash['panels'])} panels")


if __name__ == "__main__":
    main()
