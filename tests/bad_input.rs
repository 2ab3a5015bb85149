//! The bad-input corpus: every `tests/bad-input/*.toml` is one case (a
//! command line, environment variables and files), run against the real
//! binary. Each must end with its expected error class and exit code, and a
//! case rejected before AWS was needed must not have opened a connection to
//! the tripwire that stands in for every AWS endpoint.
//!
//! A case file:
//!
//! ```toml
//! description = "what is wrong"
//! args = ["release", "app", "--env", "production"]
//! setup = ["app", "config"]          # default: both (see BASE_*)
//! stack = false                      # true: run against moto + emulator
//! json = true                        # pass --output json (default true)
//! remove = ["app/appspec.yml"]
//! [env]
//! BUILD_TAG = "..."
//! [files]
//! "app/appspec.yml" = "version: 1\n"
//! [symlinks]
//! "app/site/passwd" = "/etc/passwd"
//! [expect]
//! exit = 1
//! class = "config"     # the JSON error's class; "cli" = refused by the argument parser
//! message = "..."      # substring of the error message (or of stderr for "cli" / exit 0)
//! aws = false          # whether ferry may reach AWS (default false)
//! ```

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{FERRY, Run, Stack, StackOptions, command_with_endpoint, run};
use serde::Deserialize;

const BASE_CONFIG: &str = r#"[env.production]
role_arn = "arn:aws:iam::222222222222:role/CA_ServiceDeployer"
region = "us-east-1"
bucket = "ferry-prod-releases"
prefix = "releases"
application = "web"
deployment_group = "web-prod"
"#;

const BASE_APPSPEC: &str = "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www/hello\n";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    args: Vec<String>,
    #[serde(default = "default_setup")]
    setup: Vec<String>,
    #[serde(default)]
    stack: bool,
    #[serde(default = "yes")]
    json: bool,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    symlinks: BTreeMap<String, String>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    exit: i32,
    class: Option<String>,
    message: String,
    #[serde(default)]
    aws: bool,
}

fn default_setup() -> Vec<String> {
    vec!["app".into(), "config".into()]
}

fn yes() -> bool {
    true
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input")
}

fn load_corpus() -> Vec<(String, Case)> {
    let mut cases: Vec<(String, Case)> = std::fs::read_dir(corpus_dir())
        .expect("tests/bad-input exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let case = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: not a valid case file: {e}"));
            (name, case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

/// Lays out the case's working directory.
fn prepare(dir: &Path, case: &Case) {
    if case.setup.iter().any(|s| s == "app") {
        std::fs::create_dir_all(dir.join("app/site")).unwrap();
        std::fs::write(dir.join("app/appspec.yml"), BASE_APPSPEC).unwrap();
        std::fs::write(dir.join("app/site/index.html"), "<h1>hello</h1>\n").unwrap();
    }
    if case.setup.iter().any(|s| s == "config") {
        std::fs::write(dir.join("ferry.toml"), BASE_CONFIG).unwrap();
    }
    for path in &case.remove {
        let p = dir.join(path);
        if p.is_dir() { std::fs::remove_dir_all(p) } else { std::fs::remove_file(p) }.unwrap();
    }
    for (path, text) in &case.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    for (link, target) in &case.symlinks {
        let p = dir.join(link);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }
}

/// Stands in for every AWS endpoint: counts connections and closes them at
/// once, so a case that wrongly reaches AWS fails fast instead of hanging.
struct Tripwire {
    addr: std::net::SocketAddr,
    endpoint: String,
    hits: Arc<AtomicUsize>,
    /// The local port of the connection [`Tripwire::hits`] makes itself.
    sentinel: Arc<std::sync::Mutex<Option<u16>>>,
    sentinel_seen: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Tripwire {
    fn new() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = format!("http://{addr}");
        let hits = Arc::new(AtomicUsize::new(0));
        let sentinel: Arc<std::sync::Mutex<Option<u16>>> = Arc::default();
        let sentinel_seen: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)> = Arc::default();
        let (counter, marker, seen) = (hits.clone(), sentinel.clone(), sentinel_seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let port = conn.peer_addr().map(|a| a.port()).ok();
                if port.is_some() && *marker.lock().unwrap() == port {
                    *seen.0.lock().unwrap() = true;
                    seen.1.notify_all();
                } else {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                drop(conn);
            }
        });
        Tripwire { addr, endpoint, hits, sentinel, sentinel_seen }
    }

    fn command(&self, cwd: &Path) -> Command {
        let mut cmd = command_with_endpoint(&self.endpoint, cwd);
        // No developer profile may leak in.
        cmd.env("AWS_CONFIG_FILE", cwd.join("no-aws-config")).env("AWS_SHARED_CREDENTIALS_FILE", cwd.join("no-aws-credentials"));
        cmd
    }

    /// Connections so far, all of them: every connection ferry opened was
    /// established before it exited, so it sits in the accept queue ahead of
    /// a sentinel connection made now; once the sentinel is accepted, the
    /// queue (first in, first out) has been counted.
    fn hits(&self) -> usize {
        {
            // Held while connecting, so the acceptor cannot look at the
            // sentinel before its port is known.
            let mut marker = self.sentinel.lock().unwrap();
            let probe = std::net::TcpStream::connect(self.addr).unwrap();
            *marker = Some(probe.local_addr().unwrap().port());
        }
        let (seen, cv) = &*self.sentinel_seen;
        let (seen, timeout) = cv.wait_timeout_while(seen.lock().unwrap(), std::time::Duration::from_secs(10), |s| !*s).unwrap();
        assert!(*seen && !timeout.timed_out(), "the tripwire's acceptor never reached the sentinel");
        self.hits.load(Ordering::SeqCst)
    }
}

/// The class and message ferry reported: its JSON error event, or for
/// argument-parser refusals (no event) class "cli" and stderr.
fn reported(out: &Run) -> (Option<String>, String) {
    let event =
        out.stdout.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(|v| v["event"] == "error");
    match event {
        Some(e) => (e["class"].as_str().map(String::from), e["message"].as_str().unwrap_or_default().to_string()),
        None if out.code == 0 => (None, out.stderr.clone()),
        None => (Some("cli".into()), out.stderr.clone()),
    }
}

/// Runs one case; returns a description of what went wrong, if anything.
fn check(name: &str, case: &Case) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path(), case);
    let wire = Tripwire::new();
    let stack = case.stack.then(|| Stack::start_with(StackOptions::default()));
    let mut cmd = match &stack {
        Some(stack) => {
            if case.setup.iter().any(|s| s == "config") && !case.files.contains_key("ferry.toml") {
                stack.write_config(dir.path(), "production");
            }
            let mut cmd = stack.ferry_command(FERRY);
            cmd.current_dir(dir.path());
            cmd
        }
        None => wire.command(dir.path()),
    };
    if case.json {
        cmd.args(["--output", "json"]);
    }
    cmd.args(&case.args).envs(&case.env);
    let out = run(&mut cmd);
    let (class, message) = reported(&out);

    let mut problems = Vec::new();
    if out.code != case.expect.exit {
        problems.push(format!("exit {} (expected {})", out.code, case.expect.exit));
    }
    if class != case.expect.class {
        problems.push(format!("class {class:?} (expected {:?})", case.expect.class));
    }
    if !message.contains(&case.expect.message) {
        problems.push(format!("message lacks {:?}", case.expect.message));
    }
    if !case.expect.aws && wire.hits() > 0 {
        problems.push(format!("{} connection(s) to AWS although the input was refused locally", wire.hits()));
    }
    if let Some(stack) = &stack {
        for secret in stack.secrets() {
            if out.all().contains(&secret) {
                problems.push("a secret leaked into the output".into());
            }
        }
    }
    (!problems.is_empty()).then(|| {
        format!("{name} ({}): {}\n--- stdout\n{}--- stderr\n{}", case.description, problems.join("; "), out.stdout, out.stderr)
    })
}

#[test]
fn every_bad_input_in_the_corpus_gets_its_error_class_and_exit_code_without_calling_aws() {
    let cases = load_corpus();
    assert!(cases.len() >= 40, "the corpus has only {} cases", cases.len());
    let failures: Vec<String> = std::thread::scope(|s| {
        // A few at a time: each case is a process, and a few start a stack.
        let chunks: Vec<_> = cases.chunks(cases.len().div_ceil(4)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| s.spawn(move || chunk.iter().filter_map(|(name, case)| check(name, case)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let local = cases.iter().filter(|(_, c)| !c.expect.aws).count();
    println!(
        "bad-input corpus: {} cases ({local} refused before any AWS call, {} reaching AWS)",
        cases.len(),
        cases.len() - local
    );
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}
