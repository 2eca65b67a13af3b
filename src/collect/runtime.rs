//! Per-tenant runtime: builds each tenant's clients and collectors from the
//! config, runs them on their intervals, keeps their latest outcome, and
//! renders everything for a scrape.

use super::activity::ActivityCollector;
use super::app_credentials::AppCredentialsCollector;
use super::messages::MessagesCollector;
use super::service_health::ServiceHealthCollector;
use super::services::ServiceFilter;
use super::{CollectError, Collector, CollectorKind, Outcome};
use crate::api::graph::GraphClient;
use crate::api::{ApiClient, RetryPolicy};
use crate::auth::TokenProvider;
use crate::buffers::BufferPool;
use crate::config::{Config, TenantConfig};
use crate::metrics::gzip::{GzipSink, SegmentCache};
use crate::metrics::sink::Sink;
use crate::metrics::text::{content_hash, write_sample};
use crate::metrics::{Encoding, Family, Live};
use crate::timefmt::now_unix;
use arc_swap::ArcSwap;
use bytes::Bytes;
use rand::Rng;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The last refresh of one collector, as a scrape and the status page see it.
#[derive(Debug, Default)]
pub struct CollectorState {
    pub attempted: bool,
    pub success: bool,
    pub last_success_unix: Option<f64>,
    pub last_success_at: Option<Instant>,
    pub duration_seconds: f64,
    pub last_error: Option<String>,
    /// The latest good outcome; kept through failures for at most 3 intervals.
    pub outcome: Option<Arc<Outcome>>,
    /// This state's `m365_collector_*` lines, rendered by the first scrape
    /// that reads the state (a scrape then copies them).
    pub lines: OnceLock<StateLines>,
}

/// The `m365_collector_*` sample lines of one collector state, each with
/// its [`content_hash`].
#[derive(Debug)]
pub struct StateLines {
    text: String,
    /// (end in `text`, hash) per family of [`StateLines::FAMILIES`]; an
    /// empty range when the state has no such sample.
    parts: [(usize, u64); 4],
}

impl StateLines {
    const FAMILIES: [Family; 4] = [
        Family::CollectorSuccess,
        Family::CollectorLastSuccess,
        Family::CollectorDuration,
        Family::CollectorInterval,
    ];

    fn new(tenant: &str, kind: CollectorKind, interval: Duration, st: &CollectorState) -> Self {
        let labels = [("tenant", tenant), ("collector", kind.as_str())];
        let mut text = String::with_capacity(400);
        let mut parts = [(0, 0); 4];
        for (part, fam) in parts.iter_mut().zip(Self::FAMILIES) {
            let start = text.len();
            let v = match fam {
                Family::CollectorInterval => Some(interval.as_secs_f64()),
                _ if !st.attempted => None,
                Family::CollectorSuccess => Some(if st.success { 1.0 } else { 0.0 }),
                Family::CollectorLastSuccess => st.last_success_unix,
                _ => Some(st.duration_seconds),
            };
            if let Some(v) = v {
                write_sample(&mut text, fam.name(), &labels, v);
            }
            *part = (text.len(), content_hash(&text.as_bytes()[start..]));
        }
        StateLines { text, parts }
    }

    /// The line of `fam` (empty without a sample), and its hash.
    fn get(&self, fam: Family) -> (&str, u64) {
        let i = Self::FAMILIES.iter().position(|f| *f == fam).unwrap_or(0);
        let start = if i == 0 { 0 } else { self.parts[i - 1].0 };
        let (end, hash) = self.parts[i];
        (&self.text[start..end], hash)
    }
}

pub struct CollectorSlot {
    pub collector: Arc<dyn Collector>,
    pub state: ArcSwap<CollectorState>,
}

/// A collector that never refreshes (every refresh fails): a slot whose
/// state is set by hand, in tests and benches.
#[doc(hidden)]
pub struct Idle(pub CollectorKind);

impl Collector for Idle {
    fn kind(&self) -> CollectorKind {
        self.0
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn collect(&self) -> futures::future::BoxFuture<'_, Result<Outcome, CollectError>> {
        Box::pin(async { Err(CollectError("idle".into())) })
    }
}

pub struct TenantRuntime {
    pub name: String,
    pub slots: Vec<Arc<CollectorSlot>>,
}

/// Everything a scrape reads. The tenant list is swapped whole by a reload
/// (see `fleet`); a scrape works on the list it loaded.
pub struct Store {
    pub tenants: ArcSwap<Vec<Arc<TenantRuntime>>>,
    pub live: Arc<Live>,
    /// Deflate segments of stable text, kept across gzip scrapes.
    gzip: SegmentCache,
    buffers: Arc<BufferPool>,
}

/// How long the last good snapshot outlives failures, in intervals.
const STALE_INTERVALS: u32 = 3;

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

/// Build every tenant's clients and collectors. Nothing runs until each
/// tenant's [`TenantRuntime::spawn`].
pub fn build(config: &Config, live: Arc<Live>, opts: &RuntimeOptions) -> Store {
    let http = http_client(opts);
    let tenants = config
        .tenants
        .iter()
        .map(|t| Arc::new(build_tenant(t, &http, &live, opts)))
        .collect();
    Store::new(tenants, live)
}

/// The HTTP client every tenant shares (proxy from the environment, or not).
pub fn http_client(opts: &RuntimeOptions) -> reqwest::Client {
    match opts.env_proxy {
        true => crate::api::transport::client(opts.connect_timeout, opts.request_timeout),
        false => crate::api::transport::direct_client(opts.connect_timeout, opts.request_timeout),
    }
}

/// One tenant's token cache, API client and collectors.
pub fn build_tenant(
    t: &TenantConfig,
    http: &reqwest::Client,
    live: &Arc<Live>,
    opts: &RuntimeOptions,
) -> TenantRuntime {
    let tokens = Arc::new(TokenProvider::new(
        &t.name,
        crate::auth::credentials::build(t, live.clone()),
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
    let graph = Arc::new(GraphClient::new(api.clone(), &t.endpoints.graph));
    let services = Arc::new(ServiceFilter::new(
        &t.name,
        t.service_health.services.clone(),
    ));
    let mut collectors: Vec<Arc<dyn Collector>> = Vec::new();
    if t.service_health.enabled {
        collectors.push(Arc::new(ServiceHealthCollector {
            tenant: t.name.clone(),
            graph: graph.clone(),
            interval: t.service_health.interval,
            services: services.clone(),
        }));
    }
    if t.messages.enabled {
        collectors.push(Arc::new(MessagesCollector {
            tenant: t.name.clone(),
            graph: graph.clone(),
            interval: t.messages.interval,
            services,
        }));
    }
    if t.app_credentials.enabled {
        collectors.push(Arc::new(AppCredentialsCollector {
            tenant: t.name.clone(),
            client_id: t.client_id.clone(),
            graph: graph.clone(),
            interval: t.app_credentials.interval,
        }));
    }
    if t.activity.enabled {
        if let Some(c) = ActivityCollector::new(t, api.clone()) {
            collectors.push(Arc::new(c));
        }
    }
    TenantRuntime {
        name: t.name.clone(),
        slots: collectors
            .into_iter()
            .map(|collector| {
                Arc::new(CollectorSlot {
                    collector,
                    state: ArcSwap::from_pointee(CollectorState::default()),
                })
            })
            .collect(),
    }
}

impl TenantRuntime {
    /// Start one task per collector; each waits `first_delay(interval)`
    /// before its first refresh, and all stop when `stop` flips.
    /// Each collector's loop runs supervised: a panic is counted in `live`
    /// and the loop restarted (see [`super::supervise`]).
    pub fn spawn(
        &self,
        stop: watch::Receiver<bool>,
        live: &Arc<Live>,
        first_delay: impl Fn(Duration) -> Duration,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.slots
            .iter()
            .map(|slot| {
                let delay = first_delay(slot.collector.interval());
                let (tenant, slot, mut stop) = (self.name.clone(), slot.clone(), stop.clone());
                let live = live.clone();
                tokio::spawn(async move {
                    if !delay.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stop.wait_for(|v| *v) => return,
                        }
                    }
                    let (t, s, st) = (tenant.clone(), slot.clone(), stop.clone());
                    super::supervise::supervise(tenant, slot, live, stop, move || {
                        run_loop(t.clone(), s.clone(), st.clone())
                    })
                    .await
                })
            })
            .collect()
    }
}

impl Store {
    pub fn new(tenants: Vec<Arc<TenantRuntime>>, live: Arc<Live>) -> Store {
        Store {
            tenants: ArcSwap::from_pointee(tenants),
            live,
            gzip: SegmentCache::new(),
            buffers: BufferPool::new(),
        }
    }

    /// The current tenants, in configuration order.
    pub fn tenants(&self) -> Arc<Vec<Arc<TenantRuntime>>> {
        self.tenants.load_full()
    }

    /// `/-/ready`: every collector of every tenant has tried once.
    pub fn ready(&self) -> bool {
        self.tenants()
            .iter()
            .flat_map(|t| &t.slots)
            .all(|s| s.state.load().attempted)
    }

    pub fn has_tenant(&self, name: &str) -> bool {
        self.tenants().iter().any(|t| t.name == name)
    }

    /// The whole exposition, or one tenant's (`/probe`), plain.
    pub fn render(&self, only: Option<&str>) -> Vec<u8> {
        self.render_plain(only, Vec::with_capacity).into_bytes()
    }

    /// The whole exposition as a gzip body spliced from cached segments
    /// (see [`crate::metrics::gzip`]).
    pub fn render_gzip(&self) -> Vec<u8> {
        self.gzip_with(String::new(), Vec::new()).0
    }

    /// A scrape's body in `encoding`, on buffers reused across scrapes.
    pub fn scrape(&self, only: Option<&str>, encoding: Encoding) -> Bytes {
        let body = match (encoding, only) {
            (Encoding::Identity, _) => self
                .render_plain(only, |size| self.buffers.take(size))
                .into_bytes(),
            (Encoding::Gzip, None) => {
                let (volatile, out) = (self.buffers.take_string(0), self.buffers.take(0));
                let (body, volatile) = self.gzip_with(volatile, out);
                self.buffers.give_back(volatile.into_bytes());
                body
            }
            // One tenant: a few kilobytes, compressed whole.
            (Encoding::Gzip, Some(_)) => Encoding::Gzip.encode(self.render(only)),
        };
        self.buffers.bytes(body)
    }

    /// Segments compressed for gzip scrapes so far (tests: cache reuse).
    pub fn gzip_cache(&self) -> &SegmentCache {
        &self.gzip
    }

    /// The plain body, into a buffer from `buffer(size)` (empty, with at
    /// least that capacity).
    fn render_plain(&self, only: Option<&str>, buffer: impl FnOnce(usize) -> Vec<u8>) -> String {
        let tenants = self.tenants();
        let scrape = Scrape::new(&tenants, &self.live, only);
        // Sized up front: growing a multi-megabyte body by doubling copied
        // it about twice more (BENCHMARKS.md).
        let size = scrape.size_hint();
        // An empty buffer is valid UTF-8.
        let mut out = String::from_utf8(buffer(size)).unwrap_or_default();
        out.reserve(size);
        scrape.walk(&mut out);
        out
    }

    fn gzip_with(&self, volatile: String, out: Vec<u8>) -> (Vec<u8>, String) {
        let tenants = self.tenants();
        let scrape = Scrape::new(&tenants, &self.live, None);
        let mut sink = GzipSink::new(&self.gzip, volatile);
        scrape.walk(&mut sink);
        sink.finish(out)
    }
}

/// What one scrape reads: the tenants' collector states, loaded once.
struct Scrape<'s> {
    live: &'s Live,
    only: Option<&'s str>,
    #[allow(clippy::type_complexity)]
    states: Vec<(
        &'s str,
        CollectorKind,
        Duration,
        arc_swap::Guard<Arc<CollectorState>>,
    )>,
    now: i64,
}

impl<'s> Scrape<'s> {
    fn new(tenants: &'s [Arc<TenantRuntime>], live: &'s Live, only: Option<&'s str>) -> Self {
        let states = tenants
            .iter()
            .filter(|t| only.is_none_or(|n| n == t.name))
            .flat_map(|t| {
                t.slots.iter().map(|s| {
                    (
                        t.name.as_str(),
                        s.collector.kind(),
                        s.collector.interval(),
                        s.state.load(),
                    )
                })
            })
            .collect();
        Scrape {
            live,
            only,
            states,
            now: now_unix() as i64,
        }
    }

    fn size_hint(&self) -> usize {
        let snapshots: usize = self
            .states
            .iter()
            .filter_map(|(_, _, _, st)| st.outcome.as_ref())
            .map(|o| o.rendered.len_bytes())
            .sum();
        16 * 1024 + snapshots + self.states.len() * 512
    }

    /// The exposition, family by family, into `sink`: the one walk behind
    /// the plain and the gzip body.
    fn walk<'a, S: Sink<'a>>(&'a self, sink: &mut S) {
        let mut next_chunk = vec![0; self.states.len()];
        for &fam in Family::ALL {
            let mut out = FamilyOut {
                sink: &mut *sink,
                fam,
                header: false,
            };
            match fam {
                Family::BuildInfo => {
                    let (text, hash) = build_info();
                    out.stable(*hash, text);
                }
                Family::CollectorSuccess
                | Family::CollectorLastSuccess
                | Family::CollectorDuration
                | Family::CollectorInterval => {
                    for (tenant, kind, interval, st) in &self.states {
                        let lines = st
                            .lines
                            .get_or_init(|| StateLines::new(tenant, *kind, *interval, st));
                        let (text, hash) = lines.get(fam);
                        match fam {
                            // A refresh changes these two: written anew each scrape.
                            Family::CollectorLastSuccess | Family::CollectorDuration => {
                                if !text.is_empty() {
                                    out.volatile().push_str(text)
                                }
                            }
                            _ => out.stable(hash, text),
                        }
                    }
                }
                _ => {
                    for ((_, _, _, st), next) in self.states.iter().zip(&mut next_chunk) {
                        let Some(o) = &st.outcome else { continue };
                        // Families come in order and each snapshot's chunks
                        // are sorted by family: a cursor per state, rather
                        // than a search per family and state.
                        let chunks = &o.rendered.families;
                        while chunks.get(*next).is_some_and(|c| c.family < fam) {
                            *next += 1;
                        }
                        if let Some(c) = chunks.get(*next).filter(|c| c.family == fam) {
                            *next += 1;
                            out.stable(c.hash, &c.text);
                        }
                        if o.rendered.has_ages(fam) {
                            o.rendered.write_ages(fam, self.now, out.volatile());
                        }
                    }
                }
            }
        }
        self.live.encode_text(self.only, sink.volatile());
    }
}

/// `m365_exporter_build_info`'s line, and its hash.
fn build_info() -> &'static (String, u64) {
    static LINE: OnceLock<(String, u64)> = OnceLock::new();
    LINE.get_or_init(|| {
        let mut line = String::new();
        let labels = [("version", crate::VERSION), ("revision", crate::REVISION)];
        write_sample(&mut line, Family::BuildInfo.name(), &labels, 1.0);
        let hash = content_hash(line.as_bytes());
        (line, hash)
    })
}

/// One family's part of the walk: its `# HELP`/`# TYPE` header goes out
/// before its first sample (stable or volatile, as that sample), and not
/// at all without samples.
struct FamilyOut<'k, S> {
    sink: &'k mut S,
    fam: Family,
    header: bool,
}

impl<'a, S: Sink<'a>> FamilyOut<'_, S> {
    fn stable(&mut self, hash: u64, text: &'a str) {
        if !text.is_empty() {
            self.stable_header();
            self.sink.stable(hash, text);
        }
    }

    fn volatile(&mut self) -> &mut String {
        let first = !std::mem::replace(&mut self.header, true);
        let out = self.sink.volatile();
        if first {
            out.push_str(self.fam.header());
        }
        out
    }

    fn stable_header(&mut self) {
        if !std::mem::replace(&mut self.header, true) {
            let h = self.fam.header();
            self.sink.stable(content_hash(h.as_bytes()), h);
        }
    }
}

async fn run_loop(tenant: String, slot: Arc<CollectorSlot>, mut shutdown: watch::Receiver<bool>) {
    let kind = slot.collector.kind().as_str();
    let interval = slot.collector.interval();
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let result = super::supervise::refresh(slot.collector.as_ref()).await;
        failures = if result.is_err() { failures + 1 } else { 0 };
        let partial = result.as_ref().ok().and_then(|o| o.failing.clone());
        let took = started.elapsed();
        let prev = slot.state.load_full();
        let mut next = next_state(&prev, result, took, interval);
        if let Some(reason) = partial {
            failed_in_part(&prev, &mut next, reason);
        }
        match (&prev.last_error, &next.last_error) {
            (old, Some(new)) if old.as_ref() != Some(new) => {
                tracing::warn!(tenant = %tenant, collector = kind, error = %new, "refresh failed");
            }
            (Some(_), None) => {
                tracing::info!(tenant = %tenant, collector = kind, "refresh recovered")
            }
            _ => {}
        }
        if !prev.attempted && next.success {
            tracing::info!(tenant = %tenant, collector = kind, took_ms = took.as_millis() as u64, "first refresh done");
        }
        slot.state.store(Arc::new(next));
        // ±10% jitter spreads tenants that share an interval over time.
        let jitter = rand::rng().random_range(0.9..1.1);
        let wait = next_wait(interval, failures)
            .mul_f64(jitter)
            .saturating_sub(took);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// First retry of a failed refresh; doubles per consecutive failure.
const FAILURE_RETRY: Duration = Duration::from_secs(5);

/// Time to the next refresh: the interval, or sooner after a failure
/// (5 s, 10 s, 20 s, … up to the interval), so a blip does not leave a
/// 5-minute collector failed for 5 minutes, while an outage is not hammered.
pub fn next_wait(interval: Duration, consecutive_failures: u32) -> Duration {
    match consecutive_failures {
        0 => interval,
        n => FAILURE_RETRY
            .saturating_mul(1 << (n - 1).min(16))
            .min(interval),
    }
}

/// The state after a refresh (pure, so its rules are tested directly).
pub fn next_state(
    prev: &CollectorState,
    result: Result<Outcome, CollectError>,
    took: Duration,
    interval: Duration,
) -> CollectorState {
    match result {
        Ok(outcome) => CollectorState {
            attempted: true,
            success: true,
            last_success_unix: Some(now_unix()),
            last_success_at: Some(Instant::now()),
            duration_seconds: took.as_secs_f64(),
            last_error: None,
            outcome: Some(Arc::new(outcome)),
            lines: OnceLock::new(),
        },
        Err(e) => {
            let fresh_enough = prev
                .last_success_at
                .is_some_and(|t| t.elapsed() <= interval * STALE_INTERVALS);
            CollectorState {
                attempted: true,
                success: false,
                last_success_unix: prev.last_success_unix,
                last_success_at: prev.last_success_at,
                duration_seconds: took.as_secs_f64(),
                last_error: Some(e.0),
                outcome: if fresh_enough {
                    prev.outcome.clone()
                } else {
                    None
                },
                lines: OnceLock::new(),
            }
        }
    }
}

/// An `Ok` refresh that failed in part ([`Outcome::failing`]): its outcome
/// is current, but it is not a success (success 0, last success unchanged,
/// the reason logged).
pub fn failed_in_part(prev: &CollectorState, next: &mut CollectorState, reason: String) {
    next.success = false;
    next.last_success_unix = prev.last_success_unix;
    next.last_success_at = prev.last_success_at;
    next.last_error = Some(reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SnapshotWriter;
    use flate2::read::GzDecoder;
    use std::io::Read as _;

    /// A snapshot of ~1.5 KB in two families, and an age.
    fn outcome(tenant: &str, version: u32) -> Outcome {
        let mut w = SnapshotWriter::new();
        for s in 0..8 {
            let svc = format!("Service {s}");
            let status = format!("status{version}");
            let labels = [("tenant", tenant), ("service", &svc), ("status", &status)];
            w.sample(Family::ServiceStatus, &labels, 1.0);
            w.sample(Family::ServiceOperational, &labels[..2], (s % 2) as f64);
        }
        // An age of 0 whenever it is scraped (no `since`): plain and gzip
        // bodies rendered a second apart stay equal.
        w.age(Family::ActivityBlobLag, &[("tenant", tenant)], None);
        Outcome {
            rendered: w.finish(),
            ..Outcome::default()
        }
    }

    fn slot(kind: CollectorKind, st: CollectorState) -> Arc<CollectorSlot> {
        Arc::new(CollectorSlot {
            collector: Arc::new(Idle(kind)),
            state: ArcSwap::from_pointee(st),
        })
    }

    fn refreshed(tenant: &str, version: u32) -> CollectorState {
        CollectorState {
            attempted: true,
            success: version % 3 != 2,
            last_success_unix: Some(1.8e9 + version as f64),
            duration_seconds: 0.25,
            outcome: Some(Arc::new(outcome(tenant, version))),
            ..CollectorState::default()
        }
    }

    fn tenant(i: usize) -> Arc<TenantRuntime> {
        let name = format!("tenant-{i:04}");
        Arc::new(TenantRuntime {
            slots: vec![
                slot(CollectorKind::ServiceHealth, refreshed(&name, 0)),
                // Never refreshed: only its interval is exposed.
                slot(CollectorKind::Messages, CollectorState::default()),
            ],
            name,
        })
    }

    /// The gzip scrape is one member that decodes to the plain scrape.
    fn assert_gzip_is_plain(store: &Store) {
        let gz = store.scrape(None, Encoding::Gzip);
        let mut text = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut text).unwrap();
        let plain = store.scrape(None, Encoding::Identity);
        assert_eq!(text.len(), plain.len());
        assert!(text == plain, "gzip and plain bodies differ");
        assert!(
            gz.len() * 10 < plain.len(),
            "{} of {}",
            gz.len(),
            plain.len()
        );
    }

    #[test]
    fn gzip_scrapes_reuse_cached_segments_as_tenants_change() {
        let live = Arc::new(Live::new());
        let store = Store::new((0..300).map(tenant).collect(), live.clone());
        assert_gzip_is_plain(&store);
        let first = store.gzip_cache().compressed();
        assert!(first >= 5, "{first} segments");

        // Nothing stable changed (the live counters did): no stable
        // segment is compressed again.
        live.api_requests
            .with_label_values(&["tenant-0001", "graph", "issues", "200"])
            .inc();
        assert_gzip_is_plain(&store);
        assert_eq!(store.gzip_cache().compressed(), first);

        // One tenant refreshed with new text, another failed (its
        // success and last success change): a few blocks again.
        let t = store.tenants();
        t[7].slots[0]
            .state
            .store(Arc::new(refreshed("tenant-0007", 1)));
        t[8].slots[0]
            .state
            .store(Arc::new(refreshed("tenant-0008", 2)));
        assert_gzip_is_plain(&store);
        let again = store.gzip_cache().compressed() - first;
        assert!((1..=8).contains(&again), "{again} of {first} recompressed");

        // Tenants removed and added (a reload): still the plain text; the
        // cache holds no more than what the last scrape used.
        let mut list: Vec<_> = t.iter().skip(50).cloned().collect();
        list.extend((300..340).map(tenant));
        store.tenants.store(Arc::new(list));
        assert_gzip_is_plain(&store);
        assert!(store.gzip_cache().len() <= first as usize + 2);
        store.tenants.store(Arc::new(Vec::new()));
        assert_gzip_is_plain_or_tiny(&store);
    }

    fn assert_gzip_is_plain_or_tiny(store: &Store) {
        let gz = store.scrape(None, Encoding::Gzip);
        let mut text = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut text).unwrap();
        assert_eq!(text, store.render(None));
    }

    #[test]
    fn probe_gzip_is_one_tenant() {
        let store = Store::new((0..3).map(tenant).collect(), Arc::new(Live::new()));
        let gz = store.scrape(Some("tenant-0001"), Encoding::Gzip);
        let mut text = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut text).unwrap();
        assert_eq!(text, store.render(Some("tenant-0001")));
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("tenant-0001") && !text.contains("tenant-0002"));
        assert!(text.contains("# TYPE m365_activity_blob_lag_seconds gauge\nm365_activity_blob_lag_seconds{tenant=\"tenant-0001\"} 0\n"), "{text}");
    }

    #[test]
    fn failed_refreshes_retry_sooner_with_backoff() {
        let i = Duration::from_secs(300);
        let waits: Vec<u64> = (0..8).map(|n| next_wait(i, n).as_secs()).collect();
        assert_eq!(waits, [300, 5, 10, 20, 40, 80, 160, 300]);
        assert_eq!(next_wait(Duration::from_secs(2), 1), Duration::from_secs(2));
        assert_eq!(next_wait(i, 40), i);
    }

    #[test]
    fn keeps_last_good_snapshot_for_three_intervals() {
        let ok = next_state(
            &CollectorState::default(),
            Ok(Outcome::default()),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert!(ok.success && ok.outcome.is_some());
        let failed = next_state(
            &ok,
            Err(CollectError("boom".into())),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert!(!failed.success);
        assert!(failed.outcome.is_some(), "kept within 3 intervals");
        assert_eq!(failed.last_error.as_deref(), Some("boom"));
        assert_eq!(failed.last_success_unix, ok.last_success_unix);
        let mut old = ok;
        old.last_success_at = Instant::now().checked_sub(Duration::from_secs(181));
        let dropped = next_state(
            &old,
            Err(CollectError("boom".into())),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert!(dropped.outcome.is_none(), "dropped after 3 intervals");
    }

    #[test]
    fn partial_failure_keeps_the_fresh_outcome_but_is_no_success() {
        let prev = CollectorState::default();
        let mut next = next_state(
            &prev,
            Ok(Outcome::default()),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        failed_in_part(&prev, &mut next, "Audit.Exchange: no subscription".into());
        assert!(next.attempted && !next.success);
        assert!(next.outcome.is_some());
        assert!(next.last_success_unix.is_none());
        assert_eq!(
            next.last_error.as_deref(),
            Some("Audit.Exchange: no subscription")
        );
    }
}
