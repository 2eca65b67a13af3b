//! Assembly: one tenant's clients (token cache, API client, Graph), its
//! audit feed, and the collectors its configuration enables, from the table
//! [`COLLECTORS`]. The one way a tenant is built: the fleet calls [`tenant`]
//! for every tenant it starts (at start and on reloads), and so do tests.
//! Nothing runs until the fleet starts it.

use super::activity::ActivityCollector;
use super::app_credentials::AppCredentialsCollector;
use super::messages::MessagesCollector;
use super::service_health::ServiceHealthCollector;
use super::services::ServiceFilter;
use super::slot::{CollectorSlot, TenantRuntime, Wake};
use super::Collector;
use crate::activity::auditquery::AuditQueryClient;
use crate::activity::client::ManagementClient;
use crate::activity::events::{Events, ReconcileEvents};
use crate::activity::feed::FeedContext;
use crate::activity::status::FeedStatus;
use crate::activity::webhook::Inbox;
use crate::api::graph::GraphClient;
use crate::api::{ApiClient, RetryPolicy};
use crate::auth::tenant::TenantGuid;
use crate::auth::TokenProvider;
use crate::config::TenantConfig;
use crate::metrics::Live;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Knobs that tests and the demo change; production uses the defaults.
#[derive(Clone)]
pub struct RuntimeOptions {
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// First refreshes of the tenants started together are spread evenly
    /// over their interval, capped at this (so a large fleet is ready
    /// within a minute but never starts as one thundering herd).
    pub first_refresh_spread: Duration,
    /// Honour HTTPS_PROXY/HTTP_PROXY/NO_PROXY (as curl does); off for `demo`.
    pub env_proxy: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            first_refresh_spread: Duration::from_secs(60),
            env_proxy: true,
        }
    }
}

/// The HTTP client every tenant shares (proxy from the environment, or not).
pub fn http_client(opts: &RuntimeOptions) -> reqwest::Client {
    match opts.env_proxy {
        true => crate::api::transport::client(opts.connect_timeout, opts.request_timeout),
        false => crate::api::transport::direct_client(opts.connect_timeout, opts.request_timeout),
    }
}

/// What a tenant's collectors are built from.
pub struct Parts<'a> {
    pub tenant: &'a TenantConfig,
    pub graph: &'a Arc<GraphClient>,
    /// The tenant's service selection, shared by `service_health` and `messages`.
    pub services: &'a Arc<ServiceFilter>,
    /// The tenant's audit feed, with `activity` enabled.
    pub feed: Option<&'a AuditFeed>,
}

/// One row of [`COLLECTORS`].
pub struct Registration {
    /// Whether the tenant's configuration turns the collector on.
    pub enabled: fn(&TenantConfig) -> bool,
    /// The collector (None: it cannot run for this tenant).
    pub build: fn(&Parts) -> Option<Arc<dyn Collector>>,
    /// What wakes its run loop before the interval is up: a source that
    /// pushes (the audit feed's status). None for collectors that poll.
    pub woken_by: fn(&Parts) -> Option<Wake>,
}

/// Every collector, in the order of a tenant's slots (and so of its
/// `m365_collector_*` lines). A new collector is one more row.
pub const COLLECTORS: [Registration; 4] = [
    Registration {
        enabled: |t| t.service_health.enabled,
        build: |p| {
            Some(Arc::new(ServiceHealthCollector {
                tenant: p.tenant.name.clone(),
                graph: p.graph.clone(),
                interval: p.tenant.service_health.interval,
                services: p.services.clone(),
                history_window: p.tenant.service_health.history_window,
            }))
        },
        woken_by: |_| None,
    },
    Registration {
        enabled: |t| t.messages.enabled,
        build: |p| {
            Some(Arc::new(MessagesCollector {
                tenant: p.tenant.name.clone(),
                graph: p.graph.clone(),
                interval: p.tenant.messages.interval,
                services: p.services.clone(),
            }))
        },
        woken_by: |_| None,
    },
    Registration {
        enabled: |t| t.app_credentials.enabled,
        build: |p| {
            Some(Arc::new(AppCredentialsCollector {
                tenant: p.tenant.name.clone(),
                client_id: p.tenant.client_id.clone(),
                graph: p.graph.clone(),
                interval: p.tenant.app_credentials.interval,
            }))
        },
        woken_by: |_| None,
    },
    Registration {
        enabled: |t| t.activity.enabled,
        build: |p| {
            let status = p.feed?.status.subscribe();
            let c = ActivityCollector::new(&p.tenant.name, &p.tenant.activity, status);
            Some(Arc::new(c))
        },
        woken_by: |p| Some(p.feed?.status.subscribe()),
    },
];

/// A tenant as built: what a scrape reads, and its audit feed.
pub struct Tenant {
    pub runtime: TenantRuntime,
    pub feed: Option<AuditFeed>,
}

/// A tenant's audit feed, built but not started: the fleet starts it
/// ([`crate::activity::feed::spawn`]) and stops it.
pub struct AuditFeed {
    pub ctx: Arc<FeedContext>,
    /// Where the feed publishes its status; the `activity` collector
    /// subscribes to it.
    pub status: watch::Sender<FeedStatus>,
}

impl AuditFeed {
    /// Where Microsoft's notifications for this feed go, with `activity.webhook`.
    pub fn inbox(&self) -> Option<&Arc<Inbox>> {
        self.ctx.inbox.as_ref()
    }
}

/// One tenant's token cache and the API client every call of the tenant
/// goes through (also what `m365-exporter report` calls Graph with).
pub fn api_client(
    t: &TenantConfig,
    http: &reqwest::Client,
    live: &Arc<Live>,
    opts: &RuntimeOptions,
) -> Arc<ApiClient> {
    let tokens = Arc::new(TokenProvider::new(
        &t.name,
        crate::auth::credentials::build(t, live.clone()),
        http.clone(),
        live.clone(),
    ));
    let mut roots = vec![t.endpoints.graph.as_str()];
    roots.extend(t.endpoints.management.as_deref());
    Arc::new(ApiClient::new(
        &t.name,
        http.clone(),
        live.clone(),
        tokens,
        opts.retry.clone(),
        &roots,
    ))
}

/// One tenant's token cache, API client, audit feed and collectors.
pub fn tenant(
    t: &TenantConfig,
    http: &reqwest::Client,
    live: &Arc<Live>,
    opts: &RuntimeOptions,
) -> Tenant {
    let api = api_client(t, http, live, opts);
    let feed = match t.activity.enabled {
        true => audit_feed(t, &api),
        false => None,
    };
    let parts = Parts {
        tenant: t,
        graph: &Arc::new(GraphClient::new(api.clone(), &t.endpoints.graph)),
        services: &Arc::new(ServiceFilter::new(
            &t.name,
            t.service_health.services.clone(),
        )),
        feed: feed.as_ref(),
    };
    let runtime = TenantRuntime {
        name: t.name.clone(),
        slots: COLLECTORS
            .iter()
            .filter(|r| (r.enabled)(t))
            .filter_map(|r| {
                let slot = CollectorSlot::new((r.build)(&parts)?);
                Some(Arc::new(slot.woken_by((r.woken_by)(&parts))))
            })
            .collect(),
    };
    Tenant { runtime, feed }
}

/// The tenant's audit feed; None without a Management endpoint (config
/// validation already refuses that when activity is enabled).
fn audit_feed(t: &TenantConfig, api: &Arc<ApiClient>) -> Option<AuditFeed> {
    let root = t.endpoints.management.as_deref()?;
    let cfg = t.activity.clone();
    // Present at 0 from the start (the feed itself may start later, spread
    // over the fleet), so `increase()` and alerts see the first blob listed,
    // lost, late or quarantined, not only the second.
    Events::new(
        api.live(),
        &t.name,
        &cfg.content_types,
        cfg.webhook.is_some(),
    );
    let queries = cfg.reconcile.enabled.then(|| {
        ReconcileEvents::new(api.live(), &t.name, &cfg.content_types);
        Arc::new(AuditQueryClient::new(api.clone(), &t.endpoints.graph))
    });
    let inbox = cfg.webhook.clone().map(|w| {
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
    // Served from the first scrape, before the feed runs (it may start
    // later, spread over the fleet).
    let status = FeedStatus::configured(&cfg.content_types);
    let ctx = FeedContext {
        tenant: t.name.clone(),
        tenant_id: t.tenant_id.clone(),
        cfg,
        api: api.clone(),
        client,
        inbox,
        queries,
    };
    Some(AuditFeed {
        ctx: Arc::new(ctx),
        status: watch::channel(status).0,
    })
}
