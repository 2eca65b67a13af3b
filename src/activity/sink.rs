//! The optional NDJSON output (`activity.output`): each new record once, as
//! Microsoft sent it; written by the checkpoint thread, synced at each save.
//!
//! Exactly-once across restarts comes from the state file: after each blob
//! the state records the sink's length ([`SinkMark`]). Bytes past that mark
//! were written for a blob whose state was never saved; that blob is still
//! pending in the saved state and will be fetched again, so at start-up
//! [`reconcile`] cuts them off instead of letting them be written twice.
//! The file is reopened per blob, so rotation by rename works.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where the sink ended when the state was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkMark {
    pub len: u64,
    /// Inode of the file then: a rotated (new) file is never truncated.
    pub ino: u64,
}

#[derive(Debug, Clone)]
pub struct Sink {
    path: PathBuf,
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

impl Sink {
    pub fn new(path: &Path) -> Sink {
        Sink {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one blob's lines and sync them; on failure the partial write
    /// is cut off again, so a retry of the blob starts clean.
    pub fn append(&self, data: &[u8]) -> io::Result<SinkMark> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let meta = f.metadata()?;
        let before = meta.len();
        let written = f.write_all(data).and_then(|_| f.sync_data());
        if let Err(e) = written {
            let _ = f.set_len(before);
            return Err(e);
        }
        Ok(SinkMark {
            len: before + data.len() as u64,
            ino: ino(&meta),
        })
    }

    /// The mark of the file as it is now (none yet: length 0).
    pub fn mark(&self) -> io::Result<SinkMark> {
        match File::open(&self.path).and_then(|f| f.metadata()) {
            Ok(m) => Ok(SinkMark {
                len: m.len(),
                ino: ino(&m),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(SinkMark { len: 0, ino: 0 }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_then_reconcile_cuts_unsaved_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let sink = Sink::new(&path);
        assert_eq!(reconcile(&path, None).unwrap(), 0, "no file yet");
        let saved = sink.append(b"{\"Id\":\"1\"}\n").unwrap();
        assert_eq!(saved.len, 11);
        assert_eq!(sink.mark().unwrap(), saved);
        // A second blob is written, then the process dies before the state is saved.
        sink.append(b"{\"Id\":\"2\"}\n").unwrap();
        assert_eq!(reconcile(&path, Some(saved)).unwrap(), 11);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"Id\":\"1\"}\n");
        assert_eq!(reconcile(&path, Some(saved)).unwrap(), 0, "idempotent");
    }

    #[test]
    fn a_file_created_after_the_saved_state_is_cut_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let sink = Sink::new(&path);
        let saved = sink.mark().unwrap();
        assert_eq!(saved, SinkMark { len: 0, ino: 0 });
        sink.append(b"{\"Id\":\"1\"}\n").unwrap();
        assert_eq!(reconcile(&path, Some(saved)).unwrap(), 11);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn rotated_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let sink = Sink::new(&path);
        let saved = sink.append(b"old\n").unwrap();
        std::fs::rename(&path, dir.path().join("out.ndjson.1")).unwrap();
        sink.append(b"new record line\n").unwrap();
        assert_eq!(reconcile(&path, Some(saved)).unwrap(), 0);
        assert_eq!(std::fs::read(&path).unwrap(), b"new record line\n");
    }
}
