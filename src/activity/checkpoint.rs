//! The only writer of the feed's files: the state file ([`state`]), the
//! record-id log ([`idlog`]), the NDJSON sink ([`sink`]) and the quarantine
//! directory ([`quarantine`]). It runs on its own thread (file I/O and fsync
//! never run on the async runtime) and takes orders in sequence over a
//! bounded channel; how each file is written is its own module's business,
//! this one only orders the writes:
//!
//! - `Write`: a fetched blob's new lines, appended at once (not synced),
//!   with the counts of its new records;
//! - `Quarantine`: a blob that never parsed, kept aside raw;
//! - `Save`: on a timer ([`EVERY`]), only when something changed: sync the
//!   sink, append the ids remembered since the last save to the id log
//!   (compacting it now and then), then replace the state file, which marks
//!   how much of the sink and the log it covers.
//!
//! Exactly-once across a crash: on start the sink and the id log are cut
//! back to the marks of the last saved state, whose backlog still holds
//! every blob fetched after it; those are fetched and written again, once.
//! A sink write that fails makes the checkpoint stop saving (`fatal`): the
//! feed then restarts from the last saved state, which is consistent.
//!
//! Counts follow the same rule: `m365_activity_records_total` counts a
//! record once this thread has made it stay. With a state file that is the
//! save that covers it (whatever was written after the last save is fetched
//! again after a restart, so it is counted then, once); with only an
//! output, the append (nothing is ever cut back); with no file at all, at
//! once. The counter therefore equals the records in the sink, whatever
//! restarted the feed, and a duplicate, never written, never counts.

use super::events::RecordCounts;
use super::idlog::{self, IdsMark};
use super::quarantine;
use super::recent::RecentIds;
use super::records::Lines;
use super::sink::{self, Reconciled, Sink, SinkMark};
use super::state::{self, Loaded, State};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// Problem scope of a failing checkpoint (`m365_collector_success` 0).
pub use super::problem::CHECKPOINT_SCOPE as SCOPE;
/// A save at most this often while blobs are being applied.
pub const EVERY: Duration = Duration::from_secs(2);
/// Orders queued for the thread; a full queue makes the feed wait. A
/// `Sink` order holds its whole blob (MBs in a catch-up) until written, and
/// while the thread syncs the sink at a save (a second or more for the tens
/// of MB a catch-up appends in 2 s) the queue fills: 16 orders held 35 MB of
/// 2.2 MB blobs, half of the catch-up's peak RSS (BENCHMARKS.md). Four keep
/// the writer busy; the downloads behind them wait (their bytes unread,
/// under the in-flight budget) instead of piling up here.
const QUEUE: usize = 4;

/// The files of one tenant's feed.
#[derive(Debug, Clone)]
pub struct Files {
    pub tenant: String,
    pub tenant_id: String,
    pub state: Option<PathBuf>,
    pub output: Option<PathBuf>,
    /// Mode of the files created (`activity.file_mode`).
    pub mode: u32,
}

impl Files {
    /// Poison blobs go beside the state file (or the output without one).
    pub fn quarantine_dir(&self) -> Option<PathBuf> {
        quarantine::dir(self.state.as_deref(), self.output.as_deref())
    }
}

/// What a start found on disk.
#[derive(Debug, Default)]
pub struct Resumed {
    pub state: State,
    pub recent: RecentIds,
    pub ids: IdsMark,
    /// Entries in the id log (live or aged out), for compaction.
    pub log_entries: u64,
    pub sink: Option<SinkMark>,
    /// A version-1 state (ids inline) or a recovery: the first save writes
    /// a full log.
    pub needs_full_log: bool,
    /// What this start had to reset ([`RESETS`]).
    pub resets: Vec<&'static str>,
}

/// Why a start did not resume exactly where the last one stopped
/// (`m365_activity_state_resets_total{reason}`).
pub const RESETS: [&str; 3] = ["corrupt_state", "id_log", "unknown_output"];

/// Read the state and the id log, and cut the sink back to the state's mark
/// (blocking; logs what it did). `Err`: the feed must not start (a file it
/// cannot read, a newer or foreign state, or a corrupt state with an output
/// and no id log to keep it free of duplicates); the message says what to do.
pub fn resume(files: &Files, now: i64) -> Result<Resumed, String> {
    let mut r = Resumed::default();
    let tenant = files.tenant.as_str();
    if let Some(path) = &files.state {
        match state::load(path, &files.tenant_id)? {
            Loaded::Missing => {
                tracing::info!(tenant = %tenant, file = %path.display(), "activity state file not found; starting from lookback")
            }
            Loaded::Found(mut s) => {
                r.recent = std::mem::take(&mut s.recent_ids);
                r.needs_full_log = s.ids.is_none() && !r.recent.is_empty();
                if let Some(mark) = s.ids {
                    read_ids(path, mark, tenant, &mut r)?;
                }
                idlog::remove_others(path, r.ids.generation);
                tracing::info!(tenant = %tenant, file = %path.display(), backlog = s.backlog.pending_len(), recent_ids = r.recent.len(), "activity state resumed");
                r.state = *s;
            }
            Loaded::Corrupt(reason) => recover(files, path, &reason, now, &mut r)?,
        }
    }
    if let Some(out) = &files.output {
        if files.state.is_some() {
            let done = sink::reconcile(out, r.state.sink.as_ref(), now).map_err(|e| {
                format!(
                    "cannot check the activity output {} against the state file: {e}",
                    out.display()
                )
            })?;
            match done {
                Reconciled::Kept => {}
                Reconciled::Cut(cut) => {
                    tracing::info!(tenant = %tenant, file = %out.display(), bytes = cut,
                        "activity output: removed records written after the last saved state; their blobs are fetched again")
                }
                Reconciled::SetAside(aside) => {
                    r.resets.push("unknown_output");
                    tracing::warn!(tenant = %tenant, file = %out.display(), moved_to = %aside.display(),
                        "activity output is not the file the state file names (rotated, or created after the last save): moved aside whole, a new one is started")
                }
            }
        }
        r.sink = sink::mark_now(out).ok();
    }
    Ok(r)
}

/// The marked id log into `r`. A log shorter than its mark (damaged) is
/// read as far as it goes and counted as a reset; any other I/O error stops
/// the start.
fn read_ids(path: &Path, mark: IdsMark, tenant: &str, r: &mut Resumed) -> Result<(), String> {
    // Streamed into the set: the log (up to ~2 M entries before a
    // compaction) is never held whole.
    let recent = &mut r.recent;
    let got = idlog::read_each(path, mark, |k, h| {
        recent.insert_hour(k, h);
    });
    let file = idlog::path(path, mark.generation);
    match got {
        Ok(n) => {
            r.log_entries = n;
            r.ids = mark;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            let whole = idlog::whole(path, mark.generation)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let recent = &mut r.recent;
            r.log_entries = idlog::read_each(path, whole, |k, h| {
                recent.insert_hour(k, h);
            })
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            r.ids = whole;
            r.resets.push("id_log");
            tracing::error!(tenant = %tenant, file = %file.display(), error = %e,
                "activity id log shorter than the state says: resumed with the ids it holds (records whose ids were lost may be written again)");
            Ok(())
        }
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// A state file that does not parse: with an id log, set it aside and
/// resume deduplicated from the newest usable log generation (the listing
/// starts over from `lookback`, and every record the log remembers is
/// skipped); without one, set it aside only when there is no output to
/// fill with duplicates, otherwise refuse to start and leave it in place.
fn recover(
    files: &Files,
    path: &Path,
    reason: &str,
    now: i64,
    r: &mut Resumed,
) -> Result<(), String> {
    let tenant = files.tenant.as_str();
    let mut found = None;
    for (generation, file) in idlog::generations(path) {
        let mut recent = RecentIds::default();
        let read = idlog::whole(path, generation).and_then(|mark| {
            idlog::read_each(path, mark, |k, h| {
                recent.insert_hour(k, h);
            })
            .map(|n| (mark, n))
        });
        match read {
            Ok((mark, n)) if n > 0 => {
                found = Some((mark, n, recent));
                break;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(tenant = %tenant, file = %file.display(), error = %e, "activity id log unusable for recovery")
            }
        }
    }
    if found.is_none() {
        if let Some(out) = &files.output {
            return Err(format!(
                "activity state file {} is corrupt ({reason}) and no id log beside it can tell which records {} already holds: \
                 refusing to start rather than write up to `lookback` of them again. \
                 To start over, move the state file away (and, to keep the output free of duplicates, rotate the output too); \
                 see the README's Security section",
                path.display(),
                out.display()
            ));
        }
    }
    let aside = super::fileops::set_aside(path, "corrupt", now).map_err(|e| {
        format!(
            "activity state file {} is corrupt ({reason}) and cannot be moved aside: {e}",
            path.display()
        )
    })?;
    r.resets.push("corrupt_state");
    match found {
        Some((mark, n, recent)) => {
            tracing::error!(tenant = %tenant, file = %path.display(), reason = %reason, moved_to = %aside.display(),
                id_log = %idlog::path(path, mark.generation).display(), recent_ids = recent.len(),
                "activity state file corrupt: moved aside; listing starts over from lookback, records already seen are skipped");
            r.recent = recent;
            r.ids = mark;
            r.log_entries = n;
            // The next save writes a fresh generation the new state names.
            r.needs_full_log = true;
        }
        None => {
            tracing::error!(tenant = %tenant, file = %path.display(), reason = %reason, moved_to = %aside.display(),
                "activity state file corrupt: moved aside; starting over from lookback (no output, so nothing is written twice)");
        }
    }
    Ok(())
}

/// How the thread is doing (read by the feed, after each order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub error: Option<String>,
    /// The sink could not be written, or the thread is gone: nothing more
    /// is saved.
    pub fatal: bool,
    /// The thread failed to start or died (panicked).
    pub dead: bool,
    pub saves: u64,
    /// Bytes written to the state file and the id log (not the sink).
    pub bytes_written: u64,
}

/// Debug builds (the tests' binary) only: with this variable set, the
/// thread panics at its first save, as a bug in it would. No write kills it
/// for real (every I/O error is handled, and a panic-free writer is the
/// point), yet the supervision of its death (the feed fatal and restarted,
/// `m365_collector_panics_total`) must be shown on the real binary. Release
/// builds have no such switch.
#[cfg(debug_assertions)]
pub const DIE_AT_SAVE_ENV: &str = "M365_EXPORTER_TEST_CHECKPOINT_DIES";

/// Bytes of one [`Order::Compact`]: with the bounded queue, a compaction
/// holds at most a few MB besides the set, never a copy of it.
const COMPACT_CHUNK: usize = 13_107 * idlog::ENTRY as usize;

enum Order {
    /// New lines (none without an output) and the counts of their records.
    Write(Option<Lines>, RecordCounts, Option<OwnedSemaphorePermit>),
    Quarantine(String, Bytes),
    /// The next part of a fresh id-log generation (every remembered id);
    /// the following `Save` with `full` finishes it.
    Compact(Vec<u8>),
    Save(Box<Save>),
}

struct Save {
    state: State,
    /// The ids remembered since the last save, as id-log entries.
    new_ids: Vec<u8>,
    /// The preceding `Compact` orders hold every remembered id: finish that
    /// fresh log generation instead of appending.
    full: bool,
    at: i64,
}

pub struct Checkpoint {
    tx: Option<mpsc::Sender<Order>>,
    health: Arc<Mutex<Health>>,
    thread: Option<std::thread::JoinHandle<()>>,
    last_save: Option<Instant>,
    log_entries: u64,
    full_next: bool,
    persistent: bool,
    /// There is a state file or an output: counts wait for the thread.
    files: bool,
}

impl Checkpoint {
    pub fn start(files: Files, resumed: &Resumed) -> Checkpoint {
        let (tx, rx) = mpsc::channel(QUEUE);
        let health = Arc::new(Mutex::new(Health::default()));
        let worker = Worker {
            quarantine: files.quarantine_dir(),
            sink: files
                .output
                .as_deref()
                .map(|p| Sink::new(p, resumed.sink.clone(), files.mode)),
            files,
            ids: resumed.ids,
            unsaved_ids: Vec::new(),
            uncounted: RecordCounts::default(),
            compaction: None,
            health: health.clone(),
        };
        let persistent = worker.files.state.is_some();
        let files = persistent || worker.sink.is_some();
        let thread = std::thread::Builder::new()
            .name("activity-checkpoint".into())
            .spawn(move || worker.run(rx))
            .ok();
        if thread.is_none() {
            mark_dead(&health);
        }
        Checkpoint {
            tx: Some(tx),
            health,
            thread,
            last_save: None,
            log_entries: resumed.log_entries,
            full_next: resumed.needs_full_log,
            persistent,
            files,
        }
    }

    async fn send(&self, o: Order) {
        if let Some(tx) = &self.tx {
            // The thread only stops when we drop `tx`, or by panicking: then
            // nothing more is written and the feed restarts (supervised).
            if tx.send(o).await.is_err() {
                mark_dead(&self.health);
            }
        }
    }

    /// A blob's new records: their lines appended to the sink (with the
    /// budget they hold), their counts counted once they stay (see the
    /// module's doc); with no file at all, counted now.
    pub async fn write(
        &self,
        lines: Option<Lines>,
        counts: RecordCounts,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        if !self.files {
            counts.count();
            return;
        }
        if lines.is_some() || !counts.is_empty() {
            self.send(Order::Write(lines, counts, permit)).await;
        }
    }

    /// Keep a blob that never parsed, raw.
    pub async fn quarantine(&self, content_id: &str, body: Bytes) {
        self.send(Order::Quarantine(content_id.to_string(), body))
            .await;
    }

    /// A timed save is due.
    pub fn due(&self) -> bool {
        self.last_save.is_none_or(|t| t.elapsed() >= EVERY)
    }

    /// Save `state` and the ids added since the last save.
    /// `new_ids` are id-log entries ([`idlog::push`]): 20 bytes per id, and
    /// the thread appends them as they are, without another copy.
    pub async fn save(&mut self, state: &State, recent: &RecentIds, new_ids: Vec<u8>) {
        self.last_save = Some(Instant::now());
        if !self.persistent {
            // Only a sink: syncing it is all a save does.
            self.send(Order::Save(Box::new(Save {
                state: State::default(),
                new_ids: Vec::new(),
                full: false,
                at: 0,
            })))
            .await;
            return;
        }
        self.log_entries += new_ids.len() as u64 / idlog::ENTRY;
        let full = self.full_next || idlog::should_compact(self.log_entries, recent.len() as u64);
        if full {
            self.log_entries = recent.len() as u64;
            self.full_next = false;
            // `recent` cannot change while this runs (borrowed), so the
            // chunks are one consistent snapshot, as a copy would be.
            let mut buf = Vec::with_capacity(COMPACT_CHUNK);
            for (k, h) in recent.entries() {
                idlog::push(&mut buf, k, h);
                if buf.len() >= COMPACT_CHUNK {
                    let chunk = std::mem::replace(&mut buf, Vec::with_capacity(COMPACT_CHUNK));
                    self.send(Order::Compact(chunk)).await;
                }
            }
            if !buf.is_empty() {
                self.send(Order::Compact(buf)).await;
            }
        }
        self.send(Order::Save(Box::new(Save {
            state: state.clone(),
            new_ids,
            full,
            at: crate::timefmt::now_unix() as i64,
        })))
        .await;
    }

    pub fn health(&self) -> Health {
        // The thread ends only once `tx` is dropped (`close`), or by a
        // panic: finished while orders may still come, it died. Seen here,
        // not only at the next order (which may be long in coming).
        if self.tx.is_some() && self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            mark_dead(&self.health);
        }
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Finish every queued order, then stop the thread.
    pub async fn close(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

fn mark_dead(health: &Mutex<Health>) {
    let mut h = health.lock().unwrap_or_else(|p| p.into_inner());
    h.fatal = true;
    h.dead = true;
    h.error = Some("the checkpoint thread is not running (failed to start or panicked)".into());
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        // Dropped without `close` (the feed task aborted or panicked): wait
        // for the queue to drain, so that a feed restarted on the same files
        // never races an old writer.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    files: Files,
    quarantine: Option<PathBuf>,
    ids: IdsMark,
    /// With `activity.output`.
    sink: Option<Sink>,
    /// Ids whose append failed, tried again at the next save.
    unsaved_ids: Vec<u8>,
    /// With a state file: counts of records written since the last save,
    /// counted when a save covers them.
    uncounted: RecordCounts,
    /// A fresh id-log generation being written by `Compact` orders.
    compaction: Option<std::io::Result<idlog::Compaction>>,
    health: Arc<Mutex<Health>>,
}

impl Worker {
    fn run(mut self, mut rx: mpsc::Receiver<Order>) {
        while let Some(order) = rx.blocking_recv() {
            match order {
                Order::Write(lines, counts, permit) => {
                    self.write(lines.as_ref(), counts);
                    drop(permit);
                }
                Order::Quarantine(id, body) => self.quarantine(&id, &body),
                Order::Compact(bytes) => self.compact_chunk(&bytes),
                Order::Save(s) => {
                    #[cfg(debug_assertions)]
                    if std::env::var_os(DIE_AT_SAVE_ENV).is_some() {
                        panic!("{DIE_AT_SAVE_ENV} is set: the checkpoint thread dies (test)");
                    }
                    self.save(*s)
                }
            }
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fatal(&self) -> bool {
        self.health().fatal
    }

    /// Append the lines; their counts wait for the next save with a state
    /// file, and are counted now without one. Nothing is counted once the
    /// sink has failed: those records are fetched again after the restart.
    fn write(&mut self, lines: Option<&Lines>, counts: RecordCounts) {
        if self.fatal() {
            return;
        }
        if let (Some(lines), Some(sink)) = (lines, self.sink.as_mut()) {
            if let Err(e) = sink.append(lines) {
                self.sink_failed(e);
                return;
            }
        }
        if self.files.state.is_some() {
            self.uncounted.merge(counts);
        } else {
            counts.count();
        }
    }

    /// Make the appended lines durable; the mark the state file records.
    /// None (after the thread is marked fatal) when that failed.
    fn sync_sink(&mut self) -> Option<Option<SinkMark>> {
        match self.sink.as_mut().map(Sink::sync) {
            None => Some(None),
            Some(Ok(mark)) => Some(mark),
            Some(Err(e)) => {
                self.sink_failed(e);
                None
            }
        }
    }

    fn sink_failed(&mut self, e: std::io::Error) {
        let path = self.sink.as_ref().map(|s| s.path().display().to_string());
        let mut h = self.health();
        h.fatal = true;
        h.error = Some(format!("cannot write {}: {e}", path.unwrap_or_default()));
    }

    fn quarantine(&self, content_id: &str, body: &[u8]) {
        let Some(dir) = &self.quarantine else { return };
        let path = quarantine::path(dir, content_id);
        match quarantine::keep(&path, body, self.files.mode) {
            Ok(()) => {
                tracing::warn!(tenant = %self.files.tenant, content_id = %content_id, file = %path.display(),
                    "audit blob never parsed: kept aside raw in the quarantine directory and left out of the feed")
            }
            Err(e) => {
                tracing::error!(tenant = %self.files.tenant, content_id = %content_id, file = %path.display(), error = %e,
                    "audit blob never parsed and could not be kept aside")
            }
        }
    }

    fn compact_chunk(&mut self, bytes: &[u8]) {
        let Some(path) = &self.files.state else {
            return;
        };
        if self.fatal() {
            return;
        }
        let generation = self.ids.generation + 1;
        let c = self
            .compaction
            .get_or_insert_with(|| idlog::Compaction::create(path, generation, self.files.mode));
        if let Ok(w) = c {
            if let Err(e) = w.write(bytes) {
                *c = Err(e);
            }
        }
    }

    fn save(&mut self, s: Save) {
        if self.fatal() {
            return;
        }
        let Some(sink_mark) = self.sync_sink() else {
            return;
        };
        let Some(path) = self.files.state.clone() else {
            self.health().error = None;
            return;
        };
        let mut written = 0u64;
        if self.unsaved_ids.is_empty() {
            self.unsaved_ids = s.new_ids;
        } else {
            self.unsaved_ids.extend_from_slice(&s.new_ids);
        }
        let ids = if s.full {
            // No `Compact` order came when no id is remembered.
            let c = self.compaction.take().unwrap_or_else(|| {
                idlog::Compaction::create(&path, self.ids.generation + 1, self.files.mode)
            });
            c.and_then(idlog::Compaction::finish)
        } else {
            idlog::append_encoded(&path, self.ids, &self.unsaved_ids, self.files.mode)
        };
        match ids {
            Ok(m) => {
                written += if s.full { m.len } else { m.len - self.ids.len };
                self.ids = m;
                self.unsaved_ids.clear();
            }
            Err(e) => {
                self.health().error = Some(format!(
                    "cannot write the id log {}: {e}",
                    idlog::path(&path, self.ids.generation).display()
                ));
                return;
            }
        }
        let mut st = s.state;
        st.ids = Some(self.ids);
        st.sink = sink_mark;
        let bytes = state::encode(&st, &self.files.tenant_id, s.at);
        written += bytes.len() as u64;
        match state::save_with_mode(&path, &bytes, self.files.mode) {
            Ok(()) => {
                if s.full {
                    idlog::remove_others(&path, self.ids.generation);
                }
                std::mem::take(&mut self.uncounted).count();
                let mut h = self.health();
                h.error = None;
                h.saves += 1;
                h.bytes_written += written;
            }
            Err(e) => {
                self.health().error = Some(format!("cannot write the state file: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::recent::key;
    use std::path::Path;

    const T: &str = "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b";

    fn files(dir: &Path) -> Files {
        Files {
            tenant: "t".into(),
            tenant_id: T.into(),
            state: Some(dir.join("state.json")),
            output: Some(dir.join("out.ndjson")),
            mode: 0o600,
        }
    }

    #[tokio::test]
    async fn saves_only_new_ids_and_resumes_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let r = resume(&f, 1).unwrap();
        let mut cp = Checkpoint::start(f.clone(), &r);
        let mut recent = RecentIds::default();
        let mut state = State::default();
        let mut new = Vec::new();
        for i in 0..1_000u64 {
            let k = key(&format!("id{i}"));
            recent.insert(k, 1_800_000_000);
            new.push((k, RecentIds::hour_of(1_800_000_000)));
        }
        cp.write(
            Some(Lines::one(&b"{\"Id\":\"a\"}"[..])),
            RecordCounts::default(),
            None,
        )
        .await;
        state.cursors.insert("Audit.Exchange".into(), 5);
        cp.save(&state, &recent, idlog::encode(&new)).await;
        new.clear();
        // One more id and line, then a save of the same state: the log grows
        // by one entry only.
        let k = key("late");
        recent.insert(k, 1_800_000_000);
        cp.write(
            Some(Lines::one(&b"{\"Id\":\"b\"}"[..])),
            RecordCounts::default(),
            None,
        )
        .await;
        cp.save(
            &state,
            &recent,
            idlog::encode(&[(k, RecentIds::hour_of(1_800_000_000))]),
        )
        .await;
        // An unsaved tail: written to the sink, never saved.
        cp.write(
            Some(Lines::one(&b"{\"Id\":\"c\"}"[..])),
            RecordCounts::default(),
            None,
        )
        .await;
        let h = cp.health();
        cp.close().await;
        let h2 = h.clone();
        assert_eq!(h2.error, None);
        let log = idlog::path(&dir.path().join("state.json"), 0);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 1_001 * idlog::ENTRY);

        let r = resume(&f, 2).unwrap();
        assert_eq!(r.recent.len(), 1_001);
        assert!(r.recent.contains(k));
        assert_eq!(r.state.cursors["Audit.Exchange"], 5);
        assert_eq!(
            std::fs::read(dir.path().join("out.ndjson")).unwrap(),
            b"{\"Id\":\"a\"}\n{\"Id\":\"b\"}\n",
            "the unsaved tail is cut"
        );
    }

    /// A sink that cannot be written stops every save (the feed restarts
    /// from the last consistent state) and says which file failed.
    #[tokio::test]
    async fn a_sink_that_cannot_be_written_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = files(dir.path());
        f.output = Some(dir.path().join("missing").join("out.ndjson"));
        let r = resume(&f, 1).unwrap();
        let mut cp = Checkpoint::start(f, &r);
        cp.write(
            Some(Lines::one(&b"{\"Id\":\"a\"}"[..])),
            RecordCounts::default(),
            None,
        )
        .await;
        cp.save(&State::default(), &RecentIds::default(), Vec::new())
            .await;
        let health = cp.health.clone();
        cp.close().await;
        let h = health.lock().unwrap().clone();
        assert!(h.fatal);
        assert_eq!(h.saves, 0, "nothing saved after the failed write");
        let e = h.error.unwrap();
        assert!(
            e.starts_with("cannot write ") && e.contains("out.ndjson"),
            "{e}"
        );
        assert!(!dir.path().join("state.json").exists());
    }

    /// Records count once they stay: with a state file at the save that
    /// covers them, never for a write the sink refused (those blobs are
    /// fetched again after the restart and counted then, once); with only
    /// an output at the append; with no file at all, at once.
    #[tokio::test]
    async fn records_count_once_the_writer_confirms_them() {
        let live = crate::metrics::Live::new();
        let series =
            live.activity_records
                .with_label_values(&["t", "Audit.Exchange", "Exchange", ""]);
        let counts = |n| {
            let mut c = RecordCounts::default();
            c.add(&series, n);
            c
        };
        let line = |s: &'static str| Some(Lines::one(s.as_bytes()));
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());

        // State file and output: counted by the save, not the append.
        let r = resume(&f, 1).unwrap();
        let mut cp = Checkpoint::start(f.clone(), &r);
        cp.write(line("{\"Id\":\"a\"}"), counts(1), None).await;
        cp.write(line("{\"Id\":\"b\"}"), counts(1), None).await;
        assert_eq!(series.get(), 0, "written, not saved yet");
        cp.save(&State::default(), &RecentIds::default(), Vec::new())
            .await;
        // Written after the save, then the process stops without another.
        cp.write(line("{\"Id\":\"c\"}"), counts(1), None).await;
        drop(cp);
        assert_eq!(series.get(), 2, "the saved two");

        // The restart cuts the unsaved line; fetched again, it counts once.
        let r = resume(&f, 2).unwrap();
        let mut cp = Checkpoint::start(f.clone(), &r);
        cp.write(line("{\"Id\":\"c\"}"), counts(1), None).await;
        cp.save(&r.state, &RecentIds::default(), Vec::new()).await;
        cp.close().await;
        let out = std::fs::read_to_string(dir.path().join("out.ndjson")).unwrap();
        assert_eq!(out.lines().count(), 3);
        assert_eq!(series.get(), 3, "equals the sink");

        // A sink that fails: nothing it refused is counted, nor anything after.
        let mut bad = f.clone();
        bad.output = Some(dir.path().join("missing").join("out.ndjson"));
        let r = resume(&bad, 3).unwrap();
        let mut cp = Checkpoint::start(bad, &r);
        cp.write(line("{\"Id\":\"d\"}"), counts(1), None).await;
        cp.save(&State::default(), &RecentIds::default(), Vec::new())
            .await;
        cp.close().await;
        assert_eq!(series.get(), 3);

        // Only an output: counted by the append (nothing is ever cut).
        let only_out = Files {
            state: None,
            output: Some(dir.path().join("only.ndjson")),
            ..f.clone()
        };
        let cp = Checkpoint::start(only_out.clone(), &resume(&only_out, 4).unwrap());
        cp.write(line("{\"Id\":\"e\"}"), counts(1), None).await;
        cp.close().await;
        assert_eq!(series.get(), 4);

        // No file at all: nothing to confirm, counted at once.
        let none = Files {
            state: None,
            output: None,
            ..f
        };
        let cp = Checkpoint::start(none.clone(), &resume(&none, 5).unwrap());
        cp.write(None, counts(2), None).await;
        assert_eq!(series.get(), 6);
        cp.close().await;
    }

    #[tokio::test]
    async fn compaction_writes_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let r = resume(&f, 1).unwrap();
        let mut cp = Checkpoint::start(f.clone(), &r);
        // Pretend the log is full of aged-out ids.
        cp.log_entries = idlog::COMPACT_SLACK + 10;
        let mut recent = RecentIds::default();
        recent.insert(7, 3_600);
        cp.save(&State::default(), &recent, idlog::encode(&[(7, 1)]))
            .await;
        cp.close().await;
        let p = dir.path().join("state.json");
        assert!(!idlog::path(&p, 0).exists());
        assert_eq!(std::fs::metadata(idlog::path(&p, 1)).unwrap().len(), 20);
        let r = resume(&f, 2).unwrap();
        assert_eq!(r.ids.generation, 1);
        assert!(r.recent.contains(7));

        // A set of several chunks is streamed to the thread and resumes whole.
        let mut cp = Checkpoint::start(f.clone(), &r);
        let mut recent = r.recent;
        let n = 2 * COMPACT_CHUNK / idlog::ENTRY as usize + 99;
        for i in 0..n as u128 {
            recent.insert(
                i * 0x9e37_79b9_7f4a_7c15_f39c + 11,
                1_800_000_000 - i as i64,
            );
        }
        cp.log_entries = 3 * n as u64 + idlog::COMPACT_SLACK;
        cp.save(&State::default(), &recent, Vec::new()).await;
        assert_eq!(cp.log_entries, recent.len() as u64);
        cp.close().await;
        assert!(!idlog::path(&p, 1).exists());
        assert_eq!(
            std::fs::metadata(idlog::path(&p, 2)).unwrap().len(),
            recent.len() as u64 * idlog::ENTRY
        );
        let r = resume(&f, 3).unwrap();
        assert_eq!(r.ids.generation, 2);
        assert_eq!(r.log_entries, recent.len() as u64);
        assert_eq!(r.recent, recent);
    }

    /// An id log and state written by the code before the compact set (the
    /// same 20-byte entries, in the order the ids were first seen, repeats
    /// and an unsaved tail included) resumes to the same ids and hours.
    #[tokio::test]
    async fn resumes_an_id_log_of_the_previous_layout() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let p = dir.path().join("state.json");
        let mut bytes = Vec::new();
        let mut expect = std::collections::HashMap::new();
        for i in 0..5_000u128 {
            let k = key(&format!(
                "{:08x}-0000-4000-8000-{:012x}",
                i * 2_654_435_761 % (1 << 32),
                i
            ));
            let h = 500_000 + (i % 200) as i32;
            bytes.extend_from_slice(&k.to_le_bytes());
            bytes.extend_from_slice(&h.to_le_bytes());
            expect.entry(k).or_insert(h);
        }
        // A repeat of the first id under another hour: the first one stays.
        let first = key("00000000-0000-4000-8000-000000000000");
        bytes.extend_from_slice(&first.to_le_bytes());
        bytes.extend_from_slice(&7i32.to_le_bytes());
        let trusted = bytes.len() as u64;
        bytes.extend_from_slice(&[0xab; 30]);
        std::fs::write(idlog::path(&p, 3), &bytes).unwrap();
        let st = State {
            ids: Some(IdsMark {
                generation: 3,
                len: trusted,
            }),
            ..State::default()
        };
        std::fs::write(&p, state::encode(&st, T, 1)).unwrap();
        let r = resume(&f, 1_800_000_000).unwrap();
        assert_eq!(
            r.ids,
            IdsMark {
                generation: 3,
                len: trusted
            }
        );
        assert_eq!(r.log_entries, 5_001);
        assert_eq!(r.recent.len(), expect.len());
        for (k, h) in &expect {
            assert_eq!(r.recent.hour(*k), Some(*h));
        }
        assert_eq!(r.recent.hour(first), Some(500_000));
        assert_eq!(
            std::fs::metadata(idlog::path(&p, 3)).unwrap().len(),
            trusted,
            "the tail past the mark is cut"
        );
    }

    /// A truncated state: set aside, and the newest id log (a partial last
    /// entry and all) restores the remembered ids, so nothing is written
    /// twice; without a log and with an output, the start is refused and
    /// the file left where it is.
    #[tokio::test]
    async fn a_corrupt_state_resumes_from_the_id_log_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let p = dir.path().join("state.json");
        std::fs::write(&p, b"{\"format\":\"m365-exporter/activity-st").unwrap();
        let e = resume(&f, 5).unwrap_err();
        assert!(
            e.contains("state.json") && e.contains("refusing to start"),
            "{e}"
        );
        assert!(p.exists(), "left in place");

        let mut bytes = idlog::encode(&[(1, 10), (2, 11)]);
        std::fs::write(idlog::path(&p, 0), &bytes).unwrap();
        bytes.extend_from_slice(&idlog::encode(&[(3, 12)])[..7]);
        std::fs::write(idlog::path(&p, 4), &bytes).unwrap();
        let r = resume(&f, 6).unwrap();
        assert_eq!(r.resets, ["corrupt_state"]);
        assert_eq!(
            r.ids,
            IdsMark {
                generation: 4,
                len: 40
            }
        );
        assert!(r.recent.contains(1) && r.recent.contains(2) && r.recent.len() == 2);
        assert!(r.needs_full_log);
        assert!(!p.exists() && dir.path().join("state.json.corrupt-6").exists());

        // No output: nothing can be written twice, so it starts over.
        std::fs::write(&p, b"garbage").unwrap();
        for (_, log) in idlog::generations(&p) {
            std::fs::remove_file(log).unwrap();
        }
        let r = resume(
            &Files {
                output: None,
                ..f.clone()
            },
            7,
        )
        .unwrap();
        assert_eq!(r.resets, ["corrupt_state"]);
        assert!(r.recent.is_empty());
    }

    /// While the thread is busy (here: opening a sink that is a FIFO nobody
    /// reads yet, as a long sync would keep it), at most `QUEUE` blobs wait
    /// for it, whatever the feed hands over: the rest of a catch-up waits
    /// unread instead of piling up in memory.
    #[cfg(unix)]
    #[tokio::test]
    async fn only_a_few_blobs_wait_for_a_busy_writer() {
        use futures::FutureExt as _;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.ndjson");
        let c = std::ffi::CString::new(out.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let files = Files {
            tenant: "t".into(),
            tenant_id: "t".into(),
            state: None,
            output: Some(out.clone()),
            mode: 0o600,
        };
        let cp = Checkpoint::start(files, &Resumed::default());
        let mut handed = 0;
        while handed < 100
            && cp
                .write(
                    Some(Lines::one(&b"{\"Id\":\"a\"}"[..])),
                    RecordCounts::default(),
                    None,
                )
                .now_or_never()
                .is_some()
        {
            handed += 1;
        }
        // Read the FIFO, so the thread writes every line and stops.
        let reader = std::thread::spawn(move || std::fs::read(out).unwrap());
        cp.close().await;
        let lines = reader.join().unwrap();
        // The queue, and the one the thread took (if it took it yet): a
        // few blobs, not the 16 (35 MB in a catch-up) it used to hold.
        assert!(
            (QUEUE..=QUEUE + 1).contains(&handed) && handed <= 5,
            "{handed} blobs handed to a busy writer"
        );
        assert_eq!(lines.iter().filter(|b| **b == b'\n').count(), handed);
    }

    /// A thread that is gone (panicked, or never started) makes the
    /// checkpoint fatal, so the supervisor restarts the feed instead of
    /// letting it run on with nothing saved.
    #[tokio::test]
    async fn a_dead_thread_is_fatal() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let cp = Checkpoint {
            tx: Some(tx),
            health: Default::default(),
            thread: None,
            last_save: None,
            log_entries: 0,
            full_next: false,
            persistent: true,
            files: true,
        };
        assert!(!cp.health().fatal);
        cp.write(Some(Lines::one(&b"{}"[..])), RecordCounts::default(), None)
            .await;
        let h = cp.health();
        assert!(h.fatal && h.dead, "{h:?}");
        assert!(h.error.unwrap().contains("checkpoint thread"));
    }

    /// A thread that died is seen at the next look at the health, without
    /// waiting for an order to fail (a feed with nothing new sends none).
    #[tokio::test]
    async fn a_dead_thread_is_seen_before_the_next_order() {
        let (tx, rx) = mpsc::channel::<Order>(1);
        let thread = std::thread::spawn(move || {
            drop(rx);
            panic!("a bug in the writer")
        });
        while !thread.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let cp = Checkpoint {
            tx: Some(tx),
            health: Default::default(),
            thread: Some(thread),
            last_save: None,
            log_entries: 0,
            full_next: false,
            persistent: true,
            files: true,
        };
        let h = cp.health();
        assert!(h.fatal && h.dead, "{h:?}");
        // Closing joins the dead thread without panicking here.
        cp.close().await;
    }
}
