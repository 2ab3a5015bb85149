//! One moto server on a free loopback port, alive exactly as long as its handle.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, http, ports, spawn};

/// Environment variable that overrides where `moto_server` is looked for.
pub const MOTO_SERVER_ENV: &str = "FERRY_MOTO_SERVER";

/// How long moto may take to import and bind. A cold start on a busy 2-core
/// machine takes a few seconds; far more than that means it is broken.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 5;

/// A running `moto_server`; dropping it kills its whole process group.
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl MotoServer {
    /// Starts moto on a free port and waits until it answers.
    ///
    /// Its output goes to a file in `log_dir`, which must outlive the server.
    pub fn start(log_dir: &Path) -> Result<MotoServer> {
        let bin = find_moto_server()?;
        let mut last_error = String::new();
        // The free port is only free when we asked; retry if someone took it.
        for _ in 0..START_ATTEMPTS {
            let port = ports::free_port().map_err(|e| format!("no free loopback port: {e}"))?;
            let log = log_dir.join(format!("moto-{port}.log"));
            match start_on(&bin, port, &log) {
                Ok(server) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(format!("moto did not start after {START_ATTEMPTS} attempts: {last_error}"))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `exited with …` once the server has ended (it never should while
    /// its handle lives); `None` while it runs.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be checked ({e})")),
        }
    }

    /// Where moto's request log goes; worth reading when a test fails.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// From now on moto checks signatures and identity policies on every
    /// request (`INITIAL_NO_AUTH_ACTION_COUNT` = 0, counter reset).
    pub fn enforce_auth(&self) -> Result<()> {
        let resp = http::request(self.addr, "POST", "/moto-api/reset-auth", "0").map_err(|e| format!("moto reset-auth: {e}"))?;
        if resp.status != 200 {
            return Err(format!("moto reset-auth answered {}: {}", resp.status, resp.body));
        }
        Ok(())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // moto keeps everything in memory: nothing to flush, so no SIGTERM grace.
        spawn::kill_group(&mut self.child);
    }
}

fn start_on(bin: &Path, port: u16, log: &Path) -> Result<MotoServer> {
    let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Accounts must come from the access keys (see lib docs); a stray
        // setting from the developer's shell would silently change them.
        .env_remove("MOTO_ACCOUNT_ID")
        .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
        .env("PYTHONUNBUFFERED", "1");
    let child = spawn::spawn_tied_to_process(cmd).map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let mut server = MotoServer { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), log: log.to_owned() };
    server.wait_ready()?;
    Ok(server)
}

impl MotoServer {
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("moto_server exited ({status}) during start:\n{}", tail(&log, 2000)));
            }
            // An answer on the port proves only that *a* moto listens there:
            // when two test processes picked the same free port, the loser's
            // probe reaches the winner's server. werkzeug logs "Running on"
            // once it has bound, and only ours writes our log.
            let bound = std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains("Running on"));
            if bound
                && let Ok(resp) = http::request(self.addr, "GET", "/moto-api/", "")
                && resp.status == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                // Drop kills it.
                return Err(format!("moto_server did not answer on {} within {READY_TIMEOUT:?}", self.addr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The repository root, where `scripts/setup-venv` puts `.venv`.
pub fn repo_root() -> PathBuf {
    let stack_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    stack_crate.parent().and_then(Path::parent).unwrap_or(stack_crate).to_owned()
}

/// `$FERRY_MOTO_SERVER`, else the repo's `.venv/bin/moto_server`.
///
/// Deliberately no `$PATH` fallback: a different moto version would change
/// what the tests prove without anyone noticing.
fn find_moto_server() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(MOTO_SERVER_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "moto not found: ${MOTO_SERVER_ENV} points at {}, which does not exist. Unset it to use the \
                 repository's .venv (made by scripts/setup-venv), or point it at a moto_server.",
                path.display()
            ))
        };
    }
    let path = repo_root().join(".venv/bin/moto_server");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "moto not found at {}: its virtualenv is missing. Run scripts/setup-venv (it creates .venv with the \
             pinned moto[server]), or set ${MOTO_SERVER_ENV} to a moto_server.",
            path.display()
        ))
    }
}
