//! Tenant lifecycle: which tenants run, started with their first refreshes
//! spread out, and a new configuration applied in place (reload): tenants
//! whose configuration did not change keep running untouched (counters,
//! snapshots, tokens), changed ones restart, added ones start, removed ones
//! stop and their series disappear.

use super::build::{self, http_client, RuntimeOptions};
use super::schedule;
use super::slot::TenantRuntime;
use super::store::Store;
use crate::config::{Config, TenantConfig};
use crate::metrics::Live;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a stopping tenant's refresh in flight may take to finish before
/// it is cancelled.
const STOP_GRACE: Duration = Duration::from_secs(5);

struct Member {
    config: TenantConfig,
    runtime: Arc<TenantRuntime>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// What a configuration change did, by tenant name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
}

pub struct Fleet {
    store: Arc<Store>,
    http: reqwest::Client,
    opts: RuntimeOptions,
    /// Also serialises reloads.
    members: tokio::sync::Mutex<HashMap<String, Member>>,
}

/// Delay of the `i`-th of `n` tenants started together: an even spread over
/// the collector's interval, capped at `max`.
pub fn first_delay(i: usize, n: usize, interval: Duration, max: Duration) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    interval.min(max).mul_f64(i as f64 / n as f64)
}

impl Fleet {
    /// An empty fleet; [`Fleet::apply`] starts tenants.
    pub fn new(live: Arc<Live>, opts: RuntimeOptions) -> Fleet {
        Fleet {
            store: Arc::new(Store::new(Vec::new(), live)),
            http: http_client(&opts),
            opts,
            members: Default::default(),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Make the running tenants those of `config`.
    pub async fn apply(&self, config: &Config) -> Applied {
        let mut members = self.members.lock().await;
        let mut applied = Applied::default();
        let wanted: HashMap<&str, &TenantConfig> = config
            .tenants
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();

        // Stop the removed and the changed ones (all at once: a hanging
        // refresh costs STOP_GRACE once, not per tenant).
        let mut stopping = Vec::new();
        let mut names: Vec<String> = members.keys().cloned().collect();
        names.sort();
        for name in names {
            match wanted.get(name.as_str()) {
                Some(t) if **t == members[&name].config => {}
                other => {
                    let m = members.remove(&name).expect("listed key");
                    match other {
                        None => applied.removed.push(name),
                        Some(_) => applied.changed.push(name),
                    }
                    stopping.push(m);
                }
            }
        }
        // Removed tenants leave the scrape now, before their tasks wind down.
        self.publish(config, &members);
        futures::future::join_all(stopping.into_iter().map(stop_member)).await;
        for name in &applied.removed {
            self.store.live.remove_tenant(name);
        }
        for name in &applied.changed {
            // Its credential may have changed kind; a certificate sets it anew.
            let _ = self
                .store
                .live
                .certificate_expiry
                .remove_label_values(&[name]);
        }

        // Start the added and the changed ones, spread out.
        let starting: Vec<&TenantConfig> = config
            .tenants
            .iter()
            .filter(|t| !members.contains_key(&t.name))
            .collect();
        let n = starting.len();
        let spread = self.opts.first_refresh_spread;
        for (i, t) in starting.into_iter().enumerate() {
            if !applied.changed.contains(&t.name) {
                applied.added.push(t.name.clone());
            }
            let runtime = Arc::new(build::tenant(t, &self.http, &self.store.live, &self.opts));
            let (stop, rx) = watch::channel(false);
            let tasks = schedule::spawn(&runtime, rx, &self.store.live, |interval| {
                first_delay(i, n, interval, spread)
            });
            members.insert(
                t.name.clone(),
                Member {
                    config: t.clone(),
                    runtime,
                    stop,
                    tasks,
                },
            );
        }
        applied.unchanged = config.tenants.len() - n;
        self.publish(config, &members);
        applied
    }

    /// Swap in the running tenants, in configuration order.
    fn publish(&self, config: &Config, members: &HashMap<String, Member>) {
        let list = config
            .tenants
            .iter()
            .filter_map(|t| members.get(&t.name).map(|m| m.runtime.clone()))
            .collect();
        self.store.tenants.store(Arc::new(list));
    }

    /// Stop every tenant at once (process shutdown): refreshes in flight
    /// are cancelled, as before there was a fleet; the audit pipeline's
    /// state file and sink are built to survive exactly that.
    pub async fn stop_all(&self) {
        let mut members = self.members.lock().await;
        for (_, m) in members.drain() {
            let _ = m.stop.send(true);
            for task in m.tasks {
                task.abort();
                let _ = task.await;
            }
            stop_collectors(&m.runtime).await;
        }
    }
}

/// Stop what collectors run beside their refreshes (the audit feed saves
/// its last checkpoint).
async fn stop_collectors(runtime: &TenantRuntime) {
    for slot in &runtime.slots {
        slot.collector.stop().await;
    }
}

/// Stop one tenant (reload): a refresh in flight may finish within
/// STOP_GRACE, so a restarted tenant never runs twice at once.
async fn stop_member(m: Member) {
    let _ = m.stop.send(true);
    for mut task in m.tasks {
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
    }
    stop_collectors(&m.runtime).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_refreshes_spread_evenly_over_the_interval() {
        let (i60, max) = (Duration::from_secs(60), Duration::from_secs(60));
        assert_eq!(first_delay(0, 1, i60, max), Duration::ZERO);
        let d: Vec<Duration> = (0..4).map(|i| first_delay(i, 4, i60, max)).collect();
        assert_eq!(d, [0, 15, 30, 45].map(Duration::from_secs));
        // A 5-minute collector is spread over the cap, not 5 minutes.
        assert_eq!(
            first_delay(2, 4, Duration::from_secs(300), max),
            Duration::from_secs(30)
        );
    }
}
