//! One supervised task per tenant that runs the feed's stages and publishes
//! a [`FeedStatus`] on a `watch` as soon as it knows something: once its
//! state is resumed, after subscriptions, after each content type's
//! listing, before the downloads, while they move the backlog (at most
//! every [`PUBLISH_EVERY`]) and at the end of every poll. A feed stuck in a
//! hanging call is therefore seen (its backlog and blob lag) from its
//! first seconds, not only once a poll completes.
//!
//! One poll: webhook notifications into the backlog → subscriptions (when
//! due) → the lister offers each due, enabled type's new content to the
//! backlog → expired content leaves it → the downloader drains it oldest
//! first, each blob applied as it arrives (new records deduplicated, their
//! lines and counts handed to the checkpoint, which counts them once they
//! stay) → a checkpoint when due. The `Feed`
//! only runs the stages: each owns its state, reports through its
//! [`Events`] and the problem [`Board`], and says whether it changed what
//! the checkpoint saves. A content type that cannot flow is reported in its
//! own status and does not stop the others. If the task panics, or the sink
//! cannot be written, the supervisor restarts it from the last checkpoint.
//!
//! With `activity.reconcile`, each poll ends with a slice of the
//! [`Reconciler`]'s work; it sees the other stages through [`Stages`] (their
//! progress and record ids; a re-list into the backlog; repaired records
//! applied and handed to the checkpoint like a blob's).

use super::apply::Applier;
use super::auditquery::AuditQueryClient;
use super::backlog::Backlog;
use super::board::Board;
use super::checkpoint::{self, Checkpoint, Files};
use super::client::ManagementClient;
use super::downloader::{Batch, Downloader, Fetched, MIN_DOWNLOAD_WINDOW};
use super::events::Events;
use super::lister::Lister;
use super::problem::{classify, Problem};
use super::reconcile::{FeedAccess, Reconciler};
use super::state::State;
use super::status::{FeedStatus, TypeStatus};
use super::subscriptions::Subscriptions;
use super::webhook::Inbox;
use super::{Changed, Content};
use crate::api::{Api, ApiClient, ApiError};
use crate::config::ActivityConfig;
use crate::task::AbortOnDrop;
use crate::timefmt::now_unix;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// First wait before a failed feed is restarted; doubles up to a minute.
const RESTART_AFTER: Duration = Duration::from_secs(1);
/// How long a stop waits for the last checkpoint before aborting.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// While downloads move the backlog, its status is published this often.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// What a feed needs to run.
pub struct FeedContext {
    pub tenant: String,
    pub tenant_id: String,
    pub cfg: ActivityConfig,
    pub api: Arc<ApiClient>,
    pub client: Arc<ManagementClient>,
    /// Webhook notifications, with `activity.webhook`.
    pub inbox: Option<Arc<Inbox>>,
    /// The Audit Log Query API, with `activity.reconcile`.
    pub queries: Option<Arc<AuditQueryClient>>,
}

/// The running feed, and the means to stop it. Dropping it aborts the feed
/// (the files then hold the checkpoint before).
pub struct FeedHandle {
    stop: watch::Sender<bool>,
    task: AbortOnDrop<()>,
    api: Arc<ApiClient>,
}

/// Start a tenant's feed (inside a tokio runtime); it publishes its status
/// on `status` (see the module's doc for when).
pub fn spawn(ctx: Arc<FeedContext>, status: watch::Sender<FeedStatus>) -> FeedHandle {
    let (stop, stop_rx) = watch::channel(false);
    let api = ctx.api.clone();
    let task = AbortOnDrop(tokio::spawn(supervise(ctx, status, stop_rx)));
    FeedHandle { stop, task, api }
}

impl FeedHandle {
    /// Stop at the next blob boundary with a last checkpoint (aborted after
    /// a grace period: the files then hold the checkpoint before).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        // Every call in flight ends now (a request hanging, a token being
        // retried, a Retry-After slept out): what it was for stays to do
        // (a blob in the backlog, a window unfinished), and the last
        // checkpoint is written well within the grace.
        self.api.stop();
        if tokio::time::timeout(STOP_GRACE, &mut self.task.0)
            .await
            .is_err()
        {
            tracing::warn!(tenant = %self.api.tenant, collector = "activity", grace = ?STOP_GRACE,
                "activity feed did not stop in time: aborted (its files hold the checkpoint before)");
            self.task.0.abort();
            let _ = (&mut self.task.0).await;
        } else {
            tracing::info!(tenant = %self.api.tenant, collector = "activity", "activity feed stopped with its last checkpoint");
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

fn ctx_live(feed: &Feed) -> &crate::metrics::Live {
    feed.ctx.api.live()
}

async fn run(
    ctx: Arc<FeedContext>,
    tx: watch::Sender<FeedStatus>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut feed = Feed::start(ctx, tx).await?;
    feed.publish();
    loop {
        let started = Instant::now();
        feed.poll(started, &stop).await;
        if let Some(e) = feed.fatal() {
            if feed.checkpoint.health().dead {
                // Counted as the panic it (almost always) is.
                ctx_live(&feed)
                    .collector_panics
                    .with_label_values(&[&feed.ctx.tenant, "activity"])
                    .inc();
            }
            // The collector shows why until the restarted feed publishes.
            feed.publish();
            feed.close().await;
            return Err(e);
        }
        feed.publish();
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
    feed.close().await;
    Ok(())
}

/// One tenant's pipeline: its stages, and what the checkpoint has not
/// saved yet.
struct Feed {
    ctx: Arc<FeedContext>,
    events: Events,
    board: Board,
    subs: Subscriptions,
    lister: Lister,
    backlog: Backlog,
    downloader: Downloader,
    applier: Applier,
    checkpoint: Checkpoint,
    /// With `activity.reconcile`.
    reconciler: Option<Reconciler>,
    polls: u64,
    /// When the last successful poll ended ([`FeedStatus::last_success`]).
    last_success: Option<f64>,
    /// A stage changed something since the last save.
    unsaved: Changed,
    /// Where the status goes, and when it last went.
    tx: watch::Sender<FeedStatus>,
    published: Instant,
}

impl Feed {
    /// Resume from the files (the checkpoint's thread starts with them).
    async fn start(ctx: Arc<FeedContext>, tx: watch::Sender<FeedStatus>) -> Result<Feed, String> {
        let files = Files {
            tenant: ctx.tenant.clone(),
            tenant_id: ctx.tenant_id.clone(),
            state: ctx.cfg.state_file.clone(),
            output: ctx.cfg.output.clone(),
            mode: ctx.cfg.file_mode.0,
        };
        let now = now_unix() as i64;
        let f = files.clone();
        let resumed = tokio::task::spawn_blocking(move || checkpoint::resume(&f, now))
            .await
            .map_err(|e| format!("cannot resume: {e}"))??;
        let live = ctx.api.live();
        let has_files = ctx.cfg.state_file.is_some() || ctx.cfg.output.is_some();
        for reason in checkpoint::RESETS.into_iter().filter(|_| has_files) {
            let c = live
                .activity_state_resets
                .with_label_values(&[&ctx.tenant, reason]);
            if resumed.resets.contains(&reason) {
                c.inc();
            }
        }
        let checkpoint = Checkpoint::start(files, &resumed);
        let cfg = &ctx.cfg;
        let mut state = resumed.state;
        let reconciler = ctx
            .queries
            .clone()
            .filter(|_| cfg.reconcile.enabled)
            .map(|q| {
                let saved = state.reconcile.take();
                Reconciler::new(q, &ctx.tenant, cfg, saved, ctx.api.live(), now)
            });
        Ok(Feed {
            events: Events::new(
                ctx.api.live(),
                &ctx.tenant,
                &cfg.content_types,
                ctx.inbox.is_some(),
            ),
            board: Board::new(&ctx.tenant),
            subs: Subscriptions::default(),
            lister: Lister::new(
                ctx.client.clone(),
                &ctx.tenant,
                cfg,
                ctx.inbox.clone(),
                state.cursors,
                state.newest,
            ),
            backlog: state.backlog,
            downloader: Downloader::new(
                ctx.client.clone(),
                cfg.concurrency,
                cfg.max_inflight_bytes,
            ),
            applier: Applier::new(
                &ctx.tenant,
                &cfg.operations,
                cfg.output.is_some(),
                resumed.recent,
            ),
            checkpoint,
            reconciler,
            polls: 0,
            last_success: None,
            unsaved: Changed::default(),
            tx,
            published: Instant::now(),
            ctx,
        })
    }

    async fn poll(&mut self, started: Instant, stop: &watch::Receiver<bool>) {
        let now = now_unix() as i64;
        self.applier.prune(now);
        self.backlog.prune(now);
        let ctx = self.ctx.clone();
        let inbox = ctx.inbox.as_deref();
        if let Some(inbox) = inbox {
            self.unsaved |= inbox.drain(&mut self.backlog, &mut self.events);
        }
        self.subs
            .poll(&ctx.client, &ctx.cfg, &ctx.tenant, inbox, &mut self.board)
            .await;
        self.publish();
        let (due, sweep) = self.lister.round(started);
        for ct in due {
            if *stop.borrow() {
                break;
            }
            self.unsaved |= self
                .lister
                .list_type(
                    &ct,
                    started,
                    sweep,
                    &mut self.subs,
                    &mut self.backlog,
                    &mut self.events,
                    &mut self.board,
                )
                .await;
            self.publish();
        }
        if *stop.borrow() {
            return;
        }
        let expired = self.backlog.take_expired(now);
        self.events.expired(&expired);
        self.unsaved |= Changed(!expired.is_empty());
        self.publish();
        let moved = self.download(stop).await;
        if !*stop.borrow() {
            self.reconcile().await;
        }
        if self.unsaved.0 {
            self.save().await;
        }
        self.polls += 1;
        let checkpoint = self.checkpoint.health().error.map(Problem::Failed);
        self.board.set(checkpoint::SCOPE, checkpoint);
        let status = self.status();
        self.board.report(status.problems());
        // A poll that lists everything but moves nothing (every download
        // hanging or failing) is no success: the feed is stuck.
        if status.healthy() && (moved || self.backlog.pending_len() == 0) {
            self.last_success = Some(crate::timefmt::now_unix());
        }
    }

    /// Drain the backlog oldest first until the poll's download window
    /// closes, saving on the checkpoint's timer meanwhile. Whether a blob
    /// left the backlog (applied, gone or quarantined). The window opens
    /// here, not when the poll started: a poll whose listings were slow
    /// (throttled, failing pages) would otherwise find it closed and start
    /// only one batch, and the backlog would grow for as long as the
    /// listings stay slow (the chaos soak found it).
    async fn download(&mut self, stop: &watch::Receiver<bool>) -> bool {
        let mut moved = false;
        let deadline = Instant::now() + self.ctx.cfg.interval.max(MIN_DOWNLOAD_WINDOW);
        let mut batch = self.downloader.batch(self.backlog.pending(), deadline);
        let mut stopping = stop.clone();
        loop {
            // Waiting for a download is the one safe place to leave on a
            // stop: a blob not yet settled stays in the backlog, whole.
            let next = tokio::select! {
                biased;
                n = batch.next() => n,
                _ = stopping.wait_for(|s| *s) => None,
            };
            let Some((c, fetched)) = next else { break };
            if fetched.as_ref().is_err_and(ApiError::is_stopped) {
                // Ended by the stop, not failed: the blob stays in the backlog.
                break;
            }
            let changed = self.settle(&c, fetched, &mut batch).await;
            moved |= changed.0;
            self.unsaved |= changed;
            if self.unsaved.0 && self.checkpoint.due() {
                self.save().await;
            }
            if changed.0 && self.published.elapsed() >= PUBLISH_EVERY {
                self.publish();
            }
            if *stop.borrow() {
                break;
            }
        }
        self.board.set("download", batch.problem());
        moved
    }

    /// One finished download: applied (its new lines to the sink), lost
    /// (AF20051), quarantined after its last failed parse, or left in the
    /// backlog for the next poll.
    async fn settle(&mut self, c: &Content, fetched: Fetched, batch: &mut Batch) -> Changed {
        let now = now_unix() as i64;
        let ev = self.events.of(&c.content_type);
        let (body, permit) = match fetched {
            Ok(got) => got,
            Err(e) if e.code() == Some("AF20051") => {
                // Microsoft says it is gone: lost, and counted as such.
                self.board.failed(&c.content_type, now);
                self.backlog.complete(&c.content_id);
                ev.gone(c);
                return Changed(true);
            }
            Err(e) => {
                ev.download_failed(c, &e);
                self.board.failed(&c.content_type, now);
                batch.failed(classify(&e).short());
                return Changed(false);
            }
        };
        match self.applier.apply(&body, c, ev) {
            Ok(new) => {
                // Its records count once the checkpoint has written them.
                self.checkpoint.write(new.lines, new.counts, permit).await;
                self.downloader.parsed(&c.content_id);
                self.backlog.complete(&c.content_id);
                ev.fetched();
                batch.applied();
                Changed(true)
            }
            Err(why) => {
                let _ = self
                    .ctx
                    .api
                    .malformed(Api::Management, "blob", why.as_str());
                self.board.failed(&c.content_type, now);
                if !self.downloader.parse_failed(&c.content_id) {
                    ev.not_applied(c, &why);
                    batch.failed(why);
                    return Changed(false);
                }
                // Never parsed: kept aside raw, out of the backlog, counted.
                self.checkpoint.quarantine(&c.content_id, body).await;
                self.backlog.complete(&c.content_id);
                ev.quarantined(c, &why);
                Changed(true)
            }
        }
    }

    /// A slice of the reconciler's work (a second or more, at most 30 s).
    async fn reconcile(&mut self) {
        let Some(r) = self.reconciler.as_mut() else {
            return;
        };
        let budget = self
            .ctx
            .cfg
            .interval
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        let mut stages = Stages {
            types: &self.ctx.cfg.content_types,
            lister: &mut self.lister,
            backlog: &mut self.backlog,
            applier: &mut self.applier,
            checkpoint: &self.checkpoint,
            events: &mut self.events,
        };
        self.unsaved |= r.poll(&mut stages, budget).await;
    }

    async fn save(&mut self) {
        self.unsaved = Changed(false);
        let state = State {
            cursors: self.lister.cursors.clone(),
            newest: self.lister.newest.clone(),
            backlog: self.backlog.clone(),
            reconcile: self.reconciler.as_ref().map(|r| r.cursor().clone()),
            ..State::default()
        };
        let ids = self.applier.take_new_ids();
        self.checkpoint
            .save(&state, self.applier.recent(), ids)
            .await;
    }

    /// The sink could not be written: why (the feed then restarts from the
    /// last saved state).
    fn fatal(&self) -> Option<String> {
        let health = self.checkpoint.health();
        health
            .fatal
            .then(|| health.error.unwrap_or_else(|| "checkpoint failed".into()))
    }

    /// Save what changed (nothing more is written once the sink failed),
    /// then stop the checkpoint's thread.
    async fn close(mut self) {
        if self.unsaved.0 && self.fatal().is_none() {
            self.save().await;
        }
        self.checkpoint.close().await;
    }

    /// Publish the status now (the `activity` collector renders it at once).
    fn publish(&mut self) {
        self.published = Instant::now();
        self.tx.send_replace(self.status());
    }

    fn status(&self) -> FeedStatus {
        let mut types = BTreeMap::new();
        let inbox = self.ctx.inbox.as_ref();
        let notified = inbox.map(|i| i.last_notifications()).unwrap_or_default();
        for ct in &self.ctx.cfg.content_types {
            let sub = self.subs.get(ct);
            let h = self.board.health(ct);
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
                    webhook_enabled: inbox.map(|_| sub.webhook == Some(true)),
                    last_notification: notified.get(ct).copied(),
                },
            );
        }
        FeedStatus {
            polls: self.polls,
            last_success: self.last_success,
            types,
            feed_problems: self.board.scopes().clone(),
            reconcile: self.reconciler.as_ref().map(Reconciler::status),
        }
    }
}

/// The feed's stages as the reconciler sees them.
struct Stages<'a> {
    types: &'a [String],
    lister: &'a mut Lister,
    backlog: &'a mut Backlog,
    applier: &'a mut Applier,
    checkpoint: &'a Checkpoint,
    events: &'a mut Events,
}

impl FeedAccess for Stages<'_> {
    fn finished_with(&self, end: i64) -> bool {
        self.types
            .iter()
            .all(|ct| self.lister.cursors.get(ct).is_some_and(|c| *c >= end))
            && self.backlog.oldest_pending().is_none_or(|o| o >= end)
    }

    fn delivered(&self, key: u128) -> bool {
        self.applier.recent().contains(key)
    }

    fn remembered_from(&self) -> Option<i64> {
        self.applier
            .recent()
            .complete_from_hour()
            .map(|h| i64::from(h) * 3_600)
    }

    async fn relist(&mut self, content_type: &str, start: i64, end: i64) -> Result<usize, String> {
        self.lister
            .relist(content_type, start, end, self.backlog, self.events)
            .await
            .map_err(|p| p.short())
    }

    async fn repair(
        &mut self,
        content_type: &str,
        records: bytes::Bytes,
        at: i64,
    ) -> Result<u64, String> {
        let new = self
            .applier
            .repair(&records, at, self.events.of(content_type))?;
        // Through the one writer, ordered with the blobs' lines: the next
        // save covers them, their ids and their counts together.
        self.checkpoint.write(new.lines, new.counts, None).await;
        Ok(new.records as u64)
    }
}
