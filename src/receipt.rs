//! receipt: the JSON file a release leaves behind for Jenkins'
//! `archiveArtifacts`, written on success, failure and abort alike.
//!
//! A [`Receipt`] is built only from typed, non-secret fields (names, ids,
//! hashes, timings), so nothing secret can reach the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::event::{Event, Receipt, Reporter, WaveReceipt};
use crate::exit::ExitCode;
use crate::jenkins::BuildEnv;
use crate::queue::Pending;

/// The file name used in Jenkins when `--receipt` is not given.
pub const DEFAULT_FILE: &str = "ferry-receipt.json";

/// The receipt file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the receipt {path}: {detail}. Point --receipt at a writable file, or run in a writable workspace.")]
pub struct ReceiptError {
    /// The file.
    pub path: String,
    /// The I/O error.
    pub detail: String,
}

/// Where to write: `--receipt` if given, else `ferry-receipt.json` in the
/// working directory when running in Jenkins (`JENKINS_URL` or `BUILD_TAG`
/// set), else nowhere.
pub fn path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    BuildEnv::current().in_jenkins().then(|| PathBuf::from(DEFAULT_FILE))
}

/// The build this process belongs to, as the receipt records it.
pub fn build_from_env() -> Option<String> {
    BuildEnv::current().build().map(str::to_string)
}

/// Records where the command deploys to, and as which role, as soon as the
/// configuration is read: a failure in any later step (no credentials, a
/// refused upload) still leaves a receipt that says what was attempted.
pub fn set_target(receipt: &mut Receipt, env: &crate::config::Environment) {
    receipt.environment = env.name.clone();
    receipt.role_arn = env.role.arn.clone();
    receipt.bucket = env.bucket.clone();
    receipt.application = env.application.clone();
    receipt.deployment_group = env.deployment_group.clone();
}

/// Records who the command acts as (role and session name; never credentials).
pub fn set_session(receipt: &mut Receipt, session: &crate::assume::Session) {
    receipt.role_arn = session.role_arn.clone();
    receipt.session_name = session.session_name.clone();
}

/// Wall-clock and monotonic start of a command, for the receipt's timings.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: SystemTime,
    mono: Instant,
}

impl Clock {
    /// Now.
    pub fn start() -> Clock {
        Clock { wall: SystemTime::now(), mono: Instant::now() }
    }

    /// Fills the receipt's `started_at`, `finished_at` and `elapsed_ms`.
    pub fn stamp(&self, receipt: &mut Receipt) {
        receipt.started_at = Some(format_time(self.wall));
        receipt.finished_at = Some(format_time(SystemTime::now()));
        receipt.elapsed_ms = Some(self.mono.elapsed().as_millis() as u64);
    }

    /// The same for a wave's receipt.
    pub fn stamp_wave(&self, receipt: &mut WaveReceipt) {
        receipt.started_at = Some(format_time(self.wall));
        receipt.finished_at = Some(format_time(SystemTime::now()));
        receipt.elapsed_ms = Some(self.mono.elapsed().as_millis() as u64);
    }
}

/// Now, UTC, as the receipt writes times.
pub fn now_utc() -> String {
    format_time(SystemTime::now())
}

fn format_time(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    crate::deployments::utc(&aws_smithy_types::DateTime::from_secs(secs))
}

/// Whether the receipt can be written at `path`: its directory exists and
/// takes a new file, and nothing but a regular file is there. Checked
/// before any AWS call, so a deployment is never created that could not be
/// recorded (a failure to write after it would break the exit codes).
pub fn check_path(path: &Path) -> Result<(), ReceiptError> {
    if path.as_os_str() == "-" {
        return Err(ReceiptError {
            path: "-".into(),
            detail: "ferry writes the receipt to a file, never to stdout (which carries the result), and would \
                     otherwise write a file named `-`"
                .into(),
        });
    }
    crate::outfile::check_writable(path).map_err(|detail| ReceiptError { path: path.display().to_string(), detail })
}

/// Writes the receipt atomically (temp file + rename), so an archived
/// receipt is never half a file, and reports where it went.
pub fn write(path: &Path, receipt: &Receipt, reporter: &dyn Reporter) -> Result<(), ReceiptError> {
    write_file(path, receipt)?;
    reporter.report(&Event::ReceiptWritten { path: path.display().to_string() });
    Ok(())
}

/// Writes a wave's receipt atomically, like [`write`], quietly.
pub fn write_wave(path: &Path, receipt: &WaveReceipt) -> Result<(), ReceiptError> {
    write_file(path, receipt)
}

fn write_file<T: serde::Serialize>(path: &Path, receipt: &T) -> Result<(), ReceiptError> {
    let err = |detail: String| ReceiptError { path: path.display().to_string(), detail };
    // The rename would replace a FIFO or device node with the receipt.
    crate::outfile::check(path).map_err(err)?;
    let mut text = serde_json::to_string_pretty(receipt).map_err(|e| err(e.to_string()))?;
    text.push('\n');
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| err(e.to_string()))?;
    std::fs::write(tmp.path(), text).map_err(|e| err(e.to_string()))?;
    tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
    Ok(())
}

/// A receipt being filled in, with where it goes: [`Keeper::save`] writes it
/// as it stands, so an abort can put what it knows on disk at once and after
/// each step (Jenkins sends SIGKILL 5 s after SIGTERM; whatever was saved by
/// then is what the build archives).
pub struct Keeper {
    /// The receipt so far.
    pub receipt: Receipt,
    /// The release's pending record, held (and so kept from any re-run)
    /// until the receipt is final: a run killed before then is resumed by
    /// its re-run, one killed after it has told its whole story.
    pub pending: Option<Pending>,
    clock: Clock,
    path: Option<PathBuf>,
    warned: bool,
    sink: Option<Sink>,
}

/// Where a [`Keeper`] without a file of its own hands each save: a wave puts
/// every environment's receipt into its one file this way, so an abort's
/// first save (before StopDeployment) reaches the disk as it does alone.
pub type Sink = Arc<dyn Fn(&Receipt) + Send + Sync>;

impl Keeper {
    /// A receipt for a command started at `clock`, written to `path` (none: kept in memory only).
    pub fn new(receipt: Receipt, clock: Clock, path: Option<PathBuf>) -> Keeper {
        Keeper { receipt, pending: None, clock, path, warned: false, sink: None }
    }

    /// A receipt kept for a wave: each save goes to `sink`, not a file.
    pub fn with_sink(receipt: Receipt, clock: Clock, sink: Sink) -> Keeper {
        Keeper { receipt, pending: None, clock, path: None, warned: false, sink: Some(sink) }
    }

    /// Writes the receipt as it stands now (`finished_at` is the time of this
    /// save). Quiet; a failure is warned about once, and [`Keeper::finish`]
    /// reports it for good.
    pub fn save(&mut self, reporter: &dyn Reporter) {
        if let Some(sink) = &self.sink {
            self.clock.stamp(&mut self.receipt);
            sink(&self.receipt);
        }
        let Some(path) = &self.path else { return };
        self.clock.stamp(&mut self.receipt);
        if let Err(e) = write_file(path, &self.receipt)
            && !self.warned
        {
            self.warned = true;
            reporter.report(&Event::Warning { message: e.to_string() });
        }
    }

    /// [`finish`] with this receipt.
    pub fn finish<E: std::fmt::Display + From<ReceiptError>>(
        self,
        result: Result<ExitCode, E>,
        announce: bool,
        reporter: &dyn Reporter,
    ) -> Result<ExitCode, E> {
        let Keeper { receipt, pending, clock, path, .. } = self;
        let ended = finish(result, receipt, clock, path.as_deref(), announce, reporter);
        // Only now, with the receipt written, has this release ended.
        drop(pending);
        ended
    }
}

/// Ends a command that keeps a receipt: stamps the timings, records the
/// error if there was one, writes the file (when a path is set) and reports
/// the receipt event once a deployment exists, when `announce` (text mode
/// prints its deployment id on stdout). When the command failed, its own
/// error wins and a failure to write the file is only a warning; when it
/// succeeded, the failure to write is the command's error.
pub fn finish<E: std::fmt::Display + From<ReceiptError>>(
    result: Result<ExitCode, E>,
    mut receipt: Receipt,
    clock: Clock,
    path: Option<&Path>,
    announce: bool,
    reporter: &dyn Reporter,
) -> Result<ExitCode, E> {
    clock.stamp(&mut receipt);
    if let Err(e) = &result {
        receipt.error = Some(e.to_string());
    }
    let written = path.map(|p| write(p, &receipt, reporter)).transpose();
    if announce && receipt.deployment_id.is_some() {
        reporter.report(&Event::Receipt(receipt));
    }
    match (result, written) {
        (Ok(code), Ok(_)) => Ok(code),
        (Ok(_), Err(e)) => Err(e.into()),
        (Err(e), Err(w)) => {
            reporter.report(&Event::Warning { message: w.to_string() });
            Err(e)
        }
        (Err(e), Ok(_)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    /// Issue 23 item 8: `--receipt -` wrote a file named `-`.
    #[test]
    fn a_receipt_to_stdout_is_refused_clearly() {
        let e = super::check_path(std::path::Path::new("-")).unwrap_err().to_string();
        assert!(e.contains("never to stdout"), "{e}");
    }

    use super::*;

    struct Quiet;
    impl Reporter for Quiet {
        fn report(&self, _: &Event) {}
    }

    #[test]
    fn receipt_file_holds_every_documented_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut r = Receipt { environment: "production".into(), deployment_id: Some("d-123456789".into()), ..Default::default() };
        Clock::start().stamp(&mut r);
        write(&path, &r, &Quiet).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for field in [
            "environment",
            "role_arn",
            "session_name",
            "bucket",
            "key",
            "sha256",
            "etag",
            "version_id",
            "deployment_id",
            "rollback_deployment_id",
            "rollback_outcome",
            "started_at",
            "finished_at",
            "elapsed_ms",
            "outcome",
            "build",
            "signal",
            "error",
            "abort",
        ] {
            assert!(v.get(field).is_some(), "missing {field}: {v}");
        }
        assert_eq!(v["deployment_id"], "d-123456789");
        assert!(v["started_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_receipt_without_a_deployment_says_null_not_an_empty_id() {
        let v = serde_json::to_value(Receipt { error: Some("S3 refused".into()), ..Default::default() }).unwrap();
        assert_eq!(v["deployment_id"], serde_json::Value::Null, "{v}");
    }

    #[test]
    fn an_unwritable_receipt_path_names_the_file() {
        let e = write(Path::new("/nonexistent-dir/r.json"), &Receipt::default(), &Quiet).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/r.json"), "{e}");
    }
}
