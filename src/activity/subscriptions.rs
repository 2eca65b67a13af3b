//! Subscription state per content type: `subscriptions/list` at start and
//! every 15 minutes (sooner when a listing said AF20022/AF20023), and
//! `subscriptions/start` for missing or disabled types when allowed, at most
//! once per 15 minutes per type. With a webhook configured, `/start` sends
//! it (once the receiver listens: Microsoft validates the address during the
//! call), and a subscription whose webhook `subscriptions/list` shows
//! missing, `disabled` or `expired` is started again with it, within the same
//! 15-minute spacing. A webhook Microsoft could not validate (AF20021) never
//! costs the polling path: the subscription is then started without it.

use super::board::Board;
use super::client::{ManagementClient, StartWebhook};
use super::problem::{classify, webhook_refused, Problem};
use super::webhook::Inbox;
use crate::config::ActivityConfig;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often `subscriptions/list` is asked, and `/start` retried per type.
pub const SUBSCRIPTION_EVERY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default, Clone)]
pub struct Sub {
    /// None until known.
    pub enabled: Option<bool>,
    pub problem: Option<Problem>,
    /// With a webhook configured: ours is registered and enabled.
    pub webhook: Option<bool>,
    /// Why the webhook could not be registered, if it could not.
    pub webhook_problem: Option<String>,
    last_start: Option<Instant>,
}

#[derive(Debug)]
pub struct Subscriptions {
    subs: BTreeMap<String, Sub>,
    last_check: Option<Instant>,
    /// Ask `subscriptions/list` at the next poll.
    recheck: bool,
    /// [`SUBSCRIPTION_EVERY`]; shorter only in tests.
    every: Duration,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions::every(SUBSCRIPTION_EVERY)
    }
}

impl Subscriptions {
    /// Lists and starts spaced by `every` (tests; production uses 15 min).
    pub fn every(every: Duration) -> Self {
        Subscriptions {
            subs: BTreeMap::new(),
            last_check: None,
            recheck: false,
            every,
        }
    }

    /// Ask `subscriptions/list` at the next check.
    pub fn refresh(&mut self) {
        self.recheck = true;
    }

    pub fn get(&self, ct: &str) -> Sub {
        self.subs.get(ct).cloned().unwrap_or_default()
    }

    /// A listing answered "not subscribed" or "disabled by an admin".
    pub fn lost(&mut self, ct: &str, p: Problem) {
        let sub = self.subs.entry(ct.to_string()).or_default();
        sub.enabled = Some(false);
        sub.problem = Some(p);
        self.recheck = true;
    }

    /// [`Subscriptions::check`] for the feed: the types whose calls failed
    /// get their last-error time on the board, and a webhook that could
    /// not be registered is a `<type> webhook` problem there.
    pub async fn poll(
        &mut self,
        client: &ManagementClient,
        cfg: &ActivityConfig,
        tenant: &str,
        webhook: Option<&Inbox>,
        board: &mut Board,
    ) {
        let types = &cfg.content_types;
        let failed = self
            .check(client, types, cfg.start_subscriptions, tenant, webhook)
            .await;
        let now = crate::timefmt::now_unix() as i64;
        for ct in failed {
            board.failed(&ct, now);
        }
        for ct in types {
            let problem = self.get(ct).webhook_problem.map(Problem::Failed);
            board.set(&format!("{ct} webhook"), problem);
        }
    }

    /// Refresh from `subscriptions/list` when due; start what may be started.
    /// Returns the content types whose calls failed (for their last-error time).
    pub async fn check(
        &mut self,
        client: &ManagementClient,
        types: &[String],
        start: bool,
        tenant: &str,
        webhook: Option<&Inbox>,
    ) -> Vec<String> {
        let mut failed = Vec::new();
        let due = self.recheck || self.last_check.is_none_or(|t| t.elapsed() >= self.every);
        if due {
            match client.subscriptions().await {
                Ok(list) => {
                    self.last_check = Some(Instant::now());
                    self.recheck = false;
                    for ct in types {
                        let found = list
                            .iter()
                            .find(|s| s.content_type.eq_ignore_ascii_case(ct));
                        let status = found.map(|s| s.status.eq_ignore_ascii_case("enabled"));
                        let sub = self.subs.entry(ct.clone()).or_default();
                        sub.webhook = webhook.map(|w| {
                            found.and_then(|s| s.webhook.as_ref()).is_some_and(|h| {
                                same_address(&h.address, &w.cfg.address)
                                    && h.status.eq_ignore_ascii_case("enabled")
                            })
                        });
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
                        self.last_check = Some(Instant::now());
                        self.recheck = false;
                    }
                    for ct in types {
                        let sub = self.subs.entry(ct.clone()).or_default();
                        if p.lasting() {
                            sub.enabled = Some(false);
                        }
                        sub.problem = Some(p.clone());
                        failed.push(ct.clone());
                    }
                }
            }
        }
        if !start {
            return failed;
        }
        let now = crate::timefmt::now_unix() as i64;
        // Inboxes exist only once the receiver's listeners are bound (see
        // `app::Running`): Microsoft's validation POST finds it.
        let hook = webhook.map(|w| StartWebhook {
            address: &w.cfg.address,
            auth_id: w.auth_id(),
            expiration: w.cfg.expiration.map(|d| now + d.as_secs() as i64),
        });
        let every = self.every;
        for ct in types {
            let sub = self.subs.entry(ct.clone()).or_default();
            let startable = matches!(
                sub.problem,
                Some(Problem::NotSubscribed | Problem::Disabled | Problem::AuditLogOff)
            );
            let due = sub.last_start.is_none_or(|t| t.elapsed() >= every);
            let enabled = sub.enabled == Some(true);
            // An enabled subscription is started again only to (re-)register
            // the webhook.
            let rehook = enabled && hook.is_some() && sub.webhook == Some(false);
            if !due || !(rehook || (!enabled && startable)) {
                continue;
            }
            sub.last_start = Some(Instant::now());
            let mut result = client.start(ct, hook.as_ref()).await;
            if let (Some(h), Err(e)) = (&hook, &result) {
                let why = webhook_refused(h.address, e, &classify(e).short());
                sub.webhook = Some(false);
                sub.webhook_problem = Some(why);
                if enabled {
                    failed.push(ct.clone());
                    continue;
                }
                if e.code() == Some("AF20021") {
                    // The polling path must not depend on the webhook.
                    result = client.start(ct, None).await;
                }
            } else if result.is_ok() && hook.is_some() {
                sub.webhook = Some(true);
                sub.webhook_problem = None;
                tracing::info!(tenant = %tenant, content_type = %ct, "activity webhook registered");
            }
            match result {
                Ok(()) => {
                    if !enabled {
                        tracing::info!(tenant = %tenant, content_type = %ct, "activity subscription started");
                    }
                    sub.enabled = Some(true);
                    sub.problem = None;
                }
                Err(e) => {
                    sub.problem = Some(classify(&e));
                    failed.push(ct.clone());
                }
            }
        }
        failed
    }
}

/// Webhook addresses compare without case and a trailing slash.
fn same_address(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}
