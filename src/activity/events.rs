//! What the feed's stages report. One event is one call on a pre-labelled
//! handle: it counts into its series and, where an operator must hear of
//! it, writes its one log line (vector's `internal_events` is the model).
//! Stages never name a metric or a label; this file is where the feed's
//! counters, their labels and their log lines meet.
//!
//! [`Events`] holds one [`TypeEvents`] per content type of a tenant. A
//! handle looks its series up once, on first use, and keeps them: an event
//! costs an atomic add, never a hash of a label array, so the per-record
//! path (the delay histogram) and the per-blob one (record counts) stay as
//! cheap as before events existed.
//!
//! Series appear when they always did: the configured types' blob counters
//! at 0 from the start (so `increase()` and alerts see the first blob
//! listed, lost, late or quarantined, not only the second), the rest on
//! first use. A listing touches its three series even when nothing it found
//! is new, so a restarted feed shows them at once.

use super::downloader::QUARANTINE_AFTER;
use super::Content;

/// Every `result` of `m365_activity_webhook_notifications_total` but
/// `unknown_tenant` (which has no tenant): a tenant with a webhook has each
/// from the start, at 0 (see `Events::new`), so `increase()` and
/// M365AuditWebhookSilent see a tenant that never received a notification,
/// or none since a restart.
pub const WEBHOOK_RESULTS: [&str; 6] = [
    "accepted",
    "validation",
    "unauthorized",
    "malformed",
    "too_large",
    "foreign",
];
use crate::api::ApiError;
use crate::metrics::family::{Cell, Counter, Histogram, HistogramVec, IntCounterVec, MetricVec};
use crate::metrics::Live;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The families the feed counts into (shared with the scrape).
#[derive(Clone)]
struct Families {
    listed: Arc<IntCounterVec>,
    fetched: Arc<IntCounterVec>,
    expired: Arc<IntCounterVec>,
    duplicates: Arc<IntCounterVec>,
    gaps: Arc<IntCounterVec>,
    quarantined: Arc<IntCounterVec>,
    discovered: Arc<IntCounterVec>,
    records: Arc<IntCounterVec>,
    delay: Arc<HistogramVec>,
}

/// One series of a family, looked up on first use and kept.
struct Series<C: Cell> {
    family: Arc<MetricVec<C>>,
    cell: Option<Arc<C>>,
}

impl<C: Cell> Series<C> {
    fn new(family: &Arc<MetricVec<C>>) -> Self {
        Series {
            family: family.clone(),
            cell: None,
        }
    }

    fn get(&mut self, labels: &[&str]) -> &C {
        self.cell
            .get_or_insert_with(|| self.family.with_label_values(labels))
    }
}

/// One tenant's events.
pub struct Events {
    tenant: Arc<str>,
    families: Families,
    types: BTreeMap<String, TypeEvents>,
}

impl Events {
    /// Handles for `types`, their blob counters present at 0 (and, with a
    /// webhook, the discovery sources and every result the receiver counts).
    pub fn new(live: &Live, tenant: &str, types: &[String], webhook: bool) -> Events {
        let mut events = Events {
            tenant: Arc::from(tenant),
            families: Families {
                listed: live.activity_listed.clone(),
                fetched: live.activity_fetched.clone(),
                expired: live.activity_expired.clone(),
                duplicates: live.activity_duplicates.clone(),
                gaps: live.activity_gaps.clone(),
                quarantined: live.activity_quarantined.clone(),
                discovered: live.activity_discovered.clone(),
                records: live.activity_records.clone(),
                delay: live.activity_delay.clone(),
            },
            types: BTreeMap::new(),
        };
        for ct in types {
            events.of(ct).touch(webhook);
        }
        if webhook {
            // Counted by the receiver (`crate::web::receiver`), which has no
            // tenant list of its own to start them from.
            for result in WEBHOOK_RESULTS {
                live.webhook_notifications
                    .with_label_values(&[tenant, result]);
            }
        }
        events
    }

    /// The handle of content type `ct` (made on first use: a blob resumed
    /// from the state file may be of a type no longer configured).
    pub fn of(&mut self, ct: &str) -> &mut TypeEvents {
        if !self.types.contains_key(ct) {
            let handle = TypeEvents::new(&self.families, &self.tenant, ct);
            self.types.insert(ct.to_string(), handle);
        }
        self.types.get_mut(ct).expect("inserted above when missing")
    }

    /// Pending content passed its `contentExpiration` before it could be
    /// downloaded: each blob counted, one warning for them all.
    pub fn expired(&mut self, gone: &[Content]) {
        for c in gone {
            self.of(&c.content_type).expired();
        }
        if let Some(first) = gone.first() {
            tracing::warn!(tenant = %self.tenant, blobs = gone.len(), oldest = %first.content_id,
                "audit content expired before it could be downloaded: its records are lost");
        }
    }
}

/// The events of one (tenant, content type).
pub struct TypeEvents {
    tenant: Arc<str>,
    content_type: Box<str>,
    listed: Series<Counter>,
    fetched: Series<Counter>,
    expired: Series<Counter>,
    duplicates: Series<Counter>,
    gaps: Series<Counter>,
    quarantined: Series<Counter>,
    discovered_listing: Series<Counter>,
    discovered_webhook: Series<Counter>,
    delay: Series<Histogram>,
    records_family: Arc<IntCounterVec>,
    /// `workload` → `operation` → series of `m365_activity_records_total`
    /// (both label sets bounded: see `workloads` and `activity.operations`).
    records: HashMap<Box<str>, ByOperation>,
}

/// One workload's record series, by `operation` label.
type ByOperation = Vec<(Box<str>, Arc<Counter>)>;

/// `[tenant, content_type]` of a handle, borrowing only those two fields.
macro_rules! labels {
    ($s:ident) => {
        [&*$s.tenant, &*$s.content_type]
    };
    ($s:ident, $extra:expr) => {
        [&*$s.tenant, &*$s.content_type, $extra]
    };
}

impl TypeEvents {
    fn new(f: &Families, tenant: &Arc<str>, ct: &str) -> TypeEvents {
        TypeEvents {
            tenant: tenant.clone(),
            content_type: Box::from(ct),
            listed: Series::new(&f.listed),
            fetched: Series::new(&f.fetched),
            expired: Series::new(&f.expired),
            duplicates: Series::new(&f.duplicates),
            gaps: Series::new(&f.gaps),
            quarantined: Series::new(&f.quarantined),
            discovered_listing: Series::new(&f.discovered),
            discovered_webhook: Series::new(&f.discovered),
            delay: Series::new(&f.delay),
            records_family: f.records.clone(),
            records: HashMap::new(),
        }
    }

    /// Make the blob counters exist at 0.
    fn touch(&mut self, webhook: bool) {
        let l = labels!(self);
        for s in [
            &mut self.listed,
            &mut self.fetched,
            &mut self.expired,
            &mut self.duplicates,
            &mut self.gaps,
            &mut self.quarantined,
        ] {
            s.get(&l);
        }
        if webhook {
            self.discovered_webhook.get(&labels!(self, "webhook"));
            self.discovered_listing.get(&labels!(self, "listing"));
        }
    }

    /// The lister found content; `fresh`: new to the backlog; `gap`: it was
    /// found only by the sweep, older than the overlap (a listing gap, logged).
    pub fn listed(&mut self, fresh: bool, gap: Option<&Content>) {
        let l = labels!(self);
        let listed = self.listed.get(&l);
        let gaps = self.gaps.get(&l);
        let discovered = self.discovered_listing.get(&labels!(self, "listing"));
        if !fresh {
            return;
        }
        listed.inc();
        discovered.inc();
        if let Some(c) = gap {
            gaps.inc();
            tracing::warn!(tenant = %self.tenant, content_type = %self.content_type, content_id = %c.content_id,
                content_created = %crate::timefmt::rfc3339(c.created),
                "content listed later than the overlap window: a listing gap (fetched now; consider a longer activity.overlap)");
        }
    }

    /// A webhook notification announced content; `fresh`: new to the
    /// backlog (it then counts as listed too: the backlog is listed −
    /// fetched − expired, whatever the source).
    pub fn notified(&mut self, fresh: bool) {
        let listed = self.listed.get(&labels!(self));
        let discovered = self.discovered_webhook.get(&labels!(self, "webhook"));
        if fresh {
            listed.inc();
            discovered.inc();
        }
    }

    /// A blob was downloaded and applied.
    pub fn fetched(&mut self) {
        self.fetched.get(&labels!(self)).inc();
    }

    fn expired(&mut self) {
        self.expired.get(&labels!(self)).inc();
    }

    /// Microsoft answered AF20051 for a blob: it expired before it could be
    /// downloaded; its records are lost.
    pub fn gone(&mut self, c: &Content) {
        self.expired();
        tracing::warn!(tenant = %self.tenant, content_type = %self.content_type, content_id = %c.content_id,
            "audit content expired (AF20051) before it could be downloaded: its records are lost");
    }

    /// A download failed; the blob stays in the backlog.
    pub fn download_failed(&self, c: &Content, e: &ApiError) {
        tracing::debug!(tenant = %self.tenant, content_id = %c.content_id, error = %e,
            "blob download failed; retried next poll");
    }

    /// A downloaded blob did not parse; it stays in the backlog.
    pub fn not_applied(&self, c: &Content, why: &str) {
        tracing::warn!(tenant = %self.tenant, content_type = %self.content_type, content_id = %c.content_id, error = %why,
            "audit blob not applied; it stays in the backlog");
    }

    /// A blob never parsed: kept aside raw and taken out of the backlog.
    pub fn quarantined(&mut self, c: &Content, why: &str) {
        self.quarantined.get(&labels!(self)).inc();
        tracing::warn!(tenant = %self.tenant, content_type = %self.content_type, content_id = %c.content_id, error = %why,
            attempts = QUARANTINE_AFTER,
            "audit blob quarantined: it never parsed; its raw bytes are kept beside the state file (if any) and it left the backlog");
    }

    /// The series of `m365_activity_records_total` for new records with
    /// this `workload` and `operation` label (looked up once per pair; the
    /// apply stage adds to a [`RecordCounts`], which the checkpoint counts once it
    /// has written the records).
    pub fn records(&mut self, workload: &str, operation: &str) -> &Arc<Counter> {
        let ops = self.records.entry(Box::from(workload)).or_default();
        let at = match ops.iter().position(|(o, _)| &**o == operation) {
            Some(i) => i,
            None => {
                let series = self.records_family.with_label_values(&[
                    &self.tenant,
                    &self.content_type,
                    workload,
                    operation,
                ]);
                ops.push((Box::from(operation), series));
                ops.len() - 1
            }
        };
        &ops[at].1
    }

    /// Records of a blob whose `Id` was seen before.
    pub fn duplicates(&mut self, n: u64) {
        if n > 0 {
            self.duplicates.get(&labels!(self)).inc_by(n);
        }
    }

    /// The record-delay histogram, for each new record with a CreationTime.
    pub fn delay(&mut self) -> &Histogram {
        self.delay.get(&labels!(self))
    }
}

/// New records on their way to `m365_activity_records_total`: per series,
/// how many. The apply stage fills one per blob; it travels with the
/// blob's lines to the checkpoint, which counts it ([`RecordCounts::count`]) only
/// once the records are where they go (see `checkpoint`), so a feed
/// restarted from its last checkpoint never counts a re-fetched record
/// twice. A handful of series per blob: merged by series, a short list.
#[derive(Default)]
pub struct RecordCounts(Vec<(Arc<Counter>, u64)>);

impl RecordCounts {
    pub fn add(&mut self, series: &Arc<Counter>, n: u64) {
        match self.0.iter_mut().find(|(s, _)| Arc::ptr_eq(s, series)) {
            Some((_, m)) => *m += n,
            None => self.0.push((series.clone(), n)),
        }
    }

    pub fn merge(&mut self, other: RecordCounts) {
        for (s, n) in other.0 {
            self.add(&s, n);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records in it, all series together.
    pub fn records(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// Count them: the records are written (or there is nowhere to write).
    pub fn count(self) {
        for (s, n) in self.0 {
            s.inc_by(n);
        }
    }
}

impl std::fmt::Debug for RecordCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecordCounts({} records, {} series)",
            self.records(),
            self.0.len()
        )
    }
}

/// How a reconciled window ended (`m365_activity_reconcile_windows_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowResult {
    /// Nothing missing.
    Complete,
    /// Records were missing and none is left missing.
    Repaired,
    /// Records still missing after repair, or a reference that cannot prove
    /// completeness (truncated at the smallest window, records without ids).
    Incomplete,
    /// No usable answer (the query failed, was cancelled, timed out, was
    /// refused); the window is tried again later.
    Failed,
}

impl WindowResult {
    pub const ALL: [WindowResult; 4] = [
        WindowResult::Complete,
        WindowResult::Repaired,
        WindowResult::Incomplete,
        WindowResult::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WindowResult::Complete => "complete",
            WindowResult::Repaired => "repaired",
            WindowResult::Incomplete => "incomplete",
            WindowResult::Failed => "failed",
        }
    }
}

/// What one reconciled window counted, per content type (`matched`,
/// `missing`, `repaired`) and still missing after repair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordTally {
    pub matched: u64,
    pub missing: u64,
    pub repaired: u64,
    pub still_missing: u64,
}

/// The reconciler's events for one tenant: windows by result, records by
/// content type and result, every configured series present at 0 from the
/// start (so alerts see the first missing record, not only the second).
pub struct ReconcileEvents {
    tenant: Arc<str>,
    windows: Vec<(WindowResult, Arc<Counter>)>,
    /// content type → (matched, missing, repaired).
    records: BTreeMap<String, [Arc<Counter>; 3]>,
    family: Arc<IntCounterVec>,
}

impl ReconcileEvents {
    pub fn new(live: &Live, tenant: &str, types: &[String]) -> ReconcileEvents {
        let windows = WindowResult::ALL
            .iter()
            .map(|r| {
                (
                    *r,
                    live.reconcile_windows
                        .with_label_values(&[tenant, r.as_str()]),
                )
            })
            .collect();
        let mut ev = ReconcileEvents {
            tenant: Arc::from(tenant),
            windows,
            records: BTreeMap::new(),
            family: live.reconcile_records.clone(),
        };
        for ct in types {
            ev.of(ct);
        }
        ev
    }

    fn of(&mut self, ct: &str) -> &[Arc<Counter>; 3] {
        if !self.records.contains_key(ct) {
            let series = ["matched", "missing", "repaired"]
                .map(|r| self.family.with_label_values(&[&self.tenant, ct, r]));
            self.records.insert(ct.to_string(), series);
        }
        self.records.get(ct).expect("inserted above when missing")
    }

    /// Window `[start, end)` ended with `result`; `tally` per content type.
    pub fn window(
        &mut self,
        start: i64,
        end: i64,
        result: WindowResult,
        tally: &BTreeMap<String, RecordTally>,
    ) {
        if let Some((_, c)) = self.windows.iter().find(|(r, _)| *r == result) {
            c.inc();
        }
        let mut sum = RecordTally::default();
        for (ct, t) in tally {
            let [matched, missing, repaired] = self.of(ct);
            matched.inc_by(t.matched);
            missing.inc_by(t.missing);
            repaired.inc_by(t.repaired);
            sum.matched += t.matched;
            sum.missing += t.missing;
            sum.repaired += t.repaired;
            sum.still_missing += t.still_missing;
        }
        let (from, to) = (crate::timefmt::rfc3339(start), crate::timefmt::rfc3339(end));
        match result {
            WindowResult::Complete => {
                tracing::debug!(tenant = %self.tenant, from = %from, to = %to, matched = sum.matched,
                    "audit feed reconciled: complete")
            }
            WindowResult::Repaired => {
                tracing::warn!(tenant = %self.tenant, from = %from, to = %to, matched = sum.matched,
                    missing = sum.missing, repaired = sum.repaired,
                    "audit feed reconciled: records were missing from the feed; re-listed and repaired")
            }
            WindowResult::Incomplete => {
                tracing::warn!(tenant = %self.tenant, from = %from, to = %to, matched = sum.matched,
                    missing = sum.missing, repaired = sum.repaired, still_missing = sum.still_missing,
                    "audit feed reconciled: records are still missing after repair (or the reference is incomplete)")
            }
            WindowResult::Failed => {
                tracing::debug!(tenant = %self.tenant, from = %from, to = %to,
                    "audit feed reconciliation failed for this window; tried again later")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str) -> Content {
        Content {
            content_type: "Audit.Exchange".into(),
            content_id: id.into(),
            content_uri: format!("http://x/{id}"),
            created: 1_800_000_000,
            expiration: 1_800_604_800,
        }
    }

    fn text(live: &Live) -> String {
        let mut out = Vec::new();
        live.encode(None, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn configured_types_start_at_zero_and_count_once_resolved() {
        let live = Live::new();
        let types = ["Audit.Exchange".to_string()];
        let mut ev = Events::new(&live, "t", &types, false);
        let t = text(&live);
        for name in [
            "m365_activity_content_listed_total",
            "m365_activity_content_fetched_total",
            "m365_activity_content_expired_total",
            "m365_activity_records_duplicate_total",
            "m365_activity_listing_gaps_total",
            "m365_activity_content_quarantined_total",
        ] {
            let line = format!("{name}{{tenant=\"t\",content_type=\"Audit.Exchange\"}} 0\n");
            assert!(t.contains(&line), "{line} in {t}");
        }
        assert!(
            !t.contains("m365_activity_content_discovered_total"),
            "sources only with a webhook, or once something is listed"
        );
        let x = ev.of("Audit.Exchange");
        x.listed(false, None);
        assert!(text(&live).contains(
            "m365_activity_content_discovered_total{tenant=\"t\",content_type=\"Audit.Exchange\",source=\"listing\"} 0\n"
        ));
        x.listed(true, Some(&c("a")));
        x.notified(true);
        x.notified(false);
        x.fetched();
        let mut counts = RecordCounts::default();
        counts.add(x.records("Exchange", ""), 3);
        counts.add(x.records("Exchange", ""), 2);
        counts.add(x.records("Exchange", "MailItemsAccessed"), 1);
        assert_eq!(counts.records(), 6);
        let mut more = RecordCounts::default();
        more.add(x.records("Exchange", ""), 0);
        counts.merge(more);
        assert!(
            text(&live).contains("m365_activity_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",workload=\"Exchange\",operation=\"\"} 0\n"),
            "counted only when told"
        );
        counts.count();
        x.duplicates(0);
        x.duplicates(4);
        x.delay().observe(100.0);
        ev.expired(&[c("b"), c("c")]);
        let t = text(&live);
        for line in [
            "m365_activity_content_listed_total{tenant=\"t\",content_type=\"Audit.Exchange\"} 2\n",
            "m365_activity_listing_gaps_total{tenant=\"t\",content_type=\"Audit.Exchange\"} 1\n",
            "m365_activity_content_discovered_total{tenant=\"t\",content_type=\"Audit.Exchange\",source=\"listing\"} 1\n",
            "m365_activity_content_discovered_total{tenant=\"t\",content_type=\"Audit.Exchange\",source=\"webhook\"} 1\n",
            "m365_activity_content_fetched_total{tenant=\"t\",content_type=\"Audit.Exchange\"} 1\n",
            "m365_activity_content_expired_total{tenant=\"t\",content_type=\"Audit.Exchange\"} 2\n",
            "m365_activity_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",workload=\"Exchange\",operation=\"\"} 5\n",
            "m365_activity_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",workload=\"Exchange\",operation=\"MailItemsAccessed\"} 1\n",
            "m365_activity_records_duplicate_total{tenant=\"t\",content_type=\"Audit.Exchange\"} 4\n",
            "m365_activity_record_delay_seconds_count{tenant=\"t\",content_type=\"Audit.Exchange\"} 1\n",
        ] {
            assert!(t.contains(line), "{line} in {t}");
        }
    }

    #[test]
    fn a_type_no_longer_configured_gets_its_series_on_first_use() {
        let live = Live::new();
        let mut ev = Events::new(&live, "t", &[], false);
        assert!(!text(&live).contains("m365_activity_"));
        ev.of("DLP.All").fetched();
        let t = text(&live);
        assert!(t.contains(
            "m365_activity_content_fetched_total{tenant=\"t\",content_type=\"DLP.All\"} 1\n"
        ));
        assert!(!t.contains("m365_activity_content_listed_total"), "{t}");
    }

    #[test]
    fn reconcile_series_start_at_zero_and_count_per_window() {
        let live = Live::new();
        let mut ev = ReconcileEvents::new(&live, "t", &["Audit.Exchange".to_string()]);
        let t = text(&live);
        for r in ["complete", "repaired", "incomplete", "failed"] {
            assert!(t.contains(&format!(
                "m365_activity_reconcile_windows_total{{tenant=\"t\",result=\"{r}\"}} 0\n"
            )));
        }
        for r in ["matched", "missing", "repaired"] {
            assert!(t.contains(&format!(
                "m365_activity_reconcile_records_total{{tenant=\"t\",content_type=\"Audit.Exchange\",result=\"{r}\"}} 0\n"
            )));
        }
        let tally = BTreeMap::from([(
            "Audit.Exchange".to_string(),
            RecordTally {
                matched: 5,
                missing: 2,
                repaired: 2,
                still_missing: 0,
            },
        )]);
        ev.window(0, 3_600, WindowResult::Repaired, &tally);
        let t = text(&live);
        assert!(t.contains(
            "m365_activity_reconcile_windows_total{tenant=\"t\",result=\"repaired\"} 1\n"
        ));
        assert!(t.contains("m365_activity_reconcile_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",result=\"matched\"} 5\n"));
        assert!(t.contains("m365_activity_reconcile_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",result=\"repaired\"} 2\n"));
    }

    #[test]
    fn a_webhook_makes_both_sources_and_every_result_exist() {
        let live = Live::new();
        Events::new(&live, "t", &["DLP.All".to_string()], true);
        let t = text(&live);
        for source in ["listing", "webhook"] {
            assert!(t.contains(&format!(
                "m365_activity_content_discovered_total{{tenant=\"t\",content_type=\"DLP.All\",source=\"{source}\"}} 0\n"
            )));
        }
        // M365AuditWebhookSilent needs `accepted` before the first
        // notification (or the first since a restart).
        for result in WEBHOOK_RESULTS {
            let line = format!(
                "m365_activity_webhook_notifications_total{{tenant=\"t\",result=\"{result}\"}} 0\n"
            );
            assert!(t.contains(&line), "{line} in {t}");
        }
        assert!(
            !t.contains("result=\"unknown_tenant\""),
            "no tenant to count it for"
        );
        // Without a webhook, none.
        let live = Live::new();
        Events::new(&live, "t", &["DLP.All".to_string()], false);
        assert!(!text(&live).contains("m365_activity_webhook_notifications_total"));
    }
}
