//! `activity`: renders one tenant's audit feed. The feed itself runs as its
//! own supervised task ([`crate::activity::feed`]), started and stopped by
//! the fleet; this collector only reads the [`FeedStatus`] it publishes and
//! turns it into samples, at once whenever the feed publishes (the run loop
//! is woken) and at least every interval. Its first refresh renders the
//! configured types before the feed has run, so every type's backlog and
//! lag are served from the first scrape.
//! `m365_collector_success` is 1 when every configured content type listed
//! completely in its last poll (and the checkpoint is being written), 0
//! until the first listing round has listed them all; a type that cannot
//! flow shows in its own series while the others flow.
//! The blob lag is rendered as an age, computed at scrape time, so it keeps
//! growing while the feed or Microsoft hangs.

use super::{CollectError, Collector, CollectorKind, CompletenessRow, FeedRow, Outcome};
use crate::activity::status::FeedStatus;
use crate::config::ActivityConfig;
use crate::metrics::{Family, SnapshotWriter};
use futures::future::BoxFuture;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// With a webhook, the feed's status is rendered at least this often.
const RENDER_AT_LEAST: Duration = Duration::from_secs(10);

pub struct ActivityCollector {
    tenant: String,
    interval: Duration,
    /// Marked seen at each render, so `wake` waits for a newer status.
    status: Mutex<watch::Receiver<FeedStatus>>,
}

impl ActivityCollector {
    /// The collector of `tenant`'s feed configured by `cfg`, which
    /// publishes on `status`.
    pub fn new(tenant: &str, cfg: &ActivityConfig, status: watch::Receiver<FeedStatus>) -> Self {
        ActivityCollector {
            tenant: tenant.to_string(),
            interval: interval(cfg),
            status: Mutex::new(status),
        }
    }

    fn receiver(&self) -> std::sync::MutexGuard<'_, watch::Receiver<FeedStatus>> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn poll(&self) -> Result<Outcome, CollectError> {
        let status = self.receiver().borrow_and_update().clone();
        Ok(render(&self.tenant, &status))
    }
}

/// How often the collector renders a feed's status. Rendering only reads
/// it: cheap. With webhooks the feed moves between listings, so its status
/// is re-read at least every RENDER_AT_LEAST.
pub fn interval(cfg: &ActivityConfig) -> Duration {
    match cfg.webhook {
        Some(_) => cfg.interval.min(RENDER_AT_LEAST),
        None => cfg.interval,
    }
}

/// The feed's status as samples (pure, so it is tested directly).
pub fn render(tenant: &str, s: &FeedStatus) -> Outcome {
    let mut w = SnapshotWriter::new();
    let mut feed = Vec::with_capacity(s.types.len());
    for (ct, t) in &s.types {
        feed.push(FeedRow {
            content_type: ct.clone(),
            subscribed: t.subscribed,
            backlog_blobs: t.backlog_blobs as u64,
            oldest_pending_unix: t.oldest_pending,
            newest_content_unix: t.newest_content,
            problem: t.problem.as_ref().map(|p| p.short()),
        });
        let labels = [("tenant", tenant), ("content_type", ct.as_str())];
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        // Unknown until `subscriptions/list` answers: not "disabled".
        if let Some(on) = t.subscribed {
            w.sample(Family::ActivitySubscription, &labels, flag(on));
        }
        w.sample(Family::ActivityBacklog, &labels, t.backlog_blobs as f64);
        // now − oldest pending contentCreated, at scrape time; 0 when none.
        w.age(Family::ActivityBlobLag, &labels, t.oldest_pending);
        if let Some(on) = t.webhook_enabled {
            w.sample(Family::ActivityWebhookEnabled, &labels, flag(on));
        }
        let times = [
            (Family::ActivityWebhookLastNotification, t.last_notification),
            (Family::ActivityOldestPending, t.oldest_pending),
            (Family::ActivityListedUntil, t.listed_until),
            (Family::ActivityLastError, t.last_error),
            (Family::ActivityLastContent, t.newest_content),
        ];
        for (fam, v) in times {
            if let Some(v) = v {
                w.sample(fam, &labels, v as f64);
            }
        }
    }
    let completeness = s.reconcile.as_ref().map(|r| {
        let t = [("tenant", tenant)];
        w.sample(Family::ReconciledUntil, &t, r.until as f64);
        w.sample(Family::ReconcileStalledAfter, &t, r.stalled_after as f64);
        for (ct, n) in &r.missing {
            let labels = [("tenant", tenant), ("content_type", ct.as_str())];
            w.sample(Family::ReconcileMissing, &labels, *n as f64);
        }
        CompletenessRow {
            reconciled_until_unix: r.until,
            missing: r.missing.values().sum(),
            stalled_after_secs: r.stalled_after,
            problem: r.problem.clone(),
        }
    });
    Outcome {
        rendered: w.finish(),
        feed,
        completeness,
        failing: (!s.healthy()).then(|| {
            s.summary()
                .unwrap_or_else(|| "not every content type listed".into())
        }),
        warming_up: s.warming_up(),
        ..Outcome::default()
    }
}

impl Collector for ActivityCollector {
    fn kind(&self) -> CollectorKind {
        CollectorKind::Activity
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
        let outcome = self.poll();
        Box::pin(async move { outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::problem::Problem;
    use crate::activity::status::TypeStatus;

    #[test]
    fn renders_per_type_health_and_a_scrape_time_lag() {
        let mut s = FeedStatus {
            polls: 1,
            ..Default::default()
        };
        s.types.insert(
            "Audit.Exchange".into(),
            TypeStatus {
                subscribed: Some(true),
                listed_until: Some(1_000),
                listed_ok: true,
                backlog_blobs: 2,
                oldest_pending: Some(500),
                newest_content: Some(900),
                ..Default::default()
            },
        );
        s.types.insert(
            "DLP.All".into(),
            TypeStatus {
                subscribed: Some(true),
                last_error: Some(990),
                problem: Some(Problem::MissingPermission),
                ..Default::default()
            },
        );
        let o = render("t", &s);
        assert_eq!(
            o.failing.as_deref(),
            Some("DLP.All: missing permission (AF10001)")
        );
        let mut out = String::new();
        o.rendered.write(Family::ActivityBlobLag, 2_000, &mut out);
        assert_eq!(
            out,
            "m365_activity_blob_lag_seconds{tenant=\"t\",content_type=\"Audit.Exchange\"} 1500\n\
             m365_activity_blob_lag_seconds{tenant=\"t\",content_type=\"DLP.All\"} 0\n"
        );
        let text = |f| String::from_utf8(o.rendered.get(f).unwrap_or_default().to_vec()).unwrap();
        assert!(text(Family::ActivityListedUntil).contains("\"Audit.Exchange\"} 1000"));
        assert!(!text(Family::ActivityListedUntil).contains("DLP.All"));
        assert!(text(Family::ActivityLastError).contains("\"DLP.All\"} 990"));
        assert!(text(Family::ActivityOldestPending).contains("} 500"));
        assert!(o.completeness.is_none() && text(Family::ReconciledUntil).is_empty());

        // With reconcile: its gauges, and a failing reconciler never fails the feed.
        s.types.get_mut("DLP.All").unwrap().problem = None;
        s.types.get_mut("DLP.All").unwrap().listed_ok = true;
        s.reconcile = Some(crate::activity::status::ReconcileStatus {
            until: 7_200,
            missing: [
                ("Audit.Exchange".to_string(), 3),
                ("DLP.All".to_string(), 0),
            ]
            .into(),
            stalled_after: 100_800,
            problem: Some("refused".into()),
        });
        let o = render("t", &s);
        assert!(o.failing.is_none());
        let text = |f| String::from_utf8(o.rendered.get(f).unwrap_or_default().to_vec()).unwrap();
        assert_eq!(
            text(Family::ReconciledUntil),
            "m365_activity_reconciled_until_timestamp_seconds{tenant=\"t\"} 7200\n"
        );
        assert!(text(Family::ReconcileMissing).contains("content_type=\"Audit.Exchange\"} 3\n"));
        assert!(text(Family::ReconcileMissing).contains("content_type=\"DLP.All\"} 0\n"));
        assert!(text(Family::ReconcileStalledAfter).contains("} 100800\n"));
        let c = o.completeness.unwrap();
        assert_eq!((c.reconciled_until_unix, c.missing), (7_200, 3));
    }
}
