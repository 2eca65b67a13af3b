//! Realistic Office 365 Management Activity records, deterministic from a
//! seed: the one generator behind the simulator's audit blobs, the soak
//! (`examples/soak_sim.rs`) and the parsing bench (`benches/records.rs`).
//!
//! Each record follows Microsoft's common schema (`CreationTime`, `Id`,
//! `Operation`, `OrganizationId`, `RecordType`, `ResultStatus`, `UserKey`,
//! `UserType`, `Version`, `Workload`, `ClientIP`, `ObjectId`, `UserId`, in
//! the order Microsoft writes them) plus the fields of its workload: Azure
//! AD sign-ins and directory changes (`ExtendedProperties` with JSON inside
//! strings, `ModifiedProperties`, `Actor`/`Target`, `DeviceProperties`),
//! Exchange mailbox and admin records (`Folders`, `Item`, `Parameters`),
//! SharePoint file operations (`SourceFileName`, `SiteUrl`,
//! `AppAccessContext`), Teams/Power BI/Forms, and DLP matches
//! (`PolicyDetails` → rules → sensitive information → detections). Values
//! carry escapes (`\"`, `\\`, `\r\n`, `\u00e9`) and UTF-8 where real records
//! do. Records are 1–3 KB (about 1.7 KB on average; see [`SizeStats`]).

use std::fmt::Write as _;

/// One record as the tests need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRecord {
    pub id: String,
    pub workload: String,
    pub operation: String,
}

/// What a record is about; the rest is the generator's choice.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub content_type: &'a str,
    pub tenant_id: &'a str,
    /// `CreationTime`, Unix seconds.
    pub creation: i64,
    /// Overrides the workload (the simulator's label-cap scenario).
    pub workload: Option<&'a str>,
}

/// splitmix64: deterministic data without a dependency.
#[derive(Debug, Clone)]
pub struct RecordGen {
    state: u64,
}

const USERS: &[&str] = &[
    "zoë.adams",
    "megan.bowen",
    "alex.wilber",
    "jürgen.groß",
    "lee.gu",
    "françois.dupré",
    "nestor.wilke",
    "adele.vance",
    "søren.østergård",
    "patti.fernandez",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)",
    "OneDriveMpc-Transform_Thumbnail/1.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Teams/6.2.1",
];
const FILES: &[&str] = &[
    "Q4 forecast – final.xlsx",
    "Board \"confidential\" deck.pptx",
    "Straße & Co. contract.docx",
    "payroll_2026-11.csv",
    "Déjà vu notes.one",
    "IMG_20261127_101512.jpg",
];
const SITES: &[&str] = &["Finance", "HR", "Marketing", "Engineering", "Legal"];

/// Workloads, operations and RecordType per content type (a plausible mix).
pub fn shape(ct: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match ct {
        "Audit.AzureActiveDirectory" => (
            &["AzureActiveDirectory"],
            &["UserLoggedIn", "UserLoginFailed", "Add user."],
        ),
        "Audit.Exchange" => (
            &["Exchange"],
            &["MailItemsAccessed", "Send", "New-InboxRule"],
        ),
        "Audit.SharePoint" => (
            &["SharePoint", "OneDrive"],
            &["FileAccessed", "FileDeleted", "FileModified"],
        ),
        "Audit.General" => (
            &["MicrosoftTeams", "PowerBI", "MicrosoftForms"],
            &["TeamsSessionStarted", "MemberAdded", "ViewReport"],
        ),
        _ => (&["Exchange", "SharePoint"], &["DlpRuleMatch"]),
    }
}

/// A compact JSON writer: keys in the order given, strings escaped as
/// Microsoft does (quotes, backslashes, control characters; UTF-8 as is).
struct J<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> J<'a> {
    fn obj(out: &'a mut String) -> Self {
        out.push('{');
        J { out, first: true }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
        self.out
    }
    fn s(&mut self, k: &str, v: &str) {
        let o = self.key(k);
        esc(o, v);
    }
    fn n(&mut self, k: &str, v: i64) {
        let o = self.key(k);
        let _ = write!(o, "{v}");
    }
    fn b(&mut self, k: &str, v: bool) {
        self.key(k).push_str(if v { "true" } else { "false" });
    }
    /// Already JSON.
    fn raw(&mut self, k: &str, v: &str) {
        self.key(k).push_str(v);
    }
    /// A nested object.
    fn o(&mut self, k: &str, f: impl FnOnce(&mut J<'_>)) {
        let o = self.key(k);
        let mut inner = J::obj(o);
        f(&mut inner);
        inner.end();
    }
    /// An array of `n` objects.
    fn arr(&mut self, k: &str, n: usize, mut f: impl FnMut(usize, &mut J<'_>)) {
        let o = self.key(k);
        o.push('[');
        for i in 0..n {
            if i > 0 {
                o.push(',');
            }
            let mut inner = J::obj(o);
            f(i, &mut inner);
            inner.end();
        }
        o.push(']');
    }
    /// `[{"Name":…,"Value":…},…]`, the shape of `ExtendedProperties`,
    /// `Parameters`, `DeviceProperties`, `OperationProperties`.
    fn nv(&mut self, k: &str, pairs: &[(&str, &str)]) {
        self.arr(k, pairs.len(), |i, j| {
            j.s("Name", pairs[i].0);
            j.s("Value", pairs[i].1);
        });
    }
    fn end(self) {
        self.out.push('}');
    }
}

fn esc(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

impl RecordGen {
    pub fn new(seed: u64) -> Self {
        RecordGen { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[self.below(from.len())]
    }

    pub fn guid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        uuid::Uuid::from_u64_pair(a, b).hyphenated().to_string()
    }

    fn ip(&mut self) -> String {
        match self.below(4) {
            0 => format!(
                "2a01:110:{:x}:{:x}::{:x}",
                self.below(0xffff),
                self.below(0xffff),
                self.below(0xff)
            ),
            _ => format!("203.0.113.{}", 1 + self.below(250)),
        }
    }

    fn hex(&mut self, digits: usize) -> String {
        let v = self.next_u64();
        format!("{v:016X}")[16 - digits.min(16)..].to_string()
    }

    /// Append one record of `m.content_type` to `out` (compact JSON, no
    /// line breaks) and say what it is.
    pub fn record(&mut self, out: &mut String, m: &Meta<'_>) -> TruthRecord {
        let (workloads, operations) = shape(m.content_type);
        let id = self.guid();
        let workload = match m.workload {
            Some(w) => w.to_string(),
            None => self.pick(workloads).to_string(),
        };
        let operation = self.pick(operations);
        let user = self.pick(USERS);
        let user_id = format!("{user}@contoso.com");
        let ip = self.ip();
        let record_type = match (m.content_type, operation) {
            ("Audit.AzureActiveDirectory", "Add user.") => 8,
            ("Audit.AzureActiveDirectory", _) => 15,
            ("Audit.Exchange", "MailItemsAccessed") => 50,
            ("Audit.Exchange", "Send") => 2,
            ("Audit.Exchange", _) => 1,
            ("Audit.SharePoint", _) => 6,
            ("Audit.General", _) => match workload.as_str() {
                "PowerBI" => 20,
                "MicrosoftForms" => 62,
                _ => 25,
            },
            _ if workload == "Exchange" => 13,
            _ => 11,
        };
        let object_id = match m.content_type {
            "Audit.SharePoint" | "DLP.All" => {
                let site = self.pick(SITES);
                let file = self.pick(FILES);
                format!("https://contoso.sharepoint.com/sites/{site}/Shared Documents/{file}")
            }
            "Audit.Exchange" => format!("{user_id}\\Inbox\\rule {}", self.below(100)),
            "Audit.AzureActiveDirectory" => self.guid(),
            _ => format!("{:08x}", self.next_u64() as u32),
        };
        let mut j = J::obj(out);
        j.s("CreationTime", &iso(m.creation));
        j.s("Id", &id);
        j.s("Operation", operation);
        j.s("OrganizationId", m.tenant_id);
        j.n("RecordType", record_type);
        j.s(
            "ResultStatus",
            match (record_type, operation) {
                (15, "UserLoginFailed") => "Failed",
                (15, _) | (8, _) => "Success",
                _ => "Succeeded",
            },
        );
        j.s("UserKey", &format!("10032001{}", self.hex(8)));
        j.n("UserType", if operation == "Add user." { 2 } else { 0 });
        j.n("Version", 1);
        j.s("Workload", &workload);
        j.s("ClientIP", &ip);
        j.s("ObjectId", &object_id);
        j.s("UserId", &user_id);
        match m.content_type {
            "Audit.AzureActiveDirectory" => self.azure_ad(&mut j, operation, &user_id, &ip, m),
            "Audit.Exchange" => self.exchange(&mut j, operation, &user_id, &ip),
            "Audit.SharePoint" => self.sharepoint(&mut j, &object_id),
            "Audit.General" => self.general(&mut j, &workload, &user_id),
            _ => self.dlp(&mut j, &workload, &user_id, &object_id, m),
        }
        j.end();
        TruthRecord {
            id,
            workload,
            operation: operation.to_string(),
        }
    }

    fn azure_ad(&mut self, j: &mut J<'_>, op: &str, user_id: &str, ip: &str, m: &Meta<'_>) {
        let (user_guid, app) = (self.guid(), self.guid());
        j.n(
            "AzureActiveDirectoryEventType",
            if op == "Add user." { 1 } else { 0 },
        );
        if op == "Add user." {
            let request = self.guid();
            j.nv(
                "ExtendedProperties",
                &[
                    (
                        "additionalDetails",
                        &format!("{{\"UserType\":\"Member\",\"RequestId\":\"{request}\",\"Notes\":\"created by \\\"HR sync\\\"\"}}"),
                    ),
                    ("extendedAuditEventCategory", "User"),
                ],
            );
            let fields = 2 + self.below(4);
            let names = [
                "AccountEnabled",
                "DisplayName",
                "UserPrincipalName",
                "StsRefreshTokensValidFrom",
                "UserType",
                "Department",
            ];
            j.raw("ModifiedProperties", &{
                let mut s = String::from("[");
                for (i, name) in names.iter().take(fields).enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let new = match *name {
                        "AccountEnabled" => "[\r\n  true\r\n]".to_string(),
                        "StsRefreshTokensValidFrom" => {
                            format!("[\r\n  \"{}Z\"\r\n]", iso(m.creation))
                        }
                        _ => format!("[\r\n  \"{user_id}\"\r\n]"),
                    };
                    let mut o = J::obj(&mut s);
                    o.s("Name", name);
                    o.s("NewValue", &new);
                    o.s("OldValue", "[]");
                    o.end();
                }
                s.push(']');
                s
            });
        } else {
            let agent = self.pick(AGENTS);
            let mut ext = vec![
                (
                    "ResultStatusDetail",
                    if op == "UserLoginFailed" {
                        "UserError"
                    } else {
                        "Redirect"
                    },
                ),
                ("UserAgent", agent),
                ("UserAuthenticationMethod", "1"),
                ("RequestType", "OAuth2:Authorize"),
            ];
            if self.below(2) == 0 {
                ext.push(("KeepMeSignedIn", "true"));
            }
            j.nv("ExtendedProperties", &ext);
            j.raw("ModifiedProperties", "[]");
        }
        j.arr("Actor", 2, |i, a| {
            if i == 0 {
                a.s("ID", &user_guid);
                a.n("Type", 0);
            } else {
                a.s("ID", user_id);
                a.n("Type", 5);
            }
        });
        j.s("ActorContextId", m.tenant_id);
        j.s("ActorIpAddress", ip);
        j.s("InterSystemsId", &self.guid());
        j.s("IntraSystemId", &self.guid());
        j.s("SupportTicketId", "");
        j.arr("Target", 1 + self.below(3), |i, t| {
            t.s("ID", if i == 0 { &app } else { &user_guid });
            t.n("Type", 0);
        });
        j.s("TargetContextId", m.tenant_id);
        j.s("ApplicationId", &app);
        if op != "Add user." {
            let session = self.guid();
            j.nv(
                "DeviceProperties",
                &[
                    ("OS", self.pick(&["Windows 10", "MacOs", "Ios", "Android"])),
                    ("BrowserType", self.pick(&["Edge", "Chrome", "Safari"])),
                    ("IsCompliantAndManaged", "False"),
                    ("SessionId", &session),
                ],
            );
            let failed = op == "UserLoginFailed";
            j.s("ErrorNumber", if failed { "50126" } else { "0" });
            if failed {
                j.s("LogonError", "InvalidUserNameOrPassword");
            }
        }
    }

    fn exchange(&mut self, j: &mut J<'_>, op: &str, user_id: &str, ip: &str) {
        let server = format!(
            "AM6PR0{}MB{:04} (15.20.7{:03}.000)\r\n",
            self.below(9),
            self.below(9999),
            self.below(999)
        );
        j.s("AppId", &self.guid());
        j.s("ClientAppId", "");
        j.s("ClientIPAddress", ip);
        j.s(
            "ClientInfoString",
            self.pick(&[
                "Client=OWA;Action=ViaProxy",
                "Client=REST;Client=RESTSystem;;",
                "Client=MSExchangeRPC",
            ]),
        );
        j.b("ExternalAccess", false);
        j.n("InternalLogonType", 0);
        j.n("LogonType", 0);
        j.s(
            "LogonUserSid",
            &format!(
                "S-1-5-21-{}-{}-{}-{}",
                self.below(999_999_999),
                self.below(999_999_999),
                self.below(999_999_999),
                1000 + self.below(9000)
            ),
        );
        j.s("MailboxGuid", &self.guid());
        j.s("MailboxOwnerUPN", user_id);
        j.s("OrganizationName", "contoso.onmicrosoft.com");
        j.s("OriginatingServer", &server);
        j.s("SessionId", &self.guid());
        match op {
            "MailItemsAccessed" => {
                j.nv(
                    "OperationProperties",
                    &[("MailAccessType", "Bind"), ("IsThrottled", "False")],
                );
                let folders = 1 + self.below(2);
                let items: Vec<usize> = (0..folders).map(|_| 1 + self.below(4)).collect();
                let ids: Vec<String> = (0..items.iter().sum::<usize>())
                    .map(|_| self.hex(16))
                    .collect();
                let mut n = 0;
                j.arr("Folders", folders, |f, o| {
                    o.arr("FolderItems", items[f], |_, it| {
                        it.s(
                            "InternetMessageId",
                            &format!(
                                "<AM6PR01MB{}@AM6PR01MB1234.eurprd01.prod.outlook.com>",
                                ids[n]
                            ),
                        );
                        it.n("SizeInBytes", 4_096 + (n as i64 * 7_919) % 90_000);
                        n += 1;
                    });
                    o.s(
                        "Id",
                        &format!("LgAAAAAdhAMRqmYRzZvIAKoAL8RaDQB{}AAAAAAEMAAAB", ids[0]),
                    );
                    o.s(
                        "Path",
                        if f == 0 {
                            "\\Inbox"
                        } else {
                            "\\Archive\\2026 – Q4"
                        },
                    );
                });
                j.n("OperationCount", items.iter().sum::<usize>() as i64);
            }
            "Send" => {
                let (item, mid) = (self.hex(16), self.hex(12));
                j.o("Item", |o| {
                    o.s(
                        "Id",
                        &format!("RgAAAAAdhAMRqmYRzZvIAKoAL8RaBwB{item}AAAAAAEJAAA"),
                    );
                    o.s(
                        "InternetMessageId",
                        &format!("<{mid}@AM6PR01MB1234.eurprd01.prod.outlook.com>"),
                    );
                    o.o("ParentFolder", |p| {
                        p.s(
                            "Id",
                            &format!("LgAAAAAdhAMRqmYRzZvIAKoAL8RaAQB{item}AAAAAAEJAAAB"),
                        );
                        p.s("Path", "\\Sent Items");
                    });
                    o.n("SizeInBytes", 20_000 + (item.len() as i64) * 311);
                    // An escaped non-ASCII character, as some clients send it.
                    o.raw(
                        "Subject",
                        "\"Re: Caf\\u00e9 \\\"Q4\\\" numbers – naïve forecast\"",
                    );
                });
            }
            _ => {
                let words = [
                    "invoice", "payment", "wire", "urgent", "docusign", "password",
                ];
                let k = 2 + self.below(4);
                j.nv(
                    "Parameters",
                    &[
                        ("AlwaysDeleteOutlookRulesBlob", "False"),
                        ("Force", "False"),
                        ("MoveToFolder", "RSS Feeds"),
                        ("Name", "."),
                        ("SubjectOrBodyContainsWords", &words[..k].join(";")),
                        ("StopProcessingRules", "True"),
                    ],
                );
            }
        }
    }

    fn sharepoint(&mut self, j: &mut J<'_>, object_id: &str) {
        let (file, folder) = match object_id.rsplit_once('/') {
            Some((dir, f)) => (f.to_string(), dir.to_string()),
            None => (object_id.to_string(), String::new()),
        };
        let site_url = folder
            .split("/Shared Documents")
            .next()
            .unwrap_or_default()
            .to_string();
        j.s("CorrelationId", &self.guid());
        j.s("EventSource", "SharePoint");
        j.s("ItemType", "File");
        j.s("ListId", &self.guid());
        j.s("ListItemUniqueId", &self.guid());
        j.s("Site", &self.guid());
        j.s("UserAgent", self.pick(AGENTS));
        j.s("WebId", &self.guid());
        j.b("HighPriorityMediaProcessing", false);
        j.n("ListBaseType", 1);
        j.n("ListServerTemplate", 101);
        j.s(
            "SourceFileExtension",
            file.rsplit('.').next().unwrap_or_default(),
        );
        j.s("SiteUrl", &format!("{site_url}/"));
        j.s("SourceFileName", &file);
        j.s("SourceRelativeUrl", "Shared Documents");
        j.s("GeoLocation", "EUR");
        j.b("IsManagedDevice", self.below(2) == 0);
        j.s("AuthenticationType", "OAuth");
        j.s("BrowserName", "Edge");
        j.s("Platform", "WinDesktop");
        app_access(j, "Office 365 SharePoint Online");
    }

    fn general(&mut self, j: &mut J<'_>, workload: &str, user_id: &str) {
        j.s("CorrelationId", &self.guid());
        j.s("DeviceId", &self.guid());
        j.s("UserAgent", self.pick(AGENTS));
        app_access(j, workload);
        match workload {
            "PowerBI" => {
                j.s("Activity", "ViewReport");
                j.s("ItemName", "Sales – Q4 “pipeline”");
                j.s("WorkSpaceName", "Finance Analytics");
                j.s("DatasetName", "Sales 2026");
                j.s("ReportName", "Pipeline by region");
                j.s("WorkspaceId", &self.guid());
                j.s("DatasetId", &self.guid());
                j.s("ReportId", &self.guid());
                j.s("ArtifactId", &self.guid());
                j.b("IsSuccess", true);
                j.s("ReportType", "PowerBIReport");
                j.s("RequestId", &self.guid());
                j.s("ActivityId", &self.guid());
                j.s("DistributionMethod", "Workspace");
                j.s("ConsumptionMethod", "Power BI Web");
                j.s("CapacityId", &self.guid());
                j.s("CapacityName", "Premium Per User - Reserved");
                j.s("DataConnectivityMode", "Import");
                j.s("ArtifactKind", "Report");
            }
            "MicrosoftForms" => {
                j.s("FormId", &format!("v4j5cvGGr0GRqy180BHbR{}", self.hex(12)));
                j.s("FormName", "Offsite 2026 – Anmeldung/inscription");
                j.s("FormTypes", "Form");
                j.s("SourceApp", "Microsoft Forms");
                j.n("ResponseId", self.below(500) as i64);
                j.s("FormsUserType", "Owner");
                j.s("FormOwner", user_id);
                let questions = 1 + self.below(4);
                let titles = [
                    "Name",
                    "Régime alimentaire / dietary needs",
                    "Arrival \"date\"",
                    "T-shirt size",
                    "Comments",
                ];
                j.arr("Questions", questions, |i, q| {
                    q.s("Title", titles[i]);
                    q.s("Type", if i == 0 { "Text" } else { "Choice" });
                    q.b("Required", i == 0);
                });
            }
            _ => {
                let members = 1 + self.below(4);
                let names: Vec<&str> = (0..members).map(|_| self.pick(USERS)).collect();
                j.arr("Members", members, |i, o| {
                    o.s("DisplayName", &names[i].replace('.', " "));
                    o.n("Role", (i % 2) as i64);
                    o.s("UPN", &format!("{}@contoso.com", names[i]));
                });
                j.s("TeamName", "Équipe Finance \\ Controlling");
                j.s("TeamGuid", &format!("19:{}@thread.tacv2", self.hex(16)));
                j.s("AADGroupId", &self.guid());
                j.s("CommunicationType", "Team");
                j.s("ItemName", "General");
                j.nv(
                    "ExtraProperties",
                    &[
                        ("TimeZone", "W. Europe Standard Time"),
                        ("OsName", "Windows"),
                        ("ClientType", "Desktop"),
                    ],
                );
                j.s("UserId", user_id);
            }
        }
    }

    fn dlp(&mut self, j: &mut J<'_>, workload: &str, user_id: &str, object_id: &str, m: &Meta<'_>) {
        j.s("IncidentId", &self.guid());
        let (policy, rule, sit) = (self.guid(), self.guid(), self.guid());
        let count = 1 + self.below(40);
        let detections = count.min(1 + self.below(4));
        let values: Vec<String> = (0..detections)
            .map(|_| format!("4{:03}********{:04}", self.below(999), self.below(9999)))
            .collect();
        j.arr("PolicyDetails", 1, |_, p| {
            p.s("PolicyId", &policy);
            p.s("PolicyName", "U.S. Financial Data – “PCI”");
            p.arr("Rules", 1, |_, r| {
                r.raw("Actions", "[\"NotifyUser\",\"BlockAccess\"]");
                r.o("ConditionsMatched", |c| {
                    c.b("ConditionMatchedInNewScheme", true);
                    c.nv(
                        "OtherConditions",
                        &[(
                            "ContentContainsSensitiveInformation",
                            "{\"minCount\":1,\"maxCount\":-1}",
                        )],
                    );
                    c.arr("SensitiveInformation", 1, |_, s| {
                        s.s("ClassifierType", "Content");
                        s.n("Confidence", 85);
                        s.n("Count", count as i64);
                        s.s("Location", "");
                        s.o("SensitiveInformationDetections", |d| {
                            d.arr("DetectedValues", values.len(), |i, v| {
                                v.s("Name", "Credit Card Number");
                                v.s("Value", &values[i]);
                            });
                            d.b("ResultsTruncated", count > detections);
                        });
                        s.s("SensitiveInformationTypeName", "Credit Card Number");
                        s.s("SensitiveType", &sit);
                        s.n("UniqueCount", detections as i64);
                    });
                });
                r.s("ManagementRuleId", &rule);
                r.s("RuleId", &rule);
                r.s("RuleMode", "Enable");
                r.s("RuleName", "Low volume of content detected U.S. Financial");
                r.s("Severity", "Low");
            });
        });
        j.b("SensitiveInfoDetectionIsIncluded", true);
        if workload == "Exchange" {
            let to = self.pick(USERS);
            j.o("ExchangeMetaData", |e| {
                e.raw("BCC", "[]");
                e.raw("CC", "[]");
                e.n("FileSize", 31_337);
                e.s("From", user_id);
                e.s(
                    "MessageID",
                    "<AM6PR01MB1234ABCD@AM6PR01MB1234.eurprd01.prod.outlook.com>",
                );
                e.n("RecipientCount", 1);
                e.s("Sent", &iso(m.creation));
                e.s("Subject", "card numbers for the \"refund\"");
                e.raw("To", &format!("[\"{to}@fabrikam.com\"]"));
                e.s("UniqueID", "e1f2a3b4-0000-4000-8000-000000000000");
            });
        } else {
            let file = object_id.rsplit('/').next().unwrap_or_default().to_string();
            j.o("SharePointMetaData", |s| {
                s.s("From", user_id);
                s.s("FileID", "a1b2c3d4-0000-4000-8000-0000000000ff");
                s.s("FileName", &file);
                s.s("FilePathUrl", object_id);
                s.s("ItemCreationTime", &iso(m.creation - 86_400));
                s.s("ItemLastModifiedTime", &iso(m.creation));
                s.raw("SiteAdmin", "[\"admin@contoso.com\"]");
                s.s("SiteCollectionGuid", "5d6e7f80-91a2-4b3c-8d4e-5f6071829304");
                s.s(
                    "SiteCollectionUrl",
                    "https://contoso.sharepoint.com/sites/Finance",
                );
                s.s("UniqueID", "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9");
            });
        }
    }
}

fn app_access(j: &mut J<'_>, app: &str) {
    j.o("AppAccessContext", |a| {
        a.s("ClientAppId", "00000003-0000-0ff1-ce00-000000000000");
        a.s("ClientAppName", app);
        a.s("CorrelationId", "a1b2c3d4-0000-4000-8000-000000000000");
        a.s("UniqueTokenId", "Yh6b1ZbQPEKbX9ETkm0dAA");
    });
}

/// A blob (JSON array) of `n` records cycling through `types`, created
/// over the hour before `base_unix`: for benches and the size report.
pub fn blob(seed: u64, types: &[&str], n: usize, tenant_id: &str, base_unix: i64) -> Vec<u8> {
    let mut g = RecordGen::new(seed);
    let mut out = String::with_capacity(n * 1_800 + 2);
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        let creation = base_unix - 60 - (g.next_u64() % 3_600) as i64;
        g.record(
            &mut out,
            &Meta {
                content_type: types[i % types.len().max(1)],
                tenant_id,
                creation,
                workload: None,
            },
        );
    }
    out.push(']');
    out.into_bytes()
}

/// Record sizes (bytes) of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeStats {
    pub count: usize,
    pub mean: f64,
    pub min: usize,
    pub p10: usize,
    pub p50: usize,
    pub p90: usize,
    pub max: usize,
}

impl SizeStats {
    pub fn of(mut sizes: Vec<usize>) -> SizeStats {
        sizes.sort_unstable();
        let n = sizes.len().max(1);
        let at = |q: f64| {
            sizes
                .get(((n - 1) as f64 * q) as usize)
                .copied()
                .unwrap_or(0)
        };
        SizeStats {
            count: sizes.len(),
            mean: sizes.iter().sum::<usize>() as f64 / n as f64,
            min: at(0.0),
            p10: at(0.1),
            p50: at(0.5),
            p90: at(0.9),
            max: at(1.0),
        }
    }

    /// Sizes of `n` records of one content type.
    pub fn sample(seed: u64, content_type: &str, n: usize) -> SizeStats {
        let mut g = RecordGen::new(seed);
        let mut s = String::new();
        let sizes = (0..n)
            .map(|_| {
                s.clear();
                g.record(
                    &mut s,
                    &Meta {
                        content_type,
                        tenant_id: "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
                        creation: 1_800_000_000,
                        workload: None,
                    },
                );
                s.len()
            })
            .collect();
        SizeStats::of(sizes)
    }
}

impl std::fmt::Display for SizeStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records: mean {:.0} B, min {}, p10 {}, median {}, p90 {}, max {}",
            self.count, self.mean, self.min, self.p10, self.p50, self.p90, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CONTENT_TYPES;

    #[test]
    fn records_are_valid_json_of_one_to_three_kilobytes() {
        for ct in CONTENT_TYPES {
            let s = SizeStats::sample(7, ct, 2_000);
            assert!(s.min >= 1_000 && s.max <= 3_000, "{ct}: {s}");
        }
        let body = blob(1, &CONTENT_TYPES, 500, "t", 1_800_000_000);
        let v: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(v.len(), 500);
        for r in &v {
            for k in [
                "CreationTime",
                "Id",
                "Operation",
                "Workload",
                "RecordType",
                "UserId",
            ] {
                assert!(r.get(k).is_some(), "{k} in {r}");
            }
        }
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(!text.contains('\n'), "compact: one record per sink line");
        for needle in [
            "ExtendedProperties",
            "ModifiedProperties",
            "PolicyDetails",
            "Parameters",
            "DeviceProperties",
            "\\r\\n",
            "\\\"",
            "\\u00e9",
            "ë",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        // JSON inside a string value decodes too.
        let aad = v.iter().find(|r| r["Operation"] == "Add user.").unwrap();
        let inner = aad["ExtendedProperties"][0]["Value"].as_str().unwrap();
        let inner: serde_json::Value = serde_json::from_str(inner).unwrap();
        assert_eq!(inner["UserType"], "Member");
        assert_eq!(
            body,
            blob(1, &CONTENT_TYPES, 500, "t", 1_800_000_000),
            "deterministic"
        );
    }
}
