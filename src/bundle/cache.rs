//! The last bundle built from each directory, kept so that releasing an
//! unchanged directory again reads and compresses nothing.
//!
//! # The rule
//!
//! A directory is unchanged when its *fingerprint* is: for every entry that
//! goes into the bundle (after `.ferryignore`), in order, its name, whether
//! it is a file, executable or a link (and the link's target), and what
//! `lstat` says of it: size, mtime and ctime (nanoseconds), inode and
//! device. Writing a file, replacing it, renaming, `touch`, `chmod`,
//! `tar x`, `cp -p`, `git checkout` all change one of these; ctime cannot be
//! set back by any tool. The cache is keyed by the directory's canonical
//! path, the bundle type and ferry's version (a new ferry may write
//! different bytes).
//!
//! Timestamps are only as fine as the file system's clock tick, so an entry
//! changed less than [`RACY`] before the fingerprint was taken could change
//! again without its times moving (git's "racily clean" entries). Such
//! entries are recorded with the CRC-32 of the bytes that went into the
//! bundle, and a later lookup re-reads them and compares before trusting the
//! record.
//!
//! **The one risk**: a change that leaves size, mtime, ctime and inode all as
//! they were: only the system clock set back, a file system that does not
//! keep times (some network mounts), or writes through a memory map that
//! have not reached the file yet. For those, clear the cache (delete the
//! directory) or set `FERRY_BUNDLE_CACHE_MIB=0`.
//!
//! # Where
//!
//! `$XDG_CACHE_HOME/ferry/bundles`, else `~/.cache/ferry/bundles`; never
//! inside the directory being bundled or the Jenkins `$WORKSPACE` (then no
//! cache is used). At most `FERRY_BUNDLE_CACHE_MIB` (default 2048) MiB of
//! archives are kept, least recently used evicted first; a bundle bigger
//! than that is not kept. A record is `<key>.json`, its archive
//! `<sha256>.<ext>`, so a name never holds two different contents.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BundleType;
use super::archive::Written;
use super::tree::{EntryKind, Tree};

/// How close to the fingerprint an entry's last change may be before its
/// timestamps alone cannot vouch for it: above any file system's tick
/// (FAT's is 2 s; ext4, xfs, btrfs, tmpfs a few ms).
pub const RACY: Duration = Duration::from_secs(2);
/// Default bound on the archives kept, in MiB.
pub const DEFAULT_MIB: u64 = 2048;
/// Bumped when the record or the fingerprint changes meaning.
const FORMAT: &str = "ferry-bundle-cache 2";

/// The cache directory and its bound.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    /// [`RACY`]; zero in tests that need no entry to be racy.
    racy: Duration,
}

/// A directory's state, taken before its files are read.
#[derive(Debug)]
pub struct Fingerprint {
    key: String,
    digest: String,
    /// Indexes of entries changed within [`RACY`] of `taken`.
    racy: Vec<usize>,
}

/// What a cached bundle is.
#[derive(Debug)]
pub struct Hit {
    /// The archive in the cache.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Its CRC-64/NVME.
    pub crc64nvme: u64,
}

#[derive(Serialize, Deserialize, Clone)]
struct Record {
    format: String,
    fingerprint: String,
    sha256: String,
    crc64nvme: u64,
    size: u64,
    extension: String,
    /// Entries whose times could not vouch for them, with the CRC-32 of the
    /// bytes bundled.
    racy: Vec<RacyEntry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct RacyEntry {
    name: String,
    crc32: u32,
}

impl Cache {
    /// The cache for bundles of `root`; `Err(None)` when turned off,
    /// `Err(Some(why))` when it cannot be used.
    pub fn for_root(root: &Path) -> Result<Cache, Option<String>> {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let mib = std::env::var_os("FERRY_BUNDLE_CACHE_MIB").map(|v| v.to_string_lossy().into_owned());
        let dir = Cache::dir_for(root, var("XDG_CACHE_HOME"), var("HOME"), var("WORKSPACE"))?;
        let mib = match mib {
            Some(v) => v.trim().parse::<u64>().map_err(|_| format!("FERRY_BUNDLE_CACHE_MIB={v} is not a number of MiB"))?,
            None => DEFAULT_MIB,
        };
        if mib == 0 {
            return Err(None);
        }
        Ok(Cache { dir, max_bytes: mib << 20, racy: RACY })
    }

    /// Where the cache for `root` is, from `$XDG_CACHE_HOME`, `$HOME` and
    /// Jenkins' `$WORKSPACE`, or why there is none.
    fn dir_for(root: &Path, xdg: Option<PathBuf>, home: Option<PathBuf>, workspace: Option<PathBuf>) -> Result<PathBuf, String> {
        let dir = Cache::base_dir(xdg, home).ok_or("neither XDG_CACHE_HOME nor HOME is an absolute path")?;
        let inside = |outer: &Path| dir.starts_with(resolve(outer));
        if inside(root) {
            return Err(format!("the cache directory {} is inside the directory being bundled", dir.display()));
        }
        if let Some(ws) = workspace.filter(|p| p.is_absolute())
            && inside(&ws)
        {
            return Err(format!(
                "the cache directory {} is inside the Jenkins workspace {}; set XDG_CACHE_HOME outside it",
                dir.display(),
                ws.display()
            ));
        }
        Ok(dir)
    }

    /// A cache in `dir` holding at most `max_bytes` of archives, entries
    /// racy within `racy` of the fingerprint.
    #[cfg(test)]
    pub fn at(dir: &Path, max_bytes: u64, racy: Duration) -> Cache {
        Cache { dir: dir.to_path_buf(), max_bytes, racy }
    }

    /// The directory's fingerprint, from one `lstat` per entry.
    pub fn fingerprint(&self, tree: &Tree, kind: BundleType) -> io::Result<Fingerprint> {
        let key_src = format!("{FORMAT}\0{}\0{}\0{}", env!("CARGO_PKG_VERSION"), kind.extension(), resolve(&tree.root).display());
        let key = hex::encode(Sha256::digest(key_src.as_bytes()));
        let now = SystemTime::now();
        let mut h = Sha256::new();
        let mut racy = Vec::new();
        for (i, entry) in tree.entries.iter().enumerate() {
            let meta = std::fs::symlink_metadata(&entry.path)?;
            h.update(entry.name.as_bytes());
            match &entry.kind {
                EntryKind::File { executable } => h.update([b'\0', b'f', u8::from(*executable)]),
                EntryKind::Symlink { target } => {
                    h.update(b"\0l");
                    h.update(target.as_bytes());
                }
                EntryKind::Dir => h.update(b"\0d"),
            }
            // The mode and time the archive records (SOURCE_DATE_EPOCH moves
            // the time without touching the file).
            h.update(entry.mode.to_le_bytes());
            h.update(entry.time.to_le_bytes());
            let (stat, changed) = stat_fields(&meta);
            for v in stat {
                h.update(v.to_le_bytes());
            }
            // Also racy when the change is in the future: a clock set back.
            if changed.is_none_or(|t| t + self.racy > now) {
                racy.push(i);
            }
        }
        Ok(Fingerprint { key, digest: hex::encode(h.finalize()), racy })
    }

    /// The bundle recorded for this fingerprint, if its archive is still
    /// there and its racy entries still hold the bytes bundled.
    pub fn lookup(&self, tree: &Tree, fp: &Fingerprint) -> Option<Hit> {
        let record_path = self.record_path(&fp.key);
        let record: Record = serde_json::from_slice(&std::fs::read(&record_path).ok()?).ok()?;
        if record.format != FORMAT || record.fingerprint != fp.digest {
            return None;
        }
        let path = self.dir.join(format!("{}.{}", record.sha256, record.extension));
        if std::fs::metadata(&path).ok()?.len() != record.size {
            return None;
        }
        for r in &record.racy {
            let entry = tree.entries.iter().find(|e| e.name == r.name)?;
            if content_crc(&entry.path, &entry.kind).ok()? != r.crc32 {
                return None;
            }
        }
        // Recently used: evicted last.
        let _ = File::options().write(true).open(&path).and_then(|f| f.set_modified(SystemTime::now()));
        // Entries old enough now need no re-reading next time.
        let still: Vec<RacyEntry> =
            record.racy.iter().filter(|r| fp.racy.iter().any(|&i| tree.entries[i].name == r.name)).cloned().collect();
        if still.len() < record.racy.len() {
            let _ = self.write_record(&fp.key, &Record { racy: still, ..record.clone() });
        }
        Some(Hit { path, size: record.size, sha256: record.sha256, crc64nvme: record.crc64nvme })
    }

    /// The cache directory from the process environment, or `None` when the
    /// cache is off (`FERRY_BUNDLE_CACHE_MIB=0`) or has no place: where
    /// [`super::known`] keeps its records too.
    pub fn settings_dir() -> Option<PathBuf> {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        if std::env::var("FERRY_BUNDLE_CACHE_MIB").is_ok_and(|v| v.trim() == "0") {
            return None;
        }
        Cache::base_dir(var("XDG_CACHE_HOME"), var("HOME"))
    }

    /// `$XDG_CACHE_HOME/ferry/bundles`, else `$HOME/.cache/ferry/bundles`.
    fn base_dir(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
        let base = xdg.filter(|p| p.is_absolute()).or_else(|| home.map(|h| h.join(".cache")).filter(|p| p.is_absolute()))?;
        Some(resolve(&base.join("ferry").join("bundles")))
    }

    /// Removes the bundles this process is still writing into the cache,
    /// for a release interrupted while bundling: the bundling thread may go
    /// on writing for a moment, but to a file that no longer has a name, so
    /// nothing is left behind once the process ends.
    pub fn discard_own_partials() {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let Some(dir) = Cache::base_dir(var("XDG_CACHE_HOME"), var("HOME")) else { return };
        let mine = format!(".building-{}-", std::process::id());
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&mine) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// The known sums of ready archives kept with this cache.
    pub fn known_sums(&self) -> super::known::KnownSums {
        super::known::KnownSums::in_dir(self.dir.join("files"))
    }

    /// A temporary file in the cache directory to build a bundle into,
    /// named `.building-PID-…`: one a killed run left is removed here by
    /// the next run, once that process is gone.
    pub fn temp_file(&self, kind: BundleType) -> io::Result<tempfile::NamedTempFile> {
        std::fs::create_dir_all(&self.dir)?;
        self.sweep_abandoned();
        tempfile::Builder::new()
            .prefix(&format!(".building-{}-", std::process::id()))
            .suffix(&format!(".{}", kind.extension()))
            .tempfile_in(&self.dir)
    }

    fn sweep_abandoned(&self) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else { return };
        for e in listing.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix(".building-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<i32>().ok());
            let gone = pid
                .and_then(rustix::process::Pid::from_raw)
                .is_some_and(|pid| matches!(rustix::process::test_kill_process(pid), Err(e) if e == rustix::io::Errno::SRCH));
            if gone {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Keeps the bundle just written to `temp` under its content's name and
    /// records it for `fp`; returns where it now is. A bundle bigger than
    /// the bound is handed back as the temporary file it is.
    pub fn store(
        &self,
        temp: tempfile::TempPath,
        kind: BundleType,
        tree: &Tree,
        fp: &Fingerprint,
        written: &Written,
    ) -> Result<PathBuf, tempfile::TempPath> {
        if written.size > self.max_bytes {
            return Err(temp);
        }
        let path = self.dir.join(format!("{}.{}", written.sha256, kind.extension()));
        let temp = match temp.persist(&path) {
            Ok(()) => None,
            Err(e) => Some(e.path),
        };
        if let Some(temp) = temp {
            return Err(temp);
        }
        let racy = fp.racy.iter().map(|&i| RacyEntry { name: tree.entries[i].name.clone(), crc32: written.crcs[i] }).collect();
        let record = Record {
            format: FORMAT.into(),
            fingerprint: fp.digest.clone(),
            sha256: written.sha256.clone(),
            crc64nvme: written.crc64nvme,
            size: written.size,
            extension: kind.extension().into(),
            racy,
        };
        let _ = self.write_record(&fp.key, &record);
        self.evict(&path);
        Ok(path)
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn write_record(&self, key: &str, record: &Record) -> io::Result<()> {
        let mut tmp = tempfile::Builder::new().prefix(".record-").tempfile_in(&self.dir)?;
        serde_json::to_writer(&mut tmp, record)?;
        tmp.persist(self.record_path(key)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Deletes the least recently used archives beyond the bound (never
    /// `keep`), then the records whose archive is gone.
    fn evict(&self, keep: &Path) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else { return };
        let mut archives = Vec::new();
        let mut records = Vec::new();
        for e in listing.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if meta.is_dir() {
                // `files/`: the known sums of ready archives (super::known).
                continue;
            }
            if name.starts_with('.') {
                // Another run's file being written; any left behind is swept after a day.
                let stale = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|a| a > Duration::from_secs(86_400));
                if stale {
                    let _ = std::fs::remove_file(&path);
                }
            } else if name.ends_with(".json") {
                records.push(path);
            } else {
                archives.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len(), path));
            }
        }
        archives.sort();
        let mut total: u64 = archives.iter().map(|a| a.1).sum();
        for (_, len, path) in &archives {
            if total <= self.max_bytes {
                break;
            }
            if path != keep && std::fs::remove_file(path).is_ok() {
                total -= len;
            }
        }
        for path in records {
            let record: Option<Record> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let gone = record.is_none_or(|r| !self.dir.join(format!("{}.{}", r.sha256, r.extension)).exists());
            if gone {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// The stat fields the fingerprint covers, and when the entry last changed
/// (the later of mtime and ctime).
#[cfg(unix)]
pub(super) fn stat_fields(meta: &std::fs::Metadata) -> ([i64; 8], Option<SystemTime>) {
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
pub(super) fn stat_fields(meta: &std::fs::Metadata) -> ([i64; 8], Option<SystemTime>) {
    let modified = meta.modified().ok();
    let nanos = modified.and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i64);
    ([meta.len() as i64, nanos, 0, 0, 0, 0, 0, 0], modified)
}

/// CRC-32 of what an entry puts in the bundle: a file's bytes, a link's target.
fn content_crc(path: &Path, kind: &EntryKind) -> io::Result<u32> {
    if let EntryKind::Symlink { target } = kind {
        return Ok(crc32fast::hash(target.as_bytes()));
    }
    if *kind == EntryKind::Dir {
        return Ok(0);
    }
    let mut f = File::open(path)?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize());
        }
        h.update(&buf[..n]);
    }
}

/// `path` made absolute and canonical as far as it exists, so a cache dir
/// reached through a symlink is still seen inside the workspace.
fn resolve(path: &Path) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Bundle, prepare_with};

    fn app() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        std::fs::create_dir_all(dir.path().join("site")).unwrap();
        std::fs::write(dir.path().join("site/index.html"), "<h1>one</h1>\n").unwrap();
        dir
    }

    fn release(app: &Path, cache: &Path, racy: Duration, max: u64) -> Bundle {
        prepare_with(app, BundleType::Zip, None, |_| Ok(Cache::at(cache, max, racy))).unwrap()
    }

    #[test]
    fn an_unchanged_directory_reuses_its_bundle() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        let first = release(app.path(), cache.path(), RACY, 1 << 30);
        assert!(first.built && !first.cached);
        let again = release(app.path(), cache.path(), RACY, 1 << 30);
        assert!(again.cached, "nothing changed");
        assert_eq!((again.sha256.as_str(), again.size, &again.path), (first.sha256.as_str(), first.size, &first.path));
        let sums = super::super::hash_file(&again.path).unwrap();
        assert_eq!((sums.size, sums.sha256, sums.crc64nvme), (first.size, first.sha256.clone(), first.crc64nvme));
        assert!(again.path.starts_with(cache.path()), "the archive lives in the cache");
    }

    #[test]
    fn a_file_rewritten_in_the_same_clock_tick_is_caught_by_its_crc() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        let first = release(app.path(), cache.path(), RACY, 1 << 30);
        // Same size, and likely the same mtime and ctime: only the content differs.
        let page = app.path().join("site/index.html");
        let meta = std::fs::metadata(&page).unwrap();
        std::fs::write(&page, "<h1>two</h1>\n").unwrap();
        File::options().write(true).open(&page).unwrap().set_modified(meta.modified().unwrap()).unwrap();
        let again = release(app.path(), cache.path(), RACY, 1 << 30);
        assert!(!again.cached);
        assert_ne!(again.sha256, first.sha256);
    }

    #[test]
    fn a_change_with_the_mtime_put_back_still_changes_the_fingerprint() {
        // No entry is racy here, so only the stat fields decide: ctime moves
        // even when a tool restores the mtime.
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        let page = app.path().join("site/index.html");
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options().write(true).open(&page).unwrap().set_modified(old).unwrap();
        let first = release(app.path(), cache.path(), Duration::ZERO, 1 << 30);
        assert!(release(app.path(), cache.path(), Duration::ZERO, 1 << 30).cached);
        std::thread::sleep(Duration::from_millis(20)); // past the file system's clock tick
        std::fs::write(&page, "<h1>two</h1>\n").unwrap();
        File::options().write(true).open(&page).unwrap().set_modified(old).unwrap();
        let again = release(app.path(), cache.path(), Duration::ZERO, 1 << 30);
        assert!(!again.cached);
        assert_ne!(again.sha256, first.sha256);
    }

    #[test]
    fn a_new_file_or_another_bundle_type_is_a_miss() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        release(app.path(), cache.path(), RACY, 1 << 30);
        let tgz = prepare_with(app.path(), BundleType::Tgz, None, |_| Ok(Cache::at(cache.path(), 1 << 30, RACY))).unwrap();
        assert!(!tgz.cached, "the type is part of the key");
        std::fs::write(app.path().join("site/new.txt"), "new").unwrap();
        assert!(!release(app.path(), cache.path(), RACY, 1 << 30).cached);
        assert!(release(app.path(), cache.path(), RACY, 1 << 30).cached);
    }

    #[test]
    fn the_least_recently_used_archives_go_beyond_the_bound() {
        let (a, b, cache) = (app(), app(), tempfile::tempdir().unwrap());
        std::fs::write(b.path().join("site/index.html"), "<h1>bbb</h1>\n").unwrap();
        let first = release(a.path(), cache.path(), RACY, 1 << 30);
        // Room for one bundle: storing b's evicts a's archive and record.
        let second = release(b.path(), cache.path(), RACY, first.size + 10);
        assert!(second.path.exists() && !first.path.exists());
        let records =
            std::fs::read_dir(cache.path()).unwrap().flatten().filter(|e| e.path().extension() == Some("json".as_ref()));
        assert_eq!(records.count(), 1);
        assert!(!release(a.path(), cache.path(), RACY, first.size + 10).cached);
    }

    #[test]
    fn a_bundle_bigger_than_the_bound_is_not_kept() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        let b = release(app.path(), cache.path(), RACY, 10);
        assert!(b.path.file_name().unwrap().to_string_lossy().starts_with(".building-"), "{:?}", b.path);
        drop(b);
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "the temporary archive went with the bundle");
        assert!(!release(app.path(), cache.path(), RACY, 10).cached);
    }

    #[test]
    fn a_half_written_bundle_of_a_dead_run_is_swept_and_a_live_ones_kept() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        // No process has pid 2^22 + 1 (above Linux's pid_max limit).
        let dead = cache.path().join(".building-4194305-abc.zip");
        let live = cache.path().join(format!(".building-{}-abc.zip", std::process::id()));
        std::fs::write(&dead, "half").unwrap();
        std::fs::write(&live, "half").unwrap();
        release(app.path(), cache.path(), RACY, 1 << 30);
        assert!(!dead.exists() && live.exists());
    }

    #[test]
    fn the_cache_is_never_inside_the_bundle_or_the_workspace() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let dir = |xdg: Option<&Path>, home: Option<&Path>, ws: Option<&Path>| {
            Cache::dir_for(r, xdg.map(Path::to_path_buf), home.map(Path::to_path_buf), ws.map(Path::to_path_buf))
        };
        let elsewhere = tempfile::tempdir().unwrap();
        let e = elsewhere.path();
        assert_eq!(dir(Some(e), None, None).unwrap(), resolve(&e.join("ferry/bundles")));
        assert_eq!(dir(None, Some(e), None).unwrap(), resolve(&e.join(".cache/ferry/bundles")));
        assert!(dir(None, Some(r), None).unwrap_err().contains("inside the directory being bundled"));
        assert!(dir(Some(&r.join("sub")), None, None).is_err());
        assert!(dir(None, Some(e), Some(e)).unwrap_err().contains("Jenkins workspace"));
        assert!(dir(Some(Path::new("relative")), None, None).is_err(), "XDG paths must be absolute");
    }
}
