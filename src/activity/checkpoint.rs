//! The only writer of the feed's files: the state file ([`state`]), the
//! record-id log ([`idlog`]), the NDJSON sink ([`sink`]) and the quarantine
//! directory ([`quarantine`]). It runs on its own thread (file I/O and fsync
//! never run on the async runtime) and takes orders in sequence over a
//! bounded channel; how each file is written is its own module's business,
//! this one only orders the writes:
//!
//! - `Sink`: a fetched blob's new lines, appended at once (not synced);
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

use super::idlog::{self, IdsMark};
use super::quarantine;
use super::recent::RecentIds;
use super::records::Lines;
use super::sink::{self, Sink, SinkMark};
use super::state::{self, Loaded, State};
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// Problem scope of a failing checkpoint (`m365_collector_success` 0).
pub const SCOPE: &str = "state_file";
/// A save at most this often while blobs are being applied.
pub const EVERY: Duration = Duration::from_secs(2);
/// Orders queued for the thread; a full queue makes the feed wait.
const QUEUE: usize = 16;

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
    /// A version-1 state (ids inline): the first save writes a full log.
    pub needs_full_log: bool,
}

/// Read the state and the id log, and cut the sink back to the state's mark
/// (blocking; logs what it did).
pub fn resume(files: &Files, now: i64) -> Resumed {
    let mut r = Resumed::default();
    let tenant = files.tenant.as_str();
    if let Some(path) = &files.state {
        match state::load(path, &files.tenant_id, now) {
            Loaded::Missing => {
                tracing::info!(tenant = %tenant, file = %path.display(), "activity state file not found; starting from lookback")
            }
            Loaded::Found(mut s) => {
                r.recent = std::mem::take(&mut s.recent_ids);
                r.needs_full_log = s.ids.is_none() && !r.recent.is_empty();
                if let Some(mark) = s.ids {
                    // Streamed into the set: the log (up to ~2 M entries
                    // before a compaction) is never held whole.
                    let recent = &mut r.recent;
                    match idlog::read_each(path, mark, |k, h| {
                        recent.insert_hour(k, h);
                    }) {
                        Ok(n) => {
                            r.log_entries = n;
                            r.ids = mark;
                        }
                        Err(e) => {
                            // A version-2 state keeps no ids inline: empty,
                            // as before the read began.
                            r.recent = RecentIds::default();
                            // The ids only detect duplicates: go on without
                            // them (a record Microsoft repeats may be written
                            // twice), and start a fresh log.
                            tracing::error!(tenant = %tenant, file = %idlog::path(path, mark.generation).display(), error = %e,
                                "activity id log unreadable; duplicate detection starts afresh");
                            r.ids = IdsMark {
                                generation: mark.generation + 1,
                                len: 0,
                            };
                        }
                    }
                }
                idlog::remove_others(path, r.ids.generation);
                tracing::info!(tenant = %tenant, file = %path.display(), backlog = s.backlog.pending_len(), recent_ids = r.recent.len(), "activity state resumed");
                r.state = *s;
            }
            Loaded::Bad { reason, aside } => {
                tracing::error!(tenant = %tenant, file = %path.display(), reason = %reason,
                    moved_to = %aside.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(could not move it)".into()),
                    "activity state file unusable; starting from lookback");
            }
        }
    }
    if let Some(out) = &files.output {
        if files.state.is_some() {
            match sink::reconcile(out, r.state.sink) {
                Ok(0) => {}
                Ok(cut) => {
                    tracing::info!(tenant = %tenant, file = %out.display(), bytes = cut,
                        "activity output: removed records written after the last saved state; their blobs are fetched again")
                }
                Err(e) => {
                    tracing::error!(tenant = %tenant, file = %out.display(), error = %e, "activity output: cannot check against the state file")
                }
            }
        }
        r.sink = sink::mark_now(out).ok();
    }
    r
}

/// How the thread is doing (read by the feed, after each order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub error: Option<String>,
    /// The sink could not be written: nothing more is saved.
    pub fatal: bool,
    pub saves: u64,
    /// Bytes written to the state file and the id log (not the sink).
    pub bytes_written: u64,
}

/// Bytes of one [`Order::Compact`]: with the bounded queue, a compaction
/// holds at most a few MB besides the set, never a copy of it.
const COMPACT_CHUNK: usize = 13_107 * idlog::ENTRY as usize;

enum Order {
    Sink(Lines, Option<OwnedSemaphorePermit>),
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
                .map(|p| Sink::new(p, resumed.sink, files.mode)),
            files,
            ids: resumed.ids,
            unsaved_ids: Vec::new(),
            compaction: None,
            health: health.clone(),
        };
        let persistent = worker.files.state.is_some();
        let thread = std::thread::Builder::new()
            .name("activity-checkpoint".into())
            .spawn(move || worker.run(rx))
            .ok();
        Checkpoint {
            tx: Some(tx),
            health,
            thread,
            last_save: None,
            log_entries: resumed.log_entries,
            full_next: resumed.needs_full_log,
            persistent,
        }
    }

    async fn send(&self, o: Order) {
        if let Some(tx) = &self.tx {
            // The thread only stops when we drop `tx`.
            let _ = tx.send(o).await;
        }
    }

    /// Append a blob's new lines to the sink (with the budget they hold).
    pub async fn sink(&self, lines: Lines, permit: Option<OwnedSemaphorePermit>) {
        self.send(Order::Sink(lines, permit)).await;
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
    /// A fresh id-log generation being written by `Compact` orders.
    compaction: Option<std::io::Result<idlog::Compaction>>,
    health: Arc<Mutex<Health>>,
}

impl Worker {
    fn run(mut self, mut rx: mpsc::Receiver<Order>) {
        while let Some(order) = rx.blocking_recv() {
            match order {
                Order::Sink(lines, permit) => {
                    self.append_sink(&lines);
                    drop(permit);
                }
                Order::Quarantine(id, body) => self.quarantine(&id, &body),
                Order::Compact(bytes) => self.compact_chunk(&bytes),
                Order::Save(s) => self.save(*s),
            }
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fatal(&self) -> bool {
        self.health().fatal
    }

    fn append_sink(&mut self, lines: &Lines) {
        if self.fatal() {
            return;
        }
        if let Some(Err(e)) = self.sink.as_mut().map(|s| s.append(lines)) {
            self.sink_failed(e);
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
        let r = resume(&f, 1);
        let mut cp = Checkpoint::start(f.clone(), &r);
        let mut recent = RecentIds::default();
        let mut state = State::default();
        let mut new = Vec::new();
        for i in 0..1_000u64 {
            let k = key(&format!("id{i}"));
            recent.insert(k, 1_800_000_000);
            new.push((k, RecentIds::hour_of(1_800_000_000)));
        }
        cp.sink(Lines::one(&b"{\"Id\":\"a\"}"[..]), None).await;
        state.cursors.insert("Audit.Exchange".into(), 5);
        cp.save(&state, &recent, idlog::encode(&new)).await;
        new.clear();
        // One more id and line, then a save of the same state: the log grows
        // by one entry only.
        let k = key("late");
        recent.insert(k, 1_800_000_000);
        cp.sink(Lines::one(&b"{\"Id\":\"b\"}"[..]), None).await;
        cp.save(
            &state,
            &recent,
            idlog::encode(&[(k, RecentIds::hour_of(1_800_000_000))]),
        )
        .await;
        // An unsaved tail: written to the sink, never saved.
        cp.sink(Lines::one(&b"{\"Id\":\"c\"}"[..]), None).await;
        let h = cp.health();
        cp.close().await;
        let h2 = h.clone();
        assert_eq!(h2.error, None);
        let log = idlog::path(&dir.path().join("state.json"), 0);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 1_001 * idlog::ENTRY);

        let r = resume(&f, 2);
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
        let r = resume(&f, 1);
        let mut cp = Checkpoint::start(f, &r);
        cp.sink(Lines::one(&b"{\"Id\":\"a\"}"[..]), None).await;
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

    #[tokio::test]
    async fn compaction_writes_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let r = resume(&f, 1);
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
        let r = resume(&f, 2);
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
        let r = resume(&f, 3);
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
        let r = resume(&f, 1_800_000_000);
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
}
