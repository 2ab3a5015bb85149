//! Running appspec hook scripts for real, the way the agent does: the script
//! itself executed (its shebang decides the interpreter; none means
//! `/bin/sh`, as Ruby falls back on ENOEXEC), made executable first if it is
//! not, through `su USER -c` for `runas`, with the lifecycle environment and
//! a timeout that sends TERM to the script's process group, each output line
//! kept with its stream as raw bytes, and the same bounded in-memory log that
//! becomes `diagnostics.logTail`.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The agent's budget, in characters, for the log of one lifecycle event.
pub const LOG_TAIL_CHARS: usize = 2048;

/// The agent's default (and maximum) hook timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The output of one lifecycle event's scripts as the agent keeps it in
/// memory, which it reports as `diagnostics.logTail` when the event fails.
///
/// Every entry is one line as the agent logs it: `LifecycleEvent - NAME\n`,
/// then per script `Script - LOCATION\n` and each output line prefixed with
/// `[stdout]` or `[stderr]` (its newline kept; a last line without one stays
/// without). After each entry the agent trims from the front, and its rule is
/// kept here exactly, quirks included (see [`ScriptLog::append`]).
#[derive(Debug, Clone, Default)]
pub struct ScriptLog {
    entries: VecDeque<Vec<u8>>,
}

/// A byte string's length as Ruby counts a UTF-8 string: characters, and
/// each byte of an invalid sequence as one.
fn ruby_length(bytes: &[u8]) -> i64 {
    bytes.utf8_chunks().map(|c| c.valid().chars().count() + c.invalid().len()).sum::<usize>() as i64
}

impl ScriptLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one entry, then trims old entries the way the agent's
    /// `ScriptLog#append_to_log` does.
    ///
    /// Walking back from the newest entry with a budget of
    /// [`LOG_TAIL_CHARS`] characters, an entry is kept while the budget minus
    /// its length stays above zero; but what is taken off the budget for a
    /// kept entry is the length of the entry *before* it. So the newest entry
    /// is never charged, the others are in effect compared at twice their
    /// length, and an entry of 2,048 characters or more on its own empties
    /// the log (itself included). Lengths are in characters, as Ruby counts
    /// a UTF-8 string.
    pub fn append(&mut self, entry: impl Into<Vec<u8>>) {
        self.entries.push_back(entry.into());
        let len = |i: usize| ruby_length(&self.entries[i]);
        let mut keep_from = self.entries.len();
        let mut budget = LOG_TAIL_CHARS as i64;
        while keep_from > 0 && budget - len(keep_from - 1) > 0 {
            keep_from -= 1;
            if keep_from > 0 {
                budget -= len(keep_from - 1);
            }
        }
        if keep_from > 0 {
            self.entries.drain(..keep_from);
        }
    }

    /// The log as the service reports it in `logTail`: the entries joined
    /// (invalid UTF-8 shown as U+FFFD; see [`ScriptLog::is_utf8`]).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// The entries joined, as the script wrote them.
    pub fn bytes(&self) -> Vec<u8> {
        self.entries.iter().flatten().copied().collect()
    }

    /// Whether the kept log is valid UTF-8. The agent cannot report one
    /// that is not: its JSON encoding fails, and it sends "Attempting
    /// minimal diagnostics" instead (see [`minimal_diagnostics`]).
    pub fn is_utf8(&self) -> bool {
        std::str::from_utf8(&self.bytes()).is_ok()
    }
}

/// Where one lifecycle event logs: the in-memory [`ScriptLog`] and the
/// deployment's `logs/scripts.log`, whose lines carry a timestamp as the
/// agent writes them (`YYYY-MM-DD HH:MM:SS ` then the entry; UTC here).
#[derive(Debug, Clone)]
pub struct EventLog {
    inner: Arc<Mutex<ScriptLog>>,
    file: PathBuf,
}

impl EventLog {
    /// Starts the log of `event`, writing its `LifecycleEvent - ` line.
    pub fn start(event: &str, file: PathBuf) -> Self {
        let log = EventLog { inner: Arc::new(Mutex::new(ScriptLog::new())), file };
        log.log(format!("LifecycleEvent - {event}\n"));
        log
    }

    /// Logs one entry to both places.
    pub fn log(&self, entry: impl Into<Vec<u8>>) {
        let entry = entry.into();
        let mut log = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&self.file) {
            let _ = write!(f, "{} ", utc_timestamp());
            let _ = f.write_all(&entry);
        }
        log.append(entry);
    }

    /// What `diagnostics.logTail` says now.
    pub fn tail(&self) -> String {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).text()
    }

    /// Whether the log can be reported (see [`ScriptLog::is_utf8`]).
    pub fn is_utf8(&self) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).is_utf8()
    }
}

/// One script invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Absolute path of the script.
    pub script: PathBuf,
    /// The script's `location` in the appspec, as logged.
    pub location: String,
    /// Working directory: the agent's own, `/` under systemd.
    pub cwd: PathBuf,
    /// The appspec's `runas`: run through `su USER -c` (when the emulator
    /// runs as root; otherwise as the emulator's own user).
    pub runas: Option<String>,
    /// Environment added to the emulator's own.
    pub env: Vec<(String, String)>,
    /// Time limit.
    pub timeout: Duration,
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
    /// The script exited, but something it started kept its stdout or
    /// stderr open until the timeout (the agent waits for both to close).
    OutputLeftOpen(&'static str),
    /// It was not executable and could not be made so.
    NotExecutable,
}

/// Whether this process runs as root (and so may `su` to another user).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Linux's "exec format error": a file without a shebang.
const ENOEXEC: i32 = 8;

fn command(inv: &Invocation, through_sh: bool) -> tokio::process::Command {
    let mut command = match (&inv.runas, through_sh) {
        // `su USER -c PATH`: the user's shell runs the script (and itself
        // falls back to sh for a file without a shebang).
        (Some(user), _) if is_root() => {
            let mut c = tokio::process::Command::new("su");
            c.arg(user).arg("-c").arg(&inv.script);
            c
        }
        (_, false) => tokio::process::Command::new(&inv.script),
        (_, true) => {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg(&inv.script);
            c
        }
    };
    command
        .current_dir(&inv.cwd)
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        // Two pipes, read line by line, as the agent reads them.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, as Open3 with `pgroup: true`: a timeout signals all of it.
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// The diagnostics message and log the agent sends when its log is not
/// valid UTF-8 (`gather_diagnostics_from_script_error` in command_poller.rb).
pub fn minimal_diagnostics() -> (&'static str, &'static str) {
    ("Attempting minimal diagnostics", "Exception JSON::GeneratorError occured")
}

/// Runs one hook script to completion or timeout, logging into `log`.
pub async fn run(inv: &Invocation, log: &EventLog) -> Outcome {
    if !inv.script.exists() {
        // The agent checks before it logs the script's name.
        return Outcome::Missing;
    }
    // The agent makes a script executable (`chmod +x`) rather than fail it.
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&inv.script)
            && meta.permissions().mode() & 0o111 == 0
        {
            let mode = meta.permissions().mode() | 0o111;
            if std::fs::set_permissions(&inv.script, std::fs::Permissions::from_mode(mode)).is_err() {
                return Outcome::NotExecutable;
            }
        }
    }
    log.log(format!("Script - {}\n", inv.location));
    match spawn_and_wait(inv, log).await {
        Ok(outcome) => outcome,
        Err(e) => {
            log.log(format!("[stderr]codedeploy-emulator: cannot run {}: {e}\n", inv.script.display()));
            Outcome::Failed(None)
        }
    }
}

async fn spawn_and_wait(inv: &Invocation, log: &EventLog) -> std::io::Result<Outcome> {
    let mut child = match command(inv, false).spawn() {
        // Ruby's exec falls back to /bin/sh for a file with no shebang.
        Err(e) if e.raw_os_error() == Some(ENOEXEC) => command(inv, true).spawn()?,
        other => other?,
    };
    let deadline = tokio::time::Instant::now() + inv.timeout;
    let stdout = child.stdout.take().map(|s| tokio::spawn(pump(s, "[stdout]", log.clone())));
    let stderr = child.stderr.take().map(|s| tokio::spawn(pump(s, "[stderr]", log.clone())));
    let status = match tokio::time::timeout_at(deadline, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            // The agent sends TERM to the group and closes its ends of the
            // pipes at once (what the script prints after the signal is
            // lost), then waits for the script to exit.
            for reader in [stdout, stderr].into_iter().flatten() {
                reader.abort();
            }
            signal_group(&child, "TERM");
            // The agent would wait for ever; the emulator KILLs after a grace.
            if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_err() {
                kill_group(&mut child).await;
            }
            return Ok(Outcome::TimedOut);
        }
    };
    // The agent waits (within the same timeout) for both streams to close.
    for (name, reader) in [("STDOUT", stdout), ("STDERR", stderr)] {
        if let Some(mut reader) = reader
            && tokio::time::timeout_at(deadline, &mut reader).await.is_err()
        {
            reader.abort();
            kill_group(&mut child).await;
            return Ok(Outcome::OutputLeftOpen(name));
        }
    }
    Ok(if status.success() { Outcome::Succeeded } else { Outcome::Failed(status.code()) })
}

/// How long a timed-out script may take to exit after TERM before the
/// emulator KILLs its group (the agent itself waits without limit).
pub const TERM_GRACE: Duration = Duration::from_secs(30);

fn signal_group(child: &tokio::process::Child, signal: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

async fn kill_group(child: &mut tokio::process::Child) {
    signal_group(child, "KILL");
    let _ = child.kill().await;
}

/// Logs every line of `stream` with `prefix` until it closes.
async fn pump(stream: impl AsyncRead + Unpin, prefix: &'static str, log: EventLog) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let mut entry = prefix.as_bytes().to_vec();
                entry.extend_from_slice(&line);
                log.log(entry);
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, the form of the agent's scripts.log lines.
fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(entries: &[&str]) -> ScriptLog {
        let mut log = ScriptLog::new();
        for e in entries {
            log.append((*e).to_string());
        }
        log
    }

    #[test]
    fn short_logs_are_kept_whole_in_order() {
        let log = log_of(&["LifecycleEvent - AfterInstall\n", "Script - s.sh\n", "[stdout]a\n", "[stderr]b"]);
        assert_eq!(log.text(), "LifecycleEvent - AfterInstall\nScript - s.sh\n[stdout]a\n[stderr]b");
    }

    #[test]
    fn older_entries_are_dropped_by_the_agents_rule() {
        // [1000, 1000, 10]: the 10 is never charged, the middle 1000 is
        // compared at 2 × 1000 < 2048 and kept, the first is not.
        let a = "a".repeat(1000);
        let b = "b".repeat(1000);
        let log = log_of(&[&a, &b, "0123456789"]);
        assert_eq!(log.text(), format!("{b}0123456789"));
        // [600, 600, 600, 10] keeps the last three: 2048-10 > 0, then
        // 1448-600 > 0, then 848-600 > 0, then 248-600-600 < 0.
        let x = "x".repeat(600);
        let log = log_of(&[&x, &x, &x, "0123456789"]);
        assert_eq!(log.text().chars().count(), 1210);
    }

    #[test]
    fn many_short_lines_keep_about_the_last_two_thousand_characters() {
        let mut log = ScriptLog::new();
        log.append("LifecycleEvent - ValidateService\n");
        log.append("Script - scripts/check.sh\n");
        for i in 0..1000 {
            log.append(format!("[stdout]line {i:04}\n"));
        }
        let text = log.text();
        assert!(text.ends_with("[stdout]line 0999\n"), "{text}");
        assert!(!text.contains("LifecycleEvent - "), "the header was trimmed away");
        let n = text.chars().count();
        assert!((2048 - 40..2048).contains(&n), "{n}");
        assert!(text.starts_with("[stdout]line "), "whole entries only: {text}");
    }

    #[test]
    fn one_entry_of_the_whole_budget_empties_the_log() {
        let log = log_of(&["LifecycleEvent - AfterInstall\n", &"y".repeat(2048)]);
        assert_eq!(log.text(), "");
        // One character less and the newest entry is never charged, so the
        // header before it still fits: the kept log is longer than 2,048.
        let log = log_of(&["LifecycleEvent - AfterInstall\n", &"y".repeat(2047)]);
        assert_eq!(log.text(), format!("LifecycleEvent - AfterInstall\n{}", "y".repeat(2047)));
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        // 1000 two-byte characters are 1000 long for Ruby, not 2000.
        let e = "é".repeat(1000);
        let log = log_of(&[&e, "z"]);
        assert_eq!(log.text(), format!("{e}z"));
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
