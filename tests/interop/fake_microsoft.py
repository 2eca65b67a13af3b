#!/usr/bin/env python3
"""An independent fake of the Microsoft endpoints m365-exporter talks to.

Written from Microsoft's published formats (Entra ID v2.0 token endpoint,
Microsoft Graph v1.0 admin/serviceAnnouncement, Office 365 Management
Activity API reference), NOT from the exporter's own simulator, so that a
misreading shared by the exporter and its simulator shows up here.

Standard library only.  One server, one port, every API:

  POST /{tenant}/oauth2/v2.0/token                      Entra ID (v2.0)
  GET  /{tenant}/v2.0/.well-known/openid-configuration  OpenID discovery (issuer names the GUID)
  GET  /metadata/identity/oauth2/token?resource=        Azure IMDS (managed identity)
  GET  /v1.0/admin/serviceAnnouncement/{healthOverviews,issues,messages}
  GET  /v1.0/applications(appId='{client id}')?$select=passwordCredentials,keyCredentials
  GET  /api/v1.0/{tenant}/activity/feed/subscriptions/list
  POST /api/v1.0/{tenant}/activity/feed/subscriptions/start?contentType=
  GET  /api/v1.0/{tenant}/activity/feed/subscriptions/content?contentType=&startTime=&endTime=
  GET  /api/v1.0/{tenant}/activity/feed/audit/{contentId}  (the contentUri we list)
  POST /v1.0/security/auditLog/queries                  Audit Log Query API (201, notStarted)
  GET  /v1.0/security/auditLog/queries/{id}             notStarted -> running -> succeeded | failed
  GET  /v1.0/security/auditLog/queries/{id}/records     auditLogRecords, @odata.nextLink paging

Debug (never logged as traffic):
  GET /_truth     what was served (raw Graph objects, every published blob
                  and its records), plus the run's parameters
  GET /_requests  every request: method, path, query, status, api, ...

Usage: fake_microsoft.py PORT [--faults] [--token-lifetime S]
       [--expires-in-string] [--graph-root URL] [--management-root URL]
       [--tenant-id G] [--client-id G] [--client-secret S] [--publisher-id G]
       [--unsubscribed CT] [--late-after S]
       [--pascal-enums] [--next-page-header NextPageUri|NextPageUrl]
       [--domain NAME] [--audit-off message|straddle|code] [--imds-updating S]
       [--unlisted N] [--failed-queries N] [--query-as-documented]

The documented variants (each as Microsoft's pages or field reports show it):
  --pascal-enums      Graph enum values as the API pages print them
                      ("ServiceOperational", "Incident", "StayInformed", "Normal")
  --next-page-header  the troubleshooting guide's NextPageUrl spelling
  --domain NAME       the tenant's domain works at the token endpoint and in
                      the discovery document; a Management URL naming the
                      tenant by anything but its GUID is AF20013 ("not a valid GUID")
  --audit-off SPLIT   unified audit logging off: /start answers the
                      DataServiceException text split at its first ": " between
                      code and message as issues #89 (message), power-platform#184
                      (straddle) show it, or before the exception's name (code)
  --imds-updating S   IMDS answers 404, then 410 until S seconds after its first request
  --query-as-documented  the Audit Log Query API as its method pages print it: Get's
                      auditLogQuery inside "value", auditData annotated
                      "@odata.type": "microsoft.graph.security.auditData", no count
                      properties (with --pascal-enums: PascalCase status and record types)

The unified audit log (the Audit Log Query API's records) holds every
published blob's records, expired ones' too, and those of the --unlisted
blobs the Management API never offers; --failed-queries N: the first N
queries end `failed`.  JSON is written as Python writes it (", ", ": "),
which Graph's grammar allows.
"""

import argparse
import json
import random
import re
import secrets
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

CONTENT_TYPES = [
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
]

GRAPH_PAGE = 5        # items per Graph page (the exporter's simulator uses another)
LISTING_PAGE = 3      # items per subscriptions/content page
RETENTION = 7 * 86400

# --------------------------------------------------------------------------
# time formats


def graph_time(dt):
    """Graph's documented DateTimeOffset form: 7 fractional digits, Z."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%07d" % (dt.microsecond * 10) + "Z"


def content_time(dt):
    """contentCreated / contentExpiration: milliseconds, Z (as in the reference)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def record_time(dt):
    """CreationTime: UTC, no zone, whole seconds."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def parse_window_time(s):
    """startTime/endTime: YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS, UTC
    (a trailing Z is tolerated)."""
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1]
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S.%f"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return None


def now_utc():
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------
# Graph data: Microsoft-style ids and names, unknown values, nulls, extras


def build_graph(now, rng):
    def t(minutes_ago, micro=0):
        return graph_time((now - timedelta(minutes=minutes_ago)).replace(microsecond=micro))

    overviews = [
        ("Exchange", "Exchange Online", "serviceDegradation"),
        ("OrgLiveID", "Identity Service", "serviceOperational"),
        ("SharePoint", "SharePoint Online", "investigating"),
        ("Lync", "Skype for Business", "serviceOperational"),
        ("microsoftteams", "Microsoft Teams", "serviceInterruption"),
        ("OneDriveForBusiness", "OneDrive for Business", "serviceRestored"),
        ("Forms", "Microsoft Forms", "extendedRecovery"),
        ("PowerBIcom", "Power BI", "falsePositive"),
        ("Intune", "Microsoft Intune", "restoringService"),
        ("MicrosoftDefenderforEndpoint", "Microsoft Defender for Endpoint", "postIncidentReviewPublished"),
        ("Planner", "Planner", "mitigatedExternal"),
        ("yammer", "Yammer Enterprise", "verifyingService"),
        # a status the exporter has never heard of: must pass through verbatim
        ("Dynamics365", "Dynamics 365 Apps", "serviceMaintenanceWindow"),
        ("OSDPPlatform", "Microsoft 365 suite", "investigationSuspended"),
    ]
    health = []
    for sid, name, status in overviews:
        health.append({
            "service": name,
            "status": status,
            "id": sid,
            # navigation/extra properties Graph may add; must be ignored
            "issues@odata.navigationLink": "admin/serviceAnnouncement/healthOverviews('%s')/issues" % sid,
        })

    issue_specs = [
        # id, service name, classification, origin, status, resolved, feature, featureGroup, title
        ("EX512345", "Exchange Online", "incident", "microsoft", "serviceDegradation", False,
         "Mail flow", "E-Mail and calendar access", "Some users may see delays when sending mail"),
        ("EX512399", "Exchange Online", "advisory", "thirdParty", "serviceDegradation", False,
         "Outlook on the web", "Networking Issues", "Users can't \"search\" in OWA, and \\ see errors"),
        ("EX498001", "Exchange Online", "incident", "microsoft", "serviceRestored", True,
         "Mail flow", "E-Mail and calendar access", "Resolved: mail delays"),
        ("TM777001", "Microsoft Teams", "incident", "microsoft", "serviceInterruption", False,
         "Teams Components", "Teams Components", "Users can't join meetings"),
        ("TM777002", "Microsoft Teams", "incident", "customer", "investigating", False,
         None, None, "Chat messages delayed"),
        ("SP611111", "SharePoint Online", "advisory", None, "investigating", False,
         "Search", "SharePoint Features", "Search results may be incomplete"),
        ("SP600000", "SharePoint Online", "advisory", "microsoft", "falsePositive", True,
         "Search", "SharePoint Features", "Not an issue"),
        ("OD300300", "OneDrive for Business", "advisory", "microsoft", "serviceRestored", True,
         "Sync", "Sync", "Sync resolved"),
        # a service absent from healthOverviews
        ("VV100001", "Microsoft Viva", "advisory", "microsoft", "serviceDegradation", False,
         "Viva Connections", "Viva", "Viva Connections dashboard slow"),
        ("FM200002", "Microsoft Forms", "incident", "microsoft", "extendedRecovery", False,
         "Forms", "Forms", "Forms responses missing"),
        # a status value unknown to the exporter, on an active issue
        ("DY900009", "Dynamics 365 Apps", "advisory", "microsoft", "serviceMaintenanceWindow", False,
         "Sales", "Dynamics", "Planned maintenance"),
        ("IT400004", "Microsoft Intune", "incident", "microsoft", "restoringService", False,
         "Device enrollment", "Intune", "Enrollment failures"),
        ("IT400005", "Microsoft Intune", "advisory", "microsoft", "resolved", True,
         "Device enrollment", "Intune", "Old enrollment issue"),
        # Graph enums are evolvable: unknownFutureValue is a documented member
        ("PL500005", "Planner", "unknownFutureValue", "microsoft", "serviceDegradation", False,
         "Planner", "Planner", "Tasks not syncing"),
    ]
    issues = []
    for k, (iid, svc, cls, origin, status, resolved, feat, fg, title) in enumerate(issue_specs):
        start = 300 + 37 * k
        issues.append({
            "startDateTime": t(start, 1234 * k % 1000000),
            "endDateTime": t(10) if resolved else None,
            "lastModifiedDateTime": t(5 + k, 999999 if k % 2 else 0),
            "title": title,
            "id": iid,
            "impactDescription": "Impact: " + title,
            "classification": cls,
            "origin": origin,
            "status": status,
            "service": svc,
            "feature": feat,
            "featureGroup": fg,
            "isResolved": resolved,
            "highImpact": None,
            "details": [{"name": "NotifyInApp", "value": "True"}],
            "posts": [{"createdDateTime": t(start), "postType": "regular",
                       "description": {"contentType": "html", "content": "<p>x</p>"}}],
        })

    issues.extend(history_issues(now))

    msg_specs = [
        # category, severity, major, deadline (days from now or None), services
        ("planForChange", "normal", False, None, ["Microsoft Teams"]),
        ("planForChange", "high", True, 20, ["Exchange Online", "Microsoft 365 suite"]),
        ("planForChange", "high", True, -3, ["SharePoint Online"]),
        ("stayInformed", "normal", False, None, []),
        ("stayInformed", "normal", True, 45, ["Microsoft Teams"]),
        ("preventOrFixIssue", "critical", False, 2, ["Microsoft Intune"]),
        ("preventOrFixIssue", "high", False, -10, ["Exchange Online"]),
        ("preventOrFixIssue", "normal", False, 7, ["OneDrive for Business", "SharePoint Online"]),
        ("stayInformed", "high", False, None, ["Power BI"]),
        ("planForChange", "critical", True, 90, ["Microsoft Entra"]),
        ("planForChange", "normal", False, 30, ["Planner"]),
        ("stayInformed", "critical", False, -1, ["Microsoft 365 apps"]),
        ("preventOrFixIssue", "normal", True, None, ["Exchange Online"]),
        ("planForChange", "normal", None, None, ["Microsoft Viva"]),  # isMajorChange null
        ("unknownFutureValue", "high", True, 5, None),                 # services null
    ]
    messages = []
    for k, (cat, sev, major, days, services) in enumerate(msg_specs):
        deadline = None
        if days is not None:
            deadline = graph_time((now + timedelta(days=days, minutes=k)).replace(microsecond=123456))
        messages.append({
            "startDateTime": t(60 * 24 * (k + 1)),
            "endDateTime": t(-60 * 24 * 30),
            "lastModifiedDateTime": t(60 * k),
            "title": "(Updated) Change %d" % k,
            "id": "MC%06d" % (700000 + k * 13),
            "category": cat,
            "severity": sev,
            "tags": ["Updated message", "User impact"],
            "isMajorChange": major,
            "actionRequiredByDateTime": deadline,
            "services": services,
            "expiryDateTime": None,
            "hasAttachments": False,
            "viewPoint": None,
            "details": [{"name": "ExternalLink", "value": "https://aka.ms/x"}],
            "body": {"contentType": "html", "content": "<p>body</p>"},
        })
    return {"healthOverviews": health, "issues": issues, "messages": messages}


def history_issues(now):
    """Resolved issues of the last weeks, as the issues list keeps them
    (serviceHealthIssue: endDateTime set, isResolved true): the track record
    reads them. Two parallel Exchange incidents, a Teams incident that began
    before a 30-day window and ended inside it, a false positive, a
    post-incident review, one older than the window."""
    def t(days_ago, hours=0.0, micro=0):
        return graph_time((now - timedelta(days=days_ago, hours=hours)).replace(microsecond=micro))

    specs = [
        # id, service name, classification, status, start, end, title
        ("EX480001", "Exchange Online", "incident", "serviceRestored",
         t(12), t(12, -3, 500000), "Mailbox access failures"),
        ("EX480002", "Exchange Online", "incident", "postIncidentReviewPublished",
         t(12, -1), t(12, -5), "Outlook connection errors"),
        ("TM470001", "Microsoft Teams", "incident", "serviceRestored",
         t(31), t(29, 12), "Meetings fail to start"),
        ("SP460001", "SharePoint Online", "advisory", "falsePositive",
         t(3), t(2), "Reported page errors"),
        ("LY450001", "Skype for Business", "incident", "serviceRestored",
         t(40), t(38), "Calls dropped"),
        ("OD440001", "OneDrive for Business", "advisory", "serviceRestored",
         t(7), t(6, 12, 250000), "Sync slow"),
        ("PB430001", "Power BI", "incident", "serviceRestored",
         t(2), t(2, -0.75), "Reports do not load"),
    ]
    out = []
    for iid, svc, cls, status, start, end, title in specs:
        out.append({
            "startDateTime": start,
            "endDateTime": end,
            "lastModifiedDateTime": end,
            "title": title,
            "id": iid,
            "impactDescription": "Impact: " + title,
            "classification": cls,
            "origin": "microsoft",
            "status": status,
            "service": svc,
            "feature": None,
            "featureGroup": None,
            "isResolved": True,
            "highImpact": None,
            "details": [],
            "posts": [{"createdDateTime": start, "postType": "regular",
                       "description": {"contentType": "html", "content": "<p>Resolved.</p>"}}],
        })
    return out


ENUM_FIELDS = ("status", "classification", "origin", "category", "severity")


def pascal(item):
    """A Graph object with its enum values as Microsoft's API pages print
    them: the first letter upper-cased (serviceRestored -> ServiceRestored)."""
    out = dict(item)
    for f in ENUM_FIELDS:
        v = out.get(f)
        if isinstance(v, str) and v:
            out[f] = v[0].upper() + v[1:]
    return out


def build_application(now):
    """The app registration (Graph `application` resource): client secrets
    (passwordCredential) and certificates (keyCredential) as Graph returns
    them, with the properties the exporter must ignore."""
    def t(days, micro=0):
        return graph_time((now + timedelta(days=days)).replace(microsecond=micro))

    return {
        "id": "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
        "appId": None,  # filled in by State (the client id)
        "displayName": "m365-exporter",
        "passwordCredentials": [
            {"customKeyIdentifier": None, "displayName": "exporter 2026",
             "endDateTime": t(19.5, 456789), "hint": "Qx8",
             "keyId": "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e", "secretText": None,
             "startDateTime": t(-345)},
            {"customKeyIdentifier": None, "displayName": None,
             "endDateTime": t(-40), "hint": "a1B",
             "keyId": "7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a098", "secretText": None,
             "startDateTime": t(-770)},
        ],
        "keyCredentials": [
            {"customKeyIdentifier": "QTFGMEM5RThCN0Q2QTVGNEUzRDJDMUIwQTlGOEU3RDZDNUI0QTM5",
             "displayName": "CN=m365-exporter", "endDateTime": t(400), "key": None,
             "keyId": "3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4", "startDateTime": t(-330),
             "type": "AsymmetricX509Cert", "usage": "Verify"},
        ],
    }


# --------------------------------------------------------------------------
# Audit data

WORKLOADS = {
    "Audit.AzureActiveDirectory": [
        ("AzureActiveDirectory", 15, ["UserLoggedIn", "UserLoginFailed"]),
        ("AzureActiveDirectory", 8, ["Update user.", "Add member to group."]),
    ],
    "Audit.Exchange": [
        ("Exchange", 2, ["MailItemsAccessed", "Send"]),
        ("Exchange", 1, ["Set-Mailbox", "New-InboxRule"]),
    ],
    "Audit.SharePoint": [
        ("SharePoint", 6, ["FileAccessed", "FileDeleted", "FileModified"]),
        ("OneDrive", 6, ["FileDeleted", "FileSyncUploadedFull"]),
        ("SharePoint", 14, ["SharingSet"]),
    ],
    "Audit.General": [
        ("MicrosoftTeams", 25, ["MemberAdded", "TeamCreated"]),
        ("PowerBI", 20, ["ViewReport"]),
        ("Yammer", 22, ["MessageCreated"]),
        ("MicrosoftForms", 66, ["CreateForm"]),
    ],
    "DLP.All": [
        ("Exchange", 13, ["DlpRuleMatch"]),
        ("SharePoint", 11, ["DlpRuleMatch"]),
        ("OneDrive", 11, ["DlpRuleUndo"]),
    ],
}

REGION = {
    "Audit.AzureActiveDirectory": "audit_azureactivedirectory$Audit_AzureActiveDirectory$na0031",
    "Audit.Exchange": "audit_exchange$Audit_Exchange$emea0019",
    "Audit.SharePoint": "audit_sharepoint$Audit_SharePoint$na0012",
    "Audit.General": "audit_general$Audit_General$apac0004",
    "DLP.All": "dlp_all$DLP_All$na0007",
}


class Audit:
    def __init__(self, tenant_id, now, rng, unsubscribed, gone, unlisted=0):
        self.tenant_id = tenant_id
        self.rng = rng
        self.lock = threading.Lock()
        self.blobs = []          # published blobs, in publication order
        self.by_id = {}
        # Blobs the Management API never offers: their records exist only
        # in the unified audit log (the Audit Log Query API).
        self.unlisted = []
        self.subscribed = {ct: ct not in unsubscribed for ct in CONTENT_TYPES}
        self.recent = {ct: [] for ct in CONTENT_TYPES}  # records available for duplication
        self.seq = 0
        # 29 h of history: listing it takes two windows of <= 24 h.
        # Oldest first, so a duplicate always re-appears in a newer blob (the
        # exporter fetches oldest first, so "first seen" is well defined).
        for ct in CONTENT_TYPES:
            n = {"Audit.AzureActiveDirectory": 7, "Audit.Exchange": 9, "Audit.SharePoint": 11,
                 "Audit.General": 6, "DLP.All": 4}[ct]
            agos = sorted((timedelta(minutes=rng.randint(20, 29 * 60 - 10), seconds=rng.randint(0, 59))
                           for _ in range(n)), reverse=True)
            for k, ago in enumerate(agos):
                b = self.add_blob(ct, now - ago, dup=(k % 3 == 2))
                # expired by the time it is fetched (AF20051): its records are lost
                b["gone"] = gone and ct == "Audit.Exchange" and k == 0
        # Never listed, 26 to 25 h old (their records 29 to 25 h old): inside
        # the first window the reconciler queries (from the feed's lookback
        # of 30 h to the last midnight UTC, at least 24 h ago).
        order = ["Audit.Exchange", "Audit.SharePoint", "DLP.All", "Audit.AzureActiveDirectory", "Audit.General"]
        for k in range(unlisted):
            ct = order[k % len(order)]
            self.unlisted.append(self.make_blob(ct, now - timedelta(hours=26) + timedelta(minutes=13 * k),
                                                remember=False))

    def add_blob(self, ct, created, dup=False, not_before=None):
        b = self.make_blob(ct, created, dup, not_before=not_before)
        self.blobs.append(b)
        self.by_id[b["contentId"]] = b
        return b

    def make_blob(self, ct, created, dup=False, remember=True, not_before=None):
        """A blob and its records (CreationTime 1 min to 3 h before the blob,
        never before `not_before`); `remember`: later blobs may repeat its records."""
        rng = self.rng
        created = created.replace(microsecond=rng.randint(0, 999) * 1000)
        self.seq += 1
        stamp = created.strftime("%Y%m%d%H%M%S") + "%03d" % (created.microsecond // 1000) + "%06d" % self.seq
        content_id = "%s$%s$%s" % (stamp, stamp, REGION[ct])
        records = []
        for _ in range(rng.randint(1, 30)):
            workload, rtype, ops = rng.choice(WORKLOADS[ct])
            ctime = created - timedelta(seconds=rng.randint(60, 3 * 3600))
            if not_before is not None and ctime < not_before:
                ctime = not_before
            rec = {
                "CreationTime": record_time(ctime),
                "Id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "Operation": rng.choice(ops),
                "OrganizationId": self.tenant_id,
                "RecordType": rtype,
                "ResultStatus": rng.choice(["Succeeded", "Success", "PartiallySucceeded", None]),
                "UserKey": "10032001%08X@contoso.onmicrosoft.com" % rng.getrandbits(32),
                "UserType": rng.choice([0, 2, 4]),
                "Version": 1,
                "Workload": workload,
                "ClientIP": "203.0.113.%d" % rng.randint(1, 254),
                "ObjectId": "https://contoso.sharepoint.com/sites/a/Shared Documents/\u00e9t\u00e9 \"q\".docx",
                "UserId": "user%d@contoso.onmicrosoft.com" % rng.randint(1, 50),
                "ExtendedProperties": [{"Name": "UserAgent", "Value": "Mozilla/5.0"}],
                "AppAccessContext": {"AADSessionId": str(uuid.uuid4()), "UniqueTokenId": None},
            }
            records.append(rec)
        if dup and self.recent[ct]:
            # Microsoft: "duplicates happen" -- the same record again, in a later blob.
            for rec in rng.sample(self.recent[ct], min(3, len(self.recent[ct]))):
                records.insert(rng.randint(0, len(records)), dict(rec))
        if remember:
            self.recent[ct].extend(records[:5])
        return {
            "contentType": ct,
            "contentId": content_id,
            "created": created,
            "records": records,
            "body": json.dumps(records, ensure_ascii=(self.seq % 2 == 0)).encode("utf-8"),
            "gone": False,
        }

    @staticmethod
    def truth_of(blobs):
        return [{
            "contentType": b["contentType"],
            "contentId": b["contentId"],
            "contentCreated": content_time(b["created"]),
            "contentCreatedUnix": b["created"].timestamp(),
            "gone": b["gone"],
            "records": [[r["Id"], r["Workload"], r["Operation"], r["CreationTime"]]
                        for r in b["records"]],
            # each record as the Management API serves it (the sink's lines)
            "full": b["records"],
        } for b in blobs]

    def truth(self):
        return self.truth_of(self.blobs)

    def log_records(self, start, end):
        """The unified audit log's records created in [start, end) (each
        once, oldest first) with their content type: every published blob's,
        expired ones' included (the log keeps them), and the never-listed ones'."""
        seen, out = set(), []
        for b in self.blobs + self.unlisted:
            for r in b["records"]:
                t = datetime.strptime(r["CreationTime"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
                if start <= t < end and r["Id"] not in seen:
                    seen.add(r["Id"])
                    out.append((t, b["contentType"], r))
        out.sort(key=lambda x: x[0])
        return out


# --------------------------------------------------------------------------
# the server


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.started = now_utc()
        self.graph = build_graph(self.started, self.rng)
        self.application = build_application(self.started)
        self.application["appId"] = args.client_id
        # With the unified audit log off nothing is subscribed, nor can be.
        unsubscribed = set(args.unsubscribed) | (set(CONTENT_TYPES) if args.audit_off else set())
        self.audit = Audit(args.tenant_id, self.started, self.rng, unsubscribed, args.faults, args.unlisted)
        self.queries = {}         # Audit Log Query API: id -> query
        self.tokens = {}          # access_token -> (audience, expiry unix)
        self.requests = []
        self.counters = {}
        self.throttled_once = set()
        self.late_published = False
        self.revoked = set()
        self.revoked_at = None
        # IMDS while its host is updated (--imds-updating): attempts so far, the first one's time.
        self.imds_attempts = 0
        self.imds_first = None

    def revoke_all(self):
        """Every issued token stops working at once (a signing-key rollover,
        an admin revoking sessions): the client must renew once and go on."""
        with self.lock:
            self.revoked.update(self.tokens)
            self.revoked_at = time.time()

    def count(self, name):
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1
            return self.counters[name]

    def should_throttle(self, kind, key, every):
        """With --faults, throttle every `every`-th request of `kind`, but never
        the same key twice in a row (so a retry always gets through)."""
        if not self.args.faults:
            return False
        n = self.count("fault-" + kind)
        with self.lock:
            if key in self.throttled_once:
                self.throttled_once.discard(key)
                return False
            if n % every == 1:
                self.throttled_once.add(key)
                return True
        return False

    def publish_late(self):
        """Content Microsoft indexes after we started: contentCreated a few
        minutes in the past (inside the exporter's overlap), it and its
        records never before today's midnight UTC, where the reconciler's
        window ends: what it finds missing then never depends on whether
        this content was fetched yet."""
        now = now_utc()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        with self.audit.lock:
            for k, ct in enumerate(["Audit.Exchange", "Audit.SharePoint", "Audit.General", "Audit.AzureActiveDirectory"]):
                self.audit.add_blob(ct, max(now - timedelta(minutes=4 + 3 * k), midnight), dup=(k == 1),
                                    not_before=midnight)
            self.late_published = True


# The Management Activity API schema's AuditLogRecordType (RecordType) and
# UserType members, by value, as the Graph auditLogRecordType /
# auditLogUserType enums spell them (camelCase; the schema page prints the
# PascalCase member names).
RECORD_TYPES = {1: "exchangeAdmin", 2: "exchangeItem", 3: "exchangeItemGroup", 4: "sharePoint",
                6: "sharePointFileOperation", 7: "oneDrive", 8: "azureActiveDirectory",
                9: "azureActiveDirectoryAccountLogon", 10: "dataCenterSecurityCmdlet",
                11: "complianceDLPSharePoint", 13: "complianceDLPExchange", 14: "sharePointSharingOperation",
                15: "azureActiveDirectoryStsLogon", 18: "securityComplianceCenterEOPCmdlet",
                19: "exchangeAggregatedOperation", 20: "powerBIAudit", 21: "crm", 22: "yammer",
                25: "microsoftTeams", 63: "dlpEndpoint", 66: "microsoftForms"}
USER_TYPES = {0: "regular", 1: "reserved", 2: "admin", 3: "dcAdmin", 4: "system", 5: "application",
              6: "servicePrincipal", 7: "customPolicy", 8: "systemPolicy"}
AUDIT_PAGE = 100          # auditLogRecords per page
QUERY_QUEUED = 0.5        # an auditLogQuery is notStarted this long, then running
QUERY_RUNS = 2.0          # ... and done this long after it was created


def parse_graph_time(s):
    """A DateTimeOffset as Graph takes it: any fractional digits, Z or an offset."""
    if not isinstance(s, str):
        return None
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", s.strip())
    if not m:
        return None
    dt = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    if m.group(2):
        dt = dt.replace(microsecond=int((m.group(2)[1:] + "000000")[:6]))
    if m.group(3) == "Z":
        return dt.replace(tzinfo=timezone.utc)
    sign = 1 if m.group(3)[0] == "+" else -1
    off = timedelta(hours=int(m.group(3)[1:3]), minutes=int(m.group(3)[4:6]))
    return (dt - sign * off).replace(tzinfo=timezone.utc)


def first_upper(v):
    return v[0].upper() + v[1:] if v else v


def audit_log_record(rec, ct, t, pascal_enums, data_type):
    """A unified-audit-log record as the Audit Log Query API returns it:
    the auditLogRecord resource (its own id, Graph's camelCase enums) with
    the record itself as auditData, annotated with its OData type."""
    rtype = RECORD_TYPES.get(rec["RecordType"], "unknownFutureValue")
    utype = USER_TYPES.get(rec["UserType"], "unknownFutureValue")
    if pascal_enums:
        rtype, utype = first_upper(rtype), first_upper(utype)
    data = {"@odata.type": data_type}
    data.update(rec)
    return {
        "@odata.type": "#microsoft.graph.security.auditLogRecord",
        # Graph's own key: nothing says it is the record's Id (it is not here)
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "auditLogRecord/" + rec["Id"])),
        "createdDateTime": graph_time(t),
        "auditLogRecordType": rtype,
        "operation": rec["Operation"],
        "organizationId": rec["OrganizationId"],
        "userType": utype,
        "userId": rec["UserId"],
        "service": rec["Workload"],
        "objectId": rec["ObjectId"],
        "userPrincipalName": rec["UserId"],
        "clientIp": rec["ClientIP"],
        "administrativeUnits": [],
        "auditData": data,
    }


GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def audit_off_body(split, tenant, ct, app, publisher):
    """/start with the unified audit log off: the .NET exception's text,
    split at its first ": " into the error's code and message."""
    exception = ("Microsoft.Office.Compliance.Audit.DataServiceException: Tenant %s does not exist.\r\n"
                 "   at Microsoft.Office.Compliance.Audit.API.AzureManager.GetSubscriptionTableClientForTenant(String tenantId)"
                 % tenant)
    corr = str(uuid.uuid4())
    if split == "message":      # MicrosoftDocs/office-365-management-api#89
        text = "StartSubscription [TenantId=%s,ContentType=%s,ApplicationId=%s,PublisherId=%s] failed. Exception: %s" % (
            tenant, ct, app, publisher, exception)
    elif split == "straddle":   # MicrosoftDocs/power-platform#184
        text = "StartSubscription [CorrId=%s][TenantId=%s,ContentType=%s,ApplicationId=%s,PublisherId=%s][AppId: %s] failed. Exception: %s" % (
            corr, tenant, ct, app, publisher, app, exception)
    else:                       # a prefix without ": ": the exception's name lands in code
        text = "StartSubscription[CorrId=%s]failed.Exception %s" % (corr, exception)
    code, _, message = text.partition(": ")
    return code, message


def make_handler(st):
    args = st.args

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fake-microsoft/1.0"

        def log_message(self, fmt, *a):  # quiet
            pass

        # ---------------------------------------------------------- helpers
        def base(self):
            return "http://" + (self.headers.get("Host") or "127.0.0.1:%d" % args.port)

        def send_json(self, status, obj, headers=None, api=None, extra=None, chunked=False):
            body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
            extra = extra if extra is not None else {}
            if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
                extra["code"] = obj["error"].get("code")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if chunked:
                step = max(1, len(body) // 3)
                for i in range(0, len(body), step):
                    part = body[i:i + step]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(body)
            if api:
                self.log(status, api, extra)

        def log(self, status, api, extra):
            u = urlsplit(self.path)
            q = parse_qs(u.query, keep_blank_values=True)
            entry = {
                "t": time.time(),
                "method": self.command,
                "path": u.path,
                "query": u.query,
                "status": status,
                "api": api,
                "publisher": q.get("PublisherIdentifier", [None])[0],
            }
            entry.update(extra)
            with st.lock:
                st.requests.append(entry)

        def bearer(self, api, audience):
            """Check the bearer token; return an error tuple or None."""
            h = self.headers.get("Authorization", "")
            if not h.startswith("Bearer "):
                return "missing"
            tok = h[len("Bearer "):].strip()
            if tok in st.revoked:
                return "revoked"
            info = st.tokens.get(tok)
            if info is None:
                return "unknown"
            aud, exp = info
            if time.time() >= exp:
                return "expired"
            if aud != audience:
                return "wrong-audience(%s)" % aud
            return None

        def read_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        # ---------------------------------------------------------- routing
        def do_GET(self):
            self.route()

        def do_POST(self):
            self.route()

        def route(self):
            u = urlsplit(self.path)
            if self.command == "POST" and self.headers.get("Content-Length") is None \
                    and self.headers.get("Transfer-Encoding") is None:
                # IIS / Azure front ends: a POST must say how long its body is
                api = "management" if u.path.startswith("/api/") else (
                    "login" if u.path.endswith("/token") else "graph" if u.path.startswith("/v1.0/") else "unknown")
                sys.stderr.write("fake: POST without Content-Length: %s\n" % self.path)
                self.close_connection = True
                return self.send_json(411, b"<h2>Length Required</h2>", api=api,
                                      extra={"note": "POST without Content-Length", "op": "subscriptions/start"
                                             if "subscriptions/start" in u.path else None})
            parts = [p for p in u.path.split("/") if p]
            try:
                if u.path == "/_truth":
                    return self.truth()
                if u.path == "/_requests":
                    with st.lock:
                        return self.send_json(200, st.requests)
                if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                    return self.token(parts[0])
                if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    return self.discovery(parts[0])
                if u.path == "/metadata/identity/oauth2/token":
                    return self.imds(u)
                if parts[:3] == ["v1.0", "admin", "serviceAnnouncement"] and len(parts) == 4:
                    return self.graph(parts[3], u)
                if parts[:4] == ["v1.0", "security", "auditLog", "queries"]:
                    return self.audit_queries(parts[4:], u)
                if len(parts) == 2 and parts[0] == "v1.0" and unquote(parts[1]).startswith("applications("):
                    return self.application(unquote(parts[1]), u)
                if parts[:1] == ["api"] and parts[1:2] in (["v1.0"], ["v1"]) and parts[3:5] == ["activity", "feed"]:
                    return self.management(parts[2], parts[5:], u)
                self.send_json(404, {"error": {"code": "NotFound", "message": "no route " + u.path}},
                               api="unknown")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def truth(self):
            with st.audit.lock:
                blobs = st.audit.truth()
                unlisted = st.audit.truth_of(st.audit.unlisted)
            with st.lock:
                queries = [{"id": q["id"], "start": q["start"].timestamp(), "end": q["end"].timestamp(),
                            "fails": q["fails"], "records": [[r["Id"], ct] for _, ct, r in q["records"]]}
                           for q in st.queries.values()]
            self.send_json(200, {
                "started": st.started.timestamp(),
                "now": time.time(),
                "tenant_id": args.tenant_id,
                "publisher_id": args.publisher_id,
                "graph_root": args.graph_root,
                "management_root": args.management_root,
                "token_lifetime": args.token_lifetime,
                "faults": args.faults,
                "late_published": st.late_published,
                "revoked_at": st.revoked_at,
                "revoke_after": args.revoke_after,
                "unsubscribed_at_start": args.unsubscribed,
                "audit_off": args.audit_off,
                "domain": args.domain,
                "pascal_enums": args.pascal_enums,
                "next_page_header": args.next_page_header,
                "imds_updating": args.imds_updating,
                "subscribed": dict(st.audit.subscribed),
                # as served: with --pascal-enums, PascalCase
                "graph": {k: [pascal(o) for o in v] for k, v in st.graph.items()}
                if args.pascal_enums else st.graph,
                "application": st.application,
                "blobs": blobs,
                "unlisted": unlisted,
                "failed_queries": args.failed_queries,
                "query_as_documented": args.query_as_documented,
                # what each audit-log query served: its window, its records
                # (Id, content type) and whether it ended failed
                "queries": queries,
            })

        # ---------------------------------------------------------- login
        def token(self, tenant):
            ctype = self.headers.get("Content-Type", "")
            form = parse_qs(self.read_body().decode("utf-8", "replace"))
            if not ctype.startswith("application/x-www-form-urlencoded"):
                return self.send_json(400, {"error": "invalid_request", "error_description":
                                            "AADSTS900144: The request body must contain the following parameter: 'grant_type'."},
                                      api="login", extra={"content_type": ctype})
            f = {k: v[0] for k, v in form.items()}
            scope = f.get("scope", "")
            audience = scope[: -len("/.default")] if scope.endswith("/.default") else None
            extra = {"audience": audience, "scope": scope}

            def fail(status, error, code, desc):
                self.send_json(status, {
                    "error": error,
                    "error_description": "%s: %s\r\nTrace ID: %s\r\nTimestamp: %s" % (
                        code, desc, uuid.uuid4(), now_utc().isoformat()),
                    "error_codes": [int(code[5:])],
                    "timestamp": now_utc().strftime("%Y-%m-%d %H:%M:%SZ"),
                    "trace_id": str(uuid.uuid4()),
                    "correlation_id": str(uuid.uuid4()),
                }, api="login", extra=extra)

            if tenant not in (args.tenant_id, args.domain):
                return fail(400, "invalid_request", "AADSTS90002", "Tenant '%s' not found." % tenant)
            if f.get("grant_type") != "client_credentials":
                return fail(400, "unsupported_grant_type", "AADSTS70003", "grant_type")
            if f.get("client_id") != args.client_id:
                return fail(400, "unauthorized_client", "AADSTS700016", "Application not found")
            if f.get("client_secret") != args.client_secret:
                return fail(401, "invalid_client", "AADSTS7000215", "Invalid client secret provided.")
            if audience is None or audience not in (args.graph_root, args.management_root):
                return fail(400, "invalid_scope", "AADSTS1002012", "The provided value for scope %s is not valid." % scope)
            tok = "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + secrets.token_urlsafe(48)
            st.tokens[tok] = (audience, time.time() + args.token_lifetime)
            life = str(args.token_lifetime) if args.expires_in_string else args.token_lifetime
            self.send_json(200, {
                "token_type": "Bearer",
                "expires_in": life,
                "ext_expires_in": life,
                "access_token": tok,
            }, api="login", extra=extra)

        def discovery(self, tenant):
            """The v2.0 OpenID Connect discovery document: issuer and
            token_endpoint name the tenant's GUID, whichever name was asked."""
            if tenant not in (args.tenant_id, args.domain):
                return self.send_json(400, {"error": "invalid_tenant", "error_description":
                                            "AADSTS90002: Tenant '%s' not found." % tenant,
                                            "error_codes": [90002]}, api="openid", extra={"tenant": tenant})
            g = args.tenant_id
            self.send_json(200, {
                "token_endpoint": "%s/%s/oauth2/v2.0/token" % (self.base(), g),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "jwks_uri": "%s/%s/discovery/v2.0/keys" % (self.base(), g),
                "issuer": "https://login.microsoftonline.com/%s/v2.0" % g,
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }, api="openid", extra={"tenant": tenant})

        def imds(self, u):
            """Azure IMDS's token endpoint (api-version 2018-02-01): the
            resource as audience, numbers as strings; while the host is
            being updated, 404 and then 410."""
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            audience = (q.get("resource") or "").rstrip("/")
            extra = {"audience": audience, "imds": True}
            if self.headers.get("Metadata") != "true":
                return self.send_json(400, {"error": "invalid_request",
                                            "error_description": "Required metadata header not specified"},
                                      api="login", extra=extra)
            # The update starts with the first IMDS request (not the fake's
            # start: a slow exporter would miss it): 404 to the first, 410
            # to the next, and to every one for S seconds after the first.
            with st.lock:
                n = st.imds_attempts
                st.imds_attempts += 1
                if st.imds_first is None:
                    st.imds_first = time.time()
                since = time.time() - st.imds_first
            if args.imds_updating > 0 and (n < 2 or since < args.imds_updating):
                extra["transient"] = True
                status = 404 if n == 0 else 410
                return self.send_json(status, {"error": "unavailable",
                                               "error_description": "IMDS is being updated"},
                                      api="login", extra=extra)
            if audience not in (args.graph_root, args.management_root):
                return self.send_json(400, {"error": "invalid_resource",
                                            "error_description": "AADSTS500011: resource %s" % audience},
                                      api="login", extra=extra)
            tok = "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + secrets.token_urlsafe(48)
            st.tokens[tok] = (audience, time.time() + args.token_lifetime)
            now = int(time.time())
            self.send_json(200, {
                "access_token": tok,
                "refresh_token": "",
                "expires_in": str(args.token_lifetime),
                "expires_on": str(now + args.token_lifetime),
                "not_before": str(now),
                "resource": q.get("resource"),
                "token_type": "Bearer",
            }, api="login", extra=extra)

        # ---------------------------------------------------------- Graph
        def graph(self, what, u):
            extra = {"list": what}
            bad = self.bearer("graph", args.graph_root)
            if bad:
                extra["auth"] = bad
                return self.send_json(401, {"error": {
                    "code": "InvalidAuthenticationToken",
                    "message": "Access token validation failure (%s)." % bad,
                    "innerError": {"date": now_utc().strftime("%Y-%m-%dT%H:%M:%S"),
                                   "request-id": str(uuid.uuid4())}}}, api="graph", extra=extra)
            if what not in st.graph:
                return self.send_json(400, {"error": {"code": "BadRequest",
                                                      "message": "Resource not found for the segment '%s'." % what}},
                                      api="graph", extra=extra)
            q = parse_qs(u.query)
            skip = int(q.get("$skiptoken", ["0"])[0] or 0)
            if st.should_throttle("graph", u.path + "?" + u.query, 4):
                extra["throttled"] = True
                return self.send_json(429, {"error": {
                    "code": "TooManyRequests",
                    "message": "Too many requests",
                    "innerError": {"request-id": str(uuid.uuid4())}}},
                    headers={"Retry-After": "1"}, api="graph", extra=extra)
            if st.should_throttle("graph503", u.path + "?" + u.query + "#503", 7):
                extra["transient"] = True
                return self.send_json(503, {"error": {
                    "code": "serviceNotAvailable",
                    "message": "Service unavailable",
                    "innerError": {"request-id": str(uuid.uuid4())}}},
                    headers={"Retry-After": "1"}, api="graph", extra=extra)
            items = st.graph[what]
            page = items[skip: skip + GRAPH_PAGE]
            if args.pascal_enums:
                page = [pascal(item) for item in page]
            obj = {"@odata.context": "%s/v1.0/$metadata#admin/serviceAnnouncement/%s" % (self.base(), what),
                   "value": page}
            if skip + GRAPH_PAGE < len(items):
                obj["@odata.nextLink"] = "%s/v1.0/admin/serviceAnnouncement/%s?$skiptoken=%d" % (
                    self.base(), what, skip + GRAPH_PAGE)
            extra["items"] = len(page)
            self.send_json(200, obj, api="graph", extra=extra)

        def application(self, segment, u):
            """GET /v1.0/applications(appId='{appId}') (alternate key syntax)."""
            extra = {"list": "applications"}
            bad = self.bearer("graph", args.graph_root)
            if bad:
                extra["auth"] = bad
                return self.send_json(401, {"error": {
                    "code": "InvalidAuthenticationToken",
                    "message": "Access token validation failure (%s)." % bad}}, api="graph", extra=extra)
            if st.should_throttle("graph", u.path + "?" + u.query, 4):
                extra["throttled"] = True
                return self.send_json(429, {"error": {"code": "TooManyRequests", "message": "Too many requests"}},
                                      headers={"Retry-After": "1"}, api="graph", extra=extra)
            app_id = segment[len("applications("):].rstrip(")")
            if not (app_id.startswith("appId='") and app_id.endswith("'")) \
                    or app_id[len("appId='"):-1] != args.client_id:
                return self.send_json(404, {"error": {
                    "code": "Request_ResourceNotFound",
                    "message": "Resource '%s' does not exist or one of its queried reference-property "
                               "objects are not present." % app_id}}, api="graph", extra=extra)
            select = parse_qs(u.query).get("$select", [""])[0].split(",")
            obj = {"@odata.context": "%s/v1.0/$metadata#applications(%s)/$entity" % (
                self.base(), ",".join(x for x in select if x))}
            for k, v in st.application.items():
                if not select[0] or k in select:
                    obj[k] = v
            extra["select"] = select
            self.send_json(200, obj, api="graph", extra=extra)

        # ---------------------------------------------------- Audit Log Query API
        def audit_queries(self, rest, u):
            """Microsoft Purview's Audit Log Query API (Graph v1.0):
            POST /security/auditLog/queries, GET .../queries/{id},
            GET .../queries/{id}/records (paged by @odata.nextLink)."""
            if self.command == "POST" and not rest:
                return self.audit_create(u)
            if self.command == "GET" and len(rest) == 1:
                return self.audit_get(rest[0], u)
            if self.command == "GET" and len(rest) == 2 and rest[1] == "records":
                return self.audit_records(rest[0], u)
            return self.send_json(404, {"error": {"code": "NotFound", "message": "no route " + u.path}},
                                  api="graph", extra={"list": "audit_query"})

        def audit_gate(self, extra, key):
            """Auth and, with --faults, throttling (429 / 503, never twice in a
            row for the same call): None when the request may proceed."""
            bad = self.bearer("graph", args.graph_root)
            if bad:
                extra["auth"] = bad
                return self.send_json(401, {"error": {
                    "code": "InvalidAuthenticationToken",
                    "message": "Access token validation failure (%s)." % bad}}, api="graph", extra=extra) or True
            if st.should_throttle("graph", key, 4):
                extra["throttled"] = True
                return self.send_json(429, {"error": {"code": "TooManyRequests", "message": "Too many requests"}},
                                      headers={"Retry-After": "1"}, api="graph", extra=extra) or True
            if st.should_throttle("graph503", key + "#503", 7):
                extra["transient"] = True
                return self.send_json(503, {"error": {"code": "serviceNotAvailable",
                                                      "message": "Service unavailable"}},
                                      headers={"Retry-After": "1"}, api="graph", extra=extra) or True
            return None

        def query_json(self, q, status):
            obj = {
                "@odata.context": "%s/v1.0/$metadata#security/auditLog/queries/$entity" % self.base(),
                "@odata.type": "#microsoft.graph.security.auditLogQuery",
                "id": q["id"],
                "displayName": q["displayName"],
                "filterStartDateTime": graph_time(q["start"]),
                "filterEndDateTime": graph_time(q["end"]),
                "recordTypeFilters": q["recordTypeFilters"],
                "keywordFilter": None,
                "serviceFilter": q["serviceFilter"],
                "operationFilters": [],
                "userPrincipalNameFilters": [],
                "ipAddressFilters": [],
                "objectIdFilters": [],
                "administrativeUnitIdFilters": [],
                "status": first_upper(status) if args.pascal_enums else status,
            }
            if not args.query_as_documented:
                # the resource page's count properties (the method pages' examples omit them)
                obj["approximateReturnedRecordCount"] = len(q["records"])
                obj["isRecordCountLimitExceeded"] = False
                obj["recordCountLimit"] = 1000000
            return obj

        def audit_create(self, u):
            extra = {"list": "audit_query_create"}
            body = self.read_body()
            if self.audit_gate(extra, "create#" + body.decode("utf-8", "replace")):
                return
            if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                extra["note"] = "Content-Type %r" % self.headers.get("Content-Type")
                return self.send_json(415, {"error": {"code": "UnsupportedMediaType",
                                                      "message": "Content-Type application/json is required."}},
                                      api="graph", extra=extra)
            try:
                req = json.loads(body)
            except ValueError:
                req = None
            start = parse_graph_time((req or {}).get("filterStartDateTime"))
            end = parse_graph_time((req or {}).get("filterEndDateTime"))
            if not isinstance(req, dict) or start is None or end is None or end <= start:
                extra["note"] = "bad body %r" % body[:200]
                return self.send_json(400, {"error": {"code": "BadRequest",
                                                      "message": "Invalid filterStartDateTime/filterEndDateTime."}},
                                      api="graph", extra=extra)
            # Filters as the pages name them (create: serviceFilter, resource: serviceFilters).
            types = [t.lower() for t in req.get("recordTypeFilters") or []]
            services = req.get("serviceFilters") or ([req["serviceFilter"]] if req.get("serviceFilter") else [])
            services = [x.lower() for x in services]
            with st.audit.lock:
                found = st.audit.log_records(start, end)
            records = [(t, ct, r) for t, ct, r in found
                       if (not types or RECORD_TYPES.get(r["RecordType"], "").lower() in types)
                       and (not services or r["Workload"].lower() in services)]
            with st.lock:
                n = len(st.queries)
                q = {"id": str(uuid.UUID(int=st.rng.getrandbits(128), version=4)),
                     "displayName": req.get("displayName"), "start": start, "end": end,
                     "recordTypeFilters": req.get("recordTypeFilters") or [],
                     "serviceFilter": req.get("serviceFilter"),
                     "created": time.time(), "fails": n < args.failed_queries,
                     "records": records, "served": []}
                st.queries[q["id"]] = q
            extra.update({"query": q["id"], "window": [start.timestamp(), end.timestamp()],
                          "fails": q["fails"], "records": len(records)})
            self.send_json(201, self.query_json(q, "notStarted"), api="graph", extra=extra)

        def query_status(self, q):
            age = time.time() - q["created"]
            if age < QUERY_QUEUED:
                return "notStarted"
            if age < QUERY_RUNS:
                return "running"
            return "failed" if q["fails"] else "succeeded"

        def audit_get(self, qid, u):
            extra = {"list": "audit_query_get", "query": qid}
            if self.audit_gate(extra, u.path):
                return
            q = st.queries.get(qid)
            if q is None:
                return self.send_json(404, {"error": {"code": "NotFound", "message": "Query %s not found." % qid}},
                                      api="graph", extra=extra)
            status = self.query_status(q)
            extra["query_status"] = status
            obj = self.query_json(q, status)
            if args.query_as_documented:
                # the Get page's example answers the query inside "value"
                obj = {"value": obj}
            self.send_json(200, obj, api="graph", extra=extra)

        def audit_records(self, qid, u):
            extra = {"list": "audit_query_records", "query": qid}
            if self.audit_gate(extra, u.path + "?" + u.query):
                return
            q = st.queries.get(qid)
            if q is None or self.query_status(q) != "succeeded":
                return self.send_json(404 if q is None else 400, {"error": {
                    "code": "NotFound" if q is None else "BadRequest",
                    "message": "The query has no records to read (yet)."}}, api="graph", extra=extra)
            skip = parse_qs(u.query).get("$skiptoken", ["0"])[0]
            try:
                skip = int(skip)
            except ValueError:
                return self.send_json(400, {"error": {"code": "BadRequest", "message": "Invalid $skiptoken."}},
                                      api="graph", extra=extra)
            page = q["records"][skip: skip + AUDIT_PAGE]
            data_type = "microsoft.graph.security.auditData" if args.query_as_documented \
                else "#microsoft.graph.security.defaultAuditData"
            obj = {"@odata.context": "%s/v1.0/$metadata#security/auditLog/queries('%s')/records" % (self.base(), qid),
                   "value": [audit_log_record(r, ct, t, args.pascal_enums, data_type) for t, ct, r in page]}
            if skip + AUDIT_PAGE < len(q["records"]):
                obj["@odata.nextLink"] = "%s/v1.0/security/auditLog/queries/%s/records?$skiptoken=%d" % (
                    self.base(), qid, skip + AUDIT_PAGE)
            extra["items"] = len(page)
            self.send_json(200, obj, api="graph", extra=extra)

        # ---------------------------------------------------------- Management
        def af(self, status, code, message, extra, headers=None):
            self.send_json(status, {"error": {"code": code, "message": message}},
                           headers=headers, api="management", extra=extra)

        def management(self, tenant, rest, u):
            q = parse_qs(u.query, keep_blank_values=True)
            qq = {k: v[0] for k, v in q.items()}
            op = "/".join(rest[:2]) if rest[:1] == ["subscriptions"] else (rest[0] if rest else "")
            extra = {"op": op}
            bad = self.bearer("management", args.management_root)
            if bad:
                extra["auth"] = bad
                return self.af(401, "AF10001",
                               "The permission set () sent in the request does not include the expected permission (%s)." % bad,
                               extra)
            if not GUID.match(tenant):
                return self.af(400, "AF20013", "The tenant ID passed in the URL (%s) is not a valid GUID." % tenant, extra)
            if tenant != args.tenant_id:
                return self.af(400, "AF20010", "The tenant ID passed in the URL (%s) does not match the tenant ID passed in the access token." % tenant, extra)
            pub = qq.get("PublisherIdentifier")
            if pub is None:
                sys.stderr.write("fake: management request WITHOUT PublisherIdentifier: %s %s\n"
                                 % (self.command, self.path))
            if op == "subscriptions/list" and self.command == "GET":
                subs = []
                for ct in CONTENT_TYPES:
                    if st.audit.subscribed[ct]:
                        subs.append({"contentType": ct, "status": "enabled",
                                     "webhook": None if ct != "Audit.Exchange" else {
                                         "status": "enabled", "address": "https://webhook.example/ex",
                                         "authId": "o365activityapinotification", "expiration": None}})
                return self.send_json(200, subs, api="management", extra=extra)
            if op == "subscriptions/start" and self.command == "POST":
                self.read_body()
                ct = qq.get("contentType")
                extra["contentType"] = ct
                if ct not in CONTENT_TYPES:
                    return self.af(400, "AF20020", "The specified content type is not valid.", extra)
                if args.audit_off:
                    code, message = audit_off_body(args.audit_off, args.tenant_id, ct, args.client_id,
                                                   qq.get("PublisherIdentifier") or "")
                    return self.af(400, code, message, extra)
                if st.audit.subscribed[ct]:
                    return self.af(400, "AF20024", "The subscription is already enabled. No property change.", extra)
                st.audit.subscribed[ct] = True
                return self.send_json(200, {"contentType": ct, "status": "enabled", "webhook": None},
                                      api="management", extra=extra)
            if op == "subscriptions/content" and self.command == "GET":
                return self.listing(qq, u, extra)
            if op == "audit" and len(rest) == 2 and self.command == "GET":
                return self.blob(rest[1], extra, pub)
            return self.af(404, "AF20001", "No route for %s %s" % (self.command, u.path), extra)

        def listing(self, qq, u, extra):
            ct = qq.get("contentType")
            extra["contentType"] = ct
            if ct not in CONTENT_TYPES:
                return self.af(400, "AF20020", "The specified content type is not valid.", extra)
            if not st.audit.subscribed[ct]:
                return self.af(400, "AF20022", "No subscription found for the specified content type", extra)
            s, e = qq.get("startTime"), qq.get("endTime")
            if (s is None) != (e is None):
                return self.af(400, "AF20030", "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.", extra)
            now = now_utc()
            if s is None:
                start, end = now - timedelta(hours=24), now
            else:
                start, end = parse_window_time(s), parse_window_time(e)
                if start is None or end is None:
                    return self.af(400, "AF20030", "Invalid startTime or endTime.", extra)
                if end <= start or end - start > timedelta(hours=24) or start < now - timedelta(days=7):
                    extra["window"] = [s, e]
                    return self.af(400, "AF20030", "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.", extra)
            key = u.path + "?" + u.query.replace("PublisherIdentifier=", "")
            if st.should_throttle("listing", key, 4):
                extra["throttled"] = True
                return self.af(429, "AF429", "Too many requests. Method=ListContent, PublisherId=%s" % qq.get("PublisherIdentifier"),
                               extra, headers={"Retry-After": "1"})
            if st.should_throttle("af50000", key + "#500", 9):
                extra["transient"] = True
                return self.af(500, "AF50000", "An internal error occurred. Retry the request.", extra)
            with st.audit.lock:
                items = sorted((b for b in st.audit.blobs
                                if b["contentType"] == ct and start <= b["created"] < end),
                               key=lambda b: b["created"])
            page_no = qq.get("nextPage")
            # Seen in practice: a first page that is empty yet carries a
            # NextPageUri.  Pages are "E" (empty) then "R<offset>".
            off = -1 if items else 0
            if page_no is not None:
                try:
                    off = int(page_no.split("R")[-1])
                except ValueError:
                    return self.af(400, "AF20031", "Invalid nextPage Input: %s." % page_no, extra)
            page = items[off: off + LISTING_PAGE] if off >= 0 else []
            nxt = off + LISTING_PAGE if off >= 0 else 0
            base = self.base()
            tenant = args.tenant_id
            out = [{
                "contentUri": "%s/api/v1.0/%s/activity/feed/audit/%s" % (base, tenant, b["contentId"]),
                "contentId": b["contentId"],
                "contentType": b["contentType"],
                "contentCreated": content_time(b["created"]),
                "contentExpiration": content_time(b["created"] + timedelta(seconds=RETENTION)),
            } for b in page]
            headers = {}
            if nxt < len(items):
                # the reference's form: absolute, api/v1, the window again and
                # nextPage; no PublisherIdentifier
                headers[args.next_page_header] = "%s/api/v1/%s/activity/feed/subscriptions/content?contentType=%s&startTime=%s&endTime=%s&nextPage=%sR%06d" % (
                    base, tenant, ct, quote(s or "", safe=":"), quote(e or "", safe=":"),
                    start.strftime("%Y%m%d%H"), nxt)
            extra["items"] = len(out)
            extra["ids"] = [b["contentId"] for b in page]
            self.send_json(200, out, headers=headers, api="management", extra=extra)

        def blob(self, content_id, extra, publisher):
            from urllib.parse import unquote
            content_id = unquote(content_id)
            extra["contentId"] = content_id
            with st.audit.lock:
                b = st.audit.by_id.get(content_id)
            if b is None:
                return self.af(404, "AF20050", "The specified content (%s) doesn't exist." % content_id, extra)
            extra["contentType"] = b["contentType"]
            if st.should_throttle("blob", content_id, 3):
                extra["throttled"] = True
                # blob throttling: HTTP 403 with AF429
                return self.af(403, "AF429", "Too many requests. Method=GetBlob, PublisherId=%s" % publisher, extra)
            if b["gone"]:
                return self.af(400, "AF20051", "Content requested with the key %s has already expired. Content older than 7 days cannot be retrieved." % content_id, extra)
            self.send_json(200, b["body"], api="management", extra=extra, chunked=(len(b["body"]) % 2 == 0))

    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--faults", action="store_true")
    ap.add_argument("--token-lifetime", type=int, default=3599)
    ap.add_argument("--expires-in-string", action="store_true")
    ap.add_argument("--graph-root", default=None)
    ap.add_argument("--management-root", default=None)
    ap.add_argument("--tenant-id", default="3f2a7c51-9e0b-4d6a-8c1e-5b7d90a4e2f6")
    ap.add_argument("--client-id", default="a8e0c4d2-61f3-4b7e-9d05-2c9b8f1e7a34")
    ap.add_argument("--client-secret", default="Qx8~interop.fake-secret_0123456789abcdef")
    ap.add_argument("--publisher-id", default="d7b1e2c9-4a6f-4e3b-b0d8-91c5f27a6e13")
    ap.add_argument("--unsubscribed", action="append", default=[])
    ap.add_argument("--late-after", type=float, default=6.0,
                    help="publish late content this many seconds after start (negative: never)")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--pascal-enums", action="store_true")
    ap.add_argument("--next-page-header", default="NextPageUri", choices=["NextPageUri", "NextPageUrl"])
    ap.add_argument("--domain", default=None, help="the tenant's domain (token endpoint, discovery)")
    ap.add_argument("--audit-off", default=None, choices=["message", "straddle", "code"])
    ap.add_argument("--imds-updating", type=float, default=0.0)
    ap.add_argument("--unlisted", type=int, default=0,
                    help="blobs never listed: their records only in the Audit Log Query API")
    ap.add_argument("--failed-queries", type=int, default=0,
                    help="the first N audit-log queries end failed")
    ap.add_argument("--query-as-documented", action="store_true",
                    help="Audit Log Query API shapes as its method pages print them")
    ap.add_argument("--revoke-after", type=float, default=-1,
                    help="revoke every issued token this many seconds after start (negative: never)")
    args = ap.parse_args()
    args.graph_root = (args.graph_root or "http://localhost:%d" % args.port).rstrip("/")
    args.management_root = (args.management_root or "http://127.0.0.1:%d" % args.port).rstrip("/")
    st = State(args)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(st))
    srv.daemon_threads = True
    if args.late_after >= 0:
        timer = threading.Timer(args.late_after, st.publish_late)
        timer.daemon = True
        timer.start()
    if args.revoke_after >= 0:
        rv = threading.Timer(args.revoke_after, st.revoke_all)
        rv.daemon = True
        rv.start()
    print("fake-microsoft listening on 127.0.0.1:%d (faults=%s)" % (args.port, args.faults), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
