//! The fault suite: ferry between a fault-injecting proxy and moto / the
//! CodeDeploy emulator. Each test asserts what the user sees, what is (or is
//! not) left behind in S3 and CodeDeploy, and that the proxy really injected
//! the faults (its counters), so a test cannot pass by the fault not happening.
//!
//! docs/reliability.md lists each fault with the test that proves it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{FERRY, OFFLINE_CONFIG, Run, Stack, StackOptions, Tripwire, app_tree, assert_no_secrets, drain, run};
use faultproxy::{Chance, Fault, FaultProxy, Match, Rule};
use sha2::{Digest, Sha256};

/// Seed for every proxy here: a failing run replays exactly.
const SEED: u64 = 0x00fe_5517;

/// How long CodeDeploy stays unreachable in the outage test (issue 8: 30 s).
const OUTAGE: Duration = Duration::from_secs(30);

/// `ferry release <app> --env production --config <dir>/ferry.toml` on the stack.
fn release(stack: &Stack, dir: &Path, app: &Path) -> Command {
    let config = stack.write_config(dir, "production");
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(["release", app.to_str().unwrap(), "--env", "production"]).arg("--config").arg(config);
    cmd
}

/// A ready-made zip of `size` bytes or so: appspec.yml plus incompressible
/// data (stored, so the zip is as large as the data). Returns its path and SHA-256.
fn big_zip(dir: &Path, size: usize) -> (PathBuf, String) {
    let path = dir.join("big-app.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("appspec.yml", opts).unwrap();
    zip.write_all(b"version: 0.0\nos: linux\n").unwrap();
    zip.start_file("payload.bin", opts.large_file(false)).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut chunk = vec![0u8; 1 << 16];
    for _ in 0..size / chunk.len() {
        for b in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        zip.write_all(&chunk).unwrap();
    }
    zip.finish().unwrap();
    let sha = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
    (path, sha)
}

fn deployments(stack: &Stack) -> Vec<String> {
    common::deployment_ids(stack)
}

fn object_keys(stack: &Stack) -> Vec<String> {
    stack.block_on(async {
        let out = stack.s3_as_prod().list_objects_v2().bucket(stack.bucket()).send().await.unwrap();
        out.contents().iter().filter_map(|o| o.key().map(String::from)).collect()
    })
}

fn error_event(out: &Run) -> serde_json::Value {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "error")
        .unwrap_or_else(|| panic!("no error event in:\n{}", out.all()))
}

#[test]
fn s3_5xx_and_resets_during_a_large_upload_still_release_the_exact_bytes_with_no_orphaned_upload() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), SEED);
    // The first upload request is cut halfway through its body and the first
    // read is answered SlowDown, so both kinds surely happen even while the
    // upload is one PUT; after that 10% of S3 requests fail at random, which
    // multipart uploads (many requests) exercise fully.
    let uploads = || Match::Ops(vec!["PutObject", "UploadPart"]);
    proxy.set_rules(vec![
        Rule::new(uploads(), Chance::FirstN(1), Fault::Reset),
        Rule::new(Match::Ops(vec!["HeadObject"]), Chance::FirstN(1), Fault::S3Error { status: 503, code: "SlowDown" }),
        Rule::new(Match::Any, Chance::Fraction(0.05), Fault::S3Error { status: 500, code: "InternalError" }),
        Rule::new(Match::Any, Chance::Fraction(0.05), Fault::Reset),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (zip, sha) = big_zip(dir.path(), 20 << 20);

    let out = run(release(&stack, dir.path(), &zip).env("AWS_ENDPOINT_URL_S3", proxy.endpoint()));

    assert_eq!(out.code, 0, "the release survives transient S3 faults:\n{}", out.all());
    assert!(out.stdout.trim().starts_with("d-"), "{}", out.stdout);
    // 20 MiB goes multipart now; see assert_no_stack_secrets for why the
    // session secrets cannot be scanned once parts exist.
    common::assert_no_stack_secrets(&stack, &[&out]);
    let stats = proxy.stats();
    assert!(stats.fault("reset") >= 1 && stats.fault("SlowDown") >= 1, "faults were injected: {stats:?}");

    // S3 holds exactly the bundle's bytes, under its content address.
    let key = format!("releases/web/{sha}.zip");
    let stored = stack.block_on(async {
        let obj = stack.s3_as_prod().get_object().bucket(stack.bucket()).key(&key).send().await.unwrap();
        obj.body.collect().await.unwrap().into_bytes()
    });
    assert_eq!(hex::encode(Sha256::digest(&stored)), sha, "read-back bytes match the bundle");
    let orphans = stack.block_on(async {
        let out = stack.s3_as_prod().list_multipart_uploads().bucket(stack.bucket()).send().await.unwrap();
        out.uploads().len()
    });
    assert_eq!(orphans, 0, "no multipart upload is left open");
    assert_eq!(deployments(&stack).len(), 1);
}

#[test]
fn a_corrupted_upload_body_is_refused_by_the_read_back_and_nothing_is_deployed() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), SEED);
    // One byte flipped in transit. moto stores it with the checksum header
    // ferry sent (it verifies nothing), so the proxy reports the checksum of
    // the bytes moto really holds, as S3 reports what it stored. (Real S3
    // would refuse the PUT with BadDigest already; ferry's read-back is the
    // check that does not rely on the server verifying.)
    let uploads = || Match::Ops(vec!["PutObject", "UploadPart"]);
    proxy.set_rules(vec![Rule::new(uploads(), Chance::Always, Fault::CorruptBody { drop_header: None })]);
    proxy.report_stored_checksums(true);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run(release(&stack, dir.path(), &app).args(["--output", "json"]).env("AWS_ENDPOINT_URL_S3", proxy.endpoint()));

    assert_eq!(out.code, 2, "a corrupted upload is an AWS-side failure:\n{}", out.all());
    let err = error_event(&out);
    assert_eq!(err["class"], "upload", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("checksum") && message.contains("Nothing was deployed"), "{message}");
    let stats = proxy.stats();
    assert!(stats.fault("corrupt") >= 1 && stats.fault("stored-checksum") >= 1, "{stats:?}");
    assert!(deployments(&stack).is_empty(), "no deployment may be created from corrupted bytes");
}

#[test]
fn codedeploy_throttling_during_watch_is_absorbed_and_the_release_completes() {
    let stack = Stack::start_with(StackOptions { instances: 3, step_delay: Duration::from_millis(250), ..Default::default() });
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    let watch_ops = Match::Ops(vec!["GetDeployment", "ListDeploymentTargets", "BatchGetDeploymentTargets"]);
    proxy.set_rules(vec![Rule::new(watch_ops, Chance::Fraction(0.3), Fault::Throttle)]);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run(release(&stack, dir.path(), &app)
        .args(["--wait", "--timeout", "3m"])
        .env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint()));

    assert_eq!(out.code, 0, "throttling must not fail the release:\n{}", out.all());
    assert!(out.stderr.contains("Succeeded"), "{}", out.stderr);
    for word in ["error", "throttl", "warning"] {
        assert!(!out.stderr.to_lowercase().contains(word), "no {word:?} shown to the user:\n{}", out.stderr);
    }
    assert!(proxy.stats().fault("ThrottlingException") >= 3, "{:?}", proxy.stats());
}

#[test]
fn sts_refusing_the_role_names_the_role_and_the_source_identity_and_uploads_nothing() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), SEED);
    // The injected message deliberately names no identity: the one in ferry's
    // error must come from ferry asking who it is.
    proxy.set_rules(vec![Rule::new(
        Match::Ops(vec!["AssumeRole"]),
        Chance::Always,
        Fault::StsError { status: 403, code: "AccessDenied", message: "Not authorized to perform sts:AssumeRole" },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run(release(&stack, dir.path(), &app).env("AWS_ENDPOINT_URL_STS", proxy.endpoint()));

    assert_eq!(out.code, 2, "{}", out.all());
    let source = format!("arn:aws:iam::{}:user/{}", ferry_test_stack::OPERATIONS_ACCOUNT, ferry_test_stack::JENKINS_USER);
    assert!(out.stderr.contains(stack.role_arn()), "names the role:\n{}", out.stderr);
    assert!(out.stderr.contains(&source), "names the source identity {source}:\n{}", out.stderr);
    assert!(out.stderr.contains("AccessDenied") && out.stderr.contains("trust policy"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);
    assert!(proxy.stats().fault("AccessDenied") >= 1);
    assert!(object_keys(&stack).is_empty(), "nothing uploaded");
    assert!(deployments(&stack).is_empty(), "nothing deployed");
}

#[test]
fn sts_unreachable_is_a_clear_credential_error_naming_the_role_and_the_source_credentials() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), SEED);
    proxy.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run(release(&stack, dir.path(), &app).args(["--output", "json"]).env("AWS_ENDPOINT_URL_STS", proxy.endpoint()));

    assert_eq!(out.code, 2, "{}", out.all());
    let err = error_event(&out);
    assert_eq!(err["class"], "assume", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("could not reach STS") && message.contains(stack.role_arn()), "{message}");
    // STS is the service that would name the identity; unreachable, ferry
    // names the source credentials by their (non-secret) access key id.
    assert!(message.contains(stack.ops_access_key()), "names the source credentials: {message}");
    assert_no_secrets(&stack, &out);
    assert!(proxy.stats().fault("refused") >= 1);
    assert!(object_keys(&stack).is_empty(), "nothing uploaded");
    assert!(deployments(&stack).is_empty(), "nothing deployed");
}

#[test]
fn codedeploy_down_for_thirty_seconds_mid_watch_then_watch_resumes_and_reports_the_end() {
    let stack = Stack::start_with(StackOptions { instances: 2, step_delay: Duration::from_millis(300), ..Default::default() });
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let mut child = release(&stack, dir.path(), &app)
        .args(["--wait", "--timeout", "5m"])
        .env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());

    // Cut CodeDeploy off once ferry is watching (its first GetDeployment).
    let start = Instant::now();
    while proxy.stats().op("GetDeployment") == 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "ferry never started watching");
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.set_down(true);
    std::thread::sleep(OUTAGE);
    // The deployment ended while ferry could not see it.
    let ids = deployments(&stack);
    let status = stack.block_on(async {
        let d = stack.codedeploy().get_deployment().deployment_id(&ids[0]).send().await.unwrap();
        d.deployment_info().unwrap().status().unwrap().as_str().to_string()
    });
    assert_eq!(status, "Succeeded", "the emulator finished during the outage");
    proxy.set_down(false);

    let status = child.wait().unwrap();
    let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let stderr = lines.join().unwrap().join("\n");
    assert_eq!(status.code(), Some(0), "watch resumes and ends with the outcome:\n{stderr}");
    assert_eq!(stdout.trim(), ids[0]);
    assert_eq!(stderr.matches("lost contact with CodeDeploy").count(), 1, "warned once for the whole outage:\n{stderr}");
    assert!(stderr.contains("contact with CodeDeploy restored"), "{stderr}");
    assert!(stderr.contains("Succeeded"), "reports the final state:\n{stderr}");
    assert!(proxy.stats().fault("refused") >= 1, "{:?}", proxy.stats());
}

// Bundling faults: all before any AWS call, so a tripwire proves nothing was
// sent, let alone uploaded.

/// A temp dir any user may enter, holding ferry.toml, an app tree and a
/// private TMPDIR for ferry's bundle.
fn bundling_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("ferry.toml"), OFFLINE_CONFIG).unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o777)).unwrap();
    (dir, app, tmp)
}

/// `wrapper... ferry release app --env production` with the tripwire's
/// environment, run with a deadline so a hang fails the test instead of CI.
fn release_wrapped(wire: &Tripwire, dir: &Path, tmp: &Path, wrapper: &[&str]) -> Run {
    let template = wire.command(dir);
    let mut cmd = Command::new(wrapper.first().copied().unwrap_or(FERRY));
    cmd.args(wrapper.iter().skip(1));
    if !wrapper.is_empty() {
        cmd.arg(FERRY);
    }
    cmd.env_clear()
        .envs(template.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("TMPDIR", tmp)
        // These tests are about $TMPDIR, where a bundle is built when the
        // bundle cache is off (the cache, full or not, only saves time).
        .env("FERRY_BUNDLE_CACHE_MIB", "0")
        .current_dir(dir)
        .args(["release", "app", "--env", "production"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Pipes drain on their own threads so a chatty ferry cannot block on a
    // full pipe while the deadline loop below waits.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    use std::io::Read;
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            // Only reached if ferry hangs. `Child::kill` can only reach our
            // own, not yet reaped, child: never a recycled PID.
            child.kill().unwrap();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run { code: status.code().unwrap_or(-1), stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn assert_nothing_left(wire: &Tripwire, tmp: &Path) {
    assert!(!wire.tripped(), "ferry called AWS although bundling failed");
    let left: Vec<_> = std::fs::read_dir(tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "no partial bundle left in TMPDIR: {left:?}");
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

#[test]
fn an_unreadable_file_in_the_app_is_a_clear_bundle_error_and_nothing_is_sent() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, app, tmp) = bundling_dir();
    let secret = app.join("site/private.key");
    std::fs::write(&secret, "not for you").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let wire = Tripwire::new();
    // root reads mode-000 files anyway (CI runs as root): run ferry as nobody.
    let wrapper: &[&str] = if is_root() { &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] } else { &[] };

    let out = release_wrapped(&wire, dir.path(), &tmp, wrapper);

    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("private.key") && out.stderr.contains("ermission denied"), "{}", out.stderr);
    assert!(out.stderr.contains("readable"), "says what to fix:\n{}", out.stderr);
    assert_nothing_left(&wire, &tmp);
}

#[test]
fn a_fifo_in_the_app_is_refused_instead_of_hanging_the_build() {
    let (dir, app, tmp) = bundling_dir();
    let fifo = app.join("site/app.sock");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let wire = Tripwire::new();

    let out = release_wrapped(&wire, dir.path(), &tmp, &[]);

    assert_eq!(out.code, 1, "refused, not hung or killed:\n{}", out.all());
    assert!(out.stderr.contains("app.sock") && out.stderr.contains("not a regular file"), "{}", out.stderr);
    assert_nothing_left(&wire, &tmp);
}

/// A 1 MiB incompressible file in a fresh bundling dir, for the disk tests.
fn bundling_dir_with_a_big_file() -> (tempfile::TempDir, PathBuf) {
    let (dir, app, tmp) = bundling_dir();
    let mut data = vec![0u8; 1 << 20];
    let mut x: u32 = 12345;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(app.join("site/blob.bin"), data).unwrap();
    (dir, tmp)
}

/// Runs a release whose bundle cannot fit, under `wrapper` (which mounts the
/// small disk or sets the limit); `cause` is the OS's own words for it.
fn assert_no_room_is_a_clear_error(dir: &Path, tmp: &Path, wrapper: &[&str], cause: &str) {
    let wire = Tripwire::new();
    let out = release_wrapped(&wire, dir, tmp, wrapper);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains(cause), "names the cause:\n{}", out.stderr);
    assert!(out.stderr.contains("TMPDIR") && out.stderr.contains("space"), "says what to fix:\n{}", out.stderr);
    assert!(out.stderr.contains("left in TMPDIR: []"), "no partial bundle left:\n{}", out.stderr);
    assert_nothing_left(&wire, tmp);
}

/// The listing after ferry exits shows what it left in TMPDIR (which, for
/// the tmpfs, vanishes with the private mount).
fn after_ferry(tmp: &Path) -> String {
    let tmp = tmp.to_str().unwrap();
    format!("\"$@\"; rc=$?; echo \"left in TMPDIR: [$(ls -A '{tmp}')]\" >&2; exit $rc")
}

/// A real full disk: a private 256 KiB tmpfs as TMPDIR. Needs root with
/// CAP_SYS_ADMIN (CI has it); elsewhere this fails and says so rather than
/// quietly testing something else.
#[test]
fn a_full_disk_while_bundling_is_a_clear_error_and_leaves_no_partial_bundle() {
    let (dir, tmp) = bundling_dir_with_a_big_file();
    let probe = Command::new("unshare").args(["-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"]).output();
    assert!(
        is_root() && probe.as_ref().is_ok_and(|o| o.status.success()),
        "this test needs root and `unshare -m` to mount a small tmpfs (as CI has): {probe:?}"
    );
    let mount = format!("mount -t tmpfs -o size=256k tmpfs '{}' && {}", tmp.display(), after_ferry(&tmp));
    assert_no_room_is_a_clear_error(dir.path(), &tmp, &["unshare", "-m", "sh", "-c", &mount, "sh"], "No space left on device");
}

/// The same write refused by a file-size limit (EFBIG), as on agents with
/// `ulimit -f`: the same clear error and nothing left.
#[test]
fn a_file_size_limit_while_bundling_is_a_clear_error_and_leaves_no_partial_bundle() {
    let (dir, tmp) = bundling_dir_with_a_big_file();
    let limit = format!("trap '' XFSZ; ulimit -f 256; {}", after_ferry(&tmp));
    assert_no_room_is_a_clear_error(dir.path(), &tmp, &["bash", "-c", &limit, "bash"], "File too large");
}

#[test]
fn a_lost_create_deployment_answer_does_not_deploy_twice() {
    // CodeDeploy creates the deployment, but the answer never arrives: the
    // SDK retries, and a second CreateDeployment would be a second rollout.
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    proxy.set_rules(vec![Rule::new(Match::Ops(vec!["CreateDeployment"]), Chance::FirstN(1), Fault::LoseResponse)]);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run(release(&stack, dir.path(), &app)
        .args(["--wait", "--timeout", "2m"])
        .env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint()));

    assert_eq!(proxy.stats().fault("lose-response"), 1, "{:?}", proxy.stats());
    assert_eq!(out.code, 0, "{}", out.all());
    let ids = common::deployment_ids(&stack);
    assert_eq!(ids.len(), 1, "exactly one deployment exists: {ids:?}\n{}", out.all());
    assert_eq!(out.stdout.trim(), ids[0], "ferry followed the deployment CodeDeploy did create");
    assert!(out.stderr.contains(&format!("following deployment {}", ids[0])), "ferry says it adopted it:\n{}", out.stderr);
    assert_no_secrets(&stack, &out);
}

#[test]
fn a_throttled_create_deployment_is_retried_and_deploys_once() {
    // The SDK does not retry CreateDeployment (no idempotency token); ferry
    // must, when CodeDeploy said no before creating anything.
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    proxy.set_rules(vec![Rule::new(Match::Ops(vec!["CreateDeployment"]), Chance::FirstN(2), Fault::Throttle)]);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run(release(&stack, dir.path(), &app)
        .args(["--wait", "--timeout", "2m"])
        .env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint()));

    assert_eq!(proxy.stats().fault("ThrottlingException"), 2, "{:?}", proxy.stats());
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(common::deployment_ids(&stack).len(), 1);
    // "Backs off 1 s, 2 s": the pauses between the three CreateDeployment
    // calls, on the proxy's clock. Lower bounds only: a slow machine makes
    // the pauses longer, never shorter.
    let gaps = proxy.stats().gaps("CreateDeployment");
    assert_eq!(gaps.len(), 2, "three calls: {gaps:?}");
    assert!(gaps[0] >= Duration::from_secs(1) && gaps[1] >= Duration::from_secs(2), "backed off 1 s, then 2 s: {gaps:?}");
    assert!(!out.stderr.to_lowercase().contains("throttl"), "throttling is not the user's problem:\n{}", out.stderr);
}

// Issue 18: hung endpoints, leftover uploads, identical releases, a limit
// that is not the group's. Each of these hung, piled up or lied before.

/// A ferry run that may hang: its output, its exit code (-1 if it had to be
/// killed) and how long it took. Killed after `limit`.
struct Bounded {
    run: Run,
    took: Duration,
    killed: bool,
}

fn run_within(cmd: &mut Command, limit: Duration) -> Bounded {
    let started = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (stdout, stderr) = (drain(child.stdout.take().unwrap()), drain(child.stderr.take().unwrap()));
    let (status, killed) = wait_within(&mut child, limit);
    Bounded {
        run: Run { code: status.code().unwrap_or(-1), stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() },
        took: started.elapsed(),
        killed,
    }
}

/// Waits for our own child, killing it after `limit` (never a recycled PID:
/// it is not reaped before `kill`).
fn wait_within(child: &mut std::process::Child, limit: Duration) -> (std::process::ExitStatus, bool) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, false);
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            return (child.wait().unwrap(), true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn open_uploads(stack: &Stack) -> usize {
    stack.block_on(async {
        let out = stack.s3_as_prod().list_multipart_uploads().bucket(stack.bucket()).send().await.unwrap();
        out.uploads().len()
    })
}

/// Issue 18 item 2, upload: an S3 that accepts the upload and then says
/// nothing held ferry 13 minutes and then deployed. Now the silence is
/// reported while it lasts, `--timeout` ends the release on time, and
/// nothing is deployed, not even once S3 answers again.
#[test]
fn s3_silent_mid_upload_is_reported_and_the_deadline_ends_the_release_with_nothing_deployed() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), SEED);
    proxy.set_rules(vec![Rule::new(Match::Ops(vec!["PutObject", "UploadPart"]), Chance::Always, Fault::Stall)]);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run_within(
        release(&stack, dir.path(), &app).args(["--timeout", "12s"]).env("AWS_ENDPOINT_URL_S3", proxy.endpoint()),
        Duration::from_secs(60),
    );
    let log = out.run.all();
    assert!(!out.killed, "ferry hung past its --timeout:\n{log}");
    assert_eq!(out.run.code, 5, "{log}");
    assert!(out.took < Duration::from_secs(25), "--timeout 12s took {:?}", out.took);
    assert!(out.run.stderr.contains("no answer from S3 for 6 s while uploading the bundle to S3; still waiting"), "{log}");
    assert!(out.run.stderr.contains("--timeout (12s) ran out while uploading the bundle to S3"), "{log}");
    assert!(out.run.stderr.contains("nothing was deployed"), "{log}");
    assert!(proxy.stats().fault("stall") >= 1, "{:?}", proxy.stats());

    // S3 comes back: the held PUT goes through, but ferry is gone.
    proxy.set_rules(vec![]);
    proxy.release_stalls();
    common::wait_until("the held upload to be forwarded", || proxy.stats().in_flight == 0);
    assert!(deployments(&stack).is_empty(), "no deployment after the deadline");
}

/// Issue 18 item 2, queueing: with `--timeout 20s` the deployment used to
/// be created ~75 s after the stall began. Here CodeDeploy is silent before
/// CreateDeployment (the newer-build check's ListDeployments): the release
/// ends at its deadline and no CreateDeployment is ever sent, even when
/// CodeDeploy answers again.
#[test]
fn codedeploy_silent_before_create_means_no_deployment_once_the_deadline_passed() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    proxy.set_rules(vec![Rule::new(Match::Ops(vec!["ListDeployments"]), Chance::Always, Fault::Stall)]);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run_within(
        release(&stack, dir.path(), &app)
            .args(["--timeout", "12s"])
            .env("BUILD_NUMBER", "7")
            .env("JOB_NAME", "web")
            .env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint()),
        Duration::from_secs(60),
    );
    let log = out.run.all();
    assert!(!out.killed, "ferry hung past its --timeout:\n{log}");
    assert_eq!(out.run.code, 5, "{log}");
    assert!(out.took < Duration::from_secs(25), "--timeout 12s took {:?}", out.took);
    assert!(out.run.stderr.contains("no answer from CodeDeploy for 6 s while creating the deployment"), "{log}");
    assert!(out.run.stderr.contains("ran out while creating the deployment"), "{log}");
    assert!(proxy.stats().fault("stall") >= 1, "CodeDeploy was silent: {:?}", proxy.stats());

    // CodeDeploy answers again: the held ListDeployments is forwarded and
    // answered, and still nothing creates a deployment.
    proxy.set_rules(vec![]);
    proxy.release_stalls();
    common::wait_until("the held ListDeployments to be answered", || proxy.stats().in_flight == 0);
    assert_eq!(proxy.stats().op("CreateDeployment"), 0, "{:?}", proxy.stats());
    assert!(deployments(&stack).is_empty(), "no deployment after the deadline");
}

/// Issue 18 item 2, watch: CodeDeploy silent for 40 s under `--timeout 15s`
/// gave no "lost contact" line, and "timed out" only when it came back.
/// Here every answer stops mid-body: the silence is reported and the watch
/// ends at the deadline with exit 5.
#[test]
fn codedeploy_stopping_mid_answer_while_watching_is_reported_and_timed_out_on_time() {
    let stack = Stack::start_with(StackOptions { step_delay: Duration::from_secs(3), ..Default::default() });
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let mut cmd = release(&stack, dir.path(), &app);
    cmd.args(["--wait", "--timeout", "15s"]).env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint());
    let started = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (stdout, stderr) = (drain(child.stdout.take().unwrap()), drain(child.stderr.take().unwrap()));
    wait_for("the watch", Duration::from_secs(15), || proxy.stats().op("GetDeployment") > 0);
    proxy.set_rules(vec![Rule::new(Match::Any, Chance::Always, Fault::StallMidBody)]);

    let (status, killed) = wait_within(&mut child, Duration::from_secs(60));
    let took = started.elapsed();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    proxy.set_rules(vec![]);
    proxy.release_stalls();
    assert!(!killed, "ferry hung past its --timeout:\n{stderr}");
    assert_eq!(status.code(), Some(5), "{stderr}");
    assert!(took < Duration::from_secs(25), "--timeout 15s took {took:?}");
    assert!(stderr.contains("no answer from CodeDeploy for 7 s while following the deployment"), "{stderr}");
    assert!(stderr.contains("TIMED OUT") && stderr.contains("CodeDeploy had not answered for"), "{stderr}");
    assert!(proxy.stats().fault("stall-mid-body") >= 1, "{:?}", proxy.stats());
    assert_eq!(stdout.trim(), deployments(&stack)[0], "the deployment it followed is named");
}

/// Issue 18 item 2, assume: STS accepts and never answers. The SDK's
/// credential loading gives up after its own 5 s (the identity cache's load
/// timeout, inside every other bound), so the release ends at once as a
/// credential failure, well inside `--timeout`, with nothing uploaded.
#[test]
fn sts_silent_is_a_prompt_credential_failure_before_any_upload() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), SEED);
    proxy.set_stalled(true);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run_within(
        release(&stack, dir.path(), &app)
            .args(["--timeout", "60s", "--output", "json"])
            .env("AWS_ENDPOINT_URL_STS", proxy.endpoint()),
        Duration::from_secs(90),
    );
    proxy.set_stalled(false);
    let log = out.run.all();
    assert!(!out.killed, "ferry hung:\n{log}");
    assert_eq!(out.run.code, 2, "{log}");
    assert!(out.took < Duration::from_secs(30), "{:?}", out.took);
    let err = error_event(&out.run);
    assert_eq!(err["class"], "assume", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("could not reach STS") && message.contains("timed out"), "{message}");
    assert!(proxy.stats().fault("stall") >= 1, "{:?}", proxy.stats());
    assert!(object_keys(&stack).is_empty(), "nothing uploaded");
    assert!(deployments(&stack).is_empty(), "nothing deployed");
}

/// Issue 18 item 14: `ferry status` against a CodeDeploy that accepts and
/// never answers hung forever. Every request has the SDK's timeouts now
/// (`FERRY_READ_TIMEOUT` shortens them for the test): it ends, and says it
/// could not reach CodeDeploy.
#[test]
fn status_of_a_silent_codedeploy_ends_with_could_not_reach_instead_of_hanging() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    proxy.set_stalled(true);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(["status", "d-A1B2C3D4E", "--env", "production", "--config"])
        .arg(&config)
        .env("FERRY_READ_TIMEOUT", "2")
        .env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint());

    let out = run_within(&mut cmd, Duration::from_secs(60));
    let stalls = proxy.stats().fault("stall");
    proxy.set_stalled(false);
    assert!(stalls >= 1, "the proxy held ferry's request unanswered: {:?}", proxy.stats());
    assert!(!out.killed, "ferry status hung:\n{}", out.run.all());
    assert_eq!(out.run.code, 2, "{}", out.run.all());
    assert!(out.run.stderr.contains("could not reach CodeDeploy to read deployment d-A1B2C3D4E"), "{}", out.run.stderr);
    assert!(out.took < Duration::from_secs(40), "{:?}", out.took);
}

/// Issue 18 item 14: a CodeDeploy endpoint that refuses connections was
/// reported as missing `codedeploy:ListDeployments` permissions.
#[test]
fn a_codedeploy_that_refuses_connections_is_could_not_reach_not_a_permission_problem() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    proxy.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run_within(
        release(&stack, dir.path(), &app)
            .args(["--output", "json"])
            .env("BUILD_NUMBER", "7")
            .env("JOB_NAME", "web")
            .env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint()),
        Duration::from_secs(60),
    );
    let err = error_event(&out.run);
    let message = err["message"].as_str().unwrap();
    assert_eq!(out.run.code, 2, "{}", out.run.all());
    assert!(message.contains("could not reach CodeDeploy"), "{message}");
    assert!(!message.contains("ListDeployments"), "not a permission problem: {message}");
    assert!(proxy.stats().fault("refused") >= 1);
}

/// Issue 18 item 7: after a killed multipart upload, each rerun listed the
/// old upload and its parts, then started a new one without resuming or
/// aborting the old (1 → 4 open uploads). Here the proxy refuses ListParts
/// (AccessDenied, as a store or a policy might): an upload whose parts
/// cannot be read is aborted, so there is never more than the one in
/// progress, and none once a release completes. The refusal is injected and
/// counted, so the test does not hang on how moto names its ListParts answer.
#[test]
fn a_killed_multipart_upload_is_never_left_to_pile_up_by_the_reruns() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), SEED);
    let dir = tempfile::tempdir().unwrap();
    let (zip, _sha) = big_zip(dir.path(), 40 << 20);
    let unreadable_parts =
        || Rule::new(Match::Ops(vec!["ListParts"]), Chance::Always, Fault::S3Error { status: 403, code: "AccessDenied" });

    for attempt in 1..=2 {
        // Two parts land, the rest hang; then the agent dies (SIGKILL).
        proxy.set_rules(vec![
            unreadable_parts(),
            Rule::new(Match::Ops(vec!["UploadPart"]), Chance::FirstN(2), Fault::Delay(Duration::ZERO)),
            Rule::new(Match::Ops(vec!["UploadPart"]), Chance::Always, Fault::Stall),
        ]);
        let (before, landed) = (proxy.stats().op("UploadPart"), proxy.stats().answered("UploadPart"));
        let mut child = release(&stack, dir.path(), &zip)
            .env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("parts in flight", Duration::from_secs(60), || proxy.stats().op("UploadPart") >= before + 4);
        wait_for("two parts stored", Duration::from_secs(60), || proxy.stats().answered("UploadPart") >= landed + 2);
        child.kill().unwrap();
        child.wait().unwrap();
        let open = open_uploads(&stack);
        assert_eq!(open, 1, "after killed attempt {attempt}: {open} open uploads");
    }
    // The second attempt found the first's upload and could not read it.
    assert!(proxy.stats().fault("AccessDenied") >= 1, "ListParts was refused: {:?}", proxy.stats());

    proxy.set_rules(vec![unreadable_parts()]);
    let out = run(release(&stack, dir.path(), &zip).env("AWS_ENDPOINT_URL_S3", proxy.endpoint()));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(open_uploads(&stack), 0, "the release completed its own upload and left none behind");
    assert_eq!(deployments(&stack).len(), 1);
}

/// Issue 18 item 11: two identical releases at once. The second used to
/// "adopt" the first's deployment, claiming its own earlier attempt had
/// created it. Now it queues behind it like any other and makes its own.
#[test]
fn two_identical_releases_at_once_each_get_their_own_deployment() {
    let stack = Stack::start_with(StackOptions { step_delay: Duration::from_millis(700), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let first = run(release(&stack, dir.path(), &app).arg("--no-wait"));
    assert_eq!(first.code, 0, "{}", first.all());
    let second = run(release(&stack, dir.path(), &app).args(["--queue-timeout", "2m", "--timeout", "3m"]));

    assert_eq!(second.code, 0, "{}", second.all());
    let ids = deployments(&stack);
    assert_eq!(ids.len(), 2, "each release made its own deployment: {ids:?}\n{}", second.all());
    assert_ne!(first.stdout.trim(), second.stdout.trim(), "{}", second.all());
    assert!(second.stderr.contains(&format!("deployment group busy with {}", first.stdout.trim())), "{}", second.stderr);
    assert!(!second.stderr.contains("earlier attempt"), "nothing adopted: {}", second.stderr);
}

/// Issue 18 item 15: CreateDeployment answering DeploymentLimitExceeded
/// while no deployment runs in the group (an account-wide limit) retried
/// every 250 ms forever, ignoring `--queue-timeout`.
#[test]
fn a_limit_beyond_the_group_gives_up_at_the_queue_timeout() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.codedeploy_endpoint(), SEED);
    let limit = Fault::JsonError { status: 400, code: "DeploymentLimitExceededException" };
    proxy.set_rules(vec![Rule::new(Match::Ops(vec!["CreateDeployment"]), Chance::Always, limit)]);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = run_within(
        release(&stack, dir.path(), &app)
            .args(["--queue-timeout", "3s", "--output", "json"])
            .env("AWS_ENDPOINT_URL_CODEDEPLOY", proxy.endpoint()),
        Duration::from_secs(60),
    );
    assert!(!out.killed, "ferry retried past --queue-timeout:\n{}", out.run.all());
    assert_eq!(out.run.code, 5, "{}", out.run.all());
    let message = error_event(&out.run)["message"].as_str().unwrap().to_string();
    assert!(message.contains("although no deployment of web-prod is running"), "{message}");
    let tries = proxy.stats().op("CreateDeployment");
    assert!((2..=20).contains(&tries), "backed off rather than hammering: {tries} CreateDeployment calls");
    assert!(deployments(&stack).is_empty());
}

/// Issue 18 item 16: `--queue-timeout 2s` said "waiting up to 1s".
#[test]
fn the_queue_wait_is_announced_as_given() {
    let stack = Stack::start_with(StackOptions { step_delay: Duration::from_secs(2), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let first = run(release(&stack, dir.path(), &app).arg("--no-wait"));
    assert_eq!(first.code, 0, "{}", first.all());

    let second = run(release(&stack, dir.path(), &app).args(["--queue-timeout", "2s"]));
    assert_eq!(second.code, 5, "{}", second.all());
    assert!(second.stderr.contains("waiting up to 2s for it to end"), "{}", second.stderr);
}

/// Issue 18 item 16: a bundle built for a release has no name in $TMPDIR
/// (O_TMPFILE), so even SIGKILL in the middle of the upload leaves no file
/// there (an empty directory of ferry's own at most).
#[test]
fn a_release_killed_mid_upload_leaves_no_bundle_in_tmpdir() {
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), SEED);
    proxy.set_rules(vec![Rule::new(Match::Ops(vec!["PutObject", "UploadPart"]), Chance::Always, Fault::Stall)]);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut child = release(&stack, dir.path(), &app)
        .env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the upload", Duration::from_secs(60), || proxy.stats().fault("stall") >= 1);
    child.kill().unwrap();
    child.wait().unwrap();
    proxy.release_stalls();

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(files(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }
    assert_eq!(files(&tmp), Vec::<PathBuf>::new(), "SIGKILL left the bundle behind");
}
