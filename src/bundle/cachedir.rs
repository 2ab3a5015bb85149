//! Where the bundle cache ([`super::cache`]) and the known sums
//! ([`super::known`]) live, and whether that place can be trusted: both
//! hand ferry a SHA-256 it did not compute, so a directory another user can
//! write to would be a channel for planting bundles. Like ssh with `~/.ssh`,
//! ferry uses only directories and files owned by this user (or root) that
//! no group or other user may write, creates its own as `0700`, and reads
//! no file there that fails the same test. Also the rule both share for
//! deciding when a file's `stat` fields alone can vouch for it ([`RACY`]).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How close to the fingerprint an entry's last change may be before its
/// timestamps alone cannot vouch for it: above any file system's tick
/// (FAT's is 2 s; ext4, xfs, btrfs, tmpfs a few ms).
pub const RACY: Duration = Duration::from_secs(2);

/// `$XDG_CACHE_HOME/ferry/bundles`, else `$HOME/.cache/ferry/bundles`,
/// canonical as far as it exists.
pub fn base_dir(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    let base = xdg.filter(|p| p.is_absolute()).or_else(|| home.map(|h| h.join(".cache")).filter(|p| p.is_absolute()))?;
    Some(resolve(&base.join("ferry").join("bundles")))
}

/// The cache directory from the process environment, or `None` when the
/// cache is off (`FERRY_BUNDLE_CACHE_MIB=0`) or has no place.
pub fn from_env() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
    if std::env::var("FERRY_BUNDLE_CACHE_MIB").is_ok_and(|v| v.trim() == "0") {
        return None;
    }
    base_dir(var("XDG_CACHE_HOME"), var("HOME"))
}

/// Why `dir` (the cache directory) or its `ferry` parent cannot be trusted,
/// if one of them exists and belongs to another user or is writable by
/// group or others. One that does not exist yet is fine: [`create`] makes
/// it private.
pub fn distrust(dir: &Path) -> Option<String> {
    for d in [dir.parent(), Some(dir)].into_iter().flatten() {
        let Ok(meta) = std::fs::metadata(d) else { continue };
        if let Some(why) = foreign(&meta) {
            return Some(format!(
                "the cache directory {} {why}: whoever can write there could plant a bundle that ferry would deploy. \
                 The cache is not used. Make it this user's and private (`chown -R $(id -u) {dir}; chmod -R go-w {dir}`), \
                 delete it, or point XDG_CACHE_HOME at a private directory",
                d.display(),
                dir = d.display()
            ));
        }
    }
    None
}

/// Creates `dir` (and missing parents) readable and writable by this user
/// only.
pub fn create(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Opens a file the cache keeps, if it is a regular file this user (or
/// root) owns and no one else may write: a record or archive another user
/// planted is not read.
pub fn open_own(path: &Path) -> Option<File> {
    let f = File::open(path).ok()?;
    let meta = f.metadata().ok()?;
    (meta.is_file() && foreign(&meta).is_none()).then_some(f)
}

/// Reads a file the cache keeps ([`open_own`]), up to `cap` bytes.
pub fn read_own(path: &Path, cap: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    open_own(path)?.take(cap).read_to_end(&mut out).ok()?;
    Some(out)
}

/// What is wrong with a file or directory's owner or mode, if anything.
#[cfg(unix)]
fn foreign(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!("belongs to uid {}, not to this user (uid {me})", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!("is writable by group or others (mode {:o})", meta.mode() & 0o7777));
    }
    None
}

#[cfg(not(unix))]
fn foreign(_: &std::fs::Metadata) -> Option<String> {
    None
}

/// Writes `bytes` as `path` durably: to a temporary file beside it, synced,
/// renamed over it, and the directory synced, so a crash leaves the old
/// file or the new one, never a torn or empty one.
pub fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".record-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Syncs a directory's entries (a rename into it), best effort.
pub fn sync_dir(dir: &Path) {
    let _ = File::open(dir).and_then(|d| d.sync_all());
}

/// The stat fields the fingerprint covers, and when the entry last changed
/// (the later of mtime and ctime).
#[cfg(unix)]
pub fn stat_fields(meta: &std::fs::Metadata) -> ([i64; 8], Option<SystemTime>) {
    use std::os::unix::fs::MetadataExt;
    let fields = [
        meta.dev() as i64,
        meta.ino() as i64,
        meta.mode() as i64,
        meta.size() as i64,
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    ];
    let ctime = if meta.ctime() >= 0 {
        Some(SystemTime::UNIX_EPOCH + Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32))
    } else {
        None
    };
    let changed = match (meta.modified().ok(), ctime) {
        (Some(m), Some(c)) => Some(m.max(c)),
        (m, c) => m.or(c),
    };
    (fields, changed)
}

#[cfg(not(unix))]
pub fn stat_fields(meta: &std::fs::Metadata) -> ([i64; 8], Option<SystemTime>) {
    let modified = meta.modified().ok();
    let nanos = modified.and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i64);
    ([meta.len() as i64, nanos, 0, 0, 0, 0, 0, 0], modified)
}

/// Whether a name is `<64 lowercase hex>.<ext>`: the only names of records
/// and archives ferry writes, so the only ones it ever deletes.
pub fn is_own_name(name: &str, extensions: &[&str]) -> bool {
    name.split_once('.').is_some_and(|(stem, ext)| {
        stem.len() == 64 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) && extensions.contains(&ext)
    })
}

/// `path` made absolute and canonical as far as it exists, so a cache dir
/// reached through a symlink is still seen inside the workspace.
pub fn resolve(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return rest.iter().rev().fold(c, |p, part: &std::ffi::OsString| p.join(part));
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_cache_directory_others_may_write_is_not_trusted() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("ferry/bundles");
        assert_eq!(distrust(&dir), None, "not there yet: ferry creates it private");
        create(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(distrust(&dir), None);
        std::fs::set_permissions(base.path().join("ferry"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = distrust(&dir).unwrap();
        assert!(why.contains("writable by group or others (mode 777)") && why.contains("not used"), "{why}");
        std::fs::set_permissions(base.path().join("ferry"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(distrust(&dir).unwrap().contains("mode 775"));
    }

    #[test]
    fn a_file_others_may_write_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, "{}").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_own(&p, 10).as_deref(), Some(&b"{}"[..]));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(read_own(&p, 10), None);
        assert!(open_own(dir.path()).is_none(), "a directory is not a record");
    }

    #[test]
    fn only_ferrys_own_names_count_as_its_files() {
        let sha = "ab".repeat(32);
        assert!(is_own_name(&format!("{sha}.zip"), &["zip", "tgz"]));
        assert!(is_own_name(&format!("{sha}.json"), &["json"]));
        for other in ["config.json", "notes.txt", "data.bin", ".env", &format!("{sha}.txt"), &format!("{}.zip", "AB".repeat(32))]
        {
            assert!(!is_own_name(other, &["zip", "tar", "tgz", "json"]), "{other}");
        }
    }
}
