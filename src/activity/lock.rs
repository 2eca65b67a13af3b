//! One exporter per set of feed files: an exclusive OS lock (`flock` on
//! Unix, via std's `File::try_lock`) on `<file>.lock` beside every
//! `activity.state_file` and `activity.output`, taken before anything runs
//! and held for the life of the process. A second exporter configured with
//! the same files refuses to start, naming the file; the lock goes with the
//! process, so a crash never leaves a stale one behind.

use crate::config::Config;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Held locks; dropping releases them.
#[derive(Debug, Default)]
pub struct Locks {
    _files: Vec<File>,
}

pub fn lock_path(p: &Path) -> PathBuf {
    let mut name = p.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    p.with_file_name(name)
}

/// Lock every feed file of every tenant whose feed is enabled.
pub fn acquire(config: &Config) -> Result<Locks, String> {
    let mut files = Vec::new();
    for t in config.tenants.iter().filter(|t| t.activity.enabled) {
        for (key, path) in [
            ("state_file", &t.activity.state_file),
            ("output", &t.activity.output),
        ] {
            let Some(p) = path else { continue };
            let lp = lock_path(p);
            let f = super::fileops::open_write(&lp, t.activity.file_mode.0).map_err(|e| {
                format!(
                    "tenant {:?}: cannot open {} (lock for activity.{key}): {e}",
                    t.name,
                    lp.display()
                )
            })?;
            match f.try_lock() {
                Ok(()) => files.push(f),
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(format!(
                        "tenant {:?}: activity.{key} {} is in use by another m365-exporter (lock {} held); refusing to start",
                        t.name,
                        p.display(),
                        lp.display()
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(format!(
                        "tenant {:?}: cannot lock {}: {e}",
                        t.name,
                        lp.display()
                    ))
                }
            }
        }
    }
    Ok(Locks { _files: files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let yaml = format!(
            "tenants:\n  - name: a\n    tenant_id: 8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b\n    client_id: 0c1d2e3f-0000-4000-8000-000000000001\n    client_secret: x\n    activity: {{enabled: true, state_file: {}}}\n",
            state.display()
        );
        let cfg = Config::parse(&yaml, "t").unwrap();
        let first = acquire(&cfg).unwrap();
        let err = acquire(&cfg).unwrap_err();
        assert!(err.contains("in use by another m365-exporter"), "{err}");
        assert!(err.contains("\"a\"") && err.contains("s.json"), "{err}");
        drop(first);
        acquire(&cfg).unwrap();
    }
}
