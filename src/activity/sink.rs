//! The optional NDJSON output (`activity.output`): each new record once, as
//! Microsoft sent it. [`Sink`] owns the file handle; the checkpoint thread
//! is its only user: it appends each fetched blob's new lines at once and
//! syncs them at each save, whose state file then records the [`SinkMark`].
//!
//! Exactly-once across restarts comes from that mark: bytes past it were
//! written for blobs whose state was never saved; those blobs are still
//! pending in the saved state and will be fetched again, so at start-up
//! [`reconcile`] cuts them off instead of letting them be written twice.
//! The file is reopened after each sync, so rotation by rename works: the
//! next append goes to the new file, whose identity the next mark records.
//! Only the very file the mark names (device, inode, path) is ever cut: a
//! non-empty file of any other identity found at `output` on start (the
//! mark saved before it existed, a rotation, another program's) is moved
//! aside as `<output>.unknown-<unix>`, never truncated, and a new file
//! started.

use super::fileops;
use super::records::Lines;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Where the sink ended when the state was saved, and which file it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkMark {
    pub len: u64,
    /// Inode of the file then (0: there was none).
    pub ino: u64,
    /// Its device (0 in marks saved before it was recorded: not compared).
    #[serde(default)]
    pub dev: u64,
    /// Its path (none in older marks: not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// The output file, appended between syncs.
#[derive(Debug)]
pub struct Sink {
    path: PathBuf,
    /// Open since the last sync (none: nothing appended since).
    file: Option<File>,
    /// Where the file ended at the last sync (or at start).
    mark: Option<SinkMark>,
    /// Mode of a file it creates (`activity.file_mode`).
    mode: u32,
}

#[cfg(unix)]
pub fn ino(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}
#[cfg(not(unix))]
pub fn ino(_: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(unix)]
fn dev(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::dev(m)
}
#[cfg(not(unix))]
fn dev(_: &std::fs::Metadata) -> u64 {
    0
}

fn mark_of(path: &Path, m: &std::fs::Metadata) -> SinkMark {
    SinkMark {
        len: m.len(),
        ino: ino(m),
        dev: dev(m),
        path: Some(path.to_path_buf()),
    }
}

/// What [`reconcile`] did to the file at `output`.
#[derive(Debug, PartialEq)]
pub enum Reconciled {
    /// Nothing to do (no file, nothing past the mark, or nothing saved).
    Kept,
    /// The marked file, with this many bytes written after the mark cut.
    Cut(u64),
    /// Not the marked file: moved here.
    SetAside(PathBuf),
}

/// Cut bytes written after the saved mark from the very file the mark
/// names; a non-empty file of another identity is moved aside instead
/// (as `<output>.unknown-<now>`). Without a saved mark (a first start) the
/// file is appended to as it is.
pub fn reconcile(path: &Path, mark: Option<&SinkMark>, now: i64) -> io::Result<Reconciled> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Reconciled::Kept),
        Err(e) => return Err(e),
    };
    let Some(m) = mark else {
        return Ok(Reconciled::Kept);
    };
    let same = m.ino != 0
        && ino(&meta) == m.ino
        && (m.dev == 0 || dev(&meta) == m.dev)
        && m.path.as_deref().is_none_or(|p| p == path);
    if same {
        if meta.len() <= m.len {
            return Ok(Reconciled::Kept);
        }
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(m.len)?;
        f.sync_all()?;
        return Ok(Reconciled::Cut(meta.len() - m.len));
    }
    if meta.len() == 0 {
        return Ok(Reconciled::Kept);
    }
    fileops::set_aside(path, "unknown", now).map(Reconciled::SetAside)
}

/// The mark of the file as it is now (none yet: length 0, inode 0).
pub fn mark_now(path: &Path) -> io::Result<SinkMark> {
    match File::open(path).and_then(|f| f.metadata()) {
        Ok(m) => Ok(mark_of(path, &m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(SinkMark {
            path: Some(path.to_path_buf()),
            ..SinkMark::default()
        }),
        Err(e) => Err(e),
    }
}

impl Sink {
    /// The sink at `path`, which ended at `mark` when it was last synced.
    pub fn new(path: &Path, mark: Option<SinkMark>, mode: u32) -> Sink {
        Sink {
            path: path.to_path_buf(),
            file: None,
            mark,
            mode,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one blob's lines (not synced). On failure the partial write
    /// is cut off again and the handle dropped.
    pub fn append(&mut self, lines: &Lines) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let f = match &mut self.file {
            Some(f) => f,
            // A new file (first write, or after rotation) gets the
            // configured mode and a synced directory entry.
            None => self
                .file
                .insert(fileops::open_append(&self.path, self.mode)?),
        };
        let before = f.metadata().map(|m| m.len());
        let written = lines.write_to(f);
        if written.is_err() {
            if let Ok(b) = before {
                let _ = f.set_len(b);
            }
            self.file = None;
        }
        written
    }

    /// Make what was appended since the last sync durable, close the file,
    /// and return the mark to save (unchanged when nothing was appended).
    pub fn sync(&mut self) -> io::Result<Option<SinkMark>> {
        if let Some(f) = self.file.take() {
            let m = f.sync_data().and_then(|_| f.metadata())?;
            self.mark = Some(mark_of(&self.path, &m));
        }
        Ok(self.mark.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &'static str) -> Lines {
        Lines::one(s.as_bytes())
    }

    #[test]
    fn append_sync_then_reconcile_cuts_unsaved_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        assert_eq!(
            reconcile(&path, None, 1).unwrap(),
            Reconciled::Kept,
            "no file yet"
        );
        let mut sink = Sink::new(&path, None, 0o600);
        assert_eq!(sink.sync().unwrap(), None, "nothing appended");
        sink.append(&line("{\"Id\":\"1\"}")).unwrap();
        let saved = sink.sync().unwrap().unwrap();
        assert_eq!(saved.len, 11);
        assert_eq!(mark_now(&path).unwrap(), saved);
        assert_eq!(sink.sync().unwrap(), Some(saved.clone()), "unchanged");
        // A second blob is written, then the process dies before the state is saved.
        sink.append(&line("{\"Id\":\"2\"}")).unwrap();
        assert_eq!(
            reconcile(&path, Some(&saved), 1).unwrap(),
            Reconciled::Cut(11)
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"Id\":\"1\"}\n");
        assert_eq!(
            reconcile(&path, Some(&saved), 1).unwrap(),
            Reconciled::Kept,
            "idempotent"
        );
    }

    /// The mark was saved before any file existed: whatever is at the path
    /// now is moved aside whole, never truncated.
    #[test]
    fn a_file_the_mark_does_not_name_is_set_aside_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let saved = mark_now(&path).unwrap();
        assert_eq!((saved.len, saved.ino), (0, 0));
        std::fs::write(&path, b"{\"Id\":\"1\"}\n").unwrap();
        let aside = dir.path().join("out.ndjson.unknown-5");
        assert_eq!(
            reconcile(&path, Some(&saved), 5).unwrap(),
            Reconciled::SetAside(aside.clone())
        );
        assert_eq!(std::fs::read(&aside).unwrap(), b"{\"Id\":\"1\"}\n");
        assert!(!path.exists());
        // An empty file is nobody's records: used as it is.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(reconcile(&path, Some(&saved), 6).unwrap(), Reconciled::Kept);
        // A mark of another path never cuts this one.
        let mut elsewhere = mark_now(&path).unwrap();
        std::fs::write(&path, b"x\n").unwrap();
        elsewhere.path = Some(dir.path().join("other.ndjson"));
        assert!(matches!(
            reconcile(&path, Some(&elsewhere), 7).unwrap(),
            Reconciled::SetAside(_)
        ));
    }

    #[test]
    fn a_rotated_file_is_set_aside_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let mut sink = Sink::new(&path, None, 0o600);
        sink.append(&line("old")).unwrap();
        let saved = sink.sync().unwrap().unwrap();
        std::fs::rename(&path, dir.path().join("out.ndjson.1")).unwrap();
        sink.append(&line("new record line")).unwrap();
        let rotated = sink.sync().unwrap().unwrap();
        assert_ne!(rotated.ino, saved.ino, "the next sync marks the new file");
        assert_eq!(rotated.len, 16);
        // Killed before the state recorded the new file.
        let got = reconcile(&path, Some(&saved), 9).unwrap();
        let Reconciled::SetAside(aside) = got else {
            panic!("{got:?}")
        };
        assert_eq!(std::fs::read(&aside).unwrap(), b"new record line\n");
        assert_eq!(
            std::fs::read(dir.path().join("out.ndjson.1")).unwrap(),
            b"old\n"
        );
    }
}
