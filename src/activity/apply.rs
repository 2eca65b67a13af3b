//! The apply stage: a fetched blob's records, which are new (by record
//! `Id`, against the remembered ids and the blob itself), the sink lines
//! they add, and their counts: duplicates and record delay reported at once
//! through the content type's [`TypeEvents`]; new records as a
//! [`RecordCounts`] (`m365_activity_records_total`, bounded `workload`)
//! that goes with the lines to the checkpoint, which counts it once it has
//! written them. It owns the record ids of the last 7 days and the ids
//! remembered since the last save, which the checkpoint persists.

use super::events::{RecordCounts, TypeEvents};
use super::idlog;
use super::recent::{key, RecentIds};
use super::records::{parse_blob, Lines};
use super::workloads::WorkloadCap;
use super::Content;
use bytes::Bytes;
use rustc_hash::FxHashSet;

/// What one blob added.
#[derive(Debug, Default)]
pub struct NewRecords {
    /// NDJSON lines for the sink (none without one): spans of the blob.
    pub lines: Option<Lines>,
    pub records: usize,
    pub duplicates: u64,
    /// The new records by series, to be counted by the checkpoint.
    pub counts: RecordCounts,
}

pub struct Applier {
    tenant: String,
    /// `activity.operations`: the `operation` label's allowlist.
    operations: Vec<String>,
    /// With `activity.output`: keep each new record's line.
    sink: bool,
    workloads: WorkloadCap,
    recent: RecentIds,
    /// Ids remembered since the last save, as id-log entries (20 bytes
    /// each: at line rate they add up between two saves).
    new_ids: Vec<u8>,
}

impl Applier {
    /// `recent`: the ids the last checkpoint remembered.
    pub fn new(tenant: &str, operations: &[String], sink: bool, recent: RecentIds) -> Self {
        Applier {
            tenant: tenant.to_string(),
            operations: operations.to_vec(),
            sink,
            workloads: WorkloadCap::default(),
            recent,
            new_ids: Vec::new(),
        }
    }

    /// Every remembered id (for a checkpoint that compacts the id log).
    pub fn recent(&self) -> &RecentIds {
        &self.recent
    }

    /// Forget ids older than Microsoft keeps content.
    pub fn prune(&mut self, now: i64) {
        self.recent.prune(now);
    }

    /// The ids remembered since the last call, as id-log entries.
    pub fn take_new_ids(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.new_ids)
    }

    /// Parse, dedupe, count (the new records only into the returned
    /// [`NewRecords::counts`]) and remember; `Err` (nothing counted or
    /// remembered) when the blob does not parse.
    pub fn apply(
        &mut self,
        body: &Bytes,
        c: &Content,
        ev: &mut TypeEvents,
    ) -> Result<NewRecords, String> {
        self.apply_from(body, c.created, true, ev)
    }

    /// Records from another source than a blob (the reconciler's repair: a
    /// JSON array of the query's `auditData` objects), deduplicated,
    /// counted and remembered like a blob's; `at` stands in for a record
    /// without `CreationTime`. No record delay is observed: there is no
    /// `contentCreated` to measure it against.
    pub fn repair(
        &mut self,
        body: &Bytes,
        at: i64,
        ev: &mut TypeEvents,
    ) -> Result<NewRecords, String> {
        self.apply_from(body, at, false, ev)
    }

    /// `created`: the blob's contentCreated (or the stand-in time);
    /// `delay`: observe each record's delay against it.
    fn apply_from(
        &mut self,
        body: &Bytes,
        created: i64,
        delay: bool,
        ev: &mut TypeEvents,
    ) -> Result<NewRecords, String> {
        let records = parse_blob(body)?;
        let mut out = NewRecords::default();
        let mut lines = self.sink.then(|| Lines::new(body.clone()));
        if let Some(l) = &mut lines {
            l.reserve(records.len());
        }
        self.new_ids.reserve(records.len() * idlog::ENTRY as usize);
        // Keys are UUID bits or FNV hashes, and a blob is one tenant's own
        // records: no flooding to defend against, so FxHash, not SipHash (4% of
        // a catch-up's instructions went to SipHash).
        let mut in_blob =
            FxHashSet::with_capacity_and_hasher(records.len(), rustc_hash::FxBuildHasher);
        // Record counts summed per blob, then one event per distinct
        // (workload, operation): a handful per blob, not one per record.
        let mut counts: Vec<(&str, &str, u64)> = Vec::new();
        for r in &records {
            let when = r.creation_time.map(|t| t as i64).unwrap_or(created);
            if let Some(id) = r.id.as_deref().map(key) {
                if self.recent.contains(id) || !in_blob.insert(id) {
                    out.duplicates += 1;
                    continue;
                }
                self.recent.insert(id, when);
                idlog::push(&mut self.new_ids, id, RecentIds::hour_of(when));
            }
            if let Some(l) = &mut lines {
                l.push(r.raw);
            }
            out.records += 1;
            let op = r
                .operation
                .as_deref()
                .filter(|o| self.operations.iter().any(|a| a == o))
                .unwrap_or("");
            let workload = self
                .workloads
                .label(&self.tenant, r.workload.as_deref().unwrap_or(""));
            match counts
                .iter_mut()
                .find(|(w, o, _)| *w == workload && *o == op)
            {
                Some((_, _, n)) => *n += 1,
                None => counts.push((workload, op, 1)),
            }
            if let Some(t) = r.creation_time.filter(|_| delay) {
                ev.delay().observe((created as f64 - t).max(0.0));
            }
        }
        for (workload, op, n) in counts {
            out.counts.add(ev.records(workload, op), n);
        }
        ev.duplicates(out.duplicates);
        out.lines = lines.filter(|l| !l.is_empty());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::events::Events;
    use crate::metrics::Live;

    fn content() -> Content {
        Content {
            content_type: "Audit.Exchange".into(),
            content_id: "b1".into(),
            content_uri: "http://x/b1".into(),
            created: 1_800_000_000,
            expiration: 1_800_604_800,
        }
    }

    #[test]
    fn new_records_once_each_with_their_lines_and_ids() {
        let live = Live::new();
        let mut events = Events::new(&live, "t", &["Audit.Exchange".to_string()], false);
        let ops = ["MailItemsAccessed".to_string()];
        let mut a = Applier::new("t", &ops, true, RecentIds::default());
        let body = Bytes::from_static(
            br#"[{"Id":"a","Workload":"Exchange","Operation":"MailItemsAccessed","CreationTime":"2027-01-15T08:00:00"},
                 {"Id":"a","Workload":"Exchange"},
                 {"Id":"b","Workload":"Exchange","Operation":"Send"}]"#,
        );
        let ev = events.of("Audit.Exchange");
        let n = a.apply(&body, &content(), ev).unwrap();
        assert_eq!((n.records, n.duplicates), (2, 1));
        assert_eq!(n.counts.records(), 2);
        let mut early = Vec::new();
        live.encode(None, &mut early);
        assert!(
            String::from_utf8(early).unwrap().contains("m365_activity_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",workload=\"Exchange\",operation=\"\"} 0\n"),
            "not counted until the checkpoint says so"
        );
        let mut written = Vec::new();
        n.lines.unwrap().write_to(&mut written).unwrap();
        let written = String::from_utf8(written).unwrap();
        assert_eq!(written.lines().count(), 2);
        assert!(written.contains(r#""Id":"b""#));
        n.counts.count();
        assert_eq!(a.take_new_ids().len(), 2 * idlog::ENTRY as usize);
        assert!(a.take_new_ids().is_empty(), "taken");
        // The same blob again: nothing new, no lines, no ids.
        let again = a.apply(&body, &content(), ev).unwrap();
        assert_eq!((again.records, again.duplicates), (0, 3));
        assert!(again.lines.is_none());
        assert!(again.counts.is_empty(), "a duplicate never counts");
        assert!(a.take_new_ids().is_empty());
        assert_eq!(a.recent().len(), 2);

        assert!(a.apply(&Bytes::from_static(b"[{"), &content(), ev).is_err());
        // A repair of one known and one new record: the new one only, its
        // line and id, counted, no delay observed.
        let repaired = Bytes::from_static(
            br#"[{"Id":"b","Workload":"Exchange"},{"Id":"c","Workload":"Exchange","CreationTime":"2027-01-15T08:00:00"}]"#,
        );
        let n = a.repair(&repaired, 1_800_000_000, ev).unwrap();
        assert_eq!((n.records, n.duplicates), (1, 1));
        assert_eq!(a.take_new_ids().len(), idlog::ENTRY as usize);
        n.counts.count();
        assert!(a.recent().contains(key("c")));
        let mut out = Vec::new();
        live.encode(None, &mut out);
        let t = String::from_utf8(out).unwrap();
        for line in [
            "m365_activity_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",workload=\"Exchange\",operation=\"\"} 2\n",
            "m365_activity_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",workload=\"Exchange\",operation=\"MailItemsAccessed\"} 1\n",
            "m365_activity_records_duplicate_total{tenant=\"t\",content_type=\"Audit.Exchange\"} 5\n",
            "m365_activity_record_delay_seconds_count{tenant=\"t\",content_type=\"Audit.Exchange\"} 1\n",
        ] {
            assert!(t.contains(line), "{line} in {t}");
        }
    }

    /// A record without `Id` cannot be recognised again: it is counted and
    /// written every time its blob is applied, never remembered, and never
    /// taken for a duplicate of another.
    #[test]
    fn records_without_an_id_are_counted_and_written_each_time() {
        let live = Live::new();
        let mut events = Events::new(&live, "t", &["Audit.Exchange".to_string()], false);
        let mut a = Applier::new("t", &[], true, RecentIds::default());
        let body = Bytes::from_static(
            br#"[{"Workload":"Exchange","Operation":"Send"},
                 {"Workload":"Exchange","Operation":"Send"},
                 {"Id":"","Workload":"Exchange"},
                 {"Id":"c","Workload":"Exchange"}]"#,
        );
        let ev = events.of("Audit.Exchange");
        let lines = |n: &NewRecords| {
            let mut out = Vec::new();
            n.lines.as_ref().unwrap().write_to(&mut out).unwrap();
            String::from_utf8(out).unwrap().lines().count()
        };
        let first = a.apply(&body, &content(), ev).unwrap();
        assert_eq!((first.records, first.duplicates, lines(&first)), (4, 0, 4));
        first.counts.count();
        assert_eq!(a.recent().len(), 2, "only the ids: \"\" and \"c\"");
        // Again: the two without Id are new each time; the others are not.
        let again = a.apply(&body, &content(), ev).unwrap();
        assert_eq!((again.records, again.duplicates, lines(&again)), (2, 2, 2));
        again.counts.count();
        assert_eq!(a.recent().len(), 2);
        let mut out = Vec::new();
        live.encode(None, &mut out);
        let t = String::from_utf8(out).unwrap();
        assert!(t.contains("m365_activity_records_total{tenant=\"t\",content_type=\"Audit.Exchange\",workload=\"Exchange\",operation=\"\"} 6\n"), "{t}");
    }
}
