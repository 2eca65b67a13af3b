//! `activity`: renders one tenant's audit feed. The feed itself runs as its
//! own supervised task ([`crate::activity::feed`]); this collector starts
//! it, reads the [`FeedStatus`] it publishes and turns it into samples.
//! `m365_collector_success` is 1 when every configured content type listed
//! completely in its last poll (and the checkpoint is being written); a
//! type that cannot flow shows in its own series while the others flow.
//! The blob lag is rendered as an age, computed at scrape time, so it keeps
//! growing while the feed or Microsoft hangs.

use super::{CollectError, Collector, CollectorKind, FeedRow, Outcome};
use crate::activity::client::ManagementClient;
use crate::activity::feed::{self, FeedContext, FeedHandle};
use crate::activity::status::FeedStatus;
use crate::activity::webhook::Inbox;
use crate::api::ApiClient;
use crate::auth::tenant::TenantGuid;
use crate::config::TenantConfig;
use crate::metrics::{Family, SnapshotWriter};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// With a webhook, the feed's status is rendered at least this often.
const RENDER_AT_LEAST: Duration = Duration::from_secs(10);

pub struct ActivityCollector {
    ctx: Arc<FeedContext>,
    feed: Mutex<Option<Arc<FeedHandle>>>,
}

impl ActivityCollector {
    /// None when the tenant has no Management endpoint (config validation
    /// already refuses that when activity is enabled).
    pub fn new(t: &TenantConfig, api: Arc<ApiClient>) -> Option<Self> {
        let root = t.endpoints.management.as_deref()?;
        let cfg = t.activity.clone();
        // Present at 0 from the start, so `increase()` and alerts see the
        // first blob listed, lost, late or quarantined, not only the second.
        let live = api.live();
        for ct in &cfg.content_types {
            let labels = [t.name.as_str(), ct.as_str()];
            for c in [
                &live.activity_listed,
                &live.activity_fetched,
                &live.activity_expired,
                &live.activity_duplicates,
                &live.activity_gaps,
                &live.activity_quarantined,
            ] {
                c.with_label_values(&labels);
            }
        }
        let inbox = cfg.webhook.clone().map(|w| {
            for ct in &cfg.content_types {
                for source in ["webhook", "listing"] {
                    live.activity_discovered.with_label_values(&[
                        t.name.as_str(),
                        ct.as_str(),
                        source,
                    ]);
                }
            }
            Arc::new(Inbox::new(
                &t.name,
                &t.tenant_id,
                w,
                &cfg.content_types,
                root,
            ))
        });
        // A domain `tenant_id` is resolved to the GUID on the feed's first
        // call (and again with backoff while that fails).
        let tenant = Arc::new(TenantGuid::new(
            &t.name,
            &t.tenant_id,
            &t.endpoints.login,
            api.http().clone(),
            Some(api.live_arc()),
        ));
        let client = Arc::new(ManagementClient::new(
            api.clone(),
            root,
            tenant,
            cfg.publisher_id.as_deref(),
            cfg.requests_per_minute,
        ));
        Some(ActivityCollector {
            ctx: Arc::new(FeedContext {
                tenant: t.name.clone(),
                tenant_id: t.tenant_id.clone(),
                cfg,
                api,
                client,
                inbox,
            }),
            feed: Mutex::new(None),
        })
    }

    /// The feed, started on first use (inside the runtime).
    fn feed(&self) -> Arc<FeedHandle> {
        self.feed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| Arc::new(feed::spawn(self.ctx.clone())))
            .clone()
    }

    async fn poll(&self) -> Result<Outcome, CollectError> {
        let mut rx = self.feed().status.clone();
        // The first refresh waits for the feed's first poll.
        let status = rx
            .wait_for(|s| s.polls > 0)
            .await
            .map_err(|_| CollectError("the activity feed stopped".into()))?
            .clone();
        Ok(render(&self.ctx.tenant, &status))
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
        w.sample(
            Family::ActivitySubscription,
            &labels,
            flag(t.subscribed == Some(true)),
        );
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
    Outcome {
        rendered: w.finish(),
        feed,
        failing: (!s.healthy()).then(|| {
            s.summary()
                .unwrap_or_else(|| "not every content type listed".into())
        }),
        ..Outcome::default()
    }
}

impl Collector for ActivityCollector {
    fn kind(&self) -> CollectorKind {
        CollectorKind::Activity
    }
    fn interval(&self) -> Duration {
        // Rendering only reads the feed's status: cheap. With webhooks the
        // feed moves between listings, so its status is re-read at least
        // every RENDER_AT_LEAST.
        match self.ctx.inbox {
            Some(_) => self.ctx.cfg.interval.min(RENDER_AT_LEAST),
            None => self.ctx.cfg.interval,
        }
    }
    fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
        Box::pin(self.poll())
    }
    fn webhook_inbox(&self) -> Option<Arc<Inbox>> {
        self.ctx.inbox.clone()
    }
    fn stop(&self) -> BoxFuture<'_, ()> {
        let feed = self.feed.lock().unwrap_or_else(|p| p.into_inner()).take();
        Box::pin(async move {
            if let Some(f) = feed {
                f.stop().await;
            }
        })
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
    }
}
