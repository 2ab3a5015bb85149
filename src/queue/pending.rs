//! The pending-release record: what a release in flight has asked of
//! CodeDeploy, kept on disk until the release ends, so that a re-run of the
//! same release after ferry was killed (SIGKILL, the OOM killer, a lost
//! agent) follows the deployment the killed run made instead of deploying
//! the revision a second time.
//!
//! One record per release: environment, application, group and the exact
//! revision (bucket, key, ETag, version), in
//! `$XDG_CACHE_HOME/ferry/pending/<sha256 of those>.json` (else
//! `~/.cache/ferry/pending`). It holds the run tokens of every run of the
//! release so far (a killed CreateDeployment's answer may never have been
//! read: the token in the description finds its deployment) and the
//! deployment the latest of them created or adopted.
//!
//! Liveness is a lock, not a PID: a run holds an exclusive `flock` on its
//! record from before its first CreateDeployment until its receipt is final
//! (`receipt::Keeper` holds it), and then removes it, whatever the outcome:
//! the receipt tells that story, and a later run is a release of its own.
//! The kernel drops the lock of a killed process, so a record
//! whose lock can be taken is a dead run's; a locked one belongs to a live
//! release of the same revision, which is left alone: two live identical
//! releases each get their own deployment (issue 18 item 11).
//!
//! The record is rewritten in place with one `pwrite`, padded to at least
//! its previous length with spaces (valid JSON either way), because renaming
//! a new file over it would hand the name to an unlocked inode.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::cachedir;
use crate::event::{Event, Reporter};

use super::Request;

/// Bumped when the record changes meaning.
const FORMAT: &str = "ferry-pending 1";
/// A record is a few hundred bytes; one far bigger is not ferry's.
const RECORD_CAP: u64 = 64 << 10;
/// Run tokens kept: a chain of kills longer than this is not plausible.
const TOKENS_KEPT: usize = 8;

/// What earlier, killed runs of this release left: their run tokens and the
/// deployment the last of them created or adopted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prior {
    /// Run tokens of the killed runs, oldest first.
    pub tokens: Vec<String>,
    /// The deployment they had created or adopted, when known.
    pub deployment_id: Option<String>,
}

impl Prior {
    /// Whether no earlier run left anything.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.deployment_id.is_none()
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Record {
    format: String,
    /// The release, spelled out (the file name is its hash).
    release: String,
    tokens: Vec<String>,
    deployment_id: Option<String>,
}

/// This run's record, locked until dropped; dropping it removes the file.
pub struct Pending {
    file: File,
    path: PathBuf,
    record: Record,
    prior: Prior,
    /// Bytes the file holds now: a rewrite pads to at least this many.
    len: u64,
}

impl Pending {
    /// Takes the record of `req`'s release: `None` when there is no cache
    /// directory, it cannot be trusted (warned), or a live run of the same
    /// release holds the record (then this run is on its own, as before).
    pub fn take(req: &Request<'_>, reporter: &dyn Reporter) -> Option<Pending> {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let dir = cachedir::base_dir(var("XDG_CACHE_HOME"), var("HOME"))?.parent()?.join("pending");
        if let Some(why) = cachedir::distrust(&dir) {
            reporter.report(&Event::Warning {
                message: format!("{why}; a re-run of this release after a crash would deploy it again"),
            });
            return None;
        }
        cachedir::create(&dir).ok()?;
        let release = release_of(req);
        let name = format!("{:x}.json", Sha256::digest(release.as_bytes()));
        Pending::lock(&dir.join(name), &release)
    }

    fn lock(path: &Path, release: &str) -> Option<Pending> {
        // A run that ends removes its record between our open and our lock:
        // then the locked inode is no longer the name's, and we open again.
        for _ in 0..3 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(path)
                .ok()?;
            if file.try_lock().is_err() {
                return None;
            }
            let (held, named) = (file.metadata().ok()?, std::fs::symlink_metadata(path));
            if !named.is_ok_and(|n| n.ino() == held.ino() && n.dev() == held.dev()) {
                continue;
            }
            // A file another user planted is not believed, only replaced.
            let own = cachedir::open_own(path).is_some();
            let record = own.then(|| read(&file)).flatten().filter(|r| r.format == FORMAT && r.release == release);
            let prior = record
                .as_ref()
                .map_or_else(Prior::default, |r| Prior { tokens: r.tokens.clone(), deployment_id: r.deployment_id.clone() });
            let record =
                record.unwrap_or_else(|| Record { format: FORMAT.into(), release: release.into(), ..Default::default() });
            return Some(Pending { len: held.len(), file, path: path.to_path_buf(), record, prior });
        }
        None
    }

    /// What killed runs of this release left.
    pub fn prior(&self) -> &Prior {
        &self.prior
    }

    /// Records this run's token, before it sends CreateDeployment: a kill
    /// while the call is in flight leaves a deployment only the token finds.
    pub fn add_token(&mut self, token: &str) {
        let tokens = &mut self.record.tokens;
        if !tokens.iter().any(|t| t == token) {
            tokens.push(token.to_string());
        }
        let excess = tokens.len().saturating_sub(TOKENS_KEPT);
        tokens.drain(..excess);
        self.save();
    }

    /// Records the deployment this run created or adopted.
    pub fn set_deployment(&mut self, deployment_id: &str) {
        self.record.deployment_id = Some(deployment_id.to_string());
        self.save();
    }

    /// Best effort: a record that cannot be written costs only the adoption
    /// after a crash, never the release.
    fn save(&mut self) {
        let Ok(mut bytes) = serde_json::to_vec(&self.record) else { return };
        let len = (bytes.len() as u64).max(self.len);
        bytes.resize(len as usize, b' ');
        if self.file.write_all_at(&bytes, 0).is_ok() {
            self.len = len;
            let _ = self.file.sync_data();
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Still ours (we hold the lock, so no one replaced it): the release
        // ended by itself, so no re-run has anything to adopt from it.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn read(file: &File) -> Option<Record> {
    use std::io::Read;
    let mut text = Vec::new();
    file.take(RECORD_CAP).read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The release a record is for: the same environment, application and group
/// and the very same object (ETag and version, when pinned).
fn release_of(req: &Request<'_>) -> String {
    let loc = req.revision.s3_location();
    let field = |f: Option<&str>| f.unwrap_or_default().trim_matches('"').to_string();
    serde_json::json!([
        req.env.name,
        req.env.application,
        req.env.deployment_group,
        field(loc.and_then(|l| l.bucket())),
        field(loc.and_then(|l| l.key())),
        field(loc.and_then(|l| l.e_tag())),
        field(loc.and_then(|l| l.version())),
    ])
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_left_unlocked_is_read_back_and_a_locked_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut first = Pending::lock(&path, "release").unwrap();
        assert!(first.prior().is_empty());
        first.add_token("t1");
        first.set_deployment("d-1");
        assert!(Pending::lock(&path, "release").is_none(), "a live run's record is not taken");
        // A kill: the lock goes with the process, the file stays.
        first.file.unlock().unwrap();
        std::mem::forget(first);
        let mut second = Pending::lock(&path, "release").unwrap();
        assert_eq!(second.prior(), &Prior { tokens: vec!["t1".into()], deployment_id: Some("d-1".into()) });
        second.add_token("t2");
        let third_view = read(&File::open(&path).unwrap()).unwrap();
        assert_eq!(third_view.tokens, ["t1", "t2"], "the chain is carried forward");
        assert_eq!(third_view.deployment_id.as_deref(), Some("d-1"));
        drop(second);
        assert!(!path.exists(), "a run that ends by itself removes its record");
    }

    #[test]
    fn a_record_of_another_release_or_format_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, r#"{"format":"ferry-pending 1","release":"other","tokens":["t"],"deployment_id":"d-9"}"#).unwrap();
        assert!(Pending::lock(&path, "release").unwrap().prior().is_empty());
        std::fs::write(&path, "not json").unwrap();
        assert!(Pending::lock(&path, "release").unwrap().prior().is_empty());
    }

    #[test]
    fn a_shorter_rewrite_is_still_one_json_document() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut p = Pending::lock(&path, "release").unwrap();
        p.set_deployment("d-a-long-deployment-id");
        p.record.deployment_id = None;
        p.save();
        let r = read(&File::open(&path).unwrap()).unwrap();
        assert_eq!(r.deployment_id, None);
    }
}
