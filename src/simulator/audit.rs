//! Audit feed scenario data for the simulated Management Activity API:
//! content blobs across the five content types, each holding records in
//! Microsoft's shape, plus the subscription states and fault switches the
//! `management` routes read. The [`Truth`] is computed here from the same
//! data, so tests compare the exporter's counts with what was served.

use crate::config::CONTENT_TYPES;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Knobs of the audit scenario (part of `SimOptions`).
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Historical blobs per content type, spread evenly over `span`.
    pub blobs_per_type: usize,
    /// How far back the historical blobs reach.
    pub span: Duration,
    /// Records per blob: from `records_min` to `records_max` (deterministic).
    pub records_min: usize,
    pub records_max: usize,
    /// With `Some(d)`, each content type gets one new blob every `d` for the
    /// next 6 hours: it becomes listable when its contentCreated passes
    /// (the demo's live feed).
    pub live_every: Option<Duration>,
    /// How far ahead live blobs are made (default 6 h; tests use less).
    pub live_for: Duration,
    /// Items per content listing page (small, so paging is exercised).
    pub page_size: usize,
    /// The continuation header's name: `NextPageUri` (the reference) or
    /// `NextPageUrl` (the troubleshooting guide).
    pub next_page_header: String,
    /// Subscriptions enabled from the start (else AF20022 until `/start`).
    pub started: bool,
    /// Content types whose subscription an admin disabled (AF20023).
    pub disabled: Vec<String>,
    /// The tenant's unified audit log is off: `/start` fails with
    /// "DataServiceException: Tenant … does not exist", nothing is enabled.
    pub audit_log_off: bool,
    /// Where that answer's exception text is split between `code` and
    /// `message` (field reports show more than one place).
    pub audit_off_split: AuditOffSplit,
    /// `/start` with a webhook address that is not https answers AF20021
    /// "The address must begin with HTTPS", as Microsoft does (off by
    /// default: tests post to plain-http receivers).
    pub https_webhooks: bool,
    /// Every call answers 401 AF10001.
    pub missing_permission: bool,
    /// This many of the oldest `Audit.General` blobs answer AF20051 on GET
    /// (none in the `healthy` scenario, whatever this says).
    pub expired_blobs: usize,
    /// Every 4th blob of a type repeats a record of the blob before it.
    pub duplicates: bool,
    /// This many of the oldest `Audit.SharePoint` blobs answer 200 with a
    /// body that is not JSON (a poison blob), every time.
    pub poison_blobs: usize,
    /// Content listings of these types answer 401 AF10001 (e.g. `DLP.All`
    /// without `ActivityFeed.ReadDlp`); the others flow.
    pub forbidden_types: Vec<String>,
    /// Every record carries a `Workload` of its own (label-cap tests).
    pub distinct_workloads: bool,
    /// The oldest this many `Audit.Exchange` blobs are never listed nor
    /// notified: their records exist only in the Audit Log Query API.
    pub unlisted_blobs: usize,
    /// The next this many oldest `Audit.Exchange` blobs are listed (and
    /// notified) only `late_by` after the simulator starts.
    pub late_blobs: usize,
    pub late_by: Duration,
    /// The Audit Log Query API: a query is `notStarted`, then `running`,
    /// then done this long after it was created.
    pub query_delay: Duration,
    /// The first this many queries end `failed`.
    pub failed_queries: usize,
    /// Every Audit Log Query API call answers 403 (the app lacks
    /// `AuditLogsQuery.Read.All`).
    pub query_forbidden: bool,
    /// Records per page of a query's records.
    pub query_page_size: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            blobs_per_type: 8,
            span: Duration::from_secs(30 * 3_600),
            records_min: 2,
            records_max: 9,
            live_every: None,
            live_for: Duration::from_secs(6 * 3_600),
            page_size: 5,
            next_page_header: "NextPageUri".into(),
            audit_off_split: AuditOffSplit::Message,
            https_webhooks: false,
            started: true,
            disabled: Vec::new(),
            audit_log_off: false,
            missing_permission: false,
            expired_blobs: 1,
            duplicates: true,
            poison_blobs: 0,
            forbidden_types: Vec::new(),
            distinct_workloads: false,
            unlisted_blobs: 0,
            late_blobs: 0,
            late_by: Duration::ZERO,
            query_delay: Duration::from_millis(300),
            failed_queries: 0,
            query_forbidden: false,
            query_page_size: 20,
        }
    }
}

/// Where Microsoft splits the "unified audit log off" exception's text
/// (`StartSubscription [...] failed. Exception: Microsoft.Office.Compliance
/// .Audit.DataServiceException: Tenant … does not exist.`) between the error
/// body's `code` and `message`: at its first `": "`, so where depends on
/// the text before the exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOffSplit {
    /// office-365-management-api#89: `code` ends with "failed. Exception",
    /// the exception in `message`.
    Message,
    /// power-platform#184: the split falls inside the AppId; `message`
    /// holds the rest of the prefix and the exception.
    Straddle,
    /// A prefix without `": "`: the exception's name lands in `code`,
    /// "Tenant … does not exist." in `message`.
    Code,
}

impl AuditOffSplit {
    pub const ALL: [&'static str; 3] = ["message", "straddle", "code"];

    pub fn parse(s: &str) -> Option<AuditOffSplit> {
        match s {
            "message" => Some(AuditOffSplit::Message),
            "straddle" => Some(AuditOffSplit::Straddle),
            "code" => Some(AuditOffSplit::Code),
            _ => None,
        }
    }

    /// The error body's (`code`, `message`) for a tenant, content type,
    /// client and publisher id.
    pub fn body(self, tenant: &str, ct: &str, app: &str, publisher: &str) -> (String, String) {
        let exception = format!("Microsoft.Office.Compliance.Audit.DataServiceException: Tenant {tenant} does not exist.\r\n   at Microsoft.Office.Compliance.Audit.API.AzureManager.<GetSubscriptionTableClientForTenantAsync>d__51.MoveNext()\r\n--- End of stack trace from previous location where exception was thrown ---");
        let corr = "00000000-0000-0000-0000-000000000000";
        let text = match self {
            AuditOffSplit::Message => format!("StartSubscription [CorrId={corr}][TenantId={tenant},ContentType={ct},ApplicationId={app},PublisherId={publisher}] failed. Exception: {exception}"),
            AuditOffSplit::Straddle => format!("StartSubscription [CorrId={corr}][TenantId={tenant},ContentType={ct},ApplicationId={app},PublisherId={publisher}][AppId: {app}] failed. Exception: {exception}"),
            AuditOffSplit::Code => format!("StartSubscription[CorrId={corr}]failed.Exception {exception}"),
        };
        match text.split_once(": ") {
            Some((code, message)) => (code.to_string(), message.to_string()),
            None => (text, String::new()),
        }
    }
}

pub use super::records::TruthRecord;
use super::records::{Meta, RecordGen};

#[derive(Debug, Clone)]
pub struct SimBlob {
    pub content_type: String,
    pub content_id: String,
    /// contentCreated, Unix milliseconds.
    pub created_ms: i64,
    pub expiration_ms: i64,
    /// When it became available (Unix ms): contentCreated, or the moment it
    /// was added if later. Webhooks are notified of it then.
    pub published_ms: i64,
    /// The JSON array served on GET.
    pub body: String,
    pub records: Vec<TruthRecord>,
    /// GET answers AF20051.
    pub expired: bool,
    /// GET answers a body that is not JSON.
    pub poison: bool,
    /// Listed from this Unix ms on (`i64::MAX`: never; else contentCreated
    /// or later).
    pub listed_from_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubStatus {
    Enabled,
    DisabledByAdmin,
}

/// A webhook registered on one content type's subscription.
#[derive(Debug, Clone)]
pub struct SimWebhook {
    pub address: String,
    pub auth_id: String,
    pub expiration: Option<String>,
    /// `enabled`, `disabled` or `expired`, as `subscriptions/list` shows it.
    pub status: String,
    /// Blobs published after this (Unix ms) are notified.
    pub notified_until_ms: i64,
    /// Consecutive failed deliveries.
    pub failures: u32,
}

/// One notification POST, as sent.
#[derive(Debug, Clone)]
pub struct SentNotification {
    pub content_type: String,
    pub content_ids: Vec<String>,
    /// HTTP status of the answer; 0 when the POST failed.
    pub status: u16,
    pub at: std::time::Instant,
}

/// The simulator's audit feed, mutable while it runs.
#[derive(Debug)]
pub struct AuditState {
    pub opts: AuditOptions,
    pub tenant_id: String,
    /// Sorted by contentCreated.
    pub blobs: Vec<SimBlob>,
    /// Absent: never started.
    pub subs: BTreeMap<String, SubStatus>,
    /// Windows answered with AF20030.
    pub rejected_windows: u64,
    /// Counters driving the every-Nth fault switches.
    pub listings: u64,
    pub blob_gets: u64,
    /// Blob downloads that arrived while `management_hang` held every call:
    /// a test sees that a client's download slot is stuck, not sleeping.
    pub blob_gets_held: u64,
    /// Listings and starts held by `listing_hang` or `start_hang` (counted
    /// as they arrive: a test sees a call hanging, not yet answered).
    pub calls_held: u64,
    /// content type → the webhook registered on its subscription.
    pub webhooks: BTreeMap<String, SimWebhook>,
    /// Every notification POST sent.
    pub notifications: Vec<SentNotification>,
    /// Audit Log Query API queries created, in order.
    pub queries: Vec<super::auditlog::SimQuery>,
    gen: RecordGen,
    serial: u64,
}

/// What was served, for comparison with the exporter's counters.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Truth {
    /// (content_type, workload) → unique records (each Id once).
    pub records: BTreeMap<(String, String), u64>,
    /// content_type → records repeating an Id already served.
    pub duplicates: BTreeMap<String, u64>,
    pub ids: BTreeSet<String>,
    /// Listable blobs, expired ones included.
    pub blobs: usize,
    pub expired_blobs: usize,
    /// Blobs served as non-JSON (their records never count).
    pub poison_blobs: usize,
}

impl Truth {
    pub fn records_of(&self, content_type: &str) -> u64 {
        self.records
            .iter()
            .filter(|((ct, _), _)| ct == content_type)
            .map(|(_, n)| n)
            .sum()
    }
}

pub use super::iso_ms;

impl AuditState {
    pub fn new(opts: AuditOptions, tenant_id: &str, base_unix: i64) -> Self {
        let mut st = AuditState {
            subs: BTreeMap::new(),
            tenant_id: tenant_id.to_string(),
            blobs: Vec::new(),
            rejected_windows: 0,
            listings: 0,
            blob_gets: 0,
            blob_gets_held: 0,
            calls_held: 0,
            webhooks: BTreeMap::new(),
            notifications: Vec::new(),
            queries: Vec::new(),
            gen: RecordGen::new(0x5eed_a0d1_7000_0001),
            serial: 0,
            opts,
        };
        for ct in CONTENT_TYPES {
            if st.opts.disabled.iter().any(|d| d == ct) {
                st.subs.insert(ct.to_string(), SubStatus::DisabledByAdmin);
            } else if st.opts.started && !st.opts.audit_log_off {
                st.subs.insert(ct.to_string(), SubStatus::Enabled);
            }
        }
        let base_ms = base_unix * 1_000;
        let span_ms = st.opts.span.as_millis() as i64;
        let n = st.opts.blobs_per_type.max(1) as i64;
        for (i, ct) in CONTENT_TYPES.iter().enumerate() {
            for j in 0..st.opts.blobs_per_type as i64 {
                // Evenly spread, types a few seconds apart, a random-looking ms part.
                let created = base_ms - span_ms + (2 * j + 1) * span_ms / (2 * n)
                    - 1_000 * i as i64 * 7
                    - (st.next() % 1_000) as i64;
                st.push_blob(ct, created, None);
            }
            if let Some(every) = st.opts.live_every {
                let every_ms = (every.as_millis() as i64).max(1_000);
                let mut t = base_ms + every_ms + 1_000 * i as i64;
                while t < base_ms + st.opts.live_for.as_millis() as i64 {
                    st.push_blob(ct, t, None);
                    t += every_ms;
                }
            }
        }
        let expired: Vec<usize> = st
            .blobs_sorted_indices("Audit.General")
            .into_iter()
            .take(st.opts.expired_blobs)
            .collect();
        for i in expired {
            st.blobs[i].expired = true;
        }
        let poison: Vec<usize> = st
            .blobs_sorted_indices("Audit.SharePoint")
            .into_iter()
            .take(st.opts.poison_blobs)
            .collect();
        for i in poison {
            st.blobs[i].poison = true;
            st.blobs[i].body =
                "<html><body>Service Unavailable: upstream returned garbage</body></html>".into();
        }
        let exchange = st.blobs_sorted_indices("Audit.Exchange");
        let (unlisted, late) = (st.opts.unlisted_blobs, st.opts.late_blobs);
        let late_until = base_ms + st.opts.late_by.as_millis() as i64;
        for (n, i) in exchange.into_iter().enumerate().take(unlisted + late) {
            let b = &mut st.blobs[i];
            b.listed_from_ms = if n < unlisted { i64::MAX } else { late_until };
            b.published_ms = b.published_ms.max(b.listed_from_ms);
        }
        st
    }

    fn blobs_sorted_indices(&mut self, ct: &str) -> Vec<usize> {
        self.blobs.sort_by_key(|b| b.created_ms);
        (0..self.blobs.len())
            .filter(|i| self.blobs[*i].content_type == ct)
            .collect()
    }

    fn next(&mut self) -> u64 {
        self.gen.next_u64()
    }

    /// Add a blob now (a test's "late" blob): contentCreated `ago` before
    /// now, listable at once. Returns its contentId.
    pub fn add_blob(&mut self, content_type: &str, ago: Duration, records: usize) -> String {
        let created = crate::timefmt::now_unix() as i64 * 1_000 - ago.as_millis() as i64;
        let id = self.push_blob(content_type, created, Some(records));
        self.blobs.sort_by_key(|b| b.created_ms);
        id
    }

    fn push_blob(&mut self, ct: &str, created_ms: i64, records: Option<usize>) -> String {
        self.serial += 1;
        let span =
            (self.opts.records_max.max(self.opts.records_min) - self.opts.records_min) as u64;
        let count = records.unwrap_or(self.opts.records_min + (self.next() % (span + 1)) as usize);
        let stamp = chrono::DateTime::from_timestamp_millis(created_ms)
            .unwrap_or_default()
            .format("%Y%m%d%H%M%S%3f")
            .to_string();
        let content_id = format!(
            "{stamp}{:06}${stamp}{:06}${}${}$emea0001",
            self.serial,
            self.serial,
            ct.to_ascii_lowercase().replace('.', "_"),
            ct.replace('.', "_"),
        );
        let mut body = String::with_capacity(count * 1_800 + 2);
        body.push('[');
        let mut truth = Vec::with_capacity(count + 1);
        for k in 0..count {
            if k > 0 {
                body.push(',');
            }
            let distinct = format!("Workload{}x{k}", self.serial);
            // Records are created 1–180 min before their blob.
            let delay_s = 60 + (self.next() % (180 * 60)) as i64;
            let meta = Meta {
                content_type: ct,
                tenant_id: &self.tenant_id,
                creation: created_ms / 1_000 - delay_s,
                workload: self.opts.distinct_workloads.then_some(distinct.as_str()),
            };
            truth.push(self.gen.record(&mut body, &meta));
        }
        // A record Microsoft serves twice, in two blobs.
        if self.opts.duplicates && records.is_none() && self.serial.is_multiple_of(4) {
            if let Some(prev) = self
                .blobs
                .iter()
                .rev()
                .find(|b| b.content_type == ct && !b.expired && !b.poison)
            {
                if let (Some(text), Some(t)) = (first_record_text(&prev.body), prev.records.first())
                {
                    if !truth.is_empty() {
                        body.push(',');
                    }
                    body.push_str(&text);
                    truth.push(t.clone());
                }
            }
        }
        self.blobs.push(SimBlob {
            content_type: ct.to_string(),
            content_id: content_id.clone(),
            created_ms,
            expiration_ms: created_ms + 7 * 86_400_000,
            published_ms: created_ms.max((crate::timefmt::now_unix() * 1_000.0) as i64),
            body: {
                body.push(']');
                body
            },
            records: truth,
            expired: false,
            poison: false,
            listed_from_ms: created_ms,
        });
        content_id
    }

    /// Blobs of `ct` with contentCreated in `[start_ms, end_ms)` that exist
    /// by `now_ms` (live blobs appear when their time comes).
    pub fn listable(&self, ct: &str, start_ms: i64, end_ms: i64, now_ms: i64) -> Vec<&SimBlob> {
        self.blobs
            .iter()
            .filter(|b| {
                b.content_type == ct
                    && b.created_ms >= start_ms
                    && b.created_ms < end_ms
                    && b.created_ms <= now_ms
                    && b.listed_from_ms <= now_ms
            })
            .collect()
    }

    /// The live feed ends at `now_ms`: blobs not created by then are never
    /// published (a soak's truth stops growing while the feed drains).
    pub fn end_live_feed(&mut self, now_ms: i64) {
        self.blobs.retain(|b| b.created_ms <= now_ms);
    }

    pub fn blob(&self, content_id: &str) -> Option<&SimBlob> {
        self.blobs.iter().find(|b| b.content_id == content_id)
    }

    /// What a perfect client would have counted from the content types
    /// `types` whose blobs exist by `now_ms` and were created after `since_ms`.
    pub fn truth(&self, types: &[&str], since_ms: i64, now_ms: i64) -> Truth {
        let mut t = Truth::default();
        for b in self.blobs.iter().filter(|b| {
            types.contains(&b.content_type.as_str())
                && b.created_ms >= since_ms
                && b.created_ms <= now_ms
        }) {
            t.blobs += 1;
            if b.expired {
                t.expired_blobs += 1;
                continue;
            }
            if b.poison {
                t.poison_blobs += 1;
                continue;
            }
            for r in &b.records {
                if t.ids.insert(r.id.clone()) {
                    *t.records
                        .entry((b.content_type.clone(), r.workload.clone()))
                        .or_default() += 1;
                } else {
                    *t.duplicates.entry(b.content_type.clone()).or_default() += 1;
                }
            }
        }
        t
    }
}

/// The first element of a blob's JSON array, as text (blobs here are
/// compact JSON written by this module, so the first `},{` or `}]` ends it).
fn first_record_text(body: &str) -> Option<String> {
    let inner = body.strip_prefix('[')?;
    let raws: Vec<&serde_json::value::RawValue> = serde_json::from_str(body).ok()?;
    let first = raws.first()?.get();
    inner.starts_with(first).then(|| first.to_string())
}

/// `{"contentType":…,"contentId":…,…}` as the content listing shows it.
pub fn listing_item(b: &SimBlob, base: &str, tenant: &str) -> serde_json::Value {
    serde_json::json!({
        "contentType": b.content_type,
        "contentId": b.content_id,
        "contentUri": format!("{base}/api/v1.0/{tenant}/activity/feed/audit/{}", b.content_id),
        "contentCreated": iso_ms(b.created_ms),
        "contentExpiration": iso_ms(b.expiration_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_data_with_duplicates_and_expiry() {
        let a = AuditState::new(AuditOptions::default(), "t", 1_800_000_000);
        let b = AuditState::new(AuditOptions::default(), "t", 1_800_000_000);
        assert_eq!(a.blobs.len(), 5 * 8);
        assert_eq!(a.blobs[3].body, b.blobs[3].body);
        let now = 1_800_000_000_000;
        let t = a.truth(&CONTENT_TYPES, 0, now);
        assert_eq!(t.blobs, 40);
        assert_eq!(t.expired_blobs, 1);
        assert!(t.duplicates.values().sum::<u64>() > 0);
        let served: usize = a
            .blobs
            .iter()
            .filter(|b| !b.expired)
            .map(|b| b.records.len())
            .sum();
        let unique: u64 = t.records.values().sum();
        assert_eq!(served as u64, unique + t.duplicates.values().sum::<u64>());
        // Every body parses with the exporter's own parser into its truth.
        for blob in &a.blobs {
            let recs = crate::activity::records::parse_blob(blob.body.as_bytes()).unwrap();
            assert_eq!(recs.len(), blob.records.len());
            assert_eq!(recs[0].id.as_deref(), Some(blob.records[0].id.as_str()));
        }
        assert_eq!(a.listable("DLP.All", 0, now, now).len(), 8);
    }

    #[test]
    fn an_ended_live_feed_publishes_nothing_more() {
        let base = 1_800_000_000;
        let opts = AuditOptions {
            live_every: Some(Duration::from_secs(10)),
            live_for: Duration::from_secs(600),
            ..Default::default()
        };
        let mut a = AuditState::new(opts, "t", base);
        let later = (base + 300) * 1_000;
        let before = a.truth(&CONTENT_TYPES, 0, later);
        assert!(a.blobs.iter().any(|b| b.created_ms > later));
        a.end_live_feed(later);
        assert!(a.blobs.iter().all(|b| b.created_ms <= later));
        assert_eq!(a.truth(&CONTENT_TYPES, 0, i64::MAX), before);
    }

    #[test]
    fn subscriptions_follow_options() {
        let opts = AuditOptions {
            started: false,
            disabled: vec!["Audit.Exchange".into()],
            ..Default::default()
        };
        let a = AuditState::new(opts, "t", 1_800_000_000);
        assert_eq!(a.subs.len(), 1);
        assert_eq!(a.subs["Audit.Exchange"], SubStatus::DisabledByAdmin);
    }
}
