//! Tenant lifecycle: which tenants run, started with their first refreshes
//! spread out, and a new configuration applied in place (reload): tenants
//! whose configuration did not change keep running untouched (counters,
//! snapshots, tokens, audit feed), changed ones restart, added ones start,
//! removed ones stop and their series disappear.
//!
//! A tenant is its collectors and its audit feed: the fleet starts and stops
//! both, and publishes what the rest of the process reads: the running
//! tenants for a scrape ([`Store`]) and their webhook inboxes for the
//! receiver ([`Inboxes`]).

use super::activity;
use super::build::{self, http_client, RuntimeOptions};
use super::schedule;
use super::slot::TenantRuntime;
use super::store::Store;
use crate::activity::lock::{self, Locks};
use crate::activity::status::FeedStatus;
use crate::activity::webhook::Inbox;
use crate::config::{Config, TenantConfig};
use crate::metrics::Live;
use arc_swap::ArcSwap;
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
    inbox: Option<Arc<Inbox>>,
    stop: watch::Sender<bool>,
    /// One per collector.
    tasks: Vec<JoinHandle<()>>,
    /// The audit feed's task: it ends when the feed has stopped.
    feed: Option<JoinHandle<()>>,
    /// What the feed last published (its `activity` collector reads the same).
    feed_status: Option<watch::Receiver<FeedStatus>>,
    /// The feed files' locks, held while the tenant runs.
    locks: Locks,
}

/// The webhook inbox of every running tenant with `activity.webhook`, by
/// tenant name: swapped whole when tenants start or stop.
pub type Inboxes = ArcSwap<HashMap<String, Arc<Inbox>>>;

/// What a configuration change did, by tenant name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
    /// Tenants not started (added) or left as they ran (changed) because
    /// another process holds their feed files: (name, why).
    pub refused: Vec<(String, String)>,
}

pub struct Fleet {
    store: Arc<Store>,
    inboxes: Arc<Inboxes>,
    http: reqwest::Client,
    opts: RuntimeOptions,
    /// Also serialises reloads.
    members: tokio::sync::Mutex<HashMap<String, Member>>,
    /// Locks taken before the first apply (process start), handed to the
    /// tenants that need them.
    spare: std::sync::Mutex<Locks>,
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
            inboxes: Default::default(),
            http: http_client(&opts),
            opts,
            members: Default::default(),
            spare: Default::default(),
        }
    }

    /// Locks the next [`Fleet::apply`] hands to its tenants (the process
    /// takes them before anything runs, to refuse to start on a conflict).
    pub fn hold(&self, locks: Locks) {
        self.spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(locks);
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// What the audit feed of running tenant `tenant` last published (None
    /// without one). Tests wait on it (e.g. for a number of polls) instead
    /// of sleeping.
    pub async fn feed_status(&self, tenant: &str) -> Option<FeedStatus> {
        let members = self.members.lock().await;
        let rx = members.get(tenant)?.feed_status.as_ref()?;
        let status = rx.borrow().clone();
        Some(status)
    }

    /// The running tenants' webhook inboxes (the receiver reads them).
    pub fn inboxes(&self) -> &Arc<Inboxes> {
        &self.inboxes
    }

    /// Make the running tenants those of `config`.
    pub async fn apply(&self, config: &Config) -> Changes {
        let mut members = self.members.lock().await;
        let mut changes = Changes::default();
        let wanted: HashMap<&str, &TenantConfig> = config
            .tenants
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();

        // Locks free to take: the ones held for the first apply and the
        // removed tenants' (their files may pass to an added tenant).
        let mut pool = std::mem::take(&mut *self.spare.lock().unwrap_or_else(|p| p.into_inner()));
        // Stop the removed and the changed ones (all at once: a hanging
        // refresh costs STOP_GRACE once, not per tenant). A changed tenant
        // first locks its new files: on a conflict it keeps running as it was.
        let mut stopping = Vec::new();
        let mut relocked = HashMap::new();
        let mut names: Vec<String> = members.keys().cloned().collect();
        names.sort();
        for name in names {
            match wanted.get(name.as_str()) {
                Some(t) if **t == members[&name].config => {}
                Some(t) => {
                    let old = members.get_mut(&name).expect("listed key");
                    match lock::acquire_tenant(t, &mut [&mut old.locks, &mut pool]) {
                        Ok(l) => {
                            relocked.insert(name.clone(), l);
                            stopping.push(members.remove(&name).expect("listed key"));
                            changes.changed.push(name);
                        }
                        Err(why) => refuse(&mut changes, name, why),
                    }
                }
                None => {
                    let mut m = members.remove(&name).expect("listed key");
                    pool.extend(std::mem::take(&mut m.locks));
                    stopping.push(m);
                    changes.removed.push(name);
                }
            }
        }
        changes.unchanged = members.len() - changes.refused.len();
        // Removed tenants leave the scrape now, before their tasks wind down.
        self.publish(config, &members);
        futures::future::join_all(stopping.into_iter().map(stop_member)).await;
        for name in &changes.removed {
            self.store.live.remove_tenant(name);
        }
        for name in &changes.changed {
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
            // Its files locked before its feed starts.
            let locks = match relocked.remove(&t.name) {
                Some(l) => l,
                None => match lock::acquire_tenant(t, &mut [&mut pool]) {
                    Ok(l) => {
                        changes.added.push(t.name.clone());
                        l
                    }
                    Err(why) => {
                        refuse(&mut changes, t.name.clone(), why);
                        continue;
                    }
                },
            };
            let built = build::tenant(t, &self.http, &self.store.live, &self.opts);
            let runtime = Arc::new(built.runtime);
            let (stop, rx) = watch::channel(false);
            let delay = |interval| first_delay(i, n, interval, spread);
            let tasks = schedule::spawn(&runtime, rx.clone(), &self.store.live, delay);
            let inbox = built.feed.as_ref().and_then(|f| f.inbox().cloned());
            let feed_status = built.feed.as_ref().map(|f| f.status.subscribe());
            // The feed starts with its collector's first refresh (which waits
            // for the feed's first poll): feeds spread as refreshes do.
            let feed = built.feed.map(|f| {
                let first = delay(activity::interval(&f.ctx.cfg));
                schedule::spawn_feed(f, rx, first)
            });
            members.insert(
                t.name.clone(),
                Member {
                    config: t.clone(),
                    runtime,
                    inbox,
                    stop,
                    tasks,
                    feed,
                    feed_status,
                    locks,
                },
            );
        }
        // What is left of the pool (removed tenants' files) is released here.
        drop(pool);
        self.publish(config, &members);
        changes
    }

    /// Swap in the running tenants, in configuration order, and their
    /// webhook inboxes.
    fn publish(&self, config: &Config, members: &HashMap<String, Member>) {
        let list = config
            .tenants
            .iter()
            .filter_map(|t| members.get(&t.name).map(|m| m.runtime.clone()))
            .collect();
        self.store.tenants.store(Arc::new(list));
        let inboxes = members
            .iter()
            .filter_map(|(name, m)| Some((name.clone(), m.inbox.clone()?)))
            .collect();
        self.inboxes.store(Arc::new(inboxes));
    }

    /// Stop every tenant at once (process shutdown): refreshes in flight
    /// are cancelled, as before there was a fleet; the audit feeds stop
    /// with their last checkpoint (their state file and sink are built to
    /// survive a cancel too).
    pub async fn stop_all(&self) {
        let mut members = self.members.lock().await;
        let mut feeds = Vec::new();
        for (_, m) in members.drain() {
            let _ = m.stop.send(true);
            for task in m.tasks {
                task.abort();
                let _ = task.await;
            }
            feeds.extend(m.feed);
        }
        futures::future::join_all(feeds).await;
    }
}

/// A tenant whose feed files another process holds is not started (or not
/// restarted with its new configuration).
fn refuse(changes: &mut Changes, name: String, why: String) {
    tracing::error!(tenant = %name, error = %why, "tenant not (re)started: its audit feed files are locked by another process; the rest of the configuration is applied");
    changes.refused.push((name, why));
}

/// Stop one tenant (reload): a refresh in flight may finish within
/// STOP_GRACE, so a restarted tenant never runs twice at once; its audit
/// feed stops with its last checkpoint.
async fn stop_member(m: Member) {
    let _ = m.stop.send(true);
    for mut task in m.tasks {
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
    }
    if let Some(feed) = m.feed {
        let _ = feed.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tenants: &[&str]) -> Config {
        let mut yaml = String::from("tenants:\n");
        for name in tenants {
            yaml.push_str(&format!(
                "  - name: {name}\n    tenant_id: 8f3c2a1e-1111-2222-3333-444455556666\n    client_id: 0c1d2e3f-1111-2222-3333-444455556666\n    client_secret: x\n    endpoints: {{login: \"http://127.0.0.1:1\", graph: \"http://127.0.0.1:1\", management: \"http://127.0.0.1:1\"}}\n    service_health: {{enabled: false}}\n    messages: {{enabled: false}}\n    activity: {{enabled: true, webhook: {{address: \"https://hooks.example/webhook/{name}\", auth_id: secret-{name}}}}}\n"
            ));
        }
        Config::parse(&yaml, "t.yml").unwrap()
    }

    fn inboxes(fleet: &Fleet) -> Vec<String> {
        let mut names: Vec<String> = fleet.inboxes().load().keys().cloned().collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn the_fleet_publishes_the_running_tenants_webhook_inboxes() {
        let fleet = Fleet::new(Arc::new(Live::new()), RuntimeOptions::default());
        fleet.apply(&config(&["a", "b"])).await;
        assert_eq!(inboxes(&fleet), ["a", "b"]);
        let inbox = fleet.inboxes().load()["a"].clone();
        assert_eq!(inbox.tenant, "a");
        // Unchanged tenants keep their inbox; removed ones lose it.
        let changes = fleet.apply(&config(&["a", "c"])).await;
        assert_eq!(changes.removed, ["b"]);
        assert_eq!(inboxes(&fleet), ["a", "c"]);
        assert!(Arc::ptr_eq(&fleet.inboxes().load()["a"], &inbox));
        fleet.stop_all().await;
    }

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
