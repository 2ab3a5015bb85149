//! LocalStack's S3 on a free loopback port: the suite's server that verifies
//! checksums, alive exactly as long as its handle.
//!
//! moto stores whatever `x-amz-checksum-*` it is sent; S3 computes the
//! checksum of the bytes it received and answers `BadDigest` when they
//! differ. LocalStack's S3 does the same on PutObject, UploadPart and
//! aws-chunked trailers, so a body damaged on the way (the fault proxy's
//! `CorruptBody`) is refused here as AWS would refuse it.
//!
//! It runs from `.venv-localstack` (made by `scripts/setup-localstack`) via
//! `tests/stack/localstack_s3.py`: S3 alone, no Docker, no DNS server,
//! nothing persisted, no analytics, every connection not to loopback refused.
//! It accepts any credentials and does not check signatures or policies:
//! tests use it for integrity, moto for who may do what.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, http, moto, ports, spawn};

/// Environment variable that overrides the Python LocalStack runs with
/// (default: the repo's `.venv-localstack/bin/python`).
pub const LOCALSTACK_PYTHON_ENV: &str = "FERRY_LOCALSTACK_PYTHON_BIN";

/// Loading S3 takes LocalStack 5-20 s on a busy 2-core machine; far more
/// than this means it is broken.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const START_ATTEMPTS: usize = 3;

/// A running LocalStack S3; dropping it kills its whole process group and
/// deletes its files (kept, with their path printed, if the thread panics).
pub struct LocalStackS3 {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    root: Option<tempfile::TempDir>,
}

impl LocalStackS3 {
    /// Starts LocalStack's S3 on a free port and waits until S3 is running.
    /// Blocking; callable from anywhere (it makes no tokio calls).
    pub fn start() -> Result<LocalStackS3> {
        let python = find_python()?;
        let script = moto::repo_root().join("tests/stack/localstack_s3.py");
        let root = tempfile::Builder::new()
            .prefix("ferry-localstack-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let mut last_error = String::new();
        // The free port is only free when we asked; retry if someone took it.
        for attempt in 0..START_ATTEMPTS {
            let port = ports::free_port().map_err(|e| format!("no free loopback port: {e}"))?;
            let dir = root.path().join(format!("run-{attempt}"));
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let log = dir.join("localstack.log");
            match start_on(&python, &script, port, &dir, &log) {
                Ok((child, addr)) => return Ok(LocalStackS3 { child, addr, log, root: Some(root) }),
                Err(e) => last_error = e,
            }
        }
        Err(format!(
            "LocalStack S3 did not start after {START_ATTEMPTS} attempts: {last_error}\n(files kept in {})",
            root.keep().display()
        ))
    }

    /// `http://127.0.0.1:PORT`. Path-style addressing only (no DNS here).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// LocalStack's log: one line per request, with the operation and status.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for LocalStackS3 {
    fn drop(&mut self) {
        // Everything is in memory or under root: nothing to flush, and its own
        // shutdown takes seconds.
        spawn::kill_group(&mut self.child);
        if std::thread::panicking()
            && let Some(root) = self.root.take()
        {
            eprintln!("ferry-test-stack: LocalStack's files kept in {}", root.keep().display());
        }
    }
}

fn start_on(python: &Path, script: &Path, port: u16, dir: &Path, log: &Path) -> Result<(Child, SocketAddr)> {
    let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg(port.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir(dir)
        // LocalStack's own temp files and caches stay under dir too.
        .env("TMPDIR", dir)
        .env("HOME", dir)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let child = spawn::spawn_tied_to_process(cmd).map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let mut child = KillOnError(Some(child));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_ready(child.0.as_mut().expect("set above"), addr, log)?;
    Ok((child.0.take().expect("set above"), addr))
}

/// Kills the child if start-up fails half-way.
struct KillOnError(Option<Child>);

impl Drop for KillOnError {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            spawn::kill_group(child);
        }
    }
}

fn wait_ready(child: &mut Child, addr: SocketAddr, log: &Path) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("LocalStack exited ({status}) during start:\n{}", tail(&text, 3000)));
        }
        if let Ok(resp) = http::request(addr, "GET", "/_localstack/health", "")
            && resp.status == 200
            && resp.body.contains("\"s3\": \"running\"")
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("LocalStack S3 was not running on {addr} within {READY_TIMEOUT:?} (log: {})", log.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// `$FERRY_LOCALSTACK_PYTHON_BIN`, else the repo's `.venv-localstack/bin/python`.
/// No `$PATH` fallback, for the reason moto has none.
fn find_python() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(LOCALSTACK_PYTHON_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("LocalStack not found: ${LOCALSTACK_PYTHON_ENV} points at {}, which does not exist", path.display()))
        };
    }
    let path = moto::repo_root().join(".venv-localstack/bin/python");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("LocalStack not found at {}: run scripts/setup-localstack", path.display()))
    }
}
