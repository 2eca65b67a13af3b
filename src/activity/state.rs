//! The optional state file (`activity.state_file`): cursors, backlog, and
//! the marks of the record-id log ([`super::idlog`]) and the sink, rewritten
//! atomically by the checkpoint (temp file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old state or the new one, never
//! half of each. Version 1 files (ids inline) are still read.
//!
//! A file that cannot be parsed (truncated, garbled) is `corrupt`: the
//! checkpoint moves it aside as `<name>.corrupt-<unix>` (never over an
//! earlier one) and resumes from the newest id log, or refuses to start
//! when that would write duplicates ([`super::checkpoint::resume`]). A file
//! it cannot read (I/O error), of a newer version, or not this tenant's is
//! left where it is and the feed does not start: those are the operator's
//! to look at, not evidence to shuffle away.

use super::backlog::Backlog;
use super::idlog::IdsMark;
use super::recent::RecentIds;
use super::reconcile::Cursor;
use super::sink::SinkMark;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

/// The state itself, once [`decode`] has checked the envelope.
#[derive(Deserialize)]
struct EnvelopeOwned {
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

/// Why a state file's bytes cannot be used.
#[derive(Debug, PartialEq)]
pub enum Unusable {
    /// Not parseable as a state file (truncated, garbled): set aside.
    Corrupt(String),
    /// Parseable but not to be touched (newer version, another program's
    /// or tenant's): the feed does not start.
    Foreign(String),
}

/// Check a state file's bytes: ours, this version, this tenant.
pub fn decode(bytes: &[u8], tenant_id: &str) -> Result<State, Unusable> {
    // The envelope first: a file of a newer version is recognised as such
    // even when its state no longer parses as this version's.
    #[derive(Deserialize)]
    struct Head {
        format: String,
        version: u32,
        tenant_id: String,
    }
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|e| Unusable::Corrupt(format!("not a state file: {e}")))?;
    if head.format != FORMAT {
        return Err(Unusable::Foreign(format!(
            "format {:?} is not {FORMAT:?}",
            head.format
        )));
    }
    if head.version > VERSION {
        return Err(Unusable::Foreign(format!(
            "version {} is newer than this exporter's {VERSION}: written by a newer release",
            head.version
        )));
    }
    if head.version != VERSION && head.version != 1 {
        return Err(Unusable::Corrupt(format!(
            "version {} is not {VERSION}",
            head.version
        )));
    }
    if head.tenant_id != tenant_id {
        return Err(Unusable::Foreign(format!(
            "written for tenant {:?}, not {tenant_id:?}",
            head.tenant_id
        )));
    }
    let env: EnvelopeOwned = serde_json::from_slice(bytes)
        .map_err(|e| Unusable::Corrupt(format!("not a state file: {e}")))?;
    Ok(env.state)
}

/// What loading found.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    Missing,
    Found(Box<State>),
    /// Unparseable, left in place: the caller sets it aside
    /// ([`super::fileops::set_aside`])
    /// or refuses to start.
    Corrupt(String),
}

/// Read and check the file. `Err`: it cannot be read, or is not to be
/// touched ([`Unusable::Foreign`]); the message names the file.
pub fn load(path: &Path, tenant_id: &str) -> Result<Loaded, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    match decode(&bytes, tenant_id) {
        Ok(s) => Ok(Loaded::Found(Box::new(s))),
        Err(Unusable::Corrupt(reason)) => Ok(Loaded::Corrupt(reason)),
        Err(Unusable::Foreign(reason)) => Err(format!("{}: {reason}", path.display())),
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Replace the file atomically with `bytes` (mode 0600).
pub fn save(path: &Path, bytes: &[u8]) -> io::Result<()> {
    save_with_mode(path, bytes, super::fileops::DEFAULT_MODE)
}

/// [`save`] with the file's mode (`activity.file_mode`).
pub fn save_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = sibling(path, "tmp");
    let mut f = super::fileops::create(&tmp, mode)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable only once the directory is synced.
    super::fileops::sync_dir(path)
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
        s.sink = Some(SinkMark {
            len: 42,
            ino: 7,
            dev: 3,
            path: Some("/var/log/out.ndjson".into()),
        });
        s
    }

    #[test]
    fn roundtrip_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path, T), Ok(Loaded::Missing));
        save(&path, &encode(&sample(), T, 1)).unwrap();
        assert_eq!(load(&path, T), Ok(Loaded::Found(Box::new(sample()))));
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
    fn corrupt_files_are_reported_and_set_aside_never_over_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for (bytes, why) in [
            (b"{\"truncated".to_vec(), "not a state file"),
            (b"{\"some\":\"other program\"}".to_vec(), "not a state file"),
            (
                String::from_utf8(encode(&sample(), T, 1)).unwrap()[..60].into(),
                "not a state file",
            ),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            match load(&path, T) {
                Ok(Loaded::Corrupt(reason)) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{other:?}"),
            }
            assert!(path.exists(), "left in place by load");
        }
        let first = crate::activity::fileops::set_aside(&path, "corrupt", 77).unwrap();
        assert!(first.ends_with("state.json.corrupt-77"));
        std::fs::write(&path, b"again").unwrap();
        let second = crate::activity::fileops::set_aside(&path, "corrupt", 77).unwrap();
        assert!(second.ends_with("state.json.corrupt-77.1"));
        assert_eq!(std::fs::read(&second).unwrap(), b"again");
        assert!(std::fs::read(&first).unwrap().starts_with(b"{"), "kept");
        assert!(!path.exists());
    }

    #[test]
    fn foreign_newer_and_unreadable_files_are_errors_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for (bytes, why) in [
            (
                encode(&sample(), "contoso.onmicrosoft.com", 1),
                "written for tenant",
            ),
            (
                String::from_utf8(encode(&sample(), T, 1))
                    .unwrap()
                    .replace("\"version\":2", "\"version\":9")
                    .into_bytes(),
                "newer",
            ),
            (
                br#"{"format":"x","version":1,"tenant_id":"t","state":{}}"#.to_vec(),
                "format",
            ),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let e = load(&path, T).unwrap_err();
            assert!(e.contains(why) && e.contains("state.json"), "{e}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
        // A directory where the file should be: an I/O error, not corrupt.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(load(&path, T).unwrap_err().contains("cannot read"));
    }
}
