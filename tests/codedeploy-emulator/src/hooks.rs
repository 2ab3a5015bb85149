//! Running appspec hook scripts for real, the way the agent does: bash, with
//! the lifecycle environment, a timeout, and the combined output kept.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How much of a script's output ends up in `diagnostics.logTail`.
pub const LOG_TAIL_BYTES: u64 = 4096;

/// The agent's default (and maximum) hook timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// One script invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Absolute path of the script.
    pub script: PathBuf,
    /// Working directory (the deployment's archive directory).
    pub cwd: PathBuf,
    /// Environment added to the emulator's own.
    pub env: Vec<(String, String)>,
    /// Time limit.
    pub timeout: Duration,
    /// File receiving the combined stdout/stderr (appended to).
    pub log: PathBuf,
}

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Succeeded,
    /// Non-zero exit (or killed by a signal: `None`).
    Failed(Option<i32>),
    /// Killed after its timeout.
    TimedOut,
    /// The script file does not exist.
    Missing,
}

/// What a script run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// How it ended.
    pub outcome: Outcome,
    /// The last [`LOG_TAIL_BYTES`] of its combined output.
    pub log_tail: String,
}

/// Runs one hook script to completion or timeout.
pub async fn run(inv: &Invocation) -> Run {
    if !inv.script.is_file() {
        return Run { outcome: Outcome::Missing, log_tail: String::new() };
    }
    let start = std::fs::metadata(&inv.log).map(|m| m.len()).unwrap_or(0);
    let outcome = match spawn_and_wait(inv).await {
        Ok(outcome) => outcome,
        Err(e) => {
            append(&inv.log, &format!("codedeploy-emulator: cannot run {}: {e}\n", inv.script.display()));
            Outcome::Failed(None)
        }
    };
    Run { outcome, log_tail: tail(&inv.log, start) }
}

async fn spawn_and_wait(inv: &Invocation) -> std::io::Result<Outcome> {
    if let Some(dir) = inv.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&inv.log)?;
    let mut command = tokio::process::Command::new("bash");
    command
        .arg(&inv.script)
        .current_dir(&inv.cwd)
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        // One file for both streams keeps their interleaving, as the agent's log does.
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        // Own process group, so a timeout kills the script's children too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    match tokio::time::timeout(inv.timeout, child.wait()).await {
        Ok(status) => {
            let status = status?;
            Ok(if status.success() { Outcome::Succeeded } else { Outcome::Failed(status.code()) })
        }
        Err(_) => {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = child.kill().await;
            Ok(Outcome::TimedOut)
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(text.as_bytes());
    }
}

/// The last [`LOG_TAIL_BYTES`] written to `path` after offset `start`.
fn tail(path: &Path, start: u64) -> String {
    let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = start.max(len.saturating_sub(LOG_TAIL_BYTES));
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_ok() {
        let _ = file.take(LOG_TAIL_BYTES).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}
