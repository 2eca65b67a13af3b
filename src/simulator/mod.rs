//! A local stand-in for Microsoft's endpoints (token, Graph service
//! announcements, the Management Activity API) in their published wire
//! formats, with deterministic scenarios and switchable faults. `demo` and the tests run against it.
//!
//! ```no_run
//! # async fn f() {
//! use m365_exporter::simulator::{Simulator, SimOptions};
//! let sim = Simulator::start(SimOptions::default()).await.unwrap();
//! println!("{}", sim.url());
//! # }
//! ```

pub mod applications;
pub mod audit;
pub mod auditlog;
pub mod faults;
pub mod graph;
pub mod identity;
pub mod management;
pub mod records;
pub mod scenario;
pub mod token;
pub mod webhooks;

pub use audit::{AuditOffSplit, AuditOptions, AuditState, Truth};
pub use faults::Faults;
pub use scenario::{ScenarioData, SCENARIOS};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::Router;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Identity the simulator accepts; the demo and tests configure these.
pub const SIM_TENANT_ID: &str = "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b";
pub const SIM_CLIENT_ID: &str = "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5";
pub const SIM_CLIENT_SECRET: &str = "simulator-secret-not-for-production";
/// The simulated tenant's primary domain: tokens are issued for it as for
/// the GUID, and the OpenID discovery document resolves it to the GUID.
pub const SIM_TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub listen: String,
    pub scenario: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_lifetime: Duration,
    /// Items per Graph page (small, so paging is always exercised).
    pub page_size: usize,
    pub faults: Faults,
    /// The Management Activity API's audit feed.
    pub audit: AuditOptions,
    /// Issue tokens for any tenant id (GUID or domain), not only `tenant_id`:
    /// one simulator serves a thousand configured tenants.
    pub any_tenant: bool,
    /// PEM certificate(s), one of whose keys must sign certificate client
    /// assertions (several: a rotation in progress).
    pub client_certificate: Option<String>,
    /// The federated token (workload identity) a client assertion must equal.
    pub federated_token: Option<String>,
    /// The `X-IDENTITY-HEADER` value the App Service identity endpoint expects.
    pub identity_header: String,
    /// The tenant's domain (see [`SIM_TENANT_DOMAIN`]).
    pub tenant_domain: String,
    /// Graph enum values in PascalCase (`ServiceOperational`, `Incident`),
    /// as Microsoft's API pages print them, instead of the schema's camelCase.
    pub pascal_enums: bool,
    /// IMDS is being updated for this long after start: its token endpoint
    /// answers 404 for the first third, then 410 (as Azure IMDS does during
    /// a host update); the App Service endpoint is unaffected.
    pub imds_updating: Duration,
}

/// `IDENTITY_HEADER` the simulator's App Service endpoint accepts by default.
pub const SIM_IDENTITY_HEADER: &str = "simulator-identity-header";

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: "127.0.0.1:0".into(),
            scenario: "incident".into(),
            tenant_id: SIM_TENANT_ID.into(),
            client_id: SIM_CLIENT_ID.into(),
            client_secret: SIM_CLIENT_SECRET.into(),
            token_lifetime: Duration::from_secs(3600),
            page_size: 5,
            faults: Faults::default(),
            audit: AuditOptions::default(),
            any_tenant: false,
            client_certificate: None,
            federated_token: None,
            identity_header: SIM_IDENTITY_HEADER.into(),
            tenant_domain: SIM_TENANT_DOMAIN.into(),
            pascal_enums: false,
            imds_updating: Duration::ZERO,
        }
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    pub at: Duration,
    pub status: u16,
    pub had_bearer: bool,
}

impl Recorded {
    /// A query parameter's value (first occurrence, percent-decoded).
    pub fn param(&self, name: &str) -> Option<String> {
        url_param(&self.query, name)
    }
}

pub fn url_param(query: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Milliseconds since the epoch as ISO 8601 with milliseconds, as
/// Microsoft writes times (Management API and Audit Log Query API alike).
pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `http://host:port` as the client addressed us (links and audiences the
/// simulator hands out point back at it).
pub fn base_url(headers: &axum::http::HeaderMap) -> String {
    match headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(h) => format!("http://{h}"),
        None => "http://127.0.0.1".into(),
    }
}

pub struct SimState {
    pub opts: SimOptions,
    pub scenario: RwLock<ScenarioData>,
    pub faults: Mutex<Faults>,
    pub tokens: Mutex<HashMap<String, token::Issued>>,
    pub log: Mutex<Vec<Recorded>>,
    pub started: Instant,
    /// Requests to the data APIs so far (drives the periodic fault pattern).
    pub api_requests: std::sync::atomic::AtomicU64,
    /// The audit feed behind the Management Activity API routes.
    pub audit: Mutex<AuditState>,
    /// Webhook notification POSTs attempted (drives the drop fault).
    pub webhook_posts: std::sync::atomic::AtomicU64,
    /// Faults injected so far, by kind (see [`SimState::count_injected`]).
    pub injected: Mutex<BTreeMap<&'static str, u64>>,
}

impl SimState {
    pub fn scenario(&self) -> std::sync::RwLockReadGuard<'_, ScenarioData> {
        self.scenario.read().unwrap_or_else(|p| p.into_inner())
    }
    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn audit(&self) -> std::sync::MutexGuard<'_, AuditState> {
        self.audit.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// One more fault of `kind` injected: the generic ones by their
    /// [`faults::Injected::kind`], the Management API's (`listing_af429`,
    /// `blob_af429`, `next_page_503`) and the webhooks' (`webhook_dropped`,
    /// `webhook_late`, `webhook_duplicate`) by theirs.
    pub fn count_injected(&self, kind: &'static str) {
        *self
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default() += 1;
    }
}

const MAX_LOG: usize = 200_000;

pub struct Simulator {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    notifier: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown scenario {0:?} (one of: healthy, incident, outage, history)")]
    UnknownScenario(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

impl Simulator {
    pub async fn start(opts: SimOptions) -> Result<Simulator, SimError> {
        let base = crate::timefmt::now_unix() as i64;
        let data = scenario::build(&opts.scenario, base)
            .ok_or_else(|| SimError::UnknownScenario(opts.scenario.clone()))?;
        let listener = TcpListener::bind(&opts.listen)
            .await
            .map_err(|e| SimError::Bind(opts.listen.clone(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimError::Bind(opts.listen.clone(), e))?;
        let mut audit_opts = opts.audit.clone();
        if opts.scenario == "healthy" {
            // `healthy` loses nothing: its expired blob (AF20051, counted
            // and alerted on as lost records) belongs to `incident` and
            // `outage`, deliberately.
            audit_opts.expired_blobs = 0;
        }
        let audit = AuditState::new(audit_opts, &opts.tenant_id, base);
        let state = Arc::new(SimState {
            faults: Mutex::new(opts.faults.clone()),
            audit: Mutex::new(audit),
            opts,
            scenario: RwLock::new(data),
            tokens: Mutex::default(),
            log: Mutex::default(),
            started: Instant::now(),
            api_requests: Default::default(),
            webhook_posts: Default::default(),
            injected: Mutex::default(),
        });
        let app = router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        let notifier = tokio::spawn(webhooks::notifier(
            state.clone(),
            format!("http://{addr}"),
            Duration::from_millis(100),
        ));
        Ok(Simulator {
            addr,
            state,
            stop: Some(tx),
            handle: Some(handle),
            notifier: Some(notifier),
        })
    }

    /// `http://127.0.0.1:PORT`: the root for login, Graph and Management alike.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Faults injected so far, by kind (a soak's figures).
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.state
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Change faults while running.
    pub fn set_faults(&self, f: Faults) {
        *self.state.faults() = f;
    }

    /// Switch scenario while running (timestamps rebased to now).
    pub fn set_scenario(&self, name: &str) -> Result<(), SimError> {
        let data = scenario::build(name, crate::timefmt::now_unix() as i64)
            .ok_or_else(|| SimError::UnknownScenario(name.into()))?;
        *self
            .state
            .scenario
            .write()
            .unwrap_or_else(|p| p.into_inner()) = data;
        Ok(())
    }

    pub fn scenario(&self) -> ScenarioData {
        self.state.scenario().clone()
    }

    /// The audit feed (subscriptions, blobs, counters), to inspect or change.
    pub fn audit(&self) -> std::sync::MutexGuard<'_, AuditState> {
        self.state.audit()
    }

    pub async fn stop(mut self) {
        self.shutdown();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    fn shutdown(&mut self) {
        if let Some(n) = self.notifier.take() {
            n.abort();
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn router(state: Arc<SimState>) -> Router {
    let recorder = state.clone();
    Router::new()
        .merge(token::routes())
        .merge(identity::routes())
        .merge(graph::routes())
        .merge(applications::routes())
        .merge(management::routes())
        .merge(auditlog::routes())
        .with_state(state)
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let st = recorder.clone();
            async move {
                let method = req.method().to_string();
                let path = req.uri().path().to_string();
                let query = req.uri().query().unwrap_or("").to_string();
                let had_bearer = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("Bearer "));
                let at = st.started.elapsed();
                let resp = next.run(req).await;
                let mut log = st.log.lock().unwrap_or_else(|p| p.into_inner());
                if log.len() < MAX_LOG {
                    log.push(Recorded {
                        method,
                        path,
                        query,
                        at,
                        status: resp.status().as_u16(),
                        had_bearer,
                    });
                }
                resp
            }
        }))
}
