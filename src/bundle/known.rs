//! The sums of ready archives, remembered so that releasing the same file
//! again (the Jenkinsfile's `ferry bundle --out app.zip`, then `ferry
//! release app.zip` to staging and to production) costs no SHA-256 pass.
//!
//! # The rule
//!
//! A record holds a file's canonical path, what `stat` said of it (device,
//! inode, mode, size, mtime and ctime in nanoseconds) and its size, SHA-256
//! and CRC-64/NVME. It is used only while every stat field is the same: the
//! bundle cache's rule (`cache.rs`). Like there, a file changed less
//! than [`RACY`] before the record was written (as one
//! `ferry bundle --out` has just written is) could change again without its
//! times moving: such a record is trusted only after the file's CRC-64/NVME,
//! computed anew, matches it (a fraction of the SHA-256's cost), and is then
//! rewritten as settled. The SHA-256 itself no pass of the release computed:
//! the upload computes it in the one read it makes of the file anyway, and
//! creates nothing in S3 under a SHA-256 the bytes do not have (and removes
//! the record, [`KnownSums::forget`]).
//!
//! Records are written when ferry writes an archive (`ferry bundle --out`)
//! or hashes one it is given; they live in `bundles/files/` of the bundle
//! cache, tiny, in a directory only this user may write ([`cachedir`]), and
//! go with the cache
//! (`FERRY_BUNDLE_CACHE_MIB=0` turns both off). Records of files that are
//! gone or unused for 30 days are removed as new ones are written.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cachedir::{self, RACY};
use super::sums::Sums;

/// Bumped when the record changes meaning.
const FORMAT: &str = "ferry-known-sums 1";
/// Records unused this long are dropped.
const UNUSED: Duration = Duration::from_secs(30 * 86_400);
/// A record is a few hundred bytes; one far bigger is not ferry's.
const RECORD_CAP: u64 = 1 << 20;

/// Where the records are.
#[derive(Debug)]
pub struct KnownSums {
    dir: PathBuf,
    /// [`RACY`]; zero in tests that need a settled record.
    racy: Duration,
}

#[derive(Serialize, Deserialize)]
struct Record {
    format: String,
    path: PathBuf,
    stat: [i64; 8],
    size: u64,
    sha256: String,
    crc64nvme: u64,
    /// Written within RACY of the file's last change: check its CRC first.
    racy: bool,
}

impl KnownSums {
    /// Records in `dir`.
    pub fn in_dir(dir: PathBuf) -> KnownSums {
        KnownSums { dir, racy: RACY }
    }

    #[cfg(test)]
    fn at(dir: &Path, racy: Duration) -> KnownSums {
        KnownSums { dir: dir.to_path_buf(), racy }
    }

    /// The sums of `path` if a record vouches for it and its CRC-64/NVME,
    /// read now, agrees; with the record, for [`KnownSums::forget`]. The
    /// SHA-256 is the record's: the caller must verify it on the bytes.
    pub fn lookup(&self, path: &Path) -> Option<(Sums, PathBuf)> {
        let canonical = path.canonicalize().ok()?;
        let record_path = self.record_path(&canonical);
        let record: Record = serde_json::from_slice(&cachedir::read_own(&record_path, RECORD_CAP)?).ok()?;
        let meta = std::fs::metadata(&canonical).ok()?;
        if record.format != FORMAT || record.path != canonical || record.stat != stat(&meta) || record.size != meta.len() {
            return None;
        }
        if record.racy {
            if crc64nvme_of(&canonical).ok()? != record.crc64nvme {
                return None;
            }
            // Checked, and settled if old enough now: trusted by its stat
            // fields next time.
            let sums = Sums { size: record.size, sha256: record.sha256.clone(), crc64nvme: record.crc64nvme };
            self.remember(&canonical, &sums);
        }
        // Used: kept another 30 days.
        let _ = File::options().write(true).open(&record_path).and_then(|f| f.set_modified(SystemTime::now()));
        Some((Sums { size: record.size, sha256: record.sha256, crc64nvme: record.crc64nvme }, record_path))
    }

    /// Removes a record whose SHA-256 the file's bytes did not have, so the
    /// next release hashes the file afresh.
    pub fn forget(record: &Path) {
        let name = record.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if cachedir::is_own_name(&name, &["json"]) {
            let _ = std::fs::remove_file(record);
        }
    }

    /// Remembers that `path`, as it is now, has `sums`. Failing to is no
    /// error: the next release hashes the file again.
    pub fn remember(&self, path: &Path, sums: &Sums) {
        let _ = self.try_remember(path, sums);
    }

    fn try_remember(&self, path: &Path, sums: &Sums) -> io::Result<()> {
        let canonical = path.canonicalize()?;
        let meta = std::fs::metadata(&canonical)?;
        if meta.len() != sums.size || !meta.is_file() {
            return Ok(());
        }
        cachedir::create(&self.dir)?;
        self.prune();
        let record = Record {
            format: FORMAT.into(),
            path: canonical.clone(),
            stat: stat(&meta),
            size: sums.size,
            sha256: sums.sha256.clone(),
            crc64nvme: sums.crc64nvme,
            racy: self.racy_now(&meta),
        };
        cachedir::write_durably(&self.record_path(&canonical), &serde_json::to_vec(&record)?)
    }

    /// Whether a file with this metadata changed too recently for its times
    /// alone to vouch for it (or in the future: a clock set back).
    fn racy_now(&self, meta: &std::fs::Metadata) -> bool {
        let changed = cachedir::stat_fields(meta).1;
        changed.is_none_or(|t| t + self.racy > SystemTime::now())
    }

    fn record_path(&self, canonical: &Path) -> PathBuf {
        let key = hex::encode(Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
        self.dir.join(format!("{key}.json"))
    }

    /// Drops records of files that are gone, and ones unused for 30 days:
    /// only ferry's own `<sha256>.json` names.
    fn prune(&self) {
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if !cachedir::is_own_name(&e.file_name().to_string_lossy(), &["json"]) {
                continue;
            }
            let path = e.path();
            let unused =
                e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|m| m.elapsed().ok()).is_some_and(|a| a > UNUSED);
            let gone = || {
                let record: Option<Record> = cachedir::read_own(&path, RECORD_CAP).and_then(|b| serde_json::from_slice(&b).ok());
                record.is_none_or(|r| !r.path.exists())
            };
            if unused || gone() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// The stat fields a record covers: the bundle cache's own.
fn stat(meta: &std::fs::Metadata) -> [i64; 8] {
    cachedir::stat_fields(meta).0
}

fn crc64nvme_of(path: &Path) -> io::Result<u64> {
    let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
    super::sums::each_piece(&mut File::open(path)?, |piece| crc.update(piece))?;
    Ok(crc.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::hash_file;

    /// Every file a test writes is racy under the real bound.
    const RACY_TEST: Duration = RACY;

    fn file(dir: &Path, body: &[u8]) -> PathBuf {
        let p = dir.join("app.zip");
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn a_remembered_file_gets_its_sums_back_without_a_sha256_pass() {
        let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let p = file(dir.path(), b"zip bytes");
        let real = hash_file(&p).unwrap();
        // A SHA-256 no pass over the file could produce: it came from the record.
        let remembered = Sums { sha256: "ab".repeat(32), ..real.clone() };
        let known = KnownSums::at(store.path(), RACY_TEST);
        known.remember(&p, &remembered);
        assert_eq!(known.lookup(&p).map(|k| k.0), Some(remembered));
    }

    #[test]
    fn a_rewritten_file_is_not_vouched_for() {
        let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let p = file(dir.path(), b"zip bytes");
        let known = KnownSums::at(store.path(), RACY_TEST);
        known.remember(&p, &hash_file(&p).unwrap());
        let before = std::fs::metadata(&p).unwrap().modified().unwrap();
        // Same size, other bytes, modification time put back: ctime moved.
        std::fs::write(&p, b"zip BYTES").unwrap();
        File::options().write(true).open(&p).unwrap().set_modified(before).unwrap();
        assert_eq!(known.lookup(&p).map(|k| k.0), None);
    }

    #[test]
    fn a_change_the_stat_fields_miss_is_caught_by_the_crc() {
        let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let p = file(dir.path(), b"zip bytes");
        let known = KnownSums::at(store.path(), RACY_TEST);
        // As if the bytes had changed within the clock tick of the record:
        // every stat field agrees, the CRC-64/NVME does not.
        let stale = Sums { crc64nvme: 7, ..hash_file(&p).unwrap() };
        known.remember(&p, &stale);
        assert_eq!(known.lookup(&p).map(|k| k.0), None);
    }

    #[test]
    fn a_settled_record_is_trusted_by_the_stat_fields_alone() {
        let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let p = file(dir.path(), b"zip bytes");
        // With no racy window the record is settled at once; a CRC no pass
        // over the file could match shows that lookup reads nothing.
        let known = KnownSums::at(store.path(), Duration::ZERO);
        let unread = Sums { crc64nvme: 7, ..hash_file(&p).unwrap() };
        known.remember(&p, &unread);
        assert_eq!(known.lookup(&p).map(|k| k.0), Some(unread));
    }

    #[test]
    fn a_racy_record_is_settled_once_its_crc_checked_out() {
        let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let p = file(dir.path(), b"zip bytes");
        let sums = hash_file(&p).unwrap();
        KnownSums::at(store.path(), RACY_TEST).remember(&p, &sums);
        let record = |k: &KnownSums| -> Record {
            serde_json::from_slice(&std::fs::read(k.record_path(&p.canonicalize().unwrap())).unwrap()).unwrap()
        };
        let later = KnownSums::at(store.path(), Duration::ZERO);
        assert!(record(&later).racy, "just written: racy");
        assert_eq!(later.lookup(&p).map(|k| k.0), Some(sums));
        assert!(!record(&later).racy, "checked by its CRC and old enough now: settled");
    }

    /// Issue 23 item 4: pruning deletes only ferry's own record names.
    #[test]
    fn pruning_leaves_files_that_are_not_ferrys_records_alone() {
        let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for name in ["config.json", "notes.txt", ".env"] {
            std::fs::write(store.path().join(name), "not ferry's").unwrap();
        }
        let p = file(dir.path(), b"zip bytes");
        KnownSums::at(store.path(), RACY_TEST).remember(&p, &hash_file(&p).unwrap());
        for name in ["config.json", "notes.txt", ".env"] {
            assert!(store.path().join(name).exists(), "{name} was deleted");
        }
    }

    /// Issue 23 item 2: a record is the cache's only if no one else may
    /// write it; one others could have edited is not used.
    #[cfg(unix)]
    #[test]
    fn a_record_others_may_write_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let p = file(dir.path(), b"zip bytes");
        let known = KnownSums::at(store.path(), Duration::ZERO);
        known.remember(&p, &hash_file(&p).unwrap());
        assert!(known.lookup(&p).is_some());
        let record = known.record_path(&p.canonicalize().unwrap());
        std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(known.lookup(&p).is_none());
    }

    #[test]
    fn records_of_files_that_are_gone_are_pruned() {
        let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let known = KnownSums::at(store.path(), RACY_TEST);
        let p = file(dir.path(), b"one");
        known.remember(&p, &hash_file(&p).unwrap());
        std::fs::remove_file(&p).unwrap();
        let q = dir.path().join("other.zip");
        std::fs::write(&q, b"two").unwrap();
        known.remember(&q, &hash_file(&q).unwrap());
        assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 1, "only the record of the file that exists");
    }
}
