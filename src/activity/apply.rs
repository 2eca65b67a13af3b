//! A fetched blob's records: which are new (by record `Id`, against the
//! remembered ids and the blob itself), the sink lines and ids they add,
//! and their counts (`m365_activity_records_total` with a bounded
//! `workload`, duplicates, record delay).

use super::recent::{key, RecentIds};
use super::records::{parse_blob, Lines};
use super::workloads::WorkloadCap;
use super::Content;
use crate::metrics::Live;
use bytes::Bytes;
use rustc_hash::FxHashSet;

/// What one blob adds.
#[derive(Debug, Default)]
pub struct Applied {
    /// NDJSON lines for the sink (none without one): spans of the blob.
    pub lines: Option<Lines>,
    /// Ids remembered now, with their hour (for the id log).
    pub new_ids: Vec<(u128, i32)>,
    pub records: usize,
    pub duplicates: u64,
}

pub struct Counting<'a> {
    pub live: &'a Live,
    pub tenant: &'a str,
    pub operations: &'a [String],
    pub workloads: &'a mut WorkloadCap,
    pub sink: bool,
}

/// Parse, dedupe, count and remember; `Err` (nothing counted or remembered)
/// when the blob does not parse.
pub fn apply(
    body: &Bytes,
    c: &Content,
    recent: &mut RecentIds,
    k: &mut Counting<'_>,
) -> Result<Applied, String> {
    let records = parse_blob(body)?;
    let mut out = Applied::default();
    let mut lines = k.sink.then(|| Lines::new(body.clone()));
    if let Some(l) = &mut lines {
        l.reserve(records.len());
    }
    out.new_ids.reserve(records.len());
    // Keys are UUID bits or FNV hashes, and a blob is one tenant's own
    // records: no flooding to defend against, so FxHash, not SipHash (4% of
    // a catch-up's instructions went to SipHash).
    let mut in_blob = FxHashSet::with_capacity_and_hasher(records.len(), rustc_hash::FxBuildHasher);
    let ct = c.content_type.as_str();
    let ct_labels = [k.tenant, ct];
    // Series looked up once per blob, not per record (a lookup allocates
    // its key and takes the family's lock): the delay histogram here, the
    // record counters per distinct (workload, operation) after the loop.
    let mut delay = None;
    let mut counts: Vec<(&str, &str, u64)> = Vec::new();
    for r in &records {
        let when = r.creation_time.map(|t| t as i64).unwrap_or(c.created);
        if let Some(id) = r.id.as_deref().map(key) {
            if recent.contains(id) || !in_blob.insert(id) {
                out.duplicates += 1;
                continue;
            }
            recent.insert(id, when);
            out.new_ids.push((id, RecentIds::hour_of(when)));
        }
        if let Some(l) = &mut lines {
            l.push(r.raw);
        }
        out.records += 1;
        let op = r
            .operation
            .as_deref()
            .filter(|o| k.operations.iter().any(|a| a == o))
            .unwrap_or("");
        let workload = k
            .workloads
            .label(k.tenant, r.workload.as_deref().unwrap_or(""));
        match counts
            .iter_mut()
            .find(|(w, o, _)| *w == workload && *o == op)
        {
            Some((_, _, n)) => *n += 1,
            None => counts.push((workload, op, 1)),
        }
        if let Some(t) = r.creation_time {
            delay
                .get_or_insert_with(|| k.live.activity_delay.with_label_values(&ct_labels))
                .observe((c.created as f64 - t).max(0.0));
        }
    }
    for (workload, op, n) in counts {
        k.live
            .activity_records
            .with_label_values(&[k.tenant, ct, workload, op])
            .inc_by(n);
    }
    out.lines = lines.filter(|l| !l.is_empty());
    if out.duplicates > 0 {
        k.live
            .activity_duplicates
            .with_label_values(&ct_labels)
            .inc_by(out.duplicates);
    }
    Ok(out)
}
