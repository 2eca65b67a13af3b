//! `activity`: follows one tenant's audit feed (Office 365 Management
//! Activity API) and reports how healthy it is.
//!
//! One poll: check subscriptions (at start and every 15 min; start missing
//! ones if allowed), list each enabled content type from its cursor minus the
//! overlap in ≤ 24 h windows, add new content to the backlog, expire what
//! Microsoft no longer keeps, then download the backlog oldest first with
//! bounded concurrency, counting records and appending new ones to the sink.
//! A content type that fails (audit log off, missing permission, disabled
//! subscription, …) is logged once per change and makes the refresh a partial
//! failure; the other types keep being listed, fetched and reported.

use super::{CollectError, Collector, CollectorKind, FeedRow, Outcome};
use crate::activity::client::ManagementClient;
use crate::activity::recent::key;
use crate::activity::records::{parse_blob, push_line};
use crate::activity::sink::{self, Sink};
use crate::activity::state::{self, Loaded, State};
use crate::activity::{earliest_start, plan_windows, Content, MAX_WINDOW_SECS};
use crate::config::{ActivityConfig, TenantConfig};
use crate::http::{Api, ApiClient, ApiError};
use crate::metrics::{Family, Live, SnapshotWriter};
use crate::timefmt::now_unix;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often `subscriptions/list` is asked, and `/start` retried per type.
pub const SUBSCRIPTION_EVERY: Duration = Duration::from_secs(15 * 60);
/// Every this many polls, the day before the overlap is listed once more:
/// content indexed later than the overlap is then still found (and counted
/// as a gap) instead of being missed silently.
pub const SWEEP_EVERY_POLLS: u64 = 12;
/// A poll stops starting downloads after its interval (at least this long),
/// so a long catch-up still refreshes the metrics every interval or so.
const MIN_DOWNLOAD_WINDOW: Duration = Duration::from_secs(5);

/// Why a content type (or the feed as a whole) is not flowing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `/start` answered "DataServiceException: Tenant … does not exist".
    AuditLogOff,
    /// AF10001.
    MissingPermission,
    /// `subscriptions/list` says `disabled`.
    Disabled,
    /// AF20023.
    DisabledByAdmin,
    /// Not in `subscriptions/list`, or AF20022.
    NotSubscribed,
    /// Anything else (throttled past all retries, 5xx, I/O …), one stable line.
    Failed(String),
}

impl Problem {
    /// The one log line an operator reads.
    pub fn describe(&self) -> String {
        match self {
            Problem::AuditLogOff => "unified audit logging is off for this tenant (subscriptions/start answered \"Tenant … does not exist\"): turn on auditing in Microsoft Purview; content types can be subscribed only once it is on".into(),
            Problem::MissingPermission => "the app lacks the Office 365 Management API permission (AF10001): grant ActivityFeed.Read (and ActivityFeed.ReadDlp for DLP.All) as an application permission with admin consent".into(),
            Problem::Disabled => "subscription disabled (subscriptions/list status \"disabled\"): start it again, or set activity.start_subscriptions: true".into(),
            Problem::DisabledByAdmin => "subscription disabled by an admin (AF20023): it cannot be started until an admin re-enables it".into(),
            Problem::NotSubscribed => "no subscription for this content type (AF20022): set activity.start_subscriptions: true or start it".into(),
            Problem::Failed(s) => s.clone(),
        }
    }

    /// Short, stable form for the collector's error line.
    fn short(&self) -> String {
        match self {
            Problem::AuditLogOff => "unified audit log off".into(),
            Problem::MissingPermission => "missing permission (AF10001)".into(),
            Problem::Disabled => "subscription disabled".into(),
            Problem::DisabledByAdmin => "subscription disabled by an admin (AF20023)".into(),
            Problem::NotSubscribed => "no subscription (AF20022)".into(),
            Problem::Failed(s) => s.clone(),
        }
    }

    /// Problems that do not go away by asking again soon.
    fn lasting(&self) -> bool {
        !matches!(self, Problem::Failed(_))
    }
}

/// What a Management API error means for the feed.
pub fn classify(e: &ApiError) -> Problem {
    match e.code() {
        Some("AF10001") => return Problem::MissingPermission,
        Some("AF20022") => return Problem::NotSubscribed,
        Some("AF20023") => return Problem::DisabledByAdmin,
        _ => {}
    }
    if let ApiError::Status { message, .. } = e {
        if message.contains("DataServiceException") && message.contains("does not exist") {
            return Problem::AuditLogOff;
        }
    }
    // Stable across runs: the operation and the code or status, not the
    // message (which may carry ids or timestamps).
    let what = match e {
        ApiError::Status {
            operation,
            status,
            code,
            ..
        } => format!(
            "{operation}: HTTP {status}{}",
            code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
        ),
        other => other.to_string(),
    };
    Problem::Failed(what)
}

#[derive(Debug, Default)]
struct Sub {
    /// None until known.
    enabled: Option<bool>,
    problem: Option<Problem>,
    last_start: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    loaded: bool,
    state: State,
    /// State changed since it was last saved.
    dirty: bool,
    sink: Option<Sink>,
    subs: BTreeMap<String, Sub>,
    last_check: Option<Instant>,
    /// Ask `subscriptions/list` at the next poll (a listing said AF20022/23).
    recheck: bool,
    polls: u64,
    /// Problems as last logged, by content type or scope (`state_file`, `download`).
    reported: BTreeMap<String, Problem>,
    /// The last state-file write failed (the next save retries).
    save_error: Option<String>,
}

pub struct ActivityCollector {
    tenant: String,
    tenant_id: String,
    cfg: ActivityConfig,
    client: ManagementClient,
    inner: tokio::sync::Mutex<Inner>,
    /// The last poll's problems in one stable line (see `partial_failure`).
    failing: std::sync::Mutex<Option<String>>,
}

impl ActivityCollector {
    /// None when the tenant has no Management endpoint (config validation
    /// already refuses that when activity is enabled).
    pub fn new(t: &TenantConfig, api: Arc<ApiClient>) -> Option<Self> {
        let root = t.endpoints.management.as_deref()?;
        let cfg = t.activity.clone();
        // Present at 0 from the start, so `increase()` and alerts see the
        // first blob listed, lost or late, not only the second.
        let live = api.live();
        for ct in &cfg.content_types {
            let labels = [t.name.as_str(), ct.as_str()];
            for c in [
                &live.activity_listed,
                &live.activity_fetched,
                &live.activity_expired,
                &live.activity_duplicates,
                &live.activity_gaps,
            ] {
                c.with_label_values(&labels);
            }
        }
        Some(ActivityCollector {
            tenant: t.name.clone(),
            tenant_id: t.tenant_id.clone(),
            client: ManagementClient::new(
                api,
                root,
                &t.tenant_id,
                &cfg.publisher_id,
                cfg.requests_per_minute,
            ),
            cfg,
            inner: Default::default(),
            failing: Default::default(),
        })
    }

    fn live(&self) -> &Live {
        self.client.api().live()
    }

    async fn poll(&self) -> Result<Outcome, CollectError> {
        let started = Instant::now();
        let mut guard = self.inner.lock().await;
        let g = &mut *guard;
        if !g.loaded {
            self.load(g).await;
        }
        let now = now_unix() as i64;
        g.state.recent_ids.prune(now);
        g.state.backlog.prune(now);
        g.polls += 1;

        let mut problems = BTreeMap::new();
        self.check_subscriptions(g).await;
        for ct in &self.cfg.content_types {
            let sub = g.subs.entry(ct.clone()).or_default();
            if let Some(p) = &sub.problem {
                problems.insert(ct.clone(), p.clone());
            }
            if sub.enabled != Some(true) {
                continue;
            }
            if let Err(p) = self.list(g, ct, now).await {
                if matches!(p, Problem::NotSubscribed | Problem::DisabledByAdmin) {
                    let sub = g.subs.entry(ct.clone()).or_default();
                    sub.enabled = Some(false);
                    sub.problem = Some(p.clone());
                    g.recheck = true;
                }
                problems.insert(ct.clone(), p);
            }
        }
        self.expire(g, now);
        if let Some(p) = self.download(g, started).await {
            problems.insert("download".into(), p);
        }
        if g.dirty {
            self.save(g).await;
        }
        if let Some(e) = &g.save_error {
            problems.insert("state_file".into(), Problem::Failed(e.clone()));
        }
        self.report(g, &problems);
        let summary: Vec<String> = problems
            .iter()
            .map(|(k, p)| format!("{k}: {}", p.short()))
            .collect();
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) =
            (!summary.is_empty()).then(|| summary.join("; "));
        Ok(self.render(g, now_unix() as i64))
    }

    // ------------------------------------------------------------ state

    async fn load(&self, g: &mut Inner) {
        g.loaded = true;
        let now = now_unix() as i64;
        if let Some(path) = self.cfg.state_file.clone() {
            let tenant_id = self.tenant_id.clone();
            let p = path.clone();
            let loaded = tokio::task::spawn_blocking(move || state::load(&p, &tenant_id, now))
                .await
                .unwrap_or_else(|e| Loaded::Bad {
                    reason: e.to_string(),
                    aside: None,
                });
            match loaded {
                Loaded::Missing => {
                    tracing::info!(tenant = %self.tenant, file = %path.display(), "activity state file not found; starting from lookback")
                }
                Loaded::Found(s) => {
                    tracing::info!(tenant = %self.tenant, file = %path.display(), backlog = s.backlog.pending_len(), recent_ids = s.recent_ids.len(), "activity state resumed");
                    g.state = s;
                }
                Loaded::Bad { reason, aside } => {
                    tracing::error!(tenant = %self.tenant, file = %path.display(), reason = %reason,
                        moved_to = %aside.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(could not move it)".into()),
                        "activity state file unusable; starting from lookback");
                }
            }
        }
        if let Some(out) = &self.cfg.output {
            let sink = Sink::new(out);
            if self.cfg.state_file.is_some() {
                match sink::reconcile(out, g.state.sink) {
                    Ok(0) => {}
                    Ok(cut) => {
                        tracing::info!(tenant = %self.tenant, file = %out.display(), bytes = cut,
                        "activity output: removed records written after the last saved state; their blobs are fetched again")
                    }
                    Err(e) => {
                        tracing::error!(tenant = %self.tenant, file = %out.display(), error = %e, "activity output: cannot check against the state file")
                    }
                }
            }
            g.state.sink = sink.mark().ok();
            g.sink = Some(sink);
        }
    }

    async fn save(&self, g: &mut Inner) {
        g.dirty = false;
        let Some(path) = self.cfg.state_file.clone() else {
            return;
        };
        let bytes = state::encode(&g.state, &self.tenant_id, now_unix() as i64);
        let res = tokio::task::spawn_blocking(move || state::save(&path, &bytes))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match res {
            Ok(()) => g.save_error = None,
            Err(e) => {
                // Safe to go on: a restart from an older state re-fetches
                // what came after it (and cuts the sink back to match).
                g.save_error = Some(format!("cannot write the state file: {e}"));
                g.dirty = true;
            }
        }
    }

    // ---------------------------------------------------- subscriptions

    async fn check_subscriptions(&self, g: &mut Inner) {
        let due = g.recheck
            || g.last_check
                .is_none_or(|t| t.elapsed() >= SUBSCRIPTION_EVERY);
        if due {
            match self.client.subscriptions().await {
                Ok(list) => {
                    g.last_check = Some(Instant::now());
                    g.recheck = false;
                    for ct in &self.cfg.content_types {
                        let status = list
                            .iter()
                            .find(|s| s.content_type.eq_ignore_ascii_case(ct))
                            .map(|s| s.status.eq_ignore_ascii_case("enabled"));
                        let sub = g.subs.entry(ct.clone()).or_default();
                        sub.enabled = Some(status == Some(true));
                        sub.problem = match status {
                            Some(true) => None,
                            Some(false) => Some(Problem::Disabled),
                            None => Some(Problem::NotSubscribed),
                        };
                    }
                }
                Err(e) => {
                    let p = classify(&e);
                    if p.lasting() {
                        // Ask again in 15 min, not every poll.
                        g.last_check = Some(Instant::now());
                        g.recheck = false;
                    }
                    for ct in &self.cfg.content_types {
                        let sub = g.subs.entry(ct.clone()).or_default();
                        if p.lasting() {
                            sub.enabled = Some(false);
                        }
                        sub.problem = Some(p.clone());
                    }
                }
            }
        }
        if !self.cfg.start_subscriptions {
            return;
        }
        for ct in &self.cfg.content_types {
            let sub = g.subs.entry(ct.clone()).or_default();
            let startable = matches!(
                sub.problem,
                Some(Problem::NotSubscribed | Problem::Disabled | Problem::AuditLogOff)
            );
            let due = sub
                .last_start
                .is_none_or(|t| t.elapsed() >= SUBSCRIPTION_EVERY);
            if sub.enabled == Some(true) || !startable || !due {
                continue;
            }
            sub.last_start = Some(Instant::now());
            match self.client.start(ct).await {
                Ok(()) => {
                    tracing::info!(tenant = %self.tenant, content_type = %ct, "activity subscription started");
                    sub.enabled = Some(true);
                    sub.problem = None;
                }
                Err(e) => sub.problem = Some(classify(&e)),
            }
        }
    }

    // ----------------------------------------------------------- listing

    /// List `ct` from its cursor (minus the overlap) to now, window by window.
    async fn list(&self, g: &mut Inner, ct: &str, now: i64) -> Result<(), Problem> {
        let overlap = self.cfg.overlap.as_secs() as i64;
        let previous = g.state.cursors.get(ct).copied();
        let from = match previous {
            Some(c) => c - overlap,
            None => now - self.cfg.lookback.as_secs() as i64,
        };
        for (start, end) in plan_windows(from, now) {
            self.list_window(g, ct, start, end, None).await?;
            let cursor = g.state.cursors.entry(ct.to_string()).or_insert(end);
            *cursor = (*cursor).max(end);
            g.dirty = true;
        }
        // The sweep: the day before the overlap, once more. Anything new in it
        // was indexed too late for the overlap: a gap, caught here.
        if let Some(prev) = previous.filter(|_| g.polls.is_multiple_of(SWEEP_EVERY_POLLS)) {
            let hi = prev - overlap;
            let lo = (hi - MAX_WINDOW_SECS).max(earliest_start(now));
            if lo < hi {
                self.list_window(g, ct, lo, hi, Some(hi)).await?;
            }
        }
        Ok(())
    }

    async fn list_window(
        &self,
        g: &mut Inner,
        ct: &str,
        start: i64,
        end: i64,
        gap_before: Option<i64>,
    ) -> Result<(), Problem> {
        let (items, skipped) = self
            .client
            .list_content(ct, start, end)
            .await
            .map_err(|e| classify(&e))?;
        if skipped > 0 {
            tracing::warn!(tenant = %self.tenant, content_type = %ct, skipped, "content listing items without contentId, contentUri or contentCreated were skipped");
        }
        for mut c in items {
            // Label by what we asked for: the label set stays the configured one.
            c.content_type = ct.to_string();
            self.offer(g, c, gap_before);
        }
        Ok(())
    }

    /// Add content to the backlog (any source); counts it once.
    fn offer(&self, g: &mut Inner, c: Content, gap_before: Option<i64>) {
        let newest = g
            .state
            .newest
            .entry(c.content_type.clone())
            .or_insert(c.created);
        *newest = (*newest).max(c.created);
        let (ct, id, created) = (c.content_type.clone(), c.content_id.clone(), c.created);
        let labels = [self.tenant.as_str(), ct.as_str()];
        if !g.state.backlog.offer(c) {
            return;
        }
        g.dirty = true;
        self.live().activity_listed.with_label_values(&labels).inc();
        if gap_before.is_some_and(|b| created < b) {
            self.live().activity_gaps.with_label_values(&labels).inc();
            tracing::warn!(tenant = %self.tenant, content_type = labels[1], content_id = %id,
                content_created = %crate::timefmt::rfc3339(created),
                "content listed later than the overlap window: a listing gap (fetched now; consider a longer activity.overlap)");
        }
    }

    // ---------------------------------------------------------- downloads

    fn expire(&self, g: &mut Inner, now: i64) {
        let gone = g.state.backlog.take_expired(now);
        for c in &gone {
            self.count_expired(c);
        }
        if let Some(first) = gone.first() {
            g.dirty = true;
            tracing::warn!(tenant = %self.tenant, blobs = gone.len(), oldest = %first.content_id,
                "audit content expired before it could be downloaded: its records are lost");
        }
    }

    fn count_expired(&self, c: &Content) {
        self.live()
            .activity_expired
            .with_label_values(&[self.tenant.as_str(), c.content_type.as_str()])
            .inc();
    }

    /// Fetch the backlog oldest first, `concurrency` at a time; apply each
    /// blob as it arrives (one at a time: the sink and state stay ordered).
    async fn download(&self, g: &mut Inner, started: Instant) -> Option<Problem> {
        let deadline = started + self.cfg.interval.max(MIN_DOWNLOAD_WINDOW);
        let mut queue = g.state.backlog.pending().into_iter();
        let mut inflight = FuturesUnordered::new();
        let (mut fetched, mut failed, mut launched) = (0usize, 0usize, 0usize);
        let mut last_error = None;
        loop {
            // One batch always starts, even when listing alone outlasted the
            // interval (throttled, slow): otherwise such polls would list
            // forever and the backlog would never drain.
            while inflight.len() < self.cfg.concurrency
                && (Instant::now() < deadline || launched < self.cfg.concurrency)
            {
                let Some(c) = queue.next() else { break };
                launched += 1;
                inflight.push(async move {
                    let r = self.client.blob(&c.content_uri).await;
                    (c, r)
                });
            }
            let Some((c, result)) = inflight.next().await else {
                break;
            };
            match result {
                Ok(body) => match self.apply(g, &c, &body).await {
                    Ok(()) => fetched += 1,
                    Err(e) => {
                        tracing::warn!(tenant = %self.tenant, content_type = %c.content_type, content_id = %c.content_id, error = %e, "audit blob not applied; it stays in the backlog");
                        failed += 1;
                        last_error = Some(e);
                    }
                },
                Err(e) if e.code() == Some("AF20051") => {
                    // Microsoft says it is gone: lost, and counted as such.
                    g.state.backlog.complete(&c.content_id);
                    g.dirty = true;
                    self.count_expired(&c);
                    tracing::warn!(tenant = %self.tenant, content_type = %c.content_type, content_id = %c.content_id,
                        "audit content expired (AF20051) before it could be downloaded: its records are lost");
                }
                Err(e) => {
                    tracing::debug!(tenant = %self.tenant, content_id = %c.content_id, error = %e, "blob download failed; retried next poll");
                    failed += 1;
                    last_error = Some(classify(&e).short());
                }
            }
        }
        // Some failures among successes are throttling weather; none
        // succeeding means downloads are stuck.
        match last_error {
            Some(e) if fetched == 0 && failed > 0 => {
                Some(Problem::Failed(format!("blob downloads failing ({e})")))
            }
            _ => None,
        }
    }

    /// Count a blob's records, write the new ones to the sink, mark it done.
    async fn apply(&self, g: &mut Inner, c: &Content, body: &[u8]) -> Result<(), String> {
        // Counted like any unreadable answer; the blob stays in the backlog.
        let records = parse_blob(body).inspect_err(|e| {
            let _ = self
                .client
                .api()
                .malformed(Api::Management, "blob", e.as_str());
        })?;
        let mut lines = Vec::new();
        let mut in_blob = HashSet::new();
        let mut fresh = Vec::with_capacity(records.len());
        let mut duplicates = 0u64;
        for r in &records {
            let when = r.creation_time.map(|t| t as i64).unwrap_or(c.created);
            let k = r.id.as_deref().map(key);
            if let Some(k) = k {
                if g.state.recent_ids.contains(k) || !in_blob.insert(k) {
                    duplicates += 1;
                    continue;
                }
            }
            if g.sink.is_some() {
                push_line(&mut lines, r.raw);
            }
            fresh.push((k, when, r));
        }
        // The sink first: if it fails, nothing is counted and the blob is
        // retried whole.
        if let (Some(sink), false) = (g.sink.clone(), lines.is_empty()) {
            let mark = tokio::task::spawn_blocking(move || {
                sink.append(&lines)
                    .map_err(|e| format!("cannot write {}: {e}", sink.path().display()))
            })
            .await
            .map_err(|e| e.to_string())??;
            g.state.sink = Some(mark);
        }
        let live = self.live();
        let ct = c.content_type.as_str();
        let ct_labels = [self.tenant.as_str(), ct];
        for (k, when, r) in fresh {
            if let Some(k) = k {
                g.state.recent_ids.insert(k, when);
            }
            let op = r
                .operation
                .as_deref()
                .filter(|o| self.cfg.operations.iter().any(|a| a == o))
                .unwrap_or("");
            live.activity_records
                .with_label_values(&[
                    self.tenant.as_str(),
                    ct,
                    r.workload.as_deref().unwrap_or(""),
                    op,
                ])
                .inc();
            if let Some(t) = r.creation_time {
                live.activity_delay
                    .with_label_values(&ct_labels)
                    .observe((c.created as f64 - t).max(0.0));
            }
        }
        if duplicates > 0 {
            live.activity_duplicates
                .with_label_values(&ct_labels)
                .inc_by(duplicates);
        }
        g.state.backlog.complete(&c.content_id);
        live.activity_fetched.with_label_values(&ct_labels).inc();
        g.dirty = true;
        self.save(g).await;
        Ok(())
    }

    // --------------------------------------------------------- reporting

    /// One log line per change of a problem (grouped when several content
    /// types share it), one when they recover.
    fn report(&self, g: &mut Inner, problems: &BTreeMap<String, Problem>) {
        let mut raised: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        let mut recovered = Vec::new();
        let scopes: HashSet<&String> = problems.keys().chain(g.reported.keys()).collect();
        let mut scopes: Vec<&String> = scopes.into_iter().collect();
        scopes.sort();
        for scope in scopes {
            match (g.reported.get(scope), problems.get(scope)) {
                (old, Some(new)) if old != Some(new) => {
                    raised.entry(new.describe()).or_default().push(scope)
                }
                (Some(_), None) => recovered.push(scope.as_str()),
                _ => {}
            }
        }
        for (what, scopes) in raised {
            tracing::error!(tenant = %self.tenant, collector = "activity", content_types = %scopes.join(","), "{what}");
        }
        if !recovered.is_empty() {
            tracing::info!(tenant = %self.tenant, collector = "activity", content_types = %recovered.join(","), "activity feed recovered");
        }
        g.reported = problems.clone();
    }

    fn render(&self, g: &Inner, now: i64) -> Outcome {
        let mut w = SnapshotWriter::new();
        let mut feed = Vec::with_capacity(self.cfg.content_types.len());
        for ct in &self.cfg.content_types {
            let labels = [
                ("tenant", self.tenant.as_str()),
                ("content_type", ct.as_str()),
            ];
            let enabled = g.subs.get(ct).and_then(|s| s.enabled) == Some(true);
            w.sample(
                Family::ActivitySubscription,
                &labels,
                if enabled { 1.0 } else { 0.0 },
            );
            let waiting = g.state.backlog.waiting(ct);
            w.sample(Family::ActivityBacklog, &labels, waiting.blobs as f64);
            let lag = waiting.oldest_created.map_or(0, |o| (now - o).max(0));
            w.sample(Family::ActivityBlobLag, &labels, lag as f64);
            if let Some(t) = g.state.newest.get(ct) {
                w.sample(Family::ActivityLastContent, &labels, *t as f64);
            }
            feed.push(FeedRow {
                content_type: ct.clone(),
                subscribed: g.subs.get(ct).and_then(|s| s.enabled),
                backlog_blobs: waiting.blobs as u64,
                oldest_pending_unix: waiting.oldest_created,
                newest_content_unix: g.state.newest.get(ct).copied(),
                problem: g.reported.get(ct).map(Problem::short),
            });
        }
        Outcome {
            rendered: w.finish(),
            feed,
            ..Outcome::default()
        }
    }
}

impl Collector for ActivityCollector {
    fn kind(&self) -> CollectorKind {
        CollectorKind::Activity
    }
    fn interval(&self) -> Duration {
        self.cfg.interval
    }
    fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
        Box::pin(self.poll())
    }
    fn partial_failure(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>, message: &str) -> ApiError {
        ApiError::Status {
            operation: "subscriptions_start",
            status,
            code: code.map(str::to_string),
            message: message.to_string(),
        }
    }

    #[test]
    fn classifies_microsoft_answers() {
        assert_eq!(classify(&status(401, Some("AF10001"), "The permission set () sent in the request does not include the expected permission.")), Problem::MissingPermission);
        assert_eq!(
            classify(&status(400, Some("AF20022"), "No subscription found")),
            Problem::NotSubscribed
        );
        assert_eq!(
            classify(&status(400, Some("AF20023"), "disabled")),
            Problem::DisabledByAdmin
        );
        // The real "audit log off" answer has a long non-code in `code`
        // (dropped by the client) and the exception in `message`.
        assert_eq!(
            classify(&status(400, None, "StartSubscription [...] failed. Exception: Microsoft.Office.Compliance.Audit.DataServiceException: Tenant 8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b does not exist.\r\n   at ...")),
            Problem::AuditLogOff
        );
        let p = classify(&status(503, None, "busy at 12:00:01"));
        assert_eq!(p, Problem::Failed("subscriptions_start: HTTP 503".into()));
        assert!(!p.lasting() && Problem::AuditLogOff.lasting());
        for p in [
            Problem::AuditLogOff,
            Problem::MissingPermission,
            Problem::Disabled,
            Problem::DisabledByAdmin,
            Problem::NotSubscribed,
        ] {
            assert!(p.describe().len() > p.short().len());
        }
    }
}
