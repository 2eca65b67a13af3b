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
//! next append goes to the new file, whose inode the next mark records.

use super::fileops;
use super::records::Lines;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Where the sink ended when the state was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkMark {
    pub len: u64,
    /// Inode of the file then: a rotated (new) file is never truncated.
    pub ino: u64,
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

/// Cut bytes written after the saved mark (same file only). Returns how
/// many bytes were removed.
pub fn reconcile(path: &Path, mark: Option<SinkMark>) -> io::Result<u64> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    // `ino` 0: there was no file when the state was saved, so everything in
    // the one found now was written after it.
    match mark {
        Some(m) if (ino(&meta) == m.ino || m.ino == 0) && meta.len() > m.len => {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(m.len)?;
            f.sync_all()?;
            Ok(meta.len() - m.len)
        }
        _ => Ok(0),
    }
}

/// The mark of the file as it is now (none yet: length 0, inode 0).
pub fn mark_now(path: &Path) -> io::Result<SinkMark> {
    match File::open(path).and_then(|f| f.metadata()) {
        Ok(m) => Ok(SinkMark {
            len: m.len(),
            ino: ino(&m),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(SinkMark { len: 0, ino: 0 }),
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
            self.mark = Some(SinkMark {
                len: m.len(),
                ino: ino(&m),
            });
        }
        Ok(self.mark)
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
        assert_eq!(reconcile(&path, None).unwrap(), 0, "no file yet");
        let mut sink = Sink::new(&path, None, 0o600);
        assert_eq!(sink.sync().unwrap(), None, "nothing appended");
        sink.append(&line("{\"Id\":\"1\"}")).unwrap();
        let saved = sink.sync().unwrap().unwrap();
        assert_eq!(saved.len, 11);
        assert_eq!(mark_now(&path).unwrap(), saved);
        assert_eq!(sink.sync().unwrap(), Some(saved), "unchanged");
        // A second blob is written, then the process dies before the state is saved.
        sink.append(&line("{\"Id\":\"2\"}")).unwrap();
        assert_eq!(reconcile(&path, Some(saved)).unwrap(), 11);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"Id\":\"1\"}\n");
        assert_eq!(reconcile(&path, Some(saved)).unwrap(), 0, "idempotent");
    }

    #[test]
    fn a_file_created_after_the_saved_state_is_cut_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let saved = mark_now(&path).unwrap();
        assert_eq!(saved, SinkMark { len: 0, ino: 0 });
        let mut sink = Sink::new(&path, Some(saved), 0o600);
        sink.append(&line("{\"Id\":\"1\"}")).unwrap();
        assert_eq!(reconcile(&path, Some(saved)).unwrap(), 11);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn rotated_file_is_left_alone() {
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
        assert_eq!(reconcile(&path, Some(saved)).unwrap(), 0);
        assert_eq!(std::fs::read(&path).unwrap(), b"new record line\n");
    }
}
