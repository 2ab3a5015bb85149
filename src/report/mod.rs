//! report: the only code that prints. The pipeline emits [`Event`]s; a
//! [`Reporter`] renders them for a terminal, a Jenkins log, or a machine.

mod event;
mod json;
mod plain;
mod tty;

use std::io::IsTerminal;

pub use event::{Event, Outcome, Overview, Receipt};
pub use json::JsonReporter;
pub use plain::PlainReporter;
pub use tty::TtyReporter;

/// Something that renders events. Implementations are internally locked so
/// the pipeline can share one by reference.
pub trait Reporter: Send + Sync {
    /// Renders one event.
    fn report(&self, event: &Event);
}

/// `--output`: what stdout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human lines on stderr; the result (deployment id) on stdout.
    Text,
    /// One JSON object per event on stdout.
    Json,
}

/// `--progress`: how human lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// Bars on a terminal, plain lines in CI.
    Auto,
    /// Progress bars.
    Tty,
    /// Timestamped lines, no ANSI.
    Plain,
}

/// Picks the renderer. Jenkins (CI or JENKINS_URL set) and pipes get plain
/// lines: a Jenkins log shows carriage returns and ANSI codes as garbage.
pub fn choose(output: OutputFormat, progress: Progress) -> Box<dyn Reporter> {
    if output == OutputFormat::Json {
        return Box::new(JsonReporter::stdout());
    }
    let in_ci = std::env::var_os("CI").is_some() || std::env::var_os("JENKINS_URL").is_some();
    let tty = match progress {
        Progress::Tty => true,
        Progress::Plain => false,
        Progress::Auto => std::io::stderr().is_terminal() && !in_ci,
    };
    if tty { Box::new(TtyReporter::new()) } else { Box::new(PlainReporter::stderr()) }
}

/// The human sentence for an event, shared by the plain and TTY renderers.
/// `None` for events that only drive progress bars or go to stdout.
pub fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::Assumed { role_arn, session_name, assumed_arn } => {
            format!("assumed {role_arn} as session {session_name} ({assumed_arn})")
        }
        Event::BundleReady { path, bundle_type, size, sha256, built } => {
            let what = if *built { "built" } else { "using" };
            format!("{what} {} bundle {path} ({}, sha256 {})", bundle_type.extension(), human_bytes(*size), &sha256[..12.min(sha256.len())])
        }
        Event::UploadStarted { bucket, key, size } => format!("uploading {} to s3://{bucket}/{key}", human_bytes(*size)),
        Event::UploadProgress { .. } => return None,
        Event::Uploaded { bucket, key, etag, version_id, .. } => match version_id {
            Some(v) => format!("uploaded s3://{bucket}/{key} (etag {etag}, version {v})"),
            None => format!("uploaded s3://{bucket}/{key} (etag {etag})"),
        },
        Event::DeploymentCreated { deployment_id, application, deployment_group } => {
            format!("created deployment {deployment_id} of {application} to {deployment_group}")
        }
        Event::DeploymentStatus { deployment_id, status, overview } => format!(
            "deployment {deployment_id} {status}: {} succeeded, {} in progress, {} pending, {} failed, {} skipped",
            overview.succeeded, overview.in_progress, overview.pending, overview.failed, overview.skipped
        ),
        Event::LifecycleFailed { target_id, lifecycle_event, error_code, script_name, message, log_tail, .. } => {
            let mut s = format!("instance {target_id} failed {lifecycle_event}");
            if let Some(code) = error_code {
                s.push_str(&format!(" [{code}]"));
            }
            if let Some(script) = script_name.as_deref().filter(|s| !s.is_empty()) {
                s.push_str(&format!(" in {script}"));
            }
            if let Some(msg) = message.as_deref().filter(|m| !m.is_empty()) {
                s.push_str(&format!(": {msg}"));
            }
            if let Some(tail) = log_tail.as_deref().filter(|t| !t.trim().is_empty()) {
                s.push_str("\n    --- script output (last lines) ---");
                for line in tail.lines() {
                    s.push_str("\n    ");
                    s.push_str(line);
                }
            }
            s
        }
        Event::Finished { deployment_id, outcome, error } => {
            let word = match outcome {
                Outcome::Created => "created",
                Outcome::Succeeded => "succeeded",
                Outcome::Failed => "FAILED",
                Outcome::Stopped => "STOPPED",
                Outcome::TimedOut => "still running when --timeout elapsed",
            };
            match error {
                Some(e) => format!("deployment {deployment_id} {word}: {e}"),
                None => format!("deployment {deployment_id} {word}"),
            }
        }
        Event::Receipt(_) | Event::BundleWritten { .. } | Event::Staged { .. } => return None,
        Event::AppSpecProblem { file, line, message } => match line {
            Some(line) => format!("{file}:{line}: {message}"),
            None => format!("{file}: {message}"),
        },
        Event::Checked { file, problems: 0 } => format!("{file}: no problems found"),
        Event::Checked { file, problems } => format!("{file}: {problems} problem(s); nothing can be released until they are fixed"),
        Event::UploadResumed { upload_id, parts, bytes } => {
            format!("resuming multipart upload {upload_id}: {parts} part(s), {}, already in S3", human_bytes(*bytes))
        }
        Event::UploadSkipped { bucket, key } => {
            format!("s3://{bucket}/{key} already holds this bundle (SHA-256 checked); nothing uploaded")
        }
        Event::Error { message, .. } => format!("error: {message}"),
    })
}

/// `1.2 MiB`-style sizes for log lines.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// What text mode prints on stdout for an event that is a command's result:
/// the deployment id, a bundle's SHA-256, or an uploaded bundle's URI.
pub(crate) fn result_line(event: &Event) -> Option<String> {
    match event {
        Event::Receipt(r) => Some(receipt_line(r)),
        Event::BundleWritten { sha256, .. } => Some(sha256.clone()),
        Event::Staged { uri, .. } => Some(uri.clone()),
        _ => None,
    }
}

/// What text mode prints on stdout for a receipt: the deployment id alone, so
/// `id=$(ferry release …)` works in a shell step.
pub(crate) fn receipt_line(r: &Receipt) -> String {
    r.deployment_id.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(50 * 1024 * 1024), "50.0 MiB");
    }

    #[test]
    fn failed_lifecycle_event_shows_script_output_indented() {
        let e = Event::LifecycleFailed {
            deployment_id: "d-1".into(),
            target_id: "i-1".into(),
            lifecycle_event: "AfterInstall".into(),
            error_code: Some("ScriptFailed".into()),
            script_name: Some("scripts/migrate.sh".into()),
            message: Some("Script at specified location: scripts/migrate.sh run as user root failed with exit code 1".into()),
            log_tail: Some("[stdout]migrating\n[stderr]boom".into()),
        };
        let text = describe(&e).unwrap();
        assert!(text.starts_with("instance i-1 failed AfterInstall [ScriptFailed] in scripts/migrate.sh"), "{text}");
        assert!(text.contains("\n    [stderr]boom"), "{text}");
    }
}
