//! One exporter per set of feed files: an exclusive OS lock (`flock` on
//! Unix, via std's `File::try_lock`) on `<file>.lock` beside every
//! `activity.state_file` and `activity.output`, taken before anything runs
//! and held while the tenant runs. A second exporter configured with the
//! same files refuses to start, naming the file; the lock goes with the
//! process, so a crash never leaves a stale one behind.
//!
//! The locks follow the configuration: the fleet holds each tenant's with
//! the tenant, so a reload that adds a tenant locks its files before its
//! feed starts (a conflict refuses that tenant), and one that removes a
//! tenant releases them.

use crate::config::{Config, TenantConfig};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Held locks, by lock file; dropping releases them.
#[derive(Debug, Default)]
pub struct Locks {
    files: BTreeMap<PathBuf, File>,
}

impl Locks {
    /// Add `other`'s locks to these.
    pub fn extend(&mut self, other: Locks) {
        self.files.extend(other.files);
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

pub fn lock_path(p: &Path) -> PathBuf {
    let mut name = p.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    p.with_file_name(name)
}

/// Lock every feed file of every tenant whose feed is enabled.
pub fn acquire(config: &Config) -> Result<Locks, String> {
    let mut held = Locks::default();
    for t in &config.tenants {
        let mine = acquire_tenant(t, &mut [])?;
        held.extend(mine);
    }
    Ok(held)
}

/// Lock the feed files of `t` (none when its feed is off), taking a lock
/// this process already holds out of `spares` (a tenant restarted by a
/// reload keeps its files, one added takes a removed one's) and any other
/// anew. All or nothing: on a conflict nothing is taken from `spares`.
pub fn acquire_tenant(t: &TenantConfig, spares: &mut [&mut Locks]) -> Result<Locks, String> {
    let mut fresh = Locks::default();
    let mut reused = Vec::new();
    if !t.activity.enabled {
        return Ok(fresh);
    }
    for (key, path) in [
        ("state_file", &t.activity.state_file),
        ("output", &t.activity.output),
    ] {
        let Some(p) = path else { continue };
        let lp = lock_path(p);
        if spares.iter().any(|s| s.files.contains_key(&lp)) {
            reused.push(lp);
            continue;
        }
        if fresh.files.contains_key(&lp) {
            continue;
        }
        let f = lock_one(&t.name, key, p, &lp)?;
        fresh.files.insert(lp, f);
    }
    for lp in reused {
        if let Some(f) = spares.iter_mut().find_map(|s| s.files.remove(&lp)) {
            fresh.files.insert(lp, f);
        }
    }
    Ok(fresh)
}

fn lock_one(tenant: &str, key: &str, p: &Path, lp: &Path) -> Result<File, String> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lp)
        .map_err(|e| {
            format!(
                "tenant {tenant:?}: cannot open {} (lock for activity.{key}): {e}",
                lp.display()
            )
        })?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "tenant {tenant:?}: activity.{key} {} is in use by another m365-exporter (lock {} held); refusing to start",
            p.display(),
            lp.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!(
            "tenant {tenant:?}: cannot lock {}: {e}",
            lp.display()
        )),
    }
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
        let again = acquire(&cfg).unwrap();

        // A tenant that already holds its files (restarted by a reload)
        // takes them over; another process still cannot.
        let t = &cfg.tenants[0];
        let mut spare = again;
        let mine = acquire_tenant(t, &mut [&mut spare]).unwrap();
        assert!(spare.is_empty() && !mine.is_empty());
        assert!(acquire(&cfg).is_err());
        drop(mine);
        acquire(&cfg).unwrap();
    }
}
