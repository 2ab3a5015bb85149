//! Helpers shared by ferry's integration tests: running the real binary,
//! making application trees, and checking output for leaked secrets.

#![allow(dead_code, unused_imports)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub mod proxy;
pub mod pty;
pub mod traffic;

#[allow(unused_imports)] // each test binary uses a different subset
pub use ferry_test_stack::{Stack, StackOptions};

/// The ferry binary under test.
pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// What a ferry run left behind.
#[derive(Debug)]
pub struct Run {
    /// Exit status code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for "the message appears somewhere" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The events of a `--output json` run, in the order printed.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Those events whose `event` is `kind`.
    pub fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.events().into_iter().filter(|e| e["event"] == kind).collect()
    }
}

/// Runs `cmd` to completion and captures its output.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("ferry runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Fails the test if a secret shows up in `run`'s stdout or stderr: any the
/// stack handed out, and any moto issued since (the sessions ferry assumed).
pub fn assert_no_secrets(stack: &Stack, run: &Run) {
    assert_text_has_no_secrets(stack, &run.all());
}

/// Checks `runs` for the stack's long-term secrets. The full scan
/// ([`assert_no_secrets`], which adds the session secrets moto issued) reads
/// moto's /moto-api/data.json, and moto 5.2.5 answers that with a 500 once a
/// multipart upload has created parts (a part's `status` looks up a bucket it
/// has no name for); multipart tests fall back to this narrower check.
pub fn assert_no_stack_secrets(stack: &Stack, runs: &[&Run]) {
    for run in runs {
        for secret in stack.secrets() {
            assert!(!run.all().contains(&secret), "a secret leaked into ferry's output:\n{}", run.all());
        }
    }
}

/// The ids of the deployments the emulator has for the stack's group.
pub fn deployment_ids(stack: &Stack) -> Vec<String> {
    stack.block_on(async {
        let out = stack
            .codedeploy()
            .list_deployments()
            .application_name(stack.application())
            .deployment_group_name(stack.deployment_group())
            .send()
            .await
            .unwrap();
        out.deployments().to_vec()
    })
}

/// [`assert_no_secrets`] for text other than a whole run, e.g. only the
/// stderr of `ferry env`, whose stdout is the secrets by design.
pub fn assert_text_has_no_secrets(stack: &Stack, text: &str) {
    let mut secrets = stack.secrets();
    secrets.extend(moto_secrets(stack));
    assert!(secrets.len() > stack.secrets().len(), "moto reported no secrets; the scan would prove nothing");
    for secret in secrets {
        assert!(!text.contains(&secret), "a secret leaked into ferry's output:\n{text}");
    }
}

/// One role session moto issued (`/moto-api/data.json`, sts.AssumedRole).
#[derive(Debug, Clone)]
pub struct MotoSession {
    /// RoleSessionName.
    pub session_name: String,
    /// The role.
    pub role_arn: String,
    /// The session's access key id.
    pub access_key_id: String,
    /// The inline session policy, if one was sent.
    pub policy: Option<String>,
}

/// Every AssumeRole moto answered, read from the server's own records, so a
/// test can count calls ferry made without trusting ferry's output.
pub fn moto_sessions(stack: &Stack) -> Vec<MotoSession> {
    let data = moto_data(stack);
    let sessions = data["sts"]["AssumedRole"].as_array().cloned().unwrap_or_default();
    sessions
        .iter()
        .map(|s| MotoSession {
            session_name: s["session_name"].as_str().unwrap_or_default().to_string(),
            role_arn: s["role_arn"].as_str().unwrap_or_default().to_string(),
            access_key_id: s["access_key_id"].as_str().unwrap_or_default().to_string(),
            policy: s["policy"].as_str().map(str::to_string),
        })
        .collect()
}

/// Every secret key and session token moto holds (users' keys and every
/// role session, including those ferry assumed).
pub fn moto_secrets(stack: &Stack) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v.as_str()) {
                        ("secret_access_key" | "session_token", Some(s)) if s.len() >= 16 => out.push(s.to_string()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&moto_data(stack), &mut out);
    out.sort();
    out.dedup();
    out
}

fn moto_data(stack: &Stack) -> serde_json::Value {
    let body = http(stack.moto_endpoint(), "GET", "/moto-api/data.json", "");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("moto data.json is not JSON ({e}): {}", &body[..body.len().min(200)]))
}

/// Lets the next `n` requests to moto skip authentication. The stack's
/// identities have no IAM rights (as in production), and tests that load
/// generated policies into IAM need an administrator; moto's own switch is
/// the only one the stack exposes.
pub fn allow_unauthenticated_calls(stack: &Stack, n: u32) {
    http(stack.moto_endpoint(), "POST", "/moto-api/reset-auth", &n.to_string());
}

/// A plain HTTP/1.1 request to a loopback server; returns the body.
pub fn http(endpoint: &str, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("moto is listening");
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return rest.to_string();
    }
    let mut out = String::new();
    let mut rest = rest;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// Writes a small CodeDeploy application: appspec.yml with files and hooks,
/// and executable hook scripts. `validate` is the ValidateService script body.
pub fn app_tree(dir: &Path, validate: &str) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("scripts")).unwrap();
    std::fs::create_dir_all(app.join("site")).unwrap();
    std::fs::write(app.join("site/index.html"), "<h1>hello from ferry</h1>\n").unwrap();
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www/hello\nhooks:\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 30\n",
    )
    .unwrap();
    let script = app.join("scripts/validate.sh");
    std::fs::write(&script, format!("#!/bin/bash\n{validate}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    app
}

/// `len` bytes that deflate cannot shrink (xorshift), the same every run.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A loopback port that accepts TCP connections and records whether any
/// arrived: pointed at by every AWS endpoint variable, it proves that ferry
/// made no AWS call.
pub struct Tripwire {
    listener: TcpListener,
}

impl Tripwire {
    /// Binds a fresh port.
    pub fn new() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Tripwire { listener }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.listener.local_addr().unwrap())
    }

    /// A ferry command whose every AWS endpoint is this tripwire, with fake
    /// keys, and a clean environment.
    pub fn command(&self, cwd: &Path) -> Command {
        command_with_endpoint(&self.endpoint(), cwd)
    }

    /// Whether anything connected. Call it after ferry exited: a connection
    /// is queued at the handshake, before `connect` returns to ferry, so no
    /// wait is needed for it to be seen.
    pub fn tripped(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// A loopback TCP relay to `upstream` that keeps a copy of every request
/// byte, to show what ferry sent when the server does not record it (moto
/// ignores session tags and SourceIdentity). Bytes pass unchanged, so SigV4
/// signatures (which cover the Host header) still verify.
pub struct TeeProxy {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl TeeProxy {
    /// Starts relaying to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> TeeProxy {
        use std::io::{Read, Write};
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tee = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(&upstream) else { continue };
                let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_in, mut c_out) = (server, client);
                let tee = tee.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        tee.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                });
            }
        });
        TeeProxy { addr, seen }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request byte so far, URL-decoded (STS requests are forms).
    pub fn requests(&self) -> String {
        let raw = String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned();
        url_decode(&raw)
    }
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
/// A ferry command in `cwd` with a clean environment, fake keys, and every
/// AWS endpoint at `endpoint`.
pub fn command_with_endpoint(endpoint: &str, cwd: &Path) -> Command {
    let mut cmd = Command::new(FERRY);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .current_dir(cwd);
    cmd
}

/// ferry as a laptop runs it against `stack`: no key in the environment,
/// `home` as HOME with its ~/.aws/config and ~/.aws/credentials, user
/// `alice` (the session is `ferry-alice`).
pub fn laptop_command(stack: &Stack, home: &Path) -> Command {
    let mut cmd = stack.ferry_command(FERRY);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join(".aws/config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"))
        .env("USER", "alice");
    cmd
}

/// A complete `[env.production]` for tests that never reach AWS.
pub const OFFLINE_CONFIG: &str = r#"[env.production]
role_arn = "arn:aws:iam::222222222222:role/CA_ServiceDeployer"
region = "us-east-1"
bucket = "ferry-prod-releases"
application = "web"
deployment_group = "web-prod"
"#;

/// Polls `done` until it holds. The limit only keeps a broken run from
/// hanging CI (nextest's slow-timeout is the other guard); no test relies on
/// anything happening within it.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Everything left on `pipe`, read on its own thread so a chatty ferry never
/// blocks on a full pipe while the test waits for something else.
pub fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Reads stderr lines until one contains `needle`; the lines so far.
pub fn read_until(stderr: &mut impl std::io::BufRead, needle: &str) -> String {
    let mut log = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ferry ended before {needle:?}:\n{log}");
        log.push_str(&line);
        if line.contains(needle) {
            return log;
        }
    }
}

/// `cmd` run with stderr on a 40×160 pseudo-terminal ([`pty::on_a_terminal`]),
/// its output replayed into a VT100 screen: every screen seen, and the exit
/// code. `cmd` runs with its own environment only, as
/// [`Stack::ferry_command`] makes it.
pub fn on_a_terminal(cmd: &Command) -> (Vec<String>, i32) {
    let mut own = Command::new(cmd.get_program());
    own.args(cmd.get_args()).env_clear().envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
    if let Some(dir) = cmd.get_current_dir() {
        own.current_dir(dir);
    }
    let shown = pty::on_a_terminal(own);
    (shown.screens, shown.code)
}

/// The deploy policy scoped to the `web/web-prod` group alone: no "*"
/// statement (so no ListDeploymentGroups, ListDeploymentTargets or
/// BatchGetDeploymentTargets), as a team that grants per group writes it.
pub fn group_scoped_deployer_policy() -> serde_json::Value {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::ferry-prod-releases", "arn:aws:s3:::ferry-prod-releases/*"]},
            {"Effect": "Allow", "Action": ["codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:GetDeploymentGroup",
                "codedeploy:ListDeployments", "codedeploy:BatchGetDeployments"],
             "Resource": "arn:aws:codedeploy:us-east-1:222222222222:deploymentgroup:web/web-prod"},
            {"Effect": "Allow", "Action": ["codedeploy:GetApplication", "codedeploy:RegisterApplicationRevision", "codedeploy:GetApplicationRevision"],
             "Resource": "arn:aws:codedeploy:us-east-1:222222222222:application:web"},
            {"Effect": "Allow", "Action": "codedeploy:GetDeploymentConfig", "Resource": "arn:aws:codedeploy:us-east-1:222222222222:deploymentconfig:*"}
    ]})
}
