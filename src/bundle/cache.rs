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
//! `<sha256>.<ext>`, so a name never holds two different contents; those
//! (and ferry's own temporary files) are the only names eviction deletes.
//!
//! # Trust
//!
//! A record names a SHA-256 that the release deploys under, so the cache is
//! used only in a directory this user owns and no one else may write
//! ([`cachedir`]), an archive is read once on every hit to prove it still
//! has that SHA-256 (an entry that fails is removed and the bundle built
//! again), and what the cache keeps is synced to disk before its record
//! names it, so a crash cannot leave an entry of the right size and the
//! wrong bytes. A hit is held open while the release uses it, and a bundle
//! being built holds a lock, so concurrent runs neither evict each other's
//! bundle nor sweep each other's half-written one.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BundleType;
use super::archive::Written;
use super::cachedir::{self, resolve, stat_fields};
use super::sums::Sums;
use super::tree::{EntryKind, Tree};

pub use super::cachedir::RACY;
/// Default bound on the archives kept, in MiB.
pub const DEFAULT_MIB: u64 = 2048;
/// Bumped when the record or the fingerprint changes meaning.
const FORMAT: &str = "ferry-bundle-cache 2";
/// A record is a few hundred bytes; one far bigger is not ferry's.
const RECORD_CAP: u64 = 1 << 20;
/// The archive types the cache keeps: the only archive names it deletes.
const EXTENSIONS: [&str; 3] = ["zip", "tar", "tgz"];
/// A `.building-` file this old whose lock no process holds is a killed
/// run's; a younger one may be a run that has not taken its lock yet.
const ABANDONED: Duration = Duration::from_secs(60);

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

/// What a cached bundle is: its archive, held open (so a concurrent run's
/// eviction cannot take it away mid-release) and read once to prove it
/// still has the SHA-256 its record names.
#[derive(Debug)]
pub struct Hit {
    /// The archive, open.
    pub file: File,
    /// Where it is in the cache.
    pub path: PathBuf,
    /// Its sums, computed now from its bytes.
    pub sums: Sums,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// No usable entry.
    Miss,
    /// The entry, verified.
    Hit(Hit),
    /// An entry whose archive does not hash to its record (a crash before
    /// its bytes reached the disk, or someone altered it): removed, and why.
    Damaged(String),
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
    /// `Err(Some(why))` when it cannot be used (among others, a directory
    /// another user owns or may write, see [`cachedir`]).
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
        if let Some(why) = cachedir::distrust(&dir).or_else(|| cachedir::distrust(&dir.join("files"))) {
            return Err(Some(why));
        }
        Ok(Cache { dir, max_bytes: mib << 20, racy: RACY })
    }

    /// Where the cache for `root` is, from `$XDG_CACHE_HOME`, `$HOME` and
    /// Jenkins' `$WORKSPACE`, or why there is none.
    fn dir_for(root: &Path, xdg: Option<PathBuf>, home: Option<PathBuf>, workspace: Option<PathBuf>) -> Result<PathBuf, String> {
        let dir = cachedir::base_dir(xdg, home).ok_or("neither XDG_CACHE_HOME nor HOME is an absolute path")?;
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
    /// there, its racy entries still hold the bytes bundled, and its bytes
    /// still have the SHA-256 and CRC-64/NVME recorded. The record names a
    /// SHA-256 no pass of this run computed, and the release would deploy
    /// under it: one read of the archive proves it (a fraction of building
    /// it again), and an entry that fails is removed.
    pub fn lookup(&self, tree: &Tree, fp: &Fingerprint) -> Lookup {
        let record_path = self.record_path(&fp.key);
        let Some(record) = cachedir::read_own(&record_path, RECORD_CAP).and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        else {
            return Lookup::Miss;
        };
        if record.format != FORMAT || record.fingerprint != fp.digest || !EXTENSIONS.contains(&record.extension.as_str()) {
            return Lookup::Miss;
        }
        let name = format!("{}.{}", record.sha256, record.extension);
        if !cachedir::is_own_name(&name, &EXTENSIONS) {
            return Lookup::Miss;
        }
        let path = self.dir.join(&name);
        let Some(mut file) = cachedir::open_own(&path) else { return Lookup::Miss };
        if file.metadata().map(|m| m.len()).ok() != Some(record.size) {
            return Lookup::Miss;
        }
        for r in &record.racy {
            let Some(entry) = tree.entries.iter().find(|e| e.name == r.name) else { return Lookup::Miss };
            if content_crc(&entry.path, &entry.kind).ok() != Some(r.crc32) {
                return Lookup::Miss;
            }
        }
        let sums = match sums_of(&mut file) {
            Ok(s) => s,
            Err(_) => return Lookup::Miss,
        };
        if sums.sha256 != record.sha256 || sums.crc64nvme != record.crc64nvme || sums.size != record.size {
            let _ = std::fs::remove_file(&record_path);
            let _ = std::fs::remove_file(&path);
            return Lookup::Damaged(format!(
                "its cached bundle {} did not hash to the SHA-256 its record names (it holds {}, not {}): damaged by a \
                 crash, or altered by someone who can write to {}. The entry was removed and the bundle built afresh \
                 from the directory; if this repeats, check who can write to the cache directory",
                path.display(),
                sums.sha256,
                record.sha256,
                self.dir.display()
            ));
        }
        // Recently used: evicted last.
        let _ = file.set_modified(SystemTime::now());
        // Entries old enough now need no re-reading next time.
        let still: Vec<RacyEntry> =
            record.racy.iter().filter(|r| fp.racy.iter().any(|&i| tree.entries[i].name == r.name)).cloned().collect();
        if still.len() < record.racy.len() {
            let _ = self.write_record(&fp.key, &Record { racy: still, ..record.clone() });
        }
        Lookup::Hit(Hit { file, path, sums })
    }

    /// Removes the bundles this process is still writing into the cache,
    /// for a release interrupted while bundling: the bundling thread may go
    /// on writing for a moment, but to a file that no longer has a name, so
    /// nothing is left behind once the process ends.
    pub fn discard_own_partials() {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let Some(dir) = cachedir::base_dir(var("XDG_CACHE_HOME"), var("HOME")) else { return };
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

    /// The known sums beside the bundle cache of this process's
    /// environment, or `None` when the cache is off, has no place, or is in
    /// a directory that cannot be trusted.
    pub fn known_sums_from_env() -> Option<super::known::KnownSums> {
        let dir = cachedir::from_env()?;
        let files = dir.join("files");
        if cachedir::distrust(&dir).or_else(|| cachedir::distrust(&files)).is_some() {
            return None;
        }
        Some(super::known::KnownSums::in_dir(files))
    }

    /// A temporary file in the cache directory to build a bundle into,
    /// named `.building-PID-…`, and a second handle on it that holds an
    /// exclusive lock for as long as the bundle is in use: one a killed run
    /// left (its lock gone with it) is removed here by the next run, even
    /// from another PID namespace sharing the cache.
    pub fn temp_file(&self, kind: BundleType) -> io::Result<(tempfile::NamedTempFile, File)> {
        cachedir::create(&self.dir)?;
        self.sweep_abandoned();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".building-{}-", std::process::id()))
            .suffix(&format!(".{}", kind.extension()))
            .tempfile_in(&self.dir)?;
        let held = tmp.as_file().try_clone()?;
        held.try_lock().map_err(io::Error::other)?;
        Ok((tmp, held))
    }

    fn sweep_abandoned(&self) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else { return };
        for e in listing.flatten() {
            if !e.file_name().to_string_lossy().starts_with(".building-") {
                continue;
            }
            let old =
                e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|m| m.elapsed().ok()).is_some_and(|a| a > ABANDONED);
            // Whoever writes or uses it holds its lock.
            if old && File::open(e.path()).is_ok_and(|f| f.try_lock().is_ok()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Keeps the bundle just written to `temp` (and synced) under its
    /// content's name and records it for `fp`; returns where it now is. A
    /// bundle bigger than the bound is handed back as the temporary file it
    /// is.
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
        // The record must never name bytes that are not on the disk yet: a
        // crash would leave an entry of the right size and wrong content.
        if File::open(&temp).and_then(|f| f.sync_all()).is_err() {
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
        cachedir::sync_dir(&self.dir);
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
        cachedir::write_durably(&self.record_path(key), &serde_json::to_vec(record)?)
    }

    /// Deletes the least recently used archives beyond the bound (never
    /// `keep`), then the records whose archive is gone. Only names ferry
    /// writes are touched (`<sha256>.<ext>`, `<key>.json`, `.record-*`,
    /// `.building-*`): whatever else is in the directory, or in the one a
    /// symlinked cache directory leads to, is not ferry's to delete.
    fn evict(&self, keep: &Path) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else { return };
        let mut archives = Vec::new();
        let mut records = Vec::new();
        for e in listing.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if !meta.is_file() {
                // `files/`: the known sums of ready archives (super::known).
                continue;
            }
            if name.starts_with(".record-") {
                // Another run's record being written; any left behind is swept after a day.
                let stale = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|a| a > Duration::from_secs(86_400));
                if stale {
                    let _ = std::fs::remove_file(&path);
                }
            } else if cachedir::is_own_name(&name, &["json"]) {
                records.push(path);
            } else if cachedir::is_own_name(&name, &EXTENSIONS) {
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
            let record: Option<Record> = cachedir::read_own(&path, RECORD_CAP).and_then(|b| serde_json::from_slice(&b).ok());
            let gone = record.is_none_or(|r| !self.dir.join(format!("{}.{}", r.sha256, r.extension)).exists());
            if gone {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Size, SHA-256 and CRC-64/NVME of an open file, read from its start.
fn sums_of(file: &mut File) -> io::Result<Sums> {
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    super::sums::Summer::of(file)
}

/// CRC-32 of what an entry puts in the bundle: a file's bytes, a link's target.
fn content_crc(path: &Path, kind: &EntryKind) -> io::Result<u32> {
    if let EntryKind::Symlink { target } = kind {
        return Ok(crc32fast::hash(target.as_bytes()));
    }
    if *kind == EntryKind::Dir {
        return Ok(0);
    }
    let mut h = crc32fast::Hasher::new();
    super::sums::each_piece(&mut File::open(path)?, |piece| h.update(piece))?;
    Ok(h.finalize())
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

    /// A bundle as a release gets it, once kept in the cache (the keeping
    /// runs beside the upload; these tests read the cache directory).
    fn release(app: &Path, cache: &Path, racy: Duration, max: u64) -> Bundle {
        let bundle = prepare_with(app, BundleType::Zip, None, |_| Ok(Cache::at(cache, max, racy))).unwrap();
        crate::bundle::settle();
        bundle
    }

    /// The archive the cache keeps for a bundle, by its content's name.
    fn kept(cache: &Path, b: &Bundle) -> PathBuf {
        cache.join(format!("{}.zip", b.sha256))
    }

    fn record_of(cache: &Path) -> PathBuf {
        let records = std::fs::read_dir(cache).unwrap().flatten().map(|e| e.path());
        records.filter(|p| p.extension() == Some("json".as_ref())).collect::<Vec<_>>().pop().expect("a record")
    }

    #[test]
    fn an_unchanged_directory_reuses_its_bundle() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        let first = release(app.path(), cache.path(), RACY, 1 << 30);
        assert!(first.built && !first.cached);
        let again = release(app.path(), cache.path(), RACY, 1 << 30);
        assert!(again.cached, "nothing changed");
        assert_eq!((again.sha256.as_str(), again.size), (first.sha256.as_str(), first.size));
        let sums = super::super::hash_file(&again.path).unwrap();
        assert_eq!((sums.size, sums.sha256, sums.crc64nvme), (first.size, first.sha256.clone(), first.crc64nvme));
        assert!(kept(cache.path(), &again).is_file(), "the archive lives in the cache");
    }

    /// Issue 23 items 2 and 5: an archive whose bytes are not the ones its
    /// record names (planted with a matching size and CRC-64/NVME, or left
    /// half-written by a crash) is never handed out under the record's
    /// SHA-256: the entry is removed, the bundle built afresh, and why is said.
    #[test]
    fn a_cached_archive_that_does_not_hash_to_its_record_is_dropped_and_rebuilt() {
        for how in ["forged", "zeroed"] {
            let (app, cache) = (app(), tempfile::tempdir().unwrap());
            let first = release(app.path(), cache.path(), RACY, 1 << 30);
            let archive = kept(cache.path(), &first);
            let mut bytes = std::fs::read(&archive).unwrap();
            if how == "forged" {
                // Other bytes of the same size, and a record made to agree
                // with them on everything but the SHA-256 that names them.
                let at = bytes.len() / 2;
                bytes[at] ^= 0xff;
                let record_path = record_of(cache.path());
                let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
                record["crc64nvme"] = super::super::sums::crc64nvme(&bytes).into();
                std::fs::write(&record_path, record.to_string()).unwrap();
            } else {
                bytes.iter_mut().for_each(|b| *b = 0);
            }
            std::fs::write(&archive, &bytes).unwrap();
            let again = release(app.path(), cache.path(), RACY, 1 << 30);
            assert!(!again.cached, "{how}: not reused");
            assert_eq!(again.sha256, first.sha256, "{how}: rebuilt from the directory");
            assert_eq!(super::super::hash_file(&again.path).unwrap().sha256, first.sha256, "{how}");
            let why = again.cache_off.unwrap_or_default();
            assert!(why.contains("did not hash to the SHA-256 its record names") && why.contains("removed"), "{how}: {why}");
            assert!(release(app.path(), cache.path(), RACY, 1 << 30).cached, "{how}: the rebuilt entry is good");
        }
    }

    /// Issue 23 item 9: a concurrent run's eviction (or anyone) removing the
    /// cached archive does not take it from a release using it.
    #[test]
    fn a_bundle_in_use_survives_its_archive_being_evicted() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        let first = release(app.path(), cache.path(), RACY, 1 << 30);
        let again = release(app.path(), cache.path(), RACY, 1 << 30);
        assert!(again.cached);
        std::fs::remove_file(kept(cache.path(), &again)).unwrap();
        for b in [&first, &again] {
            assert_eq!(super::super::hash_file(&b.path).unwrap().sha256, first.sha256, "still readable");
        }
    }

    /// Issue 23 item 4: eviction deletes only names ferry writes, also in the
    /// directory a symlinked cache directory leads to.
    #[cfg(unix)]
    #[test]
    fn eviction_deletes_only_ferrys_own_files_even_through_a_symlink() {
        let (a, b, elsewhere, base) = (app(), app(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(b.path().join("site/index.html"), "<h1>bbb</h1>\n").unwrap();
        let foreign = ["config.json", ".env", "notes.txt", "data.bin", &format!("{}.txt", "ab".repeat(32))];
        for name in foreign {
            std::fs::write(elsewhere.path().join(name), "not ferry's").unwrap();
            let old = SystemTime::now() - Duration::from_secs(90 * 86_400);
            File::options().write(true).open(elsewhere.path().join(name)).unwrap().set_modified(old).unwrap();
        }
        let link = base.path().join("cache");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        let first = release(a.path(), &link, RACY, 1 << 30);
        // Room for one bundle: b's evicts a's, and nothing else.
        release(b.path(), &link, RACY, first.size + 10);
        assert!(!kept(elsewhere.path(), &first).exists(), "ferry's own archive was evicted");
        for name in foreign {
            assert!(elsewhere.path().join(name).exists(), "{name} is not ferry's and was deleted");
        }
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
        assert!(kept(cache.path(), &second).exists() && !kept(cache.path(), &first).exists());
        let records =
            std::fs::read_dir(cache.path()).unwrap().flatten().filter(|e| e.path().extension() == Some("json".as_ref()));
        assert_eq!(records.count(), 1);
        assert!(!release(a.path(), cache.path(), RACY, first.size + 10).cached);
    }

    #[test]
    fn a_bundle_bigger_than_the_bound_is_not_kept() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        let b = release(app.path(), cache.path(), RACY, 10);
        // Refused by the cache, it lives on through the release's handle.
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "nothing of it is named in the cache");
        assert_eq!(super::super::hash_file(&b.path).unwrap().sha256, b.sha256, "still readable: {:?}", b.path);
        drop(b);
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "the temporary archive went with the bundle");
        assert!(!release(app.path(), cache.path(), RACY, 10).cached);
    }

    /// Issue 23 item 9: whether a `.building-` file is a dead run's is told
    /// by its lock, not by a PID (another PID namespace sharing the cache
    /// has other PIDs), and a young one is left alone.
    #[test]
    fn a_half_written_bundle_is_swept_only_when_no_one_holds_its_lock() {
        let (app, cache) = (app(), tempfile::tempdir().unwrap());
        let old = SystemTime::now() - Duration::from_secs(3600);
        let make = |name: &str, age: SystemTime| {
            let p = cache.path().join(name);
            let f = File::create(&p).unwrap();
            f.set_modified(age).unwrap();
            (p, f)
        };
        let (dead, _) = make(".building-4194305-abc.zip", old);
        // A live run in another PID namespace: a PID this one may not have, its lock held.
        let (live, holder) = make(".building-1-def.zip", old);
        holder.try_lock().unwrap();
        let (young, _) = make(".building-4194306-ghi.zip", SystemTime::now());
        release(app.path(), cache.path(), RACY, 1 << 30);
        assert!(!dead.exists() && live.exists() && young.exists());
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
