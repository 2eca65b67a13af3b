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

pub fn encode(entries: &[(u128, i32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY as usize);
    for (k, h) in entries {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&h.to_le_bytes());
    }
    out
}

/// The first `mark.len` bytes of the marked log (a missing file reads as
/// empty only when the mark says so), and any tail past it cut off.
pub fn read(state: &Path, mark: IdsMark) -> io::Result<Vec<(u128, i32)>> {
    let p = path(state, mark.generation);
    let mut f = match OpenOptions::new().read(true).write(true).open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && mark.len == 0 => return Ok(Vec::new()),
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
    let mut buf = vec![0u8; mark.len as usize];
    f.read_exact(&mut buf)?;
    if have > mark.len {
        f.set_len(mark.len)?;
        f.sync_all()?;
    }
    Ok(buf
        .chunks_exact(ENTRY as usize)
        .map(|c| {
            let mut k = [0u8; 16];
            k.copy_from_slice(&c[..16]);
            let mut h = [0u8; 4];
            h.copy_from_slice(&c[16..]);
            (u128::from_le_bytes(k), i32::from_le_bytes(h))
        })
        .collect())
}

/// Append entries and sync; on failure the partial tail is cut again.
pub fn append(state: &Path, mark: IdsMark, entries: &[(u128, i32)]) -> io::Result<IdsMark> {
    if entries.is_empty() {
        return Ok(mark);
    }
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path(state, mark.generation))?;
    f.set_len(mark.len)?;
    let bytes = encode(entries);
    let r = std::io::Seek::seek(&mut f, io::SeekFrom::Start(mark.len))
        .and_then(|_| f.write_all(&bytes))
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

/// Write every live id into a fresh generation (synced); the caller then
/// saves a state naming it, and only then removes the old one.
pub fn compact(state: &Path, generation: u64, entries: &[(u128, i32)]) -> io::Result<IdsMark> {
    let p = path(state, generation);
    let mut f = File::create(&p)?;
    let bytes = encode(entries);
    f.write_all(&bytes)?;
    f.sync_all()?;
    Ok(IdsMark {
        generation,
        len: bytes.len() as u64,
    })
}

/// Remove every generation but `keep` (left over by a compaction cut short).
pub fn remove_others(state: &Path, keep: u64) {
    let Some(dir) = state.parent() else { return };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Some(base) = state.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!("{base}.ids.");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(gen) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|g| g.parse::<u64>().ok())
        else {
            continue;
        };
        if gen != keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
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
        let c = compact(&state, 1, &[(4, 40)]).unwrap();
        remove_others(&state, 1);
        assert!(!path(&state, 0).exists());
        assert_eq!(read(&state, c).unwrap(), [(4, 40)]);
        assert!(should_compact(2 * 10 + COMPACT_SLACK + 1, 10));
        assert!(!should_compact(30, 10));
    }
}
