//! The one home of the end-to-end tests' helpers (`mod support;` in each
//! test): a Prometheus text parser, small HTTP/polling utilities, the
//! simulator tenant's config, and, by topic:
//! - [`activity`]: a simulator plus an exporter with the audit feed only,
//!   the Management API request log, captured log lines;
//! - [`certs`]: throw-away certificates made with openssl;
//! - [`grafana`]: the shipped dashboards and a PromQL scanner;
//! - [`mock_api`]: an `ApiClient` and token endpoint against wiremock;
//! - [`procs`]: child processes stopped with the test, free ports, external
//!   binaries;
//! - [`reconcile`]: `activity.reconcile` against the simulator's Audit Log
//!   Query API, and the counts it must come to;
//! - [`tenant`]: the simulator's tenant as a config item ([`SimTenant`]);
//! - [`tls`]: a CA and its leaves made in process, web config files, an
//!   exporter started with one.
// Each test uses some of these, never all.
#![allow(dead_code)]

use m365_exporter::api::{ApiClient, RetryPolicy};
use m365_exporter::auth::credentials::{ClientSecretCredential, SecretSource};
use m365_exporter::auth::TokenProvider;
use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::collect::RuntimeOptions;
use m365_exporter::config::Config;
use m365_exporter::metrics::Live;
use m365_exporter::secret::Secret;
use m365_exporter::simulator::{
    SimOptions, Simulator, SIM_CLIENT_ID, SIM_CLIENT_SECRET, SIM_TENANT_ID,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod activity;
pub mod certs;
pub mod grafana;
pub mod markdown;
pub mod mock_api;
pub mod procs;
pub mod reconcile;
pub mod tenant;
pub mod tls;

pub use tenant::SimTenant;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parse the text exposition format (enough of it for our own output).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().expect("numeric value"),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((n, rest)) => (n.to_string(), parse_labels(rest.trim_end_matches('}'))),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(o) => val.push(o),
                    None => break,
                },
                '"' => break,
                c => val.push(c),
            }
        }
        m.insert(key.trim_start_matches(',').to_string(), val);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    m
}

/// Samples of `name` whose labels include every pair of `want`.
pub fn select<'a>(samples: &'a [Sample], name: &str, want: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The single value of a series; panics with context otherwise.
pub fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    let found = select(samples, name, want);
    assert_eq!(
        found.len(),
        1,
        "expected one {name}{want:?}, found {found:?}"
    );
    found[0].value
}

pub fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    select(samples, name, want).iter().map(|s| s.value).sum()
}

pub async fn get(url: &str) -> (u16, String, String) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.expect("body"))
}

/// `/metrics` of an exporter, which answers 200 whatever its upstreams do.
pub async fn scrape(exp: &Running) -> Vec<Sample> {
    let (status, _, body) = get(&format!("{}/metrics", exp.url())).await;
    assert_eq!(status, 200);
    parse(&body)
}

/// Poll `f` every 100 ms until it returns Some, or panic after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An `ApiClient` for tenant `name` against the simulator at `url`, with
/// the simulator's client-secret credential, requests timing out after
/// `timeout`, and `policy`; and the `Live` metrics it counts into.
pub fn sim_api(
    name: &str,
    url: &str,
    timeout: Duration,
    policy: RetryPolicy,
) -> (Arc<ApiClient>, Arc<Live>) {
    let live = Arc::new(Live::new());
    let http = m365_exporter::api::transport::client(Duration::from_secs(2), timeout);
    let cred = ClientSecretCredential::new(
        url,
        SIM_TENANT_ID,
        SIM_CLIENT_ID,
        SecretSource::Inline(Secret::new(SIM_CLIENT_SECRET)),
    );
    let tokens = Arc::new(TokenProvider::new(
        name,
        Arc::new(cred),
        http.clone(),
        live.clone(),
    ));
    let api = ApiClient::new(name, http, live.clone(), tokens, policy, &[url]);
    (Arc::new(api), live)
}

/// Tenant `contoso` against a simulator at `url`, service health and
/// messages every `interval`.
pub fn service_health_config(url: &str, interval: &str) -> Config {
    let yaml = format!(
        r#"
defaults:
  service_health: {{interval: {interval}}}
  messages: {{interval: {interval}}}
tenants:
{}"#,
        SimTenant::new("contoso", url)
    );
    Config::parse(&yaml, "test").unwrap()
}

/// A simulator, and an in-process exporter configured by `config(sim_url)`
/// with fast retries.
pub async fn start_against_simulator(
    sim: SimOptions,
    config: impl FnOnce(&str) -> Config,
) -> (Simulator, Running) {
    let sim = Simulator::start(sim).await.unwrap();
    let exp = Running::start(&config(&sim.url()), &WebOptions::default(), &fast_retries())
        .await
        .unwrap();
    (sim, exp)
}

/// An exporter whose webhook receiver has a listener of its own, on a
/// free port; `config(port)` names that port in the address Microsoft (the
/// simulator) is told to call.
pub async fn start_with_webhook_listener(
    config: impl Fn(u16) -> Config,
    opts: &RuntimeOptions,
) -> Running {
    for _ in 0..5 {
        let port = procs::free_port();
        let web = WebOptions {
            webhook_listen: Some(format!("127.0.0.1:{port}")),
            ..WebOptions::default()
        };
        if let Ok(r) = Running::start(&config(port), &web, opts).await {
            return r;
        }
    }
    panic!("no free port for the webhook listener");
}

/// Retries short enough for tests; `Retry-After` still honoured up to 5 s.
pub fn fast_retries() -> RuntimeOptions {
    RuntimeOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(5),
        },
        ..RuntimeOptions::default()
    }
}
