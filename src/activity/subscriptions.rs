//! Subscription state per content type: `subscriptions/list` at start and
//! every 15 minutes (sooner when a listing said AF20022/AF20023), and
//! `subscriptions/start` for missing or disabled types when allowed, at most
//! once per 15 minutes per type.

use super::client::ManagementClient;
use super::problem::{classify, Problem};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often `subscriptions/list` is asked, and `/start` retried per type.
pub const SUBSCRIPTION_EVERY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default, Clone)]
pub struct Sub {
    /// None until known.
    pub enabled: Option<bool>,
    pub problem: Option<Problem>,
    last_start: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Subscriptions {
    subs: BTreeMap<String, Sub>,
    last_check: Option<Instant>,
    /// Ask `subscriptions/list` at the next poll.
    recheck: bool,
}

impl Subscriptions {
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

    /// Refresh from `subscriptions/list` when due; start what may be started.
    /// Returns the content types whose calls failed (for their last-error time).
    pub async fn check(
        &mut self,
        client: &ManagementClient,
        types: &[String],
        start: bool,
        tenant: &str,
    ) -> Vec<String> {
        let mut failed = Vec::new();
        let due = self.recheck
            || self
                .last_check
                .is_none_or(|t| t.elapsed() >= SUBSCRIPTION_EVERY);
        if due {
            match client.subscriptions().await {
                Ok(list) => {
                    self.last_check = Some(Instant::now());
                    self.recheck = false;
                    for ct in types {
                        let status = list
                            .iter()
                            .find(|s| s.content_type.eq_ignore_ascii_case(ct))
                            .map(|s| s.status.eq_ignore_ascii_case("enabled"));
                        let sub = self.subs.entry(ct.clone()).or_default();
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
        for ct in types {
            let sub = self.subs.entry(ct.clone()).or_default();
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
            match client.start(ct).await {
                Ok(()) => {
                    tracing::info!(tenant = %tenant, content_type = %ct, "activity subscription started");
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
