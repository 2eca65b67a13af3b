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
//!
//! The rooms: this file holds the generator (seeded randomness, the common
//! schema, the dispatch to a workload) and [`blob`]; `workloads.rs` writes
//! each workload's own fields, `json.rs` is the compact JSON writer both
//! use, `sizes.rs` measures what comes out ([`SizeStats`]).

mod json;
mod sizes;
mod workloads;

use json::{iso, J};
pub use sizes::SizeStats;

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
