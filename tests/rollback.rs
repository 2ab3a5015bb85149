//! Every way a release ends, against the CodeDeploy emulator: rollback on
//! failure, `ferry rollback`, `ferry stop`, abort by signal, a busy group, and
//! `ferry history`.

mod common;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{FERRY, Run, Stack, StackOptions, assert_no_secrets, run};

/// An app whose page says `version` and whose ValidateService runs `validate`.
fn versioned_app(dir: &Path, version: &str, validate: &str) -> PathBuf {
    let app = dir.join(format!("app-{version}"));
    std::fs::create_dir_all(app.join("scripts")).unwrap();
    std::fs::create_dir_all(app.join("site")).unwrap();
    std::fs::write(app.join("site/index.html"), format!("{version}\n")).unwrap();
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www/hello\nhooks:\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 30\n",
    )
    .unwrap();
    std::fs::write(app.join("scripts/validate.sh"), format!("#!/bin/bash\n{validate}\n")).unwrap();
    // ferry refuses hook scripts without the executable bit (os: linux).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(app.join("scripts/validate.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    app
}

fn ferry(stack: &Stack, config: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(args).arg("--config").arg(config);
    cmd
}

fn release(stack: &Stack, config: &Path, app: &Path, extra: &[&str]) -> Run {
    // No --wait: following the deployment (and its rollback) is the default.
    let mut args = vec!["release", app.to_str().unwrap(), "--env", "production", "--timeout", "2m"];
    args.extend_from_slice(extra);
    run(&mut ferry(stack, config, &args))
}

/// What the emulator says of a deployment: status, revision key, creator.
fn deployment(stack: &Stack, id: &str) -> aws_sdk_codedeploy::types::DeploymentInfo {
    stack.block_on(async {
        stack.codedeploy().get_deployment().deployment_id(id).send().await.unwrap().deployment_info().unwrap().clone()
    })
}

fn key_of(info: &aws_sdk_codedeploy::types::DeploymentInfo) -> String {
    info.revision().unwrap().s3_location().unwrap().key().unwrap().to_string()
}

/// The page every instance of the group serves now.
fn instance_pages(stack: &Stack) -> Vec<String> {
    let group_dir = stack.emulator_work_dir().join(stack.deployment_group());
    let mut pages = Vec::new();
    for inst in std::fs::read_dir(&group_dir).unwrap() {
        let page = inst.unwrap().path().join("var/www/hello/index.html");
        pages.push(std::fs::read_to_string(&page).unwrap_or_else(|e| format!("{}: {e}", page.display())).trim().to_string());
    }
    assert!(!pages.is_empty(), "no instances under {}", group_dir.display());
    pages
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn rollback_on_failure_with_a_failing_hook_ends_rolled_back_with_exit_7() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let good = release(&stack, &config, &versioned_app(dir.path(), "v1", "exit 0"), &[]);
    assert_eq!(good.code, 0, "{}", good.all());
    let v1 = good.stdout.trim().to_string();

    let receipt = dir.path().join("receipt.json");
    let bad = release(
        &stack,
        &config,
        &versioned_app(dir.path(), "v2", "echo broken >&2; exit 1"),
        // AllAtOnce: with OneAtATime a failure on the last instance does not fail the deployment.
        &[
            "--rollback-on",
            "failure",
            "--deployment-config",
            "CodeDeployDefault.AllAtOnce",
            "--receipt",
            receipt.to_str().unwrap(),
        ],
    );
    assert_eq!(bad.code, 7, "failed-and-rolled-back must be exit 7:\n{}", bad.all());
    let failed_id = bad.stdout.trim();
    let failed = deployment(&stack, failed_id);
    assert_eq!(failed.status().unwrap().as_str(), "Failed");
    let rollback_id = failed.rollback_info().unwrap().rollback_deployment_id().unwrap().to_string();
    let rb = deployment(&stack, &rollback_id);
    assert_eq!(rb.status().unwrap().as_str(), "Succeeded");
    assert_eq!(rb.creator().unwrap().as_str(), "codeDeployRollback");
    assert_eq!(key_of(&rb), key_of(&deployment(&stack, &v1)), "the rollback restores v1");
    assert!(bad.stderr.contains(&format!("{failed_id} FAILED")), "{}", bad.stderr);
    assert!(bad.stderr.contains(&format!("rolling back {failed_id} with deployment {rollback_id}")), "{}", bad.stderr);
    assert!(bad.stderr.contains(&format!("{rollback_id} succeeded")), "{}", bad.stderr);
    assert_eq!(instance_pages(&stack), vec!["v1"]);

    let r = json(&receipt);
    assert_eq!(r["outcome"], "rolled_back");
    assert_eq!(r["deployment_id"], failed_id);
    assert_eq!(r["rollback_deployment_id"], rollback_id.as_str());
    assert_eq!(r["rollback_outcome"], "succeeded");
    assert_no_secrets(&stack, &bad);
    for secret in stack.secrets() {
        assert!(!std::fs::read_to_string(&receipt).unwrap().contains(&secret), "a secret is in the receipt");
    }
}

#[test]
fn a_rollback_that_fails_too_exits_3_and_says_both_outcomes() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    // v1 succeeds once, then fails on every later run: the rollback to it fails too.
    let marker = dir.path().join("v1-ran");
    let v1 = versioned_app(dir.path(), "v1", &format!("test ! -e {m} || exit 1; touch {m}", m = marker.display()));
    assert_eq!(release(&stack, &config, &v1, &[]).code, 0);
    let bad = release(
        &stack,
        &config,
        &versioned_app(dir.path(), "v2", "exit 1"),
        &["--rollback-on", "failure", "--deployment-config", "CodeDeployDefault.AllAtOnce"],
    );
    assert_eq!(bad.code, 3, "{}", bad.all());
    let failed = deployment(&stack, bad.stdout.trim());
    let rollback_id = failed.rollback_info().unwrap().rollback_deployment_id().unwrap().to_string();
    assert_eq!(deployment(&stack, &rollback_id).status().unwrap().as_str(), "Failed");
    assert!(bad.stderr.contains(&format!("{} FAILED", bad.stdout.trim())), "{}", bad.stderr);
    assert!(bad.stderr.contains(&format!("{rollback_id} FAILED")), "{}", bad.stderr);
}

#[test]
fn rollback_without_argument_returns_the_group_to_the_previous_successful_revision() {
    let stack = Stack::start_with(StackOptions { instances: 2, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let first = release(&stack, &config, &versioned_app(dir.path(), "v1", "exit 0"), &[]);
    assert_eq!(first.code, 0, "{}", first.all());

    let nothing = run(&mut ferry(&stack, &config, &["rollback", "--env", "production"]));
    assert_eq!(nothing.code, 1, "{}", nothing.all());
    assert!(nothing.stderr.contains("nothing to roll back to in web-prod"), "{}", nothing.stderr);
    assert_eq!(common::deployment_ids(&stack).len(), 1, "a refused rollback creates nothing");

    let second = release(&stack, &config, &versioned_app(dir.path(), "v2", "exit 0"), &[]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert_eq!(instance_pages(&stack), vec!["v2", "v2"]);
    let (v1, v2) = (deployment(&stack, first.stdout.trim()), deployment(&stack, second.stdout.trim()));

    let back = run(&mut ferry(&stack, &config, &["rollback", "--env", "production", "--timeout", "2m"]));
    assert_eq!(back.code, 0, "{}", back.all());
    let planned = format!(
        "rolling back web-prod from s3://{}/{} (deployment {}) to s3://{}/{} (deployment {})",
        stack.bucket(),
        key_of(&v2),
        v2.deployment_id().unwrap(),
        stack.bucket(),
        key_of(&v1),
        v1.deployment_id().unwrap()
    );
    assert!(back.stderr.contains(&planned), "expected {planned:?} in:\n{}", back.stderr);
    let planned_at = back.stderr.find(&planned).unwrap();
    assert!(planned_at < back.stderr.find("created deployment").unwrap(), "from/to is said before starting");

    let rb = deployment(&stack, back.stdout.trim());
    assert_eq!(rb.status().unwrap().as_str(), "Succeeded");
    let (loc, v1_loc) = (rb.revision().unwrap().s3_location().unwrap(), v1.revision().unwrap().s3_location().unwrap());
    assert_eq!((loc.key(), loc.e_tag()), (v1_loc.key(), v1_loc.e_tag()), "pinned to v1's object");
    assert_eq!(instance_pages(&stack), vec!["v1", "v1"]);
}

#[test]
fn rollback_to_a_named_sha256_or_an_unknown_one() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let first = release(&stack, &config, &versioned_app(dir.path(), "v1", "exit 0"), &[]);
    for v in ["v2", "v3"] {
        assert_eq!(release(&stack, &config, &versioned_app(dir.path(), v, "exit 0"), &[]).code, 0);
    }
    let v1_key = key_of(&deployment(&stack, first.stdout.trim()));
    let sha = v1_key.rsplit('/').next().unwrap().split('.').next().unwrap().to_string();
    let back = run(&mut ferry(&stack, &config, &["rollback", "--env", "production", "--to", &sha[..16], "--wait"]));
    assert_eq!(back.code, 0, "{}", back.all());
    assert_eq!(key_of(&deployment(&stack, back.stdout.trim())), v1_key);
    assert_eq!(instance_pages(&stack), vec!["v1"]);

    let unknown = run(&mut ferry(&stack, &config, &["rollback", "--env", "production", "--to", "0123456789abcdef"]));
    assert_eq!(unknown.code, 1, "{}", unknown.all());
    assert!(unknown.stderr.contains("--to 0123456789abcdef matches no deployment"), "{}", unknown.stderr);
}

#[test]
fn stop_with_rollback_stops_the_deployment_and_restores_the_previous_revision() {
    // Two instances: see the SIGTERM test for why one is not enough.
    let stack = Stack::start_with(StackOptions { instances: 2, step_delay: Duration::from_millis(300), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    assert_eq!(release(&stack, &config, &versioned_app(dir.path(), "v1", "exit 0"), &[]).code, 0);
    let v2 = versioned_app(dir.path(), "v2", "exit 0");
    let created = run(&mut ferry(
        &stack,
        &config,
        &["release", v2.to_str().unwrap(), "--env", "production", "--queue-timeout", "1m", "--no-wait"],
    ));
    assert_eq!(created.code, 0, "{}", created.all());
    let id = created.stdout.trim().to_string();

    let stop = run(&mut ferry(&stack, &config, &["stop", &id, "--rollback", "--env", "production"]));
    assert_eq!(stop.code, 0, "{}", stop.all());
    assert!(stop.stderr.contains(&format!("stopping deployment {id} and rolling it back")), "{}", stop.stderr);
    let info = deployment(&stack, &id);
    assert_eq!(info.status().unwrap().as_str(), "Stopped");
    let rollback_id = info.rollback_info().unwrap().rollback_deployment_id().unwrap().to_string();
    assert_eq!(deployment(&stack, &rollback_id).status().unwrap().as_str(), "Succeeded");
    assert_eq!(instance_pages(&stack), vec!["v1", "v1"]);

    let again = run(&mut ferry(&stack, &config, &["stop", &id, "--env", "production"]));
    assert_eq!(again.code, 1, "{}", again.all());
    assert!(again.stderr.contains(&format!("deployment {id} has already ended (Stopped)")), "{}", again.stderr);
}

#[test]
fn sigterm_during_release_wait_stops_rolls_back_writes_the_receipt_and_exits_143() {
    // Two instances, one at a time: the signal lands while the first is in
    // flight. (With one instance the emulator ends a stop that fails the only
    // instance in flight as Failed/HEALTH_CONSTRAINTS rather than Stopped.)
    let stack = Stack::start_with(StackOptions { instances: 2, step_delay: Duration::from_millis(400), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let first = release(&stack, &config, &versioned_app(dir.path(), "v1", "exit 0"), &[]);
    assert_eq!(first.code, 0, "{}", first.all());

    let receipt = dir.path().join("receipt.json");
    let v2 = versioned_app(dir.path(), "v2", "exit 0");
    let mut child = ferry(
        &stack,
        &config,
        &["release", v2.to_str().unwrap(), "--env", "production", "--wait", "--receipt", receipt.to_str().unwrap()],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Signal once the deployment is running on the instance.
    let mut log = common::read_until(&mut stderr, "InProgress");
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    log.push_str(&rest);
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(started.elapsed() < Duration::from_secs(70), "the abort is bounded by --abort-grace");
    assert!(log.contains("SIGTERM received while following"), "{log}");

    let r = json(&receipt);
    assert_eq!(r["outcome"], "aborted", "{r}");
    assert_eq!(r["signal"], "SIGTERM");
    let id = r["deployment_id"].as_str().unwrap().to_string();
    let info = deployment(&stack, &id);
    assert_eq!(info.status().unwrap().as_str(), "Stopped", "the deployment was stopped");
    let rollback_id = info.rollback_info().unwrap().rollback_deployment_id().unwrap().to_string();
    assert_eq!(r["rollback_deployment_id"], rollback_id.as_str());
    assert_eq!(r["rollback_outcome"], "succeeded");
    assert_eq!(deployment(&stack, &rollback_id).status().unwrap().as_str(), "Succeeded");
    assert_eq!(instance_pages(&stack), vec!["v1", "v1"]);
}

#[test]
fn two_concurrent_releases_finish_in_build_order_and_history_shows_them() {
    let stack = Stack::start_with(StackOptions { step_delay: Duration::from_millis(150), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let build = |n: &str, version: &str| {
        let app = versioned_app(dir.path(), version, "exit 0");
        let mut cmd =
            ferry(&stack, &config, &["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "2m"]);
        cmd.env("BUILD_NUMBER", n).env("JOB_NAME", "web-deploy").env("BUILD_TAG", format!("jenkins-web-deploy-{n}"));
        cmd
    };
    let first = build("1", "v1").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::deployment_ids(&stack).is_empty() {
        assert!(Instant::now() < deadline, "build 1 never created its deployment");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = run(&mut build("2", "v2"));
    let first = first.wait_with_output().unwrap();
    let first = Run {
        code: first.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&first.stdout).into(),
        stderr: String::from_utf8_lossy(&first.stderr).into(),
    };
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(second.code, 0, "{}", second.all());
    let (d1, d2) = (deployment(&stack, first.stdout.trim()), deployment(&stack, second.stdout.trim()));
    assert!(
        second
            .stderr
            .contains(&format!("busy with {} (started by user: \"ferry build 1 of web-deploy", d1.deployment_id().unwrap())),
        "build 2 says which deployment it waits for and who started it:\n{}",
        second.stderr
    );
    assert!(d2.create_time().unwrap().secs() >= d1.complete_time().unwrap().secs(), "build 2 started after build 1 ended");
    assert_eq!(instance_pages(&stack), vec!["v2"], "the newer build is what runs");

    // An older build arriving late is refused, and nothing is deployed.
    let late = run(&mut build("1", "v1"));
    assert_eq!(late.code, 8, "{}", late.all());
    assert!(
        late.stderr.contains(&format!("deployment {} carries the newer build 2", d2.deployment_id().unwrap())),
        "{}",
        late.stderr
    );
    assert_eq!(common::deployment_ids(&stack).len(), 2);

    let history = run(&mut ferry(&stack, &config, &["history", "--env", "production", "--output", "json"]));
    assert_eq!(history.code, 0, "{}", history.all());
    let rows: Vec<serde_json::Value> = history
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "history_entry")
        .collect();
    assert_eq!(rows.len(), 2, "{}", history.stdout);
    for (row, d, n) in [(&rows[0], &d2, "2"), (&rows[1], &d1, "1")] {
        assert_eq!(row["deployment_id"], d.deployment_id().unwrap());
        assert_eq!(row["build"], n);
        assert_eq!(row["status"], "Succeeded");
        assert_eq!(row["creator"], "user");
        assert_eq!(row["key"], key_of(d).as_str());
        assert!(key_of(d).contains(row["sha256"].as_str().unwrap()));
    }
    let text = run(&mut ferry(&stack, &config, &["history", "--env", "production", "--limit", "1"]));
    assert_eq!(text.code, 0, "{}", text.all());
    assert_eq!(text.stdout.lines().count(), 1, "{}", text.stdout);
    assert!(text.stdout.contains(&format!("\t{}\tSucceeded\t2\t", d2.deployment_id().unwrap())), "{}", text.stdout);
}

#[test]
fn a_refused_stop_names_codedeploys_error_once_and_ends_with_the_request_id() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let out = run(&mut ferry(&stack, &config, &["stop", "d-AAAAAAAAA", "--env", "production"]));
    assert_eq!(out.code, 2, "CodeDeploy refused: exit 2, as the README's table says:\n{}", out.all());
    let error = out.stderr.lines().find(|l| l.contains("error:")).unwrap_or_else(|| panic!("no error line:\n{}", out.stderr));
    assert_eq!(error.matches("DeploymentDoesNotExistException").count(), 1, "{error}");
    assert!(error.trim_end().ends_with('.') && error.contains(". AWS request id: "), "the request id comes last: {error}");
}

#[test]
fn rollback_to_the_running_revision_or_one_that_never_succeeded_warns_first() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let v1 = release(&stack, &config, &versioned_app(dir.path(), "v1", "exit 0"), &[]);
    assert_eq!(v1.code, 0, "{}", v1.all());
    let v1 = v1.stdout.trim().to_string();
    // v2 fails and nothing rolls it back: the group still runs v1.
    let bad = release(&stack, &config, &versioned_app(dir.path(), "v2", "exit 1"), &["--rollback-on", "never"]);
    assert_eq!(bad.code, 3, "{}", bad.all());
    let v2 = bad.stdout.trim().to_string();

    let running = run(&mut ferry(&stack, &config, &["rollback", "--env", "production", "--to", &v1, "--progress", "plain"]));
    assert_eq!(running.code, 0, "a warning, not a refusal:\n{}", running.all());
    assert!(
        running.stderr.contains(&format!("warning: --to {v1} is the revision web-prod already runs (deployed by {v1}")),
        "{}",
        running.stderr
    );
    assert!(!running.stderr.contains("never succeeded"), "{}", running.stderr);

    let failed = run(&mut ferry(&stack, &config, &["rollback", "--env", "production", "--to", &v2, "--progress", "plain"]));
    assert!(
        failed.stderr.contains(&format!("warning: --to {v2} never succeeded in web-prod"))
            && failed.stderr.contains("its deployment ended Failed"),
        "{}",
        failed.stderr
    );
}
