//! Blobs that never parsed ([`super::downloader::QUARANTINE_AFTER`] times),
//! kept aside raw as `<contentId>.blob` in a directory beside the state file
//! (or the output without one), so that an operator can look at what
//! Microsoft sent. Written by the checkpoint thread only.

use super::fileops;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `<state file>.quarantine` (or `<output>.quarantine`); none without files.
pub fn dir(state: Option<&Path>, output: Option<&Path>) -> Option<PathBuf> {
    let base = state.or(output)?;
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(".quarantine");
    Some(base.with_file_name(name))
}

/// Where a blob is kept in `dir`: contentIds are `[0-9a-z$_]`; anything
/// else becomes `_`.
pub fn path(dir: &Path, content_id: &str) -> PathBuf {
    let name: String = content_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '$' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}.blob"))
}

/// Write `body` durably at `path` (from [`path`]) with `mode`, creating
/// its directory (`x` added where `mode` reads).
pub fn keep(path: &Path, body: &[u8], mode: u32) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fileops::create_dir(dir, fileops::dir_mode(mode))?;
    }
    let mut f = fileops::create(path, mode)?;
    f.write_all(body)?;
    f.sync_all()?;
    fileops::sync_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beside_the_state_file_or_the_output() {
        let (state, out) = (Path::new("/var/lib/x/state.json"), Path::new("/o/a.nd"));
        assert_eq!(
            dir(Some(state), Some(out)).unwrap(),
            Path::new("/var/lib/x/state.json.quarantine")
        );
        assert_eq!(
            dir(None, Some(out)).unwrap(),
            Path::new("/o/a.nd.quarantine")
        );
        assert_eq!(dir(None, None), None);
    }

    #[test]
    fn keeps_the_raw_bytes_under_a_safe_name() {
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("s.quarantine");
        let p = path(&q, "20261127$a/../b");
        assert_eq!(p, q.join("20261127$a____b.blob"));
        keep(&p, b"[{not json", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"[{not json");
    }
}
