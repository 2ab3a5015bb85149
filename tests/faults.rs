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

use common::{FERRY, OFFLINE_CONFIG, Run, Stack, StackOptions, Tripwire, app_tree, assert_no_secrets, run};
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
    assert!(stderr.contains("lost contact with CodeDeploy"), "{stderr}");
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
    assert!(!out.stderr.to_lowercase().contains("throttl"), "throttling is not the user's problem:\n{}", out.stderr);
}
