//! The remembered record ids on disk: an append-only log beside the state
//! file (`<state_file>.ids.<generation>`), 20 bytes per id (the 128-bit key
//! and its hour, little-endian). A checkpoint appends only the ids added
//! since the last one, so its cost follows the records fetched, not the
//! 1,000,000 ids of the dedupe window. When the log holds far more entries
//! than are remembered (ids aged out), it is compacted into a new
//! generation; the state file names the generation and length it trusts,
//! so a crash anywhere leaves a consistent pair (bytes past the mark are
//! ignored and cut, an unnamed generation is deleted).

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub const ENTRY: u64 = 20;
/// Compact when the log holds more than twice the live ids plus this.
pub const COMPACT_SLACK: u64 = 100_000;

/// Which log, and how much of it, a saved state trusts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsMark {
    pub generation: u64,
    pub len: u64,
}

pub fn path(state: &Path, generation: u64) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".ids.{generation}"));
    state.with_file_name(name)
}

/// Bytes read from the log at a time while resuming (a multiple of [`ENTRY`]):
/// the log is never held in memory whole.
const READ_CHUNK: usize = 3_276 * ENTRY as usize;

/// One entry's 20 bytes.
pub fn push(out: &mut Vec<u8>, k: u128, h: i32) {
    out.extend_from_slice(&k.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
}

pub fn encode(entries: &[(u128, i32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY as usize);
    for (k, h) in entries {
        push(&mut out, *k, *h);
    }
    out
}

fn decode(c: &[u8]) -> (u128, i32) {
    let mut k = [0u8; 16];
    k.copy_from_slice(&c[..16]);
    let mut h = [0u8; 4];
    h.copy_from_slice(&c[16..20]);
    (u128::from_le_bytes(k), i32::from_le_bytes(h))
}

/// Every entry of the first `mark.len` bytes of the marked log, in order,
/// handed to `each` as it is read (a missing file reads as empty only when
/// the mark says so); then any tail past the mark is cut off. Returns the
/// number of entries. On an error part of the entries may have been handed
/// over already.
pub fn read_each(state: &Path, mark: IdsMark, mut each: impl FnMut(u128, i32)) -> io::Result<u64> {
    let p = path(state, mark.generation);
    let mut f = match OpenOptions::new().read(true).write(true).open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && mark.len == 0 => return Ok(0),
        Err(e) => return Err(e),
    };
    let have = f.metadata()?.len();
    if have < mark.len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{} holds {have} bytes, the state says {}",
                p.display(),
                mark.len
            ),
        ));
    }
    let mut buf = vec![0u8; READ_CHUNK];
    let mut left = mark.len;
    let mut n = 0;
    while left > 0 {
        let take = left.min(READ_CHUNK as u64) as usize;
        f.read_exact(&mut buf[..take])?;
        left -= take as u64;
        // A mark is a whole number of entries; a stray partial one is ignored.
        for c in buf[..take].chunks_exact(ENTRY as usize) {
            let (k, h) = decode(c);
            each(k, h);
            n += 1;
        }
    }
    if have > mark.len {
        f.set_len(mark.len)?;
        f.sync_all()?;
    }
    Ok(n)
}

/// [`read_each`] into a vector (tests, tools).
pub fn read(state: &Path, mark: IdsMark) -> io::Result<Vec<(u128, i32)>> {
    let mut out = Vec::new();
    read_each(state, mark, |k, h| out.push((k, h)))?;
    Ok(out)
}

/// Append entries and sync; on failure the partial tail is cut again.
pub fn append(state: &Path, mark: IdsMark, entries: &[(u128, i32)]) -> io::Result<IdsMark> {
    append_encoded(state, mark, &encode(entries), super::fileops::DEFAULT_MODE)
}

/// [`append`] of entries already encoded ([`push`]).
/// A new log file gets `mode`.
pub fn append_encoded(state: &Path, mark: IdsMark, bytes: &[u8], mode: u32) -> io::Result<IdsMark> {
    if bytes.is_empty() {
        return Ok(mark);
    }
    let mut f = super::fileops::open_write(&path(state, mark.generation), mode)?;
    f.set_len(mark.len)?;
    let r = std::io::Seek::seek(&mut f, io::SeekFrom::Start(mark.len))
        .and_then(|_| f.write_all(bytes))
        .and_then(|_| f.sync_data());
    if let Err(e) = r {
        let _ = f.set_len(mark.len);
        return Err(e);
    }
    Ok(IdsMark {
        generation: mark.generation,
        len: mark.len + bytes.len() as u64,
    })
}

/// A fresh generation being written (a compaction): every live id, handed
/// over in chunks so that no second copy of the whole set is ever held;
/// synced by [`Compaction::finish`], after which the caller saves a state
/// naming it, and only then removes the old one. A compaction cut short
/// leaves an unnamed generation, deleted at the next start.
pub struct Compaction {
    file: File,
    state: PathBuf,
    generation: u64,
    len: u64,
}

impl Compaction {
    pub fn create(state: &Path, generation: u64, mode: u32) -> io::Result<Compaction> {
        Ok(Compaction {
            file: super::fileops::create(&path(state, generation), mode)?,
            state: state.to_path_buf(),
            generation,
            len: 0,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    pub fn finish(self) -> io::Result<IdsMark> {
        self.file.sync_all()?;
        // The new generation's entry, before a state names it.
        super::fileops::sync_dir(&self.state)?;
        Ok(IdsMark {
            generation: self.generation,
            len: self.len,
        })
    }
}

/// Write `entries` as a fresh generation at once (synced).
pub fn compact(
    state: &Path,
    generation: u64,
    entries: impl IntoIterator<Item = (u128, i32)>,
) -> io::Result<IdsMark> {
    let mut c = Compaction::create(state, generation, super::fileops::DEFAULT_MODE)?;
    let mut buf = Vec::with_capacity(READ_CHUNK);
    for (k, h) in entries {
        push(&mut buf, k, h);
        if buf.len() >= READ_CHUNK {
            c.write(&buf)?;
            buf.clear();
        }
    }
    c.write(&buf)?;
    c.finish()
}

/// Remove every generation but `keep` (left over by a compaction cut short).
pub fn remove_others(state: &Path, keep: u64) {
    for (gen, p) in generations(state) {
        if gen != keep {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Every generation of the log beside `state` and its path, newest first.
pub fn generations(state: &Path) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    let Some(dir) = state.parent() else {
        return out;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Some(base) = state.file_name().and_then(|n| n.to_str()) else {
        return out;
    };
    let prefix = format!("{base}.ids.");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if let Some(gen) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|g| g.parse::<u64>().ok())
        {
            out.push((gen, e.path()));
        }
    }
    out.sort_by_key(|g| std::cmp::Reverse(g.0));
    out
}

/// The whole of a generation, as a mark (a partial last entry left out).
pub fn whole(state: &Path, generation: u64) -> io::Result<IdsMark> {
    let len = std::fs::metadata(path(state, generation))?.len();
    Ok(IdsMark {
        generation,
        len: len - len % ENTRY,
    })
}

/// Whether a log of `log_entries` for `live` remembered ids should be compacted.
pub fn should_compact(log_entries: u64, live: u64) -> bool {
    log_entries > 2 * live + COMPACT_SLACK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_cut_and_compact() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let m0 = IdsMark {
            generation: 0,
            len: 0,
        };
        assert!(read(&state, m0).unwrap().is_empty());
        let m1 = append(&state, m0, &[(1, 10), (u128::MAX >> 1, -1)]).unwrap();
        assert_eq!(m1.len, 40);
        let m2 = append(&state, m1, &[(3, 30)]).unwrap();
        // A state saved at m1 trusts only the first two; the third is cut.
        assert_eq!(read(&state, m1).unwrap(), [(1, 10), (u128::MAX >> 1, -1)]);
        assert_eq!(std::fs::metadata(path(&state, 0)).unwrap().len(), 40);
        assert!(read(&state, m2).is_err(), "shorter than its mark");
        // Appending at a mark overwrites anything past it.
        let m2 = append(&state, m1, &[(4, 40)]).unwrap();
        assert_eq!(read(&state, m2).unwrap().len(), 3);
        let c = compact(&state, 1, [(4, 40)]).unwrap();
        remove_others(&state, 1);
        assert!(!path(&state, 0).exists());
        assert_eq!(read(&state, c).unwrap(), [(4, 40)]);
        assert!(should_compact(2 * 10 + COMPACT_SLACK + 1, 10));
        assert!(!should_compact(30, 10));
    }

    #[test]
    fn reads_a_log_larger_than_one_chunk_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let n = 3 * 3_276 + 17;
        let entries: Vec<(u128, i32)> = (0..n).map(|i| (i as u128 * 7 + 1, i)).collect();
        let m = compact(&state, 4, entries.iter().copied()).unwrap();
        assert_eq!(m.len, n as u64 * ENTRY);
        let mut seen = Vec::new();
        assert_eq!(
            read_each(&state, m, |k, h| seen.push((k, h))).unwrap(),
            n as u64
        );
        assert_eq!(seen, entries);
    }
}
