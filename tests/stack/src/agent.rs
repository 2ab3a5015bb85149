//! Real CodeDeploy agents, one process per instance, for the stack's
//! real-agent mode ([`crate::AgentMode::Real`]).
//!
//! Each agent is the unmodified v1.8.1 Ruby agent (`lib/codedeploy-agent.rb
//! --config_file F start`) configured as an on-premises instance: it polls
//! the emulator's command service over https (the production code path, with
//! the stack's CA as `SSL_CERT_FILE`/`AWS_SSL_CA_BUNDLE`) and downloads
//! bundles from moto with the `codedeploy-agent` user's keys. Only `gli`, the
//! gem behind its command line, is replaced by `agent/gli.rb`.
//!
//! The agent daemonises (its master forks and the launcher exits), so every
//! agent runs in a session of its own: dropping the [`Fleet`] kills every
//! process of those sessions, hook scripts included, found by session id.
//! If the test process dies without dropping it, each session's watchdog
//! shell sees its parent gone and kills its process group.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// The path under which every agent sees its own instance file system:
/// each agent runs in a mount namespace of its own with its `fs/` directory
/// bound here, so agents on one machine install like separate hosts. Appspec
/// destinations and hooks that should land "on the instance" use it.
pub const INSTANCE_ROOT: &str = "/srv/ferry-instance";

/// The gem stand-in the agent's command line needs.
const GLI_STUB: &str = include_str!("../agent/gli.rb");

/// Debian packages the agent needs (what `scripts/setup-agent` installs).
const PACKAGES: &str = "ruby ruby-aws-sdk-core ruby-aws-sdk-s3 ruby-zip ruby-logging ruby-concurrent unzip";

/// Where to find the agent's source: `$FERRY_AGENT_SRC`, else the shared
/// third_party copy beside the checkout (or beside its worktree folder).
pub fn source() -> Result<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = std::env::var_os("FERRY_AGENT_SRC").map(PathBuf::from).into_iter().chain([
        repo.join("../shared/third_party/aws-codedeploy-agent"),
        repo.join("../../shared/third_party/aws-codedeploy-agent"),
    ]);
    for c in candidates {
        if c.join("lib/codedeploy-agent.rb").is_file() {
            return c.canonicalize().map_err(|e| format!("{}: {e}", c.display()));
        }
    }
    Err("the CodeDeploy agent's source was found neither in $FERRY_AGENT_SRC nor in ../shared/third_party/aws-codedeploy-agent: run scripts/setup-agent, which says how to fetch it".into())
}

/// Fails with the fix when ruby or one of the agent's gems is missing.
pub fn check_ruby() -> Result<()> {
    let probe = "require 'aws-sdk-core'; require 'aws-sdk-s3'; require 'zip'; require 'logging'; require 'concurrent'";
    match Command::new("ruby").args(["-e", probe]).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "ruby cannot load the CodeDeploy agent's gems ({}): run scripts/setup-agent (Debian: {PACKAGES})",
            String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").trim()
        )),
        Err(e) => Err(format!("ruby is not installed ({e}): run scripts/setup-agent (Debian: {PACKAGES})")),
    }
}

/// One agent: an on-premises instance name and its host identifier.
#[derive(Debug, Clone)]
pub struct AgentInstance {
    /// The on-premises instance name (the deployment's target id).
    pub name: String,
    /// Its IAM user ARN, the host identifier the agent polls with.
    pub host: String,
    /// The agent's own directory: `root/` (deployment-root), `log/`,
    /// `conf/`, and `fs/`, which the agent sees as [`INSTANCE_ROOT`].
    pub dir: PathBuf,
    session: libc::pid_t,
}

/// What every agent of a stack is given.
pub struct Settings<'a> {
    /// The agent source tree.
    pub source: &'a Path,
    /// `https://127.0.0.1:PORT` of the emulator's command service.
    pub command_endpoint: &'a str,
    /// moto's S3 endpoint.
    pub s3_endpoint: &'a str,
    /// The stack's CA certificate.
    pub ca_cert: &'a Path,
    /// Region of the on-premises config.
    pub region: &'a str,
    /// The `codedeploy-agent` user's access key id and secret.
    pub keys: (&'a str, &'a str),
}

/// The running agents; dropping it kills them all.
#[derive(Default)]
pub struct Fleet {
    /// The agents, in instance order.
    pub agents: Vec<AgentInstance>,
}

/// The host identifier of instance `name` (an IAM user ARN, as an
/// on-premises instance is registered with).
pub fn host_identifier(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:user/codedeploy-agent/{name}")
}

impl Fleet {
    /// Starts one agent per `(name, host)` under `dir/<name>`.
    pub fn start(dir: &Path, instances: &[(String, String)], s: &Settings<'_>) -> Result<Fleet> {
        let lib = dir.join("rubylib");
        std::fs::create_dir_all(&lib).map_err(|e| format!("cannot create {}: {e}", lib.display()))?;
        std::fs::write(lib.join("gli.rb"), GLI_STUB).map_err(|e| format!("cannot write gli.rb: {e}"))?;
        let mut fleet = Fleet::default();
        for (name, host) in instances {
            let agent = start_one(&dir.join(name), &lib, name, host, s)?;
            fleet.agents.push(agent);
        }
        Ok(fleet)
    }

    /// Waits until every agent has polled, as `has_polled` tells; on a
    /// deadline fails with the tail of the agent's log.
    pub fn wait_polling(&self, has_polled: impl Fn(&str) -> bool) -> Result<()> {
        // Ruby and the SDK load in a second or two; a minute means it failed.
        let deadline = Instant::now() + Duration::from_secs(90);
        for agent in &self.agents {
            while !has_polled(&agent.host) {
                if Instant::now() > deadline {
                    return Err(format!(
                        "the CodeDeploy agent of {} never polled the command service; its log ({}):\n{}",
                        agent.name,
                        agent.log_path().display(),
                        agent.log_tail()
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }
}

impl AgentInstance {
    /// Where a path under [`INSTANCE_ROOT`] of this instance really is.
    pub fn instance_path(&self, path: &str) -> PathBuf {
        let rel = path.strip_prefix(INSTANCE_ROOT).unwrap_or(path).trim_start_matches('/');
        self.dir.join("fs").join(rel)
    }

    /// The agent's own log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log/codedeploy-agent.log")
    }

    /// The ids of every process of this agent's session now: its watchdog
    /// shell, the agent's master and child, and any hook script running.
    pub fn processes(&self) -> Vec<i32> {
        session_members(self.session)
    }

    /// The last lines of the agent's log and of its launcher's output.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for p in [self.log_path(), self.dir.join("launcher.log")] {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {}\n{}\n", p.display(), lines[lines.len().saturating_sub(30)..].join("\n")));
        }
        out
    }
}

fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn start_one(dir: &Path, lib: &Path, name: &str, host: &str, s: &Settings<'_>) -> Result<AgentInstance> {
    for sub in ["conf", "root", "log", "pid", "home", "fs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
    }
    let onprem = dir.join("conf/codedeploy.onpremises.yml");
    let write = |p: &Path, text: String| std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()));
    write(
        &onprem,
        format!(
            "---\nregion: {}\niam_user_arn: {}\naws_access_key_id: {}\naws_secret_access_key: {}\n",
            yaml_quote(s.region),
            yaml_quote(host),
            yaml_quote(s.keys.0),
            yaml_quote(s.keys.1)
        ),
    )?;
    let config = dir.join("conf/codedeployagent.yml");
    let path = |sub: &str| yaml_quote(&dir.join(sub).display().to_string());
    write(
        &config,
        format!(
            "---\n:log_aws_wire: false\n:log_dir: {}\n:pid_dir: {}\n:program_name: codedeploy-agent\n:root_dir: {}\n:verbose: true\n\
             :wait_between_runs: 0\n:proxy_uri:\n:max_revisions: 5\n:kill_agent_max_wait_time_seconds: 5\n\
             :on_premises_config_file: {}\n:deploy_control_endpoint: {}\n:s3_endpoint_override: {}\n",
            path("log"),
            path("pid"),
            path("root"),
            yaml_quote(&onprem.display().to_string()),
            yaml_quote(s.command_endpoint),
            yaml_quote(s.s3_endpoint),
        ),
    )?;
    let ruby_path = [
        lib.to_path_buf(),
        s.source.join("lib"),
        s.source.join("vendor/gems/process_manager-0.0.13/lib"),
        s.source.join("vendor/gems/simple_pid-0.2.1/lib"),
        s.source.join("vendor/gems/codedeploy-commands-1.0.0/lib"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    let launcher_log = std::fs::File::create(dir.join("launcher.log")).map_err(|e| format!("launcher.log: {e}"))?;
    let launcher_err = launcher_log.try_clone().map_err(|e| format!("launcher.log: {e}"))?;
    std::fs::create_dir_all(INSTANCE_ROOT).map_err(|e| format!("cannot create {INSTANCE_ROOT}: {e}"))?;
    // In its own mount namespace, the shell binds the agent's fs/ over
    // INSTANCE_ROOT, starts the agent (whose launcher forks the daemon and
    // exits), then stays as a watchdog: when the test process is gone it
    // kills its process group, where the agent's master and child live.
    let script = format!(
        "mount --bind \"$2\" {INSTANCE_ROOT} || {{ echo 'cannot bind-mount the instance root: the real-agent stack needs root (CAP_SYS_ADMIN) for a mount namespace per agent' >&2; exit 1; }}; \
         ruby {} --config_file \"$1\" start; while kill -0 {} 2>/dev/null; do sleep 1; done; kill -KILL 0",
        s.source.join("lib/codedeploy-agent.rb").display(),
        std::process::id()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script, "agent"])
        .arg(&config)
        .arg(dir.join("fs"))
        // As systemd starts it: the agent never changes directory, so this
        // is where every hook script runs.
        .current_dir("/")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
        .env("HOME", dir.join("home"))
        .env("LANG", "C.UTF-8")
        .env("RUBYLIB", ruby_path)
        .env("SSL_CERT_FILE", s.ca_cert)
        .env("AWS_SSL_CA_BUNDLE", s.ca_cert)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(launcher_log)
        .stderr(launcher_err);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start the CodeDeploy agent for {name}: {e}"))?;
    let session = child.id() as libc::pid_t;
    // The shell lives on as the watchdog; reaped by the kernel's init after
    // the fleet kills it (the Child handle is not waited on).
    std::mem::forget(child);
    Ok(AgentInstance { name: name.to_string(), host: host.to_string(), dir: dir.to_path_buf(), session })
}

/// Process ids whose session is `sid`.
fn session_members(sid: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the parenthesised command: state ppid pgrp session.
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            after.split_whitespace().nth(3).and_then(|s| s.parse::<libc::pid_t>().ok()) == Some(sid)
        })
        .collect()
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for agent in &self.agents {
            // The session leader's process group holds the agent's master and
            // child; hook scripts have groups of their own in the same session.
            // SAFETY: plain syscall on this agent's own process group.
            unsafe {
                libc::kill(-agent.session, libc::SIGKILL);
            }
            // Twice: a process forking while the first sweep runs is caught by the second.
            for _ in 0..2 {
                for pid in session_members(agent.session) {
                    // SAFETY: plain syscall on a pid of this agent's own session.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            // SAFETY: reaps the watchdog shell, our child, killed just above.
            unsafe {
                libc::waitpid(agent.session, std::ptr::null_mut(), 0);
            }
        }
    }
}
