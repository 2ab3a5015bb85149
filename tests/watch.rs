//! watch and report against the CodeDeploy emulator: per-instance lifecycle
//! lines, failures with their script output, large throttled fleets,
//! attaching to deployments ferry did not start, and the renderers' formats.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use common::{FERRY, Stack, StackOptions, assert_no_secrets, run};

/// An app whose AfterInstall hook fails on its second run (the second
/// instance, with OneAtATime), printing a recognisable error first.
fn app_failing_on_second_instance(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("scripts")).unwrap();
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/migrate.sh\n      timeout: 30\n",
    )
    .unwrap();
    let counter = dir.join("runs");
    let script = format!(
        "#!/bin/bash\nn=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'\n\
         echo \"migrating schema, run $n\"\n\
         if [ \"$n\" -eq 2 ]; then echo 'ERROR: relation \"users\" already exists' >&2; exit 1; fi\n",
        c = counter.display()
    );
    std::fs::write(app.join("scripts/migrate.sh"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(app.join("scripts/migrate.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    app
}

fn app_without_hooks(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    std::fs::write(app.join("index.html"), "hi\n").unwrap();
    app
}

/// A three-instance stack and `ferry [global…] release` of the app whose
/// AfterInstall fails on the second instance (one at a time, so the third is
/// skipped), with `extra` after the release's own arguments. The stack is
/// returned for the test's checks; `dir` holds the app and ferry.toml.
fn release_failing_on_second(dir: &Path, global: &[&str], extra: &[&OsStr]) -> (Stack, common::Run) {
    let stack = Stack::start_with(StackOptions { instances: 3, ..Default::default() });
    let app = app_failing_on_second_instance(dir);
    let config = stack.write_config(dir, "production");
    let out = run(stack
        .ferry_command(FERRY)
        .args(global)
        .args(["release", app.to_str().unwrap(), "--env", "production"])
        .args(["--deployment-config", "CodeDeployDefault.OneAtATime", "--timeout", "2m"])
        .args(extra)
        .arg("--config")
        .arg(&config));
    (stack, out)
}

fn has_ansi_or_cr(s: &str) -> bool {
    s.contains('\u{1b}') || s.contains('\r')
}

#[test]
fn failed_after_install_on_second_instance_names_instance_event_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, out) = release_failing_on_second(dir.path(), &[], &["--wait".as_ref()]);

    assert_eq!(out.code, 3, "a failed deployment exits 3:\n{}", out.all());
    let failed_line = out
        .stderr
        .lines()
        .find(|l| l.contains("failed AfterInstall"))
        .unwrap_or_else(|| panic!("no failed-event line:\n{}", out.stderr));
    let instance = failed_line.split_whitespace().skip_while(|w| *w != "instance").nth(1).unwrap().to_string();
    assert!(instance.starts_with("i-"), "{failed_line}");
    assert!(failed_line.contains("ScriptFailed") && failed_line.contains("scripts/migrate.sh"), "{failed_line}");
    assert!(out.stderr.contains("relation \"users\" already exists"), "the script's output is shown:\n{}", out.stderr);
    // The emulator writes logTail as the real agent does ("[stdout]…"
    // prefixes under "Script - PATH"): shown decoded, streams told apart.
    assert!(out.stderr.lines().any(|l| l.ends_with("     | migrating schema, run 2")), "stdout after `| `:\n{}", out.stderr);
    assert!(
        out.stderr.lines().any(|l| l.ends_with("     ! ERROR: relation \"users\" already exists")),
        "stderr after `! `:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("[stdout]") && !out.stderr.contains("[stderr]"), "no raw agent prefixes:\n{}", out.stderr);
    assert!(out.stderr.contains(&format!("failed: {instance} in AfterInstall")), "summary names it:\n{}", out.stderr);
    // The failed instance is the second one to run: the first succeeded.
    let succeeded = out.stderr.lines().filter(|l| l.contains("ValidateService Succeeded")).count();
    assert_eq!(succeeded, 1, "exactly the first instance finished:\n{}", out.stderr);
    assert!(!has_ansi_or_cr(&out.stderr), "plain output has no ANSI or CR");
    assert_no_secrets(&stack, &out);
}

#[test]
fn thousand_instances_under_throttling_complete_without_showing_throttling() {
    // Well below what ferry asks at its fastest (4 GetDeployment a second),
    // so throttling certainly happens and the SDK's retries must absorb it.
    let rate_limits: BTreeMap<String, f64> =
        [("*", 5.0), ("GetDeployment", 2.0), ("ListDeploymentTargets", 2.0), ("BatchGetDeploymentTargets", 2.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    let stack =
        Stack::start_with(StackOptions { instances: 1000, step_delay: Duration::ZERO, rate_limits, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_without_hooks(dir.path());
    let config = stack.write_config(dir.path(), "production");

    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "5m"])
        .args(["--deployment-config", "CodeDeployDefault.AllAtOnce"])
        .arg("--config")
        .arg(&config));

    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("1000 succeeded, 0 failed, 0 skipped of 1000 instances"), "{}", out.stderr);
    assert!(!out.all().contains("Throttl"), "throttling must not surface:\n{}", out.all());
    // A fleet this size gets counts, not 7,000 per-event lines.
    assert!(out.stderr.lines().count() < 200, "{} lines", out.stderr.lines().count());

    // The emulator really was throttling: a quick burst without retries is refused.
    let throttled = stack.block_on(async {
        let conf = stack
            .codedeploy()
            .config()
            .to_builder()
            .retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled())
            .build();
        let cd = aws_sdk_codedeploy::Client::from_conf(conf);
        let mut throttled = 0;
        for _ in 0..6 {
            if let Err(e) = cd.list_applications().send().await
                && aws_sdk_codedeploy::error::ProvideErrorMetadata::code(&e) == Some("ThrottlingException")
            {
                throttled += 1;
            }
        }
        throttled
    });
    assert!(throttled > 0, "the emulator was not throttling; the test proves nothing");
}

#[test]
fn watch_attaches_to_a_deployment_created_by_another_client() {
    let stack = Stack::start_with(StackOptions { instances: 2, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_without_hooks(dir.path());
    let config = stack.write_config(dir.path(), "production");
    // Put a bundle in place with ferry (no deployment), then deploy it with
    // the plain SDK as the console or another tool would.
    let bundle = dir.path().join("app.zip");
    {
        let f = std::fs::File::create(&bundle).unwrap();
        let mut z = zip::ZipWriter::new(f);
        use std::io::Write;
        z.start_file("appspec.yml", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(b"version: 0.0\nos: linux\n").unwrap();
        z.finish().unwrap();
    }
    let _ = app;
    let deployment_id = stack.block_on(async {
        let bytes = std::fs::read(&bundle).unwrap();
        let put =
            stack.s3_as_prod().put_object().bucket(stack.bucket()).key("manual/app.zip").body(bytes.into()).send().await.unwrap();
        let s3 = aws_sdk_codedeploy::types::S3Location::builder()
            .bucket(stack.bucket())
            .key("manual/app.zip")
            .bundle_type(aws_sdk_codedeploy::types::BundleType::Zip)
            .e_tag(put.e_tag().unwrap().trim_matches('"'))
            .build();
        let rev = aws_sdk_codedeploy::types::RevisionLocation::builder()
            .revision_type(aws_sdk_codedeploy::types::RevisionLocationType::S3)
            .s3_location(s3)
            .build();
        let d = stack
            .codedeploy()
            .create_deployment()
            .application_name(stack.application())
            .deployment_group_name(stack.deployment_group())
            .revision(rev)
            .send()
            .await
            .unwrap();
        d.deployment_id().unwrap().to_string()
    });

    let out = run(stack
        .ferry_command(FERRY)
        .args(["watch", &deployment_id, "--env", "production", "--output", "json"])
        .arg("--config")
        .arg(&config));
    assert_eq!(out.code, 0, "{}", out.all());
    let events: Vec<serde_json::Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let finished = events.iter().find(|e| e["event"] == "finished").expect("a finished event");
    assert_eq!(finished["deployment_id"], deployment_id.as_str());
    assert_eq!(finished["outcome"], "succeeded");
    assert_eq!(finished["overview"]["succeeded"], 2);
    assert!(events.iter().all(|e| e["ts"].is_string()), "every event has a timestamp");
    assert!(events.iter().any(|e| e["event"] == "target_event_changed" && e["lifecycle_event"] == "Install"));
    assert!(out.stderr.is_empty(), "json mode keeps stderr clean: {}", out.stderr);

    let status =
        run(stack.ferry_command(FERRY).args(["status", &deployment_id, "--env", "production"]).arg("--config").arg(&config));
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(status.stderr.contains(&format!("deployment {deployment_id} Succeeded")), "{}", status.stderr);
}

#[test]
fn timeout_exits_5_and_says_what_was_still_running() {
    let stack = Stack::start_with(StackOptions { step_delay: Duration::from_secs(2), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_without_hooks(dir.path());
    let config = stack.write_config(dir.path(), "production");
    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "3s"])
        .arg("--config")
        .arg(&config));
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.stderr.contains("TIMED OUT"), "{}", out.stderr);
    assert!(out.stderr.contains("still InProgress") && out.stderr.contains("still running: i-"), "{}", out.stderr);
    assert!(out.stderr.contains("ferry watch d-"), "says how to follow again:\n{}", out.stderr);
}

/// `--junit`: what Jenkins' `junit` step reads, parsed by a JUnit parser
/// that is not ferry's writer: one suite for the deployment, the first
/// instance passed with its lifecycle events, the second failed with the
/// event, the agent's error code and the hook's stderr, the third skipped.
#[test]
fn junit_report_has_a_testcase_per_instance_with_the_failure_and_the_skip() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("reports/ferry.xml");
    std::fs::create_dir_all(junit.parent().unwrap()).unwrap();

    let (stack, out) = release_failing_on_second(dir.path(), &[], &["--wait".as_ref(), "--junit".as_ref(), junit.as_os_str()]);
    assert_eq!(out.code, 3, "{}", out.all());

    let xml = std::fs::read_to_string(&junit).unwrap();
    let report = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap();
    assert_eq!(report.suites.len(), 1, "{xml}");
    let suite = &report.suites[0];
    assert_eq!((suite.tests, suite.failures, suite.skipped), (3, 1, 1), "{xml}");
    assert_eq!(suite.properties.hashmap.get("outcome").map(String::as_str), Some("failed"), "{xml}");
    let mut passed = 0;
    for case in &suite.cases {
        assert!(case.original_name.starts_with("i-"), "{xml}");
        assert_eq!(case.classname.as_deref(), Some("web.web-prod"), "{xml}");
        match &case.status {
            junit_parser::TestStatus::Success => {
                passed += 1;
                let out = case.system_out.as_deref().unwrap_or_default();
                assert!(out.contains("AfterInstall Succeeded") && out.contains("ValidateService Succeeded"), "{xml}");
                assert!(case.time > 0.0, "lifecycle durations add up to the case's time: {xml}");
            }
            junit_parser::TestStatus::Failure(f) => {
                assert_eq!(f.failure_type, "ScriptFailed", "{xml}");
                assert!(f.message.starts_with("AfterInstall failed [ScriptFailed]"), "{xml}");
                // junit-parser splits text at entity references (the quotes
                // around "users" are &quot;), so match a part without them.
                assert!(f.text.contains("ERROR: relation") && f.text.contains("already exists"), "the hook's output: {f:?}");
            }
            junit_parser::TestStatus::Skipped(_) => {}
            other => panic!("unexpected {other:?}: {xml}"),
        }
    }
    assert_eq!(passed, 1, "{xml}");
    assert_no_secrets(&stack, &out);
}

#[test]
fn json_output_carries_the_hooks_output_decoded_beside_the_agents_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (_stack, out) = release_failing_on_second(dir.path(), &["--output", "json"], &[]);
    assert_eq!(out.code, 3, "{}", out.all());
    let failed: serde_json::Value = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "lifecycle_failed")
        .unwrap_or_else(|| panic!("no lifecycle_failed event:\n{}", out.stdout));
    let tail = failed["log_tail"].as_str().unwrap();
    assert!(
        tail.contains("Script - scripts/migrate.sh\n") && tail.contains("\n[stdout]migrating schema, run 2\n"),
        "the agent's raw format: {tail}"
    );
    let output = failed["output"].as_array().unwrap_or_else(|| panic!("no decoded output: {failed}"));
    assert!(
        output.iter().any(|l| l["script"] == "scripts/migrate.sh"
            && l["stream"] == "stderr"
            && l["text"] == "ERROR: relation \"users\" already exists"),
        "{failed}"
    );
    assert!(output.iter().any(|l| l["stream"] == "stdout" && l["text"] == "migrating schema, run 2"), "{failed}");
}

#[test]
fn a_role_that_may_not_list_targets_gets_a_warning_and_the_deployment_still_followed() {
    // The deploy policy without its "*" statement: ListDeploymentTargets
    // and BatchGetDeploymentTargets are then refused (they take no resource
    // type), as on AWS with a group-scoped grant.
    let mut policy = common::group_scoped_deployer_policy();
    // The same group-scoped grant for the targets actions: AWS ignores it.
    policy["Statement"][1]["Action"].as_array_mut().unwrap().push("codedeploy:ListDeploymentTargets".into());
    let stack = Stack::start_with(StackOptions { deployer_policy: Some(policy), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = app_without_hooks(dir.path());
    let config = stack.write_config(dir.path(), "production");
    let out =
        run(stack.ferry_command(FERRY).args(["release", app.to_str().unwrap(), "--env", "production", "--config"]).arg(&config));
    assert_eq!(out.code, 0, "the deployment's own status decides:\n{}", out.all());
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains("no per-instance progress")).collect();
    assert_eq!(warnings.len(), 1, "said once:\n{}", out.stderr);
    assert!(
        warnings[0].contains("codedeploy:ListDeploymentTargets") && warnings[0].contains("AccessDeniedException"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].trim_end().ends_with('.') && warnings[0].contains("AWS request id: "),
        "request id last: {}",
        warnings[0]
    );
}

/// Issue 26 item 12: three instances failing ValidateService with the same
/// output show it once in a plain log, under one header naming all three;
/// JSON keeps each instance's own event with its output.
#[test]
fn identical_hook_output_of_three_instances_is_shown_once_and_json_keeps_each() {
    let stack = Stack::start_with(StackOptions { instances: 3, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let app = common::app_tree(dir.path(), "echo 'health check refused' >&2; exit 1");
    let config = stack.write_config(dir.path(), "production");
    let release = |global: &[&str]| {
        run(stack
            .ferry_command(FERRY)
            .args(global)
            .args(["release", app.to_str().unwrap(), "--env", "production", "--config"])
            .arg(&config)
            .args(["--deployment-config", "CodeDeployDefault.AllAtOnce"]))
    };
    let plain = release(&["--progress", "plain"]);
    assert_eq!(plain.code, 3, "{}", plain.all());
    let failed: Vec<&str> = plain
        .stderr
        .lines()
        .filter_map(|l| l.split(" instance ").nth(1)?.split_once(" failed ValidateService").map(|(id, _)| id))
        .collect();
    assert_eq!(failed.len(), 3, "{}", plain.stderr);
    assert_eq!(plain.stderr.matches("! health check refused").count(), 1, "{}", plain.stderr);
    let headers: Vec<&str> = plain.stderr.lines().filter(|l| l.contains("--- hook output of ")).collect();
    for id in &failed {
        assert!(headers.iter().any(|h| h.contains(id)), "{id} has no header naming it:\n{}", plain.stderr);
    }

    let json = release(&["--output", "json"]);
    let outputs: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "lifecycle_failed")
        .map(|e| e["output"].clone())
        .collect();
    assert_eq!(outputs.len(), 3, "one event per instance:\n{}", json.stdout);
    for output in outputs {
        assert_eq!(output[0]["text"], "health check refused", "{output}");
    }
}
