//! The scrape walk: everything a scrape reads ([`Store`]: the running
//! tenants' slots and the live counters), walked once per scrape family by
//! family into a plain or a gzip body. Performance-critical (BENCHMARKS.md):
//! a scrape only loads states and copies pre-rendered text.

use super::slot::{CollectorSlot, CollectorState, StateLines, TenantRuntime};
use crate::buffers::BufferPool;
use crate::metrics::body::ScrapeBody;
use crate::metrics::gzip::{GzipBody, SegmentCache};
use crate::metrics::text::{content_hash, write_sample};
use crate::metrics::{Encoding, Family, Live};
use crate::timefmt::now_unix;
use arc_swap::ArcSwap;
use bytes::Bytes;
use std::sync::{Arc, OnceLock};

/// Everything a scrape reads. The tenant list is swapped whole by a reload
/// (see `fleet`); a scrape works on the list it loaded.
pub struct Store {
    pub tenants: ArcSwap<Vec<Arc<TenantRuntime>>>,
    pub live: Arc<Live>,
    /// Deflate segments of stable text, kept across gzip scrapes.
    gzip: SegmentCache,
    buffers: Arc<BufferPool>,
    /// Writes the `process_*` families (tests: a fixed text, so that two
    /// scrapes can be compared).
    process: fn(&mut String),
}

impl Store {
    pub fn new(tenants: Vec<Arc<TenantRuntime>>, live: Arc<Live>) -> Store {
        Store {
            tenants: ArcSwap::from_pointee(tenants),
            live,
            gzip: SegmentCache::new(),
            buffers: BufferPool::new(),
            process: crate::metrics::process::encode,
        }
    }

    /// The same store with the process families written by `f`.
    #[cfg(test)]
    fn with_process(self, f: fn(&mut String)) -> Store {
        Store { process: f, ..self }
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
        let scrape = Scrape::new(&tenants, &self.live, only, self.process);
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
        let scrape = Scrape::new(&tenants, &self.live, None, self.process);
        let mut body = GzipBody::new(&self.gzip, volatile);
        scrape.walk(&mut body);
        body.finish(out)
    }
}

/// What one scrape reads: the tenants' collector states, loaded once.
struct Scrape<'s> {
    live: &'s Live,
    only: Option<&'s str>,
    process: fn(&mut String),
    #[allow(clippy::type_complexity)]
    states: Vec<(
        &'s str,
        &'s CollectorSlot,
        arc_swap::Guard<Arc<CollectorState>>,
    )>,
    now: i64,
}

impl<'s> Scrape<'s> {
    fn new(
        tenants: &'s [Arc<TenantRuntime>],
        live: &'s Live,
        only: Option<&'s str>,
        process: fn(&mut String),
    ) -> Self {
        let states = tenants
            .iter()
            .filter(|t| only.is_none_or(|n| n == t.name))
            .flat_map(|t| {
                t.slots
                    .iter()
                    .map(|s| (t.name.as_str(), &**s, s.state.load()))
            })
            .collect();
        Scrape {
            live,
            only,
            process,
            states,
            now: now_unix() as i64,
        }
    }

    fn size_hint(&self) -> usize {
        let snapshots: usize = self
            .states
            .iter()
            .filter_map(|(_, _, st)| st.outcome.as_ref())
            .map(|o| o.rendered.len_bytes())
            .sum();
        16 * 1024 + snapshots + self.states.len() * 512
    }

    /// The exposition, family by family, into `body`: the one walk behind
    /// the plain and the gzip body.
    fn walk<'a, B: ScrapeBody<'a>>(&'a self, body: &mut B) {
        let mut next_chunk = vec![0; self.states.len()];
        for &fam in Family::ALL {
            let mut out = FamilyOut {
                body: &mut *body,
                fam,
                header: false,
            };
            match fam {
                // Exporter-wide: on /metrics, not on /probe (one target's
                // series; the exporter's own build is the /metrics job's).
                Family::BuildInfo if self.only.is_some() => {}
                Family::BuildInfo => {
                    let (text, hash) = build_info();
                    out.stable(*hash, text);
                }
                Family::CollectorSuccess
                | Family::CollectorLastSuccess
                | Family::CollectorDuration
                | Family::CollectorInterval
                | Family::CollectorStart => {
                    for (tenant, slot, st) in &self.states {
                        let lines = st.lines.get_or_init(|| StateLines::new(tenant, slot, st));
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
                    for ((_, _, st), next) in self.states.iter().zip(&mut next_chunk) {
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
                            out.stable(c.hash, o.rendered.text(c));
                        }
                        if o.rendered.has_ages(fam) {
                            o.rendered.write_ages(fam, self.now, out.volatile());
                        }
                    }
                }
            }
        }
        self.live.encode_text(self.only, body.volatile());
        // Exporter-wide: on /metrics, not on /probe.
        if self.only.is_none() {
            (self.process)(body.volatile());
        }
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
struct FamilyOut<'k, B> {
    body: &'k mut B,
    fam: Family,
    header: bool,
}

impl<'a, B: ScrapeBody<'a>> FamilyOut<'_, B> {
    fn stable(&mut self, hash: u64, text: &'a str) {
        if !text.is_empty() {
            self.stable_header();
            self.body.stable(hash, text);
        }
    }

    fn volatile(&mut self) -> &mut String {
        let first = !std::mem::replace(&mut self.header, true);
        let out = self.body.volatile();
        if first {
            out.push_str(self.fam.header());
        }
        out
    }

    fn stable_header(&mut self) {
        if !std::mem::replace(&mut self.header, true) {
            let h = self.fam.header();
            self.body.stable(content_hash(h.as_bytes()), h);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::slot::Idle;
    use crate::collect::CollectorKind;
    use crate::collect::Outcome;
    use crate::metrics::SnapshotWriter;
    use flate2::read::GzDecoder;
    use std::io::Read as _;

    /// A snapshot of ~1.5 KB in two families, and an age; `version` is in
    /// the status lines, and with `all_down` every service is not operational.
    fn outcome_of(tenant: &str, version: u32, all_down: bool) -> Outcome {
        let mut w = SnapshotWriter::new();
        for s in 0..8 {
            let svc = format!("Service {s}");
            let status = format!("status{version}");
            let labels = [("tenant", tenant), ("service", &svc), ("status", &status)];
            let operational = !all_down && s % 2 == 1;
            w.sample(Family::ServiceStatus, &labels, 1.0);
            w.sample(
                Family::ServiceOperational,
                &labels[..2],
                f64::from(u8::from(operational)),
            );
        }
        // An age of 0 whenever it is scraped (no `since`): plain and gzip
        // bodies rendered a second apart stay equal.
        w.age(Family::ActivityBlobLag, &[("tenant", tenant)], None);
        Outcome {
            rendered: w.finish(),
            ..Outcome::default()
        }
    }

    fn outcome(tenant: &str, version: u32) -> Outcome {
        outcome_of(tenant, version, false)
    }

    fn slot(kind: CollectorKind, st: CollectorState) -> Arc<CollectorSlot> {
        Arc::new(CollectorSlot::with_state(Arc::new(Idle(kind)), st))
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

    /// The gzip cache's accounting, exact whatever the block boundaries:
    /// they depend on the per-process random keys of `content_hash` and on
    /// the slots' start times, so how many blocks a change touches varies
    /// from run to run (bounds on that count made this test flaky); what
    /// does not vary is that a block is compressed exactly when the cache
    /// lacks it, and the cache holds exactly the blocks of the last scrape.
    #[test]
    fn gzip_scrapes_reuse_cached_segments_as_tenants_change() {
        let live = Arc::new(Live::new());
        let store = Store::new((0..300).map(tenant).collect(), live.clone()).with_process(fixed);
        assert_gzip_is_plain(&store);
        // At least the two runs of stable text (before and after the
        // volatile last-success lines); how many more is chance (5 to 14
        // in 200 runs).
        let first = store.gzip_cache().compressed();
        assert!(first >= 2, "{first} segments");
        assert_eq!(store.gzip_cache().len() as u64, first, "each block once");

        // Nothing stable changed (the live counters did): no stable
        // segment is compressed again.
        live.api_requests
            .with_label_values(&["tenant-0001", "graph", "issues", "200"])
            .inc();
        assert_gzip_is_plain(&store);
        assert_eq!(store.gzip_cache().compressed(), first);

        // The last stable item changed (the last tenant's services all went
        // down): the blocks before it keep their boundaries, so only the
        // last block is compressed again.
        let t = store.tenants();
        let before = store.gzip_cache().compressed();
        t[299].slots[0].state.store(Arc::new(CollectorState {
            outcome: Some(Arc::new(outcome_of("tenant-0299", 0, true))),
            ..refreshed("tenant-0299", 0)
        }));
        assert_gzip_is_plain(&store);
        assert_eq!(store.gzip_cache().compressed() - before, 1);

        // One tenant refreshed with new text, another failed (its success
        // and last success change): the blocks from those tenants on may
        // move (how many is chance), and exactly the new ones are compressed.
        let held = store.gzip_cache().keys();
        let before = store.gzip_cache().compressed();
        t[7].slots[0]
            .state
            .store(Arc::new(refreshed("tenant-0007", 1)));
        t[8].slots[0]
            .state
            .store(Arc::new(refreshed("tenant-0008", 2)));
        assert_gzip_is_plain(&store);
        let again = store.gzip_cache().compressed() - before;
        let now = store.gzip_cache().keys();
        assert!(again >= 1, "the changed text is compressed");
        assert_eq!(again as usize, now.difference(&held).count());

        // Tenants removed and added (a reload): still the plain text; the
        // cache holds the blocks of the last scrape and no more (as many as
        // a fresh cache compresses for the same tenants).
        let mut list: Vec<_> = t.iter().skip(50).cloned().collect();
        list.extend((300..340).map(tenant));
        store.tenants.store(Arc::new(list.clone()));
        assert_gzip_is_plain(&store);
        let fresh = Store::new(list, live.clone()).with_process(fixed);
        fresh.scrape(None, Encoding::Gzip);
        assert_eq!(
            store.gzip_cache().len() as u64,
            fresh.gzip_cache().compressed()
        );
        assert_eq!(store.gzip_cache().keys(), fresh.gzip_cache().keys());
        store.tenants.store(Arc::new(Vec::new()));
        assert_gzip_is_plain_or_tiny(&store);
    }

    fn assert_gzip_is_plain_or_tiny(store: &Store) {
        let gz = store.scrape(None, Encoding::Gzip);
        let mut text = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut text).unwrap();
        assert_eq!(text, store.render(None));
    }

    /// Process families that do not change between two scrapes.
    fn fixed(out: &mut String) {
        out.push_str("# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds 7\n");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_families_on_metrics_not_on_probe() {
        let store = Store::new((0..2).map(tenant).collect(), Arc::new(Live::new()));
        let all = String::from_utf8(store.render(None)).unwrap();
        let one = String::from_utf8(store.render(Some("tenant-0001"))).unwrap();
        for f in crate::metrics::ProcessFamily::ALL {
            assert!(all.contains(f.header()), "{all}");
            assert!(!one.contains(f.def().name), "{one}");
        }
        // No exporter-wide family on /probe: every sample there is the
        // tenant's (build_info, like the process families, is on /metrics).
        assert!(all.contains("\nm365_exporter_build_info{"), "{all}");
        for line in one.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains("tenant=\"tenant-0001\""), "{line}");
        }
        // In the gzip body too, after the live families.
        let store = store.with_process(fixed);
        let gz = store.scrape(None, Encoding::Gzip);
        let mut text = String::new();
        GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
        assert!(text.ends_with("process_open_fds 7\n"), "{text}");
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
}
