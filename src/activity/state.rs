//! The optional state file (`activity.state_file`): cursors, backlog, and
//! the marks of the record-id log ([`super::idlog`]) and the sink, rewritten
//! atomically by the checkpoint (temp file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old state or the new one, never
//! half of each. Version 1 files (ids inline) are still read.
//!
//! A file that cannot be used (corrupt, another program's, another tenant's)
//! is moved aside as `<name>.corrupt-<unix>` with one error log line, and the
//! collector starts over from `lookback`: it never refuses to start, and it
//! never overwrites evidence.

use super::backlog::Backlog;
use super::idlog::IdsMark;
use super::recent::RecentIds;
use super::reconcile::Cursor;
use super::sink::SinkMark;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "m365-exporter/activity-state";
pub const VERSION: u32 = 2;

/// Everything a restart needs.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// content type → end of the last fully listed window (Unix seconds).
    pub cursors: BTreeMap<String, i64>,
    /// content type → newest contentCreated seen.
    pub newest: BTreeMap<String, i64>,
    pub backlog: Backlog,
    /// Version 1 kept the ids here; version 2 keeps them in the id log.
    #[serde(default, skip_serializing_if = "RecentIds::is_empty")]
    pub recent_ids: RecentIds,
    #[serde(default)]
    pub ids: Option<IdsMark>,
    pub sink: Option<SinkMark>,
    /// With `activity.reconcile`: its cursor and the query in flight
    /// (absent from files written before it, or without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Cursor>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    format: &'a str,
    version: u32,
    tenant_id: &'a str,
    saved_at: i64,
    // Nested, not flattened: flatten would stringify the integer map keys.
    state: &'a State,
}

#[derive(Deserialize)]
struct EnvelopeOwned {
    format: String,
    version: u32,
    tenant_id: String,
    state: State,
}

pub fn encode(state: &State, tenant_id: &str, now: i64) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        format: FORMAT,
        version: VERSION,
        tenant_id,
        saved_at: now,
        state,
    })
    // Plain maps and numbers: serialization cannot fail.
    .unwrap_or_default()
}

/// Check a state file's bytes: ours, this version, this tenant.
pub fn decode(bytes: &[u8], tenant_id: &str) -> Result<State, String> {
    let env: EnvelopeOwned =
        serde_json::from_slice(bytes).map_err(|e| format!("not a state file: {e}"))?;
    if env.format != FORMAT {
        return Err(format!("format {:?} is not {FORMAT:?}", env.format));
    }
    if env.version != VERSION && env.version != 1 {
        return Err(format!("version {} is not {VERSION}", env.version));
    }
    if env.tenant_id != tenant_id {
        return Err(format!(
            "written for tenant {:?}, not {tenant_id:?}",
            env.tenant_id
        ));
    }
    Ok(env.state)
}

/// What loading found.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    Missing,
    Found(Box<State>),
    /// Unusable; moved to `aside` (None if even that failed).
    Bad {
        reason: String,
        aside: Option<PathBuf>,
    },
}

pub fn load(path: &Path, tenant_id: &str, now: i64) -> Loaded {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => {
            return Loaded::Bad {
                reason: format!("cannot read: {e}"),
                aside: None,
            }
        }
    };
    match decode(&bytes, tenant_id) {
        Ok(s) => Loaded::Found(Box::new(s)),
        Err(reason) => {
            let aside = sibling(path, &format!("corrupt-{now}"));
            let aside = std::fs::rename(path, &aside).ok().map(|_| aside);
            Loaded::Bad { reason, aside }
        }
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Replace the file atomically with `bytes`.
pub fn save(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = sibling(path, "tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable only once the directory is synced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Content;

    const T: &str = "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b";

    fn sample() -> State {
        let mut s = State::default();
        s.cursors.insert("Audit.Exchange".into(), 1_800_000_000);
        s.newest.insert("Audit.Exchange".into(), 1_799_999_000);
        s.backlog.offer(Content {
            content_type: "Audit.Exchange".into(),
            content_id: "a$b".into(),
            content_uri: "http://x/a$b".into(),
            created: 1_799_999_000,
            expiration: 1_800_604_800,
        });
        s.recent_ids
            .insert(crate::activity::recent::key("x"), 1_799_999_000);
        s.sink = Some(SinkMark { len: 42, ino: 7 });
        s
    }

    #[test]
    fn roundtrip_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path, T, 1), Loaded::Missing);
        save(&path, &encode(&sample(), T, 1)).unwrap();
        assert_eq!(load(&path, T, 2), Loaded::Found(Box::new(sample())));
        assert!(!sibling(&path, "tmp").exists());
    }

    #[test]
    fn the_reconcile_cursor_is_saved_and_older_files_still_load() {
        let mut s = sample();
        s.recent_ids = RecentIds::default();
        let before = String::from_utf8(encode(&s, T, 1)).unwrap();
        assert!(!before.contains("reconcile"), "absent when unused");
        // A file written before the reconciler existed.
        assert_eq!(decode(before.as_bytes(), T).unwrap().reconcile, None);
        s.reconcile = Some(Cursor {
            until: 1_800_000_000,
            proven: 1_800_000_000,
            ..Cursor::default()
        });
        assert_eq!(decode(&encode(&s, T, 1), T).unwrap(), s);
    }

    #[test]
    fn bad_files_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for (bytes, why) in [
            (b"{\"truncated".to_vec(), "not a state file"),
            (b"{\"some\":\"other program\"}".to_vec(), "not a state file"),
            (
                encode(&sample(), "contoso.onmicrosoft.com", 1),
                "written for tenant",
            ),
            (
                String::from_utf8(encode(&sample(), T, 1))
                    .unwrap()
                    .replace("\"version\":2", "\"version\":9")
                    .into_bytes(),
                "version 9",
            ),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            match load(&path, T, 77) {
                Loaded::Bad { reason, aside } => {
                    assert!(reason.contains(why), "{reason}");
                    let aside = aside.unwrap();
                    assert!(aside.ends_with("state.json.corrupt-77"));
                    assert_eq!(std::fs::read(&aside).unwrap(), bytes, "kept as it was");
                }
                other => panic!("{other:?}"),
            }
            assert!(!path.exists());
        }
    }
}
