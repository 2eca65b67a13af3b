//! One supervised task per tenant that runs the feed's stages and publishes
//! a [`FeedStatus`] on a `watch` after every poll and checkpoint.
//!
//! One poll: subscriptions (when due) → the lister offers each enabled type's
//! new content to the backlog → expired content leaves it → the downloader
//! drains it oldest first, each blob applied as it arrives (records counted,
//! new lines handed to the checkpoint for the sink) → a checkpoint when due.
//! A content type that cannot flow is reported in its own status and does
//! not stop the others. If the task panics, or the sink cannot be written,
//! the supervisor restarts it from the last checkpoint.

use super::apply::{apply, Counting};
use super::backlog::Backlog;
use super::checkpoint::{self, Checkpoint, Files};
use super::client::ManagementClient;
use super::downloader::{Downloader, MIN_DOWNLOAD_WINDOW};
use super::lister::{Listed, Lister, Window, SWEEP_EVERY_POLLS};
use super::problem::{classify, Problem};
use super::recent::RecentIds;
use super::state::State;
use super::status::{FeedStatus, TypeStatus};
use super::subscriptions::Subscriptions;
use super::webhook::Inbox;
use super::workloads::WorkloadCap;
use super::Content;
use crate::api::{Api, ApiClient};
use crate::config::ActivityConfig;
use crate::task::AbortOnDrop;
use crate::timefmt::now_unix;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// First wait before a failed feed is restarted; doubles up to a minute.
const RESTART_AFTER: Duration = Duration::from_secs(1);
/// How long a stop waits for the last checkpoint before aborting.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What a feed needs to run.
pub struct FeedContext {
    pub tenant: String,
    pub tenant_id: String,
    pub cfg: ActivityConfig,
    pub api: Arc<ApiClient>,
    pub client: Arc<ManagementClient>,
    /// Webhook notifications, with `activity.webhook`.
    pub inbox: Option<Arc<Inbox>>,
}

/// The running feed, and the means to stop it. Dropping it aborts the feed
/// (the files then hold the checkpoint before).
pub struct FeedHandle {
    stop: watch::Sender<bool>,
    task: AbortOnDrop<()>,
}

/// Start a tenant's feed (inside a tokio runtime); it publishes its status
/// on `status` after every poll.
pub fn spawn(ctx: Arc<FeedContext>, status: watch::Sender<FeedStatus>) -> FeedHandle {
    let (stop, stop_rx) = watch::channel(false);
    let task = AbortOnDrop(tokio::spawn(supervise(ctx, status, stop_rx)));
    FeedHandle { stop, task }
}

impl FeedHandle {
    /// Stop at the next blob boundary with a last checkpoint (aborted after
    /// a grace period: the files then hold the checkpoint before).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(STOP_GRACE, &mut self.task.0)
            .await
            .is_err()
        {
            self.task.0.abort();
            let _ = (&mut self.task.0).await;
        }
    }
}

async fn supervise(
    ctx: Arc<FeedContext>,
    tx: watch::Sender<FeedStatus>,
    stop: watch::Receiver<bool>,
) {
    let mut wait = RESTART_AFTER;
    loop {
        let mut run = AbortOnDrop(tokio::spawn(run(ctx.clone(), tx.clone(), stop.clone())));
        let why = match (&mut run.0).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(e) if e.is_panic() => "the feed task panicked".to_string(),
            Err(_) => return,
        };
        tracing::error!(tenant = %ctx.tenant, collector = "activity", error = %why, retry_in = ?wait,
            "activity feed stopped; restarting from its last checkpoint");
        let mut stop = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

async fn run(
    ctx: Arc<FeedContext>,
    tx: watch::Sender<FeedStatus>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let files = Files {
        tenant: ctx.tenant.clone(),
        tenant_id: ctx.tenant_id.clone(),
        state: ctx.cfg.state_file.clone(),
        output: ctx.cfg.output.clone(),
    };
    let now = now_unix() as i64;
    let f = files.clone();
    let resumed = tokio::task::spawn_blocking(move || checkpoint::resume(&f, now))
        .await
        .map_err(|e| format!("cannot resume: {e}"))?;
    let checkpoint = Checkpoint::start(files, &resumed);
    let mut feed = Feed {
        downloader: Downloader::new(
            ctx.client.clone(),
            ctx.cfg.concurrency,
            ctx.cfg.max_inflight_bytes,
        ),
        lister: Lister::new(resumed.state.cursors.clone(), resumed.state.newest.clone()),
        backlog: resumed.state.backlog.clone(),
        recent: resumed.recent,
        new_ids: Vec::new(),
        checkpoint,
        subs: Subscriptions::default(),
        workloads: WorkloadCap::default(),
        types: BTreeMap::new(),
        feed_problems: BTreeMap::new(),
        reported: BTreeMap::new(),
        last_listed: BTreeMap::new(),
        list_rounds: 0,
        polls: 0,
        dirty: false,
        ctx,
    };
    loop {
        let started = Instant::now();
        feed.poll(started, &stop).await;
        let health = feed.checkpoint.health();
        if health.fatal {
            feed.checkpoint.close().await;
            return Err(health.error.unwrap_or_else(|| "checkpoint failed".into()));
        }
        tx.send_replace(feed.status());
        if *stop.borrow() {
            break;
        }
        let wait = feed.ctx.cfg.interval.saturating_sub(started.elapsed());
        let inbox = feed.ctx.inbox.clone();
        let notified = async move {
            match inbox {
                Some(i) => i.woken().await,
                None => std::future::pending().await,
            }
        };
        // A notification starts the next round at once: its content is
        // downloaded now, whatever the listing schedule.
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = notified => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if feed.dirty {
        feed.save().await;
    }
    feed.checkpoint.close().await;
    Ok(())
}

#[derive(Default)]
struct TypeHealth {
    listed_ok: bool,
    list_problem: Option<Problem>,
    last_error: Option<i64>,
}

struct Feed {
    ctx: Arc<FeedContext>,
    subs: Subscriptions,
    lister: Lister,
    backlog: Backlog,
    downloader: Downloader,
    checkpoint: Checkpoint,
    recent: RecentIds,
    /// Ids remembered since the last save.
    /// (as id-log entries, 20 bytes each: at line rate they add up
    /// between two saves).
    new_ids: Vec<u8>,
    workloads: WorkloadCap,
    types: BTreeMap<String, TypeHealth>,
    feed_problems: BTreeMap<String, Problem>,
    /// Problems as last logged.
    reported: BTreeMap<String, Problem>,
    /// content type → start of the poll that last listed it.
    last_listed: BTreeMap<String, Instant>,
    /// Polls that listed at least one type (the sweep counts these).
    list_rounds: u64,
    polls: u64,
    /// Something changed since the last save.
    dirty: bool,
}

impl Feed {
    fn labels<'a>(&'a self, ct: &'a str) -> [&'a str; 2] {
        [self.ctx.tenant.as_str(), ct]
    }

    fn failed(&mut self, ct: &str, now: i64) {
        self.types.entry(ct.to_string()).or_default().last_error = Some(now);
    }

    async fn poll(&mut self, started: Instant, stop: &watch::Receiver<bool>) {
        let now = now_unix() as i64;
        self.recent.prune(now);
        self.backlog.prune(now);
        self.polls += 1;
        let ctx = self.ctx.clone();
        let cfg = &ctx.cfg;
        self.take_notified();
        for ct in self
            .subs
            .check(
                &ctx.client,
                &cfg.content_types,
                cfg.start_subscriptions,
                &ctx.tenant,
                ctx.inbox.as_deref(),
            )
            .await
        {
            self.failed(&ct, now);
        }
        for ct in &cfg.content_types {
            let scope = format!("{ct} webhook");
            match self.subs.get(ct).webhook_problem {
                Some(why) => self.feed_problems.insert(scope, Problem::Failed(why)),
                None => self.feed_problems.remove(&scope),
            };
        }
        // Which types list now: every `interval`, or every `poll_interval`
        // while their notifications arrive (the safety net).
        let due: Vec<&String> = cfg
            .content_types
            .iter()
            .filter(|ct| {
                let every = match &ctx.inbox {
                    Some(i) => i.listing_interval(ct, cfg.interval, now),
                    None => cfg.interval,
                };
                self.last_listed
                    .get(*ct)
                    .is_none_or(|t| started.duration_since(*t) >= every)
            })
            .collect();
        if !due.is_empty() {
            self.list_rounds += 1;
        }
        let window = Window {
            lookback: cfg.lookback.as_secs() as i64,
            overlap: cfg.overlap.as_secs() as i64,
            sweep: self.list_rounds.is_multiple_of(SWEEP_EVERY_POLLS),
        };
        for ct in due {
            if *stop.borrow() {
                return;
            }
            self.last_listed.insert(ct.clone(), started);
            if self.subs.get(ct).enabled != Some(true) {
                self.types.entry(ct.clone()).or_default().listed_ok = false;
                continue;
            }
            let before = self.lister.cursors.get(ct).copied();
            let (backlog, live, tenant) = (&mut self.backlog, ctx.api.live(), &ctx.tenant);
            let mut accepted = false;
            let result = self
                .lister
                .list(&ctx.client, tenant, ct, now, &window, &mut |l: Listed| {
                    let labels = [tenant.as_str(), l.content.content_type.as_str()];
                    let (listed, gaps, discovered) = (
                        live.activity_listed.with_label_values(&labels),
                        live.activity_gaps.with_label_values(&labels),
                        live.activity_discovered
                            .with_label_values(&[labels[0], labels[1], "listing"]),
                    );
                    if !backlog.offer(l.content) {
                        return false;
                    }
                    accepted = true;
                    listed.inc();
                    discovered.inc();
                    if l.gap {
                        gaps.inc();
                    }
                    true
                })
                .await;
            self.dirty |= accepted || before != self.lister.cursors.get(ct).copied();
            let h = self.types.entry(ct.clone()).or_default();
            match result {
                Ok(()) => {
                    h.listed_ok = true;
                    h.list_problem = None;
                }
                Err(p) => {
                    h.listed_ok = false;
                    h.last_error = Some(now);
                    if matches!(p, Problem::NotSubscribed | Problem::DisabledByAdmin) {
                        self.subs.lost(ct, p.clone());
                    }
                    h.list_problem = Some(p);
                }
            }
        }
        self.expire(now);
        self.download(started, stop).await;
        if self.dirty {
            self.save().await;
        }
        match self.checkpoint.health().error {
            Some(e) => self
                .feed_problems
                .insert(checkpoint::SCOPE.into(), Problem::Failed(e)),
            None => self.feed_problems.remove(checkpoint::SCOPE),
        };
        self.report();
    }

    /// Notified content into the backlog: new ids count as listed (the
    /// backlog is listed − fetched − expired, whatever the source) and as
    /// discovered by the webhook; ids already known cost nothing.
    fn take_notified(&mut self) {
        let Some(inbox) = self.ctx.inbox.clone() else {
            return;
        };
        let live = self.ctx.api.live();
        for c in inbox.take() {
            let labels = [self.ctx.tenant.as_str(), c.content_type.as_str()];
            let (listed, discovered) = (
                live.activity_listed.with_label_values(&labels),
                live.activity_discovered
                    .with_label_values(&[labels[0], labels[1], "webhook"]),
            );
            if self.backlog.offer(c) {
                listed.inc();
                discovered.inc();
                self.dirty = true;
            }
        }
    }

    fn expire(&mut self, now: i64) {
        let gone = self.backlog.take_expired(now);
        for c in &gone {
            self.count_expired(c);
        }
        if let Some(first) = gone.first() {
            self.dirty = true;
            tracing::warn!(tenant = %self.ctx.tenant, blobs = gone.len(), oldest = %first.content_id,
                "audit content expired before it could be downloaded: its records are lost");
        }
    }

    fn count_expired(&self, c: &Content) {
        self.ctx
            .api
            .live()
            .activity_expired
            .with_label_values(&self.labels(&c.content_type))
            .inc();
    }

    async fn download(&mut self, started: Instant, stop: &watch::Receiver<bool>) {
        let deadline = started + self.ctx.cfg.interval.max(MIN_DOWNLOAD_WINDOW);
        let mut batch = self.downloader.batch(self.backlog.pending(), deadline);
        let (mut fetched, mut failed) = (0usize, 0usize);
        let mut last_error = None;
        let ctx = self.ctx.clone();
        while let Some((c, result)) = batch.next().await {
            let now = now_unix() as i64;
            match result {
                Ok((body, permit)) => {
                    let mut counting = Counting {
                        live: ctx.api.live(),
                        tenant: &ctx.tenant,
                        operations: &ctx.cfg.operations,
                        workloads: &mut self.workloads,
                        sink: ctx.cfg.output.is_some(),
                    };
                    match apply(&body, &c, &mut self.recent, &mut counting) {
                        Ok(a) => {
                            if let Some(lines) = a.lines {
                                self.checkpoint.sink(lines, permit).await;
                            }
                            for (k, h) in a.new_ids {
                                super::idlog::push(&mut self.new_ids, k, h);
                            }
                            self.downloader.parsed(&c.content_id);
                            self.backlog.complete(&c.content_id);
                            ctx.api
                                .live()
                                .activity_fetched
                                .with_label_values(&self.labels(&c.content_type))
                                .inc();
                            self.dirty = true;
                            fetched += 1;
                        }
                        Err(e) => {
                            let _ = ctx.api.malformed(Api::Management, "blob", e.as_str());
                            self.failed(&c.content_type, now);
                            if self.downloader.parse_failed(&c.content_id) {
                                self.quarantine(&c, body, &e).await;
                            } else {
                                tracing::warn!(tenant = %ctx.tenant, content_type = %c.content_type, content_id = %c.content_id, error = %e, "audit blob not applied; it stays in the backlog");
                                failed += 1;
                                last_error = Some(e);
                            }
                        }
                    }
                }
                Err(e) if e.code() == Some("AF20051") => {
                    // Microsoft says it is gone: lost, and counted as such.
                    self.failed(&c.content_type, now);
                    self.backlog.complete(&c.content_id);
                    self.dirty = true;
                    self.count_expired(&c);
                    tracing::warn!(tenant = %ctx.tenant, content_type = %c.content_type, content_id = %c.content_id,
                        "audit content expired (AF20051) before it could be downloaded: its records are lost");
                }
                Err(e) => {
                    tracing::debug!(tenant = %ctx.tenant, content_id = %c.content_id, error = %e, "blob download failed; retried next poll");
                    self.failed(&c.content_type, now);
                    failed += 1;
                    last_error = Some(classify(&e).short());
                }
            }
            if self.dirty && self.checkpoint.due() {
                self.save().await;
            }
            if *stop.borrow() {
                break;
            }
        }
        // Some failures among successes are throttling weather; none
        // succeeding means downloads are stuck.
        match last_error {
            Some(e) if fetched == 0 && failed > 0 => {
                self.feed_problems.insert(
                    "download".into(),
                    Problem::Failed(format!("blob downloads failing ({e})")),
                );
            }
            _ => {
                self.feed_problems.remove("download");
            }
        }
    }

    /// A blob that never parsed: kept aside raw, out of the backlog, counted.
    async fn quarantine(&mut self, c: &Content, body: bytes::Bytes, why: &str) {
        self.checkpoint.quarantine(&c.content_id, body).await;
        self.backlog.complete(&c.content_id);
        self.dirty = true;
        self.ctx
            .api
            .live()
            .activity_quarantined
            .with_label_values(&self.labels(&c.content_type))
            .inc();
        tracing::warn!(tenant = %self.ctx.tenant, content_type = %c.content_type, content_id = %c.content_id, error = %why,
            attempts = super::downloader::QUARANTINE_AFTER,
            "audit blob quarantined: it never parsed; its raw bytes are kept beside the state file (if any) and it left the backlog");
    }

    async fn save(&mut self) {
        self.dirty = false;
        let state = State {
            cursors: self.lister.cursors.clone(),
            newest: self.lister.newest.clone(),
            backlog: self.backlog.clone(),
            ..State::default()
        };
        let ids = std::mem::take(&mut self.new_ids);
        self.checkpoint.save(&state, &self.recent, ids).await;
    }

    fn status(&self) -> FeedStatus {
        let mut types = BTreeMap::new();
        let notified = self
            .ctx
            .inbox
            .as_ref()
            .map(|i| i.last_notifications())
            .unwrap_or_default();
        for ct in &self.ctx.cfg.content_types {
            let sub = self.subs.get(ct);
            let h = self.types.get(ct);
            let waiting = self.backlog.waiting(ct);
            types.insert(
                ct.clone(),
                TypeStatus {
                    subscribed: sub.enabled,
                    listed_until: self.lister.cursors.get(ct).copied(),
                    listed_ok: h.is_some_and(|h| h.listed_ok),
                    last_error: h.and_then(|h| h.last_error),
                    problem: sub
                        .problem
                        .or_else(|| h.and_then(|h| h.list_problem.clone())),
                    backlog_blobs: waiting.blobs,
                    oldest_pending: waiting.oldest_created,
                    newest_content: self.lister.newest.get(ct).copied(),
                    webhook_enabled: self.ctx.inbox.as_ref().map(|_| sub.webhook == Some(true)),
                    last_notification: notified.get(ct).copied(),
                },
            );
        }
        FeedStatus {
            polls: self.polls,
            types,
            feed_problems: self.feed_problems.clone(),
        }
    }

    /// One log line per change of a problem (grouped when several content
    /// types share it), one when they recover.
    fn report(&mut self) {
        let problems = self.status().problems();
        let mut raised: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        let mut recovered = Vec::new();
        let scopes: HashSet<&String> = problems.keys().chain(self.reported.keys()).collect();
        let mut scopes: Vec<&String> = scopes.into_iter().collect();
        scopes.sort();
        for scope in scopes {
            match (self.reported.get(scope), problems.get(scope)) {
                (old, Some(new)) if old != Some(new) => {
                    raised.entry(new.describe()).or_default().push(scope)
                }
                (Some(_), None) => recovered.push(scope.as_str()),
                _ => {}
            }
        }
        for (what, scopes) in raised {
            tracing::error!(tenant = %self.ctx.tenant, collector = "activity", content_types = %scopes.join(","), "{what}");
        }
        if !recovered.is_empty() {
            tracing::info!(tenant = %self.ctx.tenant, collector = "activity", content_types = %recovered.join(","), "activity feed recovered");
        }
        self.reported = problems;
    }
}
