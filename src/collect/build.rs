//! Assembly: one tenant's clients (token cache, API client, Graph) and the
//! collectors its configuration enables, from the table [`COLLECTORS`].
//! The one way a tenant is built: the fleet calls [`tenant`] for every
//! tenant it starts (at start and on reloads), and so do tests. Nothing
//! runs until the fleet schedules it.

use super::activity::ActivityCollector;
use super::app_credentials::AppCredentialsCollector;
use super::messages::MessagesCollector;
use super::service_health::ServiceHealthCollector;
use super::services::ServiceFilter;
use super::slot::{CollectorSlot, CollectorState, TenantRuntime};
use super::Collector;
use crate::auth::TokenProvider;
use crate::config::TenantConfig;
use crate::graph::GraphClient;
use crate::http::{ApiClient, RetryPolicy};
use crate::metrics::Live;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;

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
        true => crate::http::client(opts.connect_timeout, opts.request_timeout),
        false => crate::http::direct_client(opts.connect_timeout, opts.request_timeout),
    }
}

/// What a tenant's collectors are built from.
pub struct Parts<'a> {
    pub tenant: &'a TenantConfig,
    pub api: &'a Arc<ApiClient>,
    pub graph: &'a Arc<GraphClient>,
    /// The tenant's service selection, shared by `service_health` and `messages`.
    pub services: &'a Arc<ServiceFilter>,
}

/// One row of [`COLLECTORS`].
pub struct Registration {
    /// Whether the tenant's configuration turns the collector on.
    pub enabled: fn(&TenantConfig) -> bool,
    /// The collector (None: it cannot run for this tenant).
    pub build: fn(&Parts) -> Option<Arc<dyn Collector>>,
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
            }))
        },
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
    },
    Registration {
        enabled: |t| t.activity.enabled,
        build: |p| {
            let c = ActivityCollector::new(p.tenant, p.api.clone())?;
            Some(Arc::new(c))
        },
    },
];

/// One tenant's token cache, API client and collectors.
pub fn tenant(
    t: &TenantConfig,
    http: &reqwest::Client,
    live: &Arc<Live>,
    opts: &RuntimeOptions,
) -> TenantRuntime {
    let tokens = Arc::new(TokenProvider::new(
        &t.name,
        crate::credentials::build(t, live.clone()),
        http.clone(),
        live.clone(),
    ));
    let mut roots = vec![t.endpoints.graph.as_str()];
    roots.extend(t.endpoints.management.as_deref());
    let api = Arc::new(ApiClient::new(
        &t.name,
        http.clone(),
        live.clone(),
        tokens,
        opts.retry.clone(),
        &roots,
    ));
    let parts = Parts {
        tenant: t,
        graph: &Arc::new(GraphClient::new(api.clone(), &t.endpoints.graph)),
        services: &Arc::new(ServiceFilter::new(
            &t.name,
            t.service_health.services.clone(),
        )),
        api: &api,
    };
    TenantRuntime {
        name: t.name.clone(),
        slots: COLLECTORS
            .iter()
            .filter(|r| (r.enabled)(t))
            .filter_map(|r| (r.build)(&parts))
            .map(|collector| {
                Arc::new(CollectorSlot {
                    collector,
                    state: ArcSwap::from_pointee(CollectorState::default()),
                })
            })
            .collect(),
    }
}
