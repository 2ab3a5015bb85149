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
//! fifos = ["out.zip"]                # named pipes (never a real device node)
//! raw_names = ["app/site/caf%E9"]    # files whose names are these bytes (%XX decoded)
//! [bytes]
//! "ferry.toml" = "5b656e76..."       # binary files, in hex
//! [generated]
//! "app/appspec.yml" = { prefix = "x: ", repeat = "[", times = 100000 }
//! [[archives]]                       # a ready bundle, built for the case
//! path = "app.tar"                   # .zip, .tar or .tgz
//! truncate = 0.5                     # keep only this fraction of its bytes
//! base = true                        # start with the base appspec and site/index.html
//! entries = [{ name = "site/passwd", kind = "symlink", target = "/etc/passwd" }]
//! #   kind: file (data, mode), dir, symlink (target), hardlink (target), fifo, char;
//! #   name_hex: a name of raw bytes instead of `name`
//! [expect]
//! exit = 1
//! class = "config"     # the JSON error's class; "cli" = refused by the argument parser
//! message = "..."      # substring of the error message (or of stderr for "cli" / exit 0)
//! aws = false          # whether ferry may reach AWS (default false)
//! unchanged = ["out.zip"]            # still the same kind of file afterwards (a FIFO stays a FIFO)
//! absent = ["-"]                     # must not exist afterwards
//! not_in_output = ["secret"]         # must appear in neither stdout nor stderr
//! stdout_starts_with = "PK"          # what stdout must begin with
//! ```

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{FERRY, Run, Stack, StackOptions, command_with_endpoint};
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
    #[serde(default)]
    fifos: Vec<String>,
    #[serde(default)]
    raw_names: Vec<String>,
    #[serde(default)]
    bytes: BTreeMap<String, String>,
    #[serde(default)]
    generated: BTreeMap<String, Generated>,
    #[serde(default)]
    archives: Vec<Archive>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Generated {
    #[serde(default)]
    prefix: String,
    repeat: String,
    times: usize,
    #[serde(default)]
    suffix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Archive {
    path: String,
    #[serde(default = "yes")]
    base: bool,
    #[serde(default)]
    truncate: Option<f64>,
    #[serde(default)]
    entries: Vec<ArchiveEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveEntry {
    #[serde(default)]
    name: String,
    #[serde(default)]
    name_hex: Option<String>,
    #[serde(default = "file_kind")]
    kind: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    mode: Option<u32>,
}

fn file_kind() -> String {
    "file".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    exit: i32,
    class: Option<String>,
    message: String,
    #[serde(default)]
    aws: bool,
    #[serde(default)]
    unchanged: Vec<String>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    not_in_output: Vec<String>,
    #[serde(default)]
    stdout_starts_with: Option<String>,
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
    for (path, hex_text) in &case.bytes {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, hex::decode(hex_text.split_whitespace().collect::<String>()).unwrap()).unwrap();
    }
    for (path, g) in &case.generated {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{}{}{}", g.prefix, g.repeat.repeat(g.times), g.suffix)).unwrap();
    }
    for name in &case.raw_names {
        use std::os::unix::ffi::OsStrExt;
        let p = dir.join(std::ffi::OsStr::from_bytes(&percent_decode(name)));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x\n").unwrap();
    }
    for fifo in &case.fifos {
        let p = dir.join(fifo);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        assert!(Command::new("mkfifo").arg(&p).status().unwrap().success(), "mkfifo {}", p.display());
    }
    for archive in &case.archives {
        build_archive(dir, archive);
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Writes a case's ready bundle: zip, tar or tgz by the path's extension,
/// with entries of every kind a hostile archive may hold.
fn build_archive(dir: &Path, a: &Archive) {
    use std::io::Write;
    let path = dir.join(&a.path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut entries: Vec<ArchiveEntry> = Vec::new();
    if a.base {
        for (name, data) in [("appspec.yml", BASE_APPSPEC), ("site/index.html", "<h1>hello</h1>\n")] {
            entries.push(ArchiveEntry {
                name: name.into(),
                name_hex: None,
                kind: "file".into(),
                data: data.into(),
                target: String::new(),
                mode: None,
            });
        }
    }
    let own = a.entries.iter().map(|e| ArchiveEntry {
        name: e.name.clone(),
        name_hex: e.name_hex.clone(),
        kind: e.kind.clone(),
        data: e.data.clone(),
        target: e.target.clone(),
        mode: e.mode,
    });
    entries.extend(own);
    let name_bytes =
        |e: &ArchiveEntry| e.name_hex.as_deref().map_or_else(|| e.name.as_bytes().to_vec(), |h| hex::decode(h).unwrap());
    if a.path.ends_with(".zip") {
        // The zip writer refuses a name twice (its check, not the format's):
        // a repeat is written under an alias of the same length and patched
        // to the real name once the archive is done.
        let mut aliases: Vec<(String, String)> = Vec::new();
        let mut fifos: Vec<String> = Vec::new();
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for e in &entries {
            let name = String::from_utf8(name_bytes(e)).unwrap();
            match e.kind.as_str() {
                "file" => {
                    let opts = opts.unix_permissions(e.mode.unwrap_or(0o644));
                    let repeat = entries.iter().take_while(|o| !std::ptr::eq(*o, e)).any(|o| o.name == e.name);
                    let written = if repeat {
                        let alias = format!("{}~", &name[..name.len() - 1]);
                        aliases.push((alias.clone(), name.clone()));
                        alias
                    } else {
                        name.clone()
                    };
                    zip.start_file(written.as_str(), opts).unwrap();
                    zip.write_all(e.data.as_bytes()).unwrap();
                }
                "dir" => zip.add_directory(name.as_str(), opts).unwrap(),
                "symlink" => zip.add_symlink(name.as_str(), e.target.as_str(), opts).unwrap(),
                "fifo" => {
                    // The writer keeps only permission bits; the FIFO type
                    // is patched into the central directory below.
                    zip.start_file(name.as_str(), opts).unwrap();
                    fifos.push(name.clone());
                }
                other => panic!("{}: a zip cannot hold a {other}", a.path),
            }
        }
        zip.finish().unwrap();
        if !fifos.is_empty() {
            let mut bytes = std::fs::read(&path).unwrap();
            for i in 0..bytes.len().saturating_sub(46) {
                if bytes[i..i + 4] != [0x50, 0x4b, 0x01, 0x02] {
                    continue;
                }
                let n = u16::from_le_bytes([bytes[i + 28], bytes[i + 29]]) as usize;
                if fifos.iter().any(|f| f.as_bytes() == &bytes[i + 46..i + 46 + n]) {
                    bytes[i + 5] = 3; // made by Unix, so the mode is read
                    bytes[i + 38..i + 42].copy_from_slice(&((0o010644u32) << 16).to_le_bytes());
                }
            }
            std::fs::write(&path, bytes).unwrap();
        }
        if !aliases.is_empty() {
            let mut bytes = std::fs::read(&path).unwrap();
            for (alias, name) in &aliases {
                let (alias, name) = (alias.as_bytes(), name.as_bytes());
                let mut i = 0;
                while i + alias.len() <= bytes.len() {
                    if &bytes[i..i + alias.len()] == alias {
                        bytes[i..i + alias.len()].copy_from_slice(name);
                    }
                    i += 1;
                }
            }
            std::fs::write(&path, bytes).unwrap();
        }
    } else {
        let file = std::fs::File::create(&path).unwrap();
        let out: Box<dyn Write> = if a.path.ends_with(".tgz") {
            Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
        } else {
            Box::new(file)
        };
        let mut tar = tar::Builder::new(out);
        for e in &entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(e.mode.unwrap_or(0o644));
            h.set_mtime(0);
            h.set_size(0);
            let name = name_bytes(e);
            let kind = match e.kind.as_str() {
                "file" => tar::EntryType::Regular,
                "dir" => tar::EntryType::Directory,
                "symlink" => tar::EntryType::Symlink,
                "hardlink" => tar::EntryType::Link,
                "fifo" => tar::EntryType::Fifo,
                "char" => tar::EntryType::Char,
                other => panic!("unknown entry kind {other}"),
            };
            h.set_entry_type(kind);
            // Raw header fields: the builder's own path checks refuse what a
            // hostile archive holds (`..`, absolute link targets, bytes).
            h.as_old_mut().name[..name.len()].copy_from_slice(&name);
            if !e.target.is_empty() {
                h.as_old_mut().linkname[..e.target.len()].copy_from_slice(e.target.as_bytes());
            }
            if kind == tar::EntryType::Regular {
                h.set_size(e.data.len() as u64);
            }
            h.set_cksum();
            tar.append(&h, e.data.as_bytes()).unwrap();
        }
        tar.into_inner().unwrap().flush().unwrap();
        // GzEncoder finishes on drop.
    }
    if let Some(fraction) = a.truncate {
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len((len as f64 * fraction) as u64).unwrap();
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

/// The class and message ferry reported: its JSON error event (on stdout,
/// or on stderr for commands whose stdout is their product), or for
/// argument-parser refusals (no event) class "cli" and stderr.
fn reported(out: &Run) -> (Option<String>, String) {
    let event = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "error");
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
    let kinds_before: Vec<Option<std::fs::FileType>> =
        case.expect.unchanged.iter().map(|p| std::fs::symlink_metadata(dir.path().join(p)).ok().map(|m| m.file_type())).collect();
    let out = run_bounded(&mut cmd);
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
    for (path, before) in case.expect.unchanged.iter().zip(&kinds_before) {
        let after = std::fs::symlink_metadata(dir.path().join(path)).ok().map(|m| m.file_type());
        if after != *before {
            problems.push(format!("{path} was replaced: {before:?} before, {after:?} after"));
        }
    }
    for path in &case.expect.absent {
        if std::fs::symlink_metadata(dir.path().join(path)).is_ok() {
            problems.push(format!("{path} exists afterwards"));
        }
    }
    for text in &case.expect.not_in_output {
        if out.all().contains(text.as_str()) {
            problems.push(format!("{text:?} appears in the output"));
        }
    }
    if let Some(prefix) = &case.expect.stdout_starts_with
        && !out.stdout.starts_with(prefix.as_str())
    {
        problems.push(format!("stdout does not start with {prefix:?}"));
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

/// [`run`], but a case that hangs (a FIFO opened, a parser stuck) is
/// killed after a minute and fails, instead of hanging the suite.
fn run_bounded(cmd: &mut Command) -> Run {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("ferry runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            // Our own unreaped child: never a recycled PID.
            child.kill().unwrap();
            break child.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Run { code: status.code().unwrap_or(-1), stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

#[test]
fn every_bad_input_in_the_corpus_gets_its_error_class_and_exit_code_without_calling_aws() {
    let cases = load_corpus();
    // Issue 18 asked for at least 100.
    assert!(cases.len() >= 100, "the corpus has only {} cases", cases.len());
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

/// Issue 18 item 14: `ferry completions fish | head -c1` (and `> /dev/full`)
/// panicked in clap_complete's writer (exit 101); `man` and `policy` exit 1
/// with "cannot write to stdout". stdout here is a pipe whose reading end
/// is closed before ferry writes a byte (never a real device node).
#[test]
fn documents_written_into_a_closed_pipe_are_an_error_not_a_panic() {
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), BASE_CONFIG).unwrap();
    for args in [&["completions", "fish"][..], &["completions", "bash"], &["man"], &["policy", "deploy", "--env", "production"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = wire.command(dir.path()).args(args).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot write to stdout"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(wire.hits(), 0);
}

/// Issue 18 item 1: bundles were always 0600 (tempfile's mode, renamed into
/// place); a bundle is a build artefact and gets the umask's mode, as `>`
/// in a shell would give it.
#[test]
fn a_bundle_gets_the_mode_the_umask_gives_not_0600() {
    use std::os::unix::fs::PermissionsExt;
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path(), &Case { setup: vec!["app".into()], ..minimal_case() });
    for (umask, mode) in [("022", 0o644), ("027", 0o640), ("077", 0o600)] {
        let script = format!("umask {umask}; exec '{FERRY}' bundle app --out app-{umask}.zip");
        let mut sh = Command::new("sh");
        sh.env_clear();
        for (k, v) in wire.command(dir.path()).get_envs() {
            if let Some(v) = v {
                sh.env(k, v);
            }
        }
        let out = run_bounded(sh.arg("-c").arg(&script).current_dir(dir.path()));
        assert_eq!(out.code, 0, "{}", out.all());
        let got = std::fs::metadata(dir.path().join(format!("app-{umask}.zip"))).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "umask {umask}: mode {got:o}");
    }
}

/// Issue 18 item 6: in Jenkins (JENKINS_URL set) with a read-only working
/// directory the deployment was created, and then ferry exited 1 for want
/// of a receipt. The receipt's directory is now checked before any AWS
/// call. root writes anywhere, so as root ferry runs as `nobody`.
#[test]
fn a_read_only_workspace_is_refused_before_any_aws_call() {
    use std::os::unix::fs::PermissionsExt;
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    prepare(dir.path(), &minimal_case());
    let work = dir.path();
    for p in [work.join("app"), work.join("app/site")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for p in [work.join("app/appspec.yml"), work.join("app/site/index.html"), work.join("ferry.toml")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o555)).unwrap();
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", FERRY]);
        c
    } else {
        Command::new(FERRY)
    };
    cmd.env_clear();
    for (k, v) in wire.command(work).get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    // A private TMPDIR the bundle can go to: only the workspace is read-only.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    cmd.env("TMPDIR", tmp.path()).env("JENKINS_URL", "https://jenkins.example.com/").current_dir(work);
    let out = run_bounded(cmd.args(["--output", "json", "release", "app", "--env", "production"]));
    std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (class, message) = reported(&out);
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(class.as_deref(), Some("receipt"), "{}", out.all());
    assert!(message.contains("ferry-receipt.json") && message.contains("no file can be created"), "{message}");
    assert_eq!(wire.hits(), 0, "refused before any AWS call");
}

fn minimal_case() -> Case {
    toml::from_str("description = \"\"\nargs = []\n[expect]\nexit = 0\nmessage = \"\"\n").unwrap()
}
