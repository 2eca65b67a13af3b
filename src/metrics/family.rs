//! Live metric families (counters, gauges, histograms by label values),
//! written straight to the text format.
//!
//! Why not `prometheus::Registry`: its `gather()` builds a protobuf message
//! per series, clones every label pair and sorts each family on every
//! scrape; at 200 tenants that was 72% of a scrape's instructions for 6% of
//! its series (BENCHMARKS.md). Here each series renders its label set once,
//! when it is created, and a scrape writes `name{labels} value` from an
//! atomic. Series are kept sorted by label values (tenant first), so
//! `/probe` reads one tenant's range and a removed tenant's series go with
//! [`MetricVec::remove_tenant`].

use super::text::{escape_label, write_int, write_value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

/// What one series holds and how it is written.
pub trait Cell: Send + Sync + 'static {
    /// Per-family settings (histogram buckets).
    type Opts: Send + Sync;
    const KIND: &'static str;
    fn new(opts: &Self::Opts) -> Self;
    /// Write the sample line(s); `labels` is `a="x",b="y"` (may be empty).
    fn write(&self, opts: &Self::Opts, name: &str, labels: &str, out: &mut String);
}

/// A monotonic integer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

impl Cell for Counter {
    type Opts = ();
    const KIND: &'static str = "counter";
    fn new(_: &()) -> Self {
        Counter::default()
    }
    fn write(&self, _: &(), name: &str, labels: &str, out: &mut String) {
        line(out, name, "", labels, None);
        write_u64(out, self.get());
        out.push('\n');
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed);
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
}

impl Cell for Gauge {
    type Opts = ();
    const KIND: &'static str = "gauge";
    fn new(_: &()) -> Self {
        Gauge::default()
    }
    fn write(&self, _: &(), name: &str, labels: &str, out: &mut String) {
        line(out, name, "", labels, None);
        write_value(out, self.get());
        out.push('\n');
    }
}

/// Observations counted into fixed buckets (upper bounds, ascending).
#[derive(Debug)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    /// Per bucket, not cumulative; the last one is +Inf.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Relaxed);
        let _ = self.sum_bits.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + v).to_bits())
        });
    }

    pub fn sample_count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub fn sample_sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Relaxed))
    }
}

impl Cell for Histogram {
    type Opts = Arc<[f64]>;
    const KIND: &'static str = "histogram";
    fn new(bounds: &Arc<[f64]>) -> Self {
        Histogram {
            bounds: bounds.clone(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }
    fn write(&self, _: &Arc<[f64]>, name: &str, labels: &str, out: &mut String) {
        let mut cumulative = 0;
        let mut le = String::new();
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Relaxed);
            le.clear();
            match self.bounds.get(i) {
                Some(b) => write_value(&mut le, *b),
                None => le.push_str("+Inf"),
            }
            line(out, name, "_bucket", labels, Some(&le));
            write_u64(out, cumulative);
            out.push('\n');
        }
        line(out, name, "_sum", labels, None);
        write_value(out, self.sample_sum());
        out.push('\n');
        line(out, name, "_count", labels, None);
        write_u64(out, cumulative);
        out.push('\n');
    }
}

fn write_u64(out: &mut String, v: u64) {
    match i64::try_from(v) {
        Ok(i) => write_int(out, i),
        Err(_) => {
            let _ = write!(out, "{v}");
        }
    }
}

/// `name{suffix}{labels[,le="…"]} ` (no braces without labels).
fn line(out: &mut String, name: &str, suffix: &str, labels: &str, le: Option<&str>) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str("le=\"");
            out.push_str(le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Label values, one per label name.
type Key = Box<[Box<str>]>;
type SeriesMap<C> = BTreeMap<Key, Series<C>>;

struct Series<C> {
    /// `a="x",b="y"`, escaped, rendered once.
    labels: Box<str>,
    cell: Arc<C>,
}

/// One family: its series by label values, sorted.
pub struct MetricVec<C: Cell> {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    opts: C::Opts,
    series: RwLock<SeriesMap<C>>,
}

pub type IntCounterVec = MetricVec<Counter>;
pub type GaugeVec = MetricVec<Gauge>;
pub type HistogramVec = MetricVec<Histogram>;

impl<C: Cell> MetricVec<C> {
    pub fn with_opts(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
        opts: C::Opts,
    ) -> Self {
        MetricVec {
            name,
            help,
            label_names,
            opts,
            series: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The series for these label values (one per label name, in order),
    /// created at zero on first use.
    pub fn with_label_values(&self, values: &[&str]) -> Arc<C> {
        debug_assert_eq!(values.len(), self.label_names.len(), "{}", self.name);
        let key: Key = values.iter().map(|v| Box::from(*v)).collect();
        if let Some(s) = self.read().get(&key) {
            return s.cell.clone();
        }
        let mut w = self.series.write().unwrap_or_else(|p| p.into_inner());
        w.entry(key)
            .or_insert_with(|| {
                let mut labels = String::new();
                for (i, (k, v)) in self.label_names.iter().zip(values).enumerate() {
                    if i > 0 {
                        labels.push(',');
                    }
                    labels.push_str(k);
                    labels.push_str("=\"");
                    escape_label(&mut labels, v);
                    labels.push('"');
                }
                Series {
                    labels: labels.into_boxed_str(),
                    cell: Arc::new(C::new(&self.opts)),
                }
            })
            .cell
            .clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SeriesMap<C>> {
        self.series.read().unwrap_or_else(|p| p.into_inner())
    }

    fn tenant_at(&self) -> Option<usize> {
        self.label_names.iter().position(|l| *l == "tenant")
    }

    /// Drop the series with exactly these label values; whether it existed.
    pub fn remove_label_values(&self, values: &[&str]) -> bool {
        let key: Key = values.iter().map(|v| Box::from(*v)).collect();
        self.series
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key)
            .is_some()
    }

    /// Drop every series of `tenant` (a tenant removed from the config).
    pub fn remove_tenant(&self, tenant: &str) {
        if let Some(i) = self.tenant_at() {
            self.series
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|k, _| &*k[i] != tenant);
        }
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A family as the scrape sees it.
pub trait Encode: Send + Sync {
    fn name(&self) -> &'static str;
    /// HELP, TYPE and every series (only `tenant`'s with `Some`); nothing
    /// when there is no series.
    fn encode(&self, tenant: Option<&str>, out: &mut String);
    fn remove_tenant(&self, tenant: &str);
}

impl<C: Cell> Encode for MetricVec<C> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn encode(&self, tenant: Option<&str>, out: &mut String) {
        let series = self.read();
        let at = self.tenant_at();
        let mut header = false;
        for (key, s) in series.iter() {
            if let Some(t) = tenant {
                // Families without `tenant` are exporter-wide: not in /probe.
                match at {
                    Some(i) if &*key[i] == t => {}
                    _ => continue,
                }
            }
            if !header {
                header = true;
                let _ = write!(
                    out,
                    "# HELP {n} {}\n# TYPE {n} {}\n",
                    self.help,
                    C::KIND,
                    n = self.name
                );
            }
            s.cell.write(&self.opts, self.name, &s.labels, out);
        }
    }

    fn remove_tenant(&self, tenant: &str) {
        MetricVec::remove_tenant(self, tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_histograms_in_text_format() {
        let c = IntCounterVec::with_opts("c_total", "C.", &["tenant", "code"], ());
        c.with_label_values(&["b", "200"]).inc();
        c.with_label_values(&["a", "5\"0\n"]).inc_by(3);
        c.with_label_values(&["b", "200"]).inc();
        let g = GaugeVec::with_opts("g", "G.", &[], ());
        g.with_label_values(&[]).set(1.5);
        let h = HistogramVec::with_opts("h_seconds", "H.", &["api"], Arc::from(&[0.1, 1.0][..]));
        let x = h.with_label_values(&["graph"]);
        x.observe(0.25);
        x.observe(0.5);
        x.observe(7.0);
        let mut out = String::new();
        for f in [&c as &dyn Encode, &g, &h] {
            f.encode(None, &mut out);
        }
        assert_eq!(
            out,
            "# HELP c_total C.\n# TYPE c_total counter\n\
             c_total{tenant=\"a\",code=\"5\\\"0\\n\"} 3\n\
             c_total{tenant=\"b\",code=\"200\"} 2\n\
             # HELP g G.\n# TYPE g gauge\ng 1.5\n\
             # HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{api=\"graph\",le=\"0.1\"} 0\n\
             h_seconds_bucket{api=\"graph\",le=\"1\"} 2\n\
             h_seconds_bucket{api=\"graph\",le=\"+Inf\"} 3\n\
             h_seconds_sum{api=\"graph\"} 7.75\n\
             h_seconds_count{api=\"graph\"} 3\n"
        );
        assert_eq!(x.sample_count(), 3);
    }

    #[test]
    fn one_tenant_and_removal() {
        let c = IntCounterVec::with_opts("c_total", "C.", &["tenant"], ());
        for t in ["a", "b", "c"] {
            c.with_label_values(&[t]).inc();
        }
        let h = HistogramVec::with_opts("h", "H.", &["api"], Arc::from(&[1.0][..]));
        h.with_label_values(&["graph"]).observe(0.5);
        let mut out = String::new();
        c.encode(Some("b"), &mut out);
        h.encode(Some("b"), &mut out);
        assert_eq!(
            out,
            "# HELP c_total C.\n# TYPE c_total counter\nc_total{tenant=\"b\"} 1\n"
        );
        c.remove_tenant("b");
        assert_eq!(c.len(), 2);
        out.clear();
        c.encode(Some("b"), &mut out);
        assert!(out.is_empty(), "no header without series");
    }
}
