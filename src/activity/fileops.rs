//! How the feed's files come into being: with the configured mode
//! (`activity.file_mode`, `0600` unless set) whatever the umask, in
//! directories of the matching mode (`0700`), and with the directory synced
//! after a new entry, so a crash never loses a file whose contents were
//! synced. Audit records are sensitive: nothing the feed writes is readable
//! by others unless the operator says so.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The mode of files when nothing is configured.
pub const DEFAULT_MODE: u32 = 0o600;

#[cfg(unix)]
fn set_mode(f: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}
#[cfg(not(unix))]
fn set_mode(_: &File, _: u32) -> io::Result<()> {
    Ok(())
}

fn options(mode: u32) -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    #[cfg(not(unix))]
    let _ = mode;
    o
}

/// The mode of a directory holding files of `mode`: `x` wherever `r` is.
pub fn dir_mode(mode: u32) -> u32 {
    mode | ((mode & 0o444) >> 2)
}

/// The directory of `path`, for syncing ("" is the current one).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Make a directory entry (a new file, a rename) durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(parent(path))?.sync_all()
}

/// Open `path` for appending; a file that did not exist is created with
/// `mode` and its directory entry synced.
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    match options(mode).append(true).create_new(true).open(path) {
        Ok(f) => {
            set_mode(&f, mode)?;
            sync_dir(path)?;
            Ok(f)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path)
        }
        Err(e) => Err(e),
    }
}

/// Open `path` for writing without truncating (created with `mode`, its
/// directory synced, when new).
pub fn open_write(path: &Path, mode: u32) -> io::Result<File> {
    match options(mode).write(true).create_new(true).open(path) {
        Ok(f) => {
            set_mode(&f, mode)?;
            sync_dir(path)?;
            Ok(f)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().write(true).open(path)
        }
        Err(e) => Err(e),
    }
}

/// Create (or empty) `path` with `mode`; the caller syncs the contents and
/// then the directory ([`sync_dir`]) once the entry matters.
pub fn create(path: &Path, mode: u32) -> io::Result<File> {
    let f = options(mode)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    set_mode(&f, mode)?;
    Ok(f)
}

/// Create `dir` (and its parents) with `mode` where missing.
pub fn create_dir(dir: &Path, mode: u32) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, mode);
    #[cfg(not(unix))]
    let _ = mode;
    if dir.is_dir() {
        return Ok(());
    }
    b.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    }
    sync_dir(dir)
}

/// Move `path` to `<name>.<what>-<now>` (or `-<now>.<n>`: never over an
/// earlier one), returning where it went.
pub fn set_aside(path: &Path, what: &str, now: i64) -> io::Result<PathBuf> {
    for n in 0..1000 {
        let suffix = match n {
            0 => format!("{what}-{now}"),
            n => format!("{what}-{now}.{n}"),
        };
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".");
        name.push(&suffix);
        let aside = path.with_file_name(name);
        if std::fs::symlink_metadata(&aside).is_ok() {
            continue;
        }
        std::fs::rename(path, &aside)?;
        sync_dir(path)?;
        return Ok(aside);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} has too many set-aside copies", path.display()),
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_directories_get_the_mode_whatever_the_umask() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        open_append(&a, 0o600).unwrap();
        assert_eq!(mode(&a), 0o600);
        // An existing file keeps the operator's mode.
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        open_append(&a, 0o600).unwrap();
        assert_eq!(mode(&a), 0o640);
        let b = d.path().join("b");
        create(&b, 0o640).unwrap();
        assert_eq!(mode(&b), 0o640);
        let q = d.path().join("q").join("r");
        create_dir(&q, 0o700).unwrap();
        assert_eq!(mode(&q), 0o700);
    }
}
