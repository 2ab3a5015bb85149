//! The Jenkins snippets under jenkins/ are part of the product. This file
//! checks them two ways:
//!
//! - every `sh` step of the Jenkinsfiles, and the shared-library steps as
//!   rendered by Groovy, runs with bash in a Jenkins-like environment against
//!   the local stack, and leaves what a build would leave behind;
//! - the Groovy around those steps (Jenkinsfile stages, `ferryRelease`,
//!   `ferryRollback`, the mapping snippet in docs/jenkins.md) runs in
//!   scripts/groovy/harness.groovy with a fake `sh` returning each ferry exit
//!   code, and sets the documented build and stage result.
//!
//! Groovy is required: a machine without it fails here with how to install
//! it, instead of passing without having looked (scripts/test installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{FERRY, Stack, StackOptions, assert_no_secrets, run};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The shell scripts of a Jenkinsfile, in order: `sh '…'`, `sh '''…'''`,
/// and the `script: '…'` of `sh(returnStatus: true, script: '…')`.
fn sh_steps(text: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let mut rest = text;
    loop {
        let next = ["sh '", "script: '"].iter().filter_map(|o| rest.find(o).map(|p| (p, o.len() - 1))).min();
        let Some((pos, len)) = next else { break };
        let before = rest[..pos].chars().last();
        let start = &rest[pos + len..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            rest = start;
            continue;
        }
        let (quote, body) = match start.strip_prefix("'''") {
            Some(body) => ("'''", body),
            None => ("'", &start[1..]),
        };
        let end = body.find(quote).expect("unterminated sh string");
        steps.push(body[..end].to_string());
        rest = &body[end + quote.len()..];
    }
    steps
}

#[test]
fn sh_steps_are_found_in_order() {
    let text = "steps {\n  sh 'make dist'\n  echo 'no'\n  sh '''\n    set -eu\n    ferry x\n  '''\n  bash 'no'\n  \
                int rc = sh(returnStatus: true, label: 'l', script: 'ferry y')\n}";
    assert_eq!(
        sh_steps(text),
        vec!["make dist".to_string(), "\n    set -eu\n    ferry x\n  ".to_string(), "ferry y".to_string()]
    );
}

/// A Jenkins workspace: ferry.toml with staging and production, a Makefile
/// whose `dist` target builds `build/app`, and `ferry` on PATH.
struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bin: PathBuf,
}

impl Workspace {
    fn new(stack: &Stack, version: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("workspace");
        std::fs::create_dir_all(&root).unwrap();
        let staging = stack.config_toml("staging").replace(stack.deployment_group(), "web-staging");
        std::fs::write(root.join("ferry.toml"), format!("{}\n{}", stack.config_toml("production"), staging)).unwrap();
        std::fs::write(
            root.join("Makefile"),
            format!("dist:\n\trm -rf build && mkdir -p build && cp -r {REPO}/examples/hello build/app && echo '{version}' > build/app/site/VERSION\n"),
        )
        .unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(FERRY, bin.join("ferry")).unwrap();
        Workspace { _dir: dir, root, bin }
    }

    /// bash -c `script` as Jenkins' `sh` would run it: no TTY, the job's
    /// variables, the agent's AWS credentials, and `CI` unset (Jenkins does
    /// not set it; ferry must detect JENKINS_URL).
    fn sh(&self, stack: &Stack, script: &str, build: u32, extra: &[(&str, &str)]) -> common::Run {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(script)
            .env_clear()
            .envs(stack.ferry_env())
            .env("PATH", path)
            .env("HOME", self.root.parent().unwrap())
            .env("WORKSPACE", &self.root)
            .env("JENKINS_URL", "https://jenkins.example.com/")
            .env("JOB_NAME", "web/main")
            .env("BUILD_NUMBER", build.to_string())
            .env("BUILD_TAG", format!("jenkins-web-main-{build}"))
            .env("BUILD_URL", format!("https://jenkins.example.com/job/web/job/main/{build}/"))
            .env("FERRY_CONFIG", "ferry.toml")
            .envs(extra.iter().copied())
            .current_dir(&self.root)
            .stdin(Stdio::null());
        run(&mut cmd)
    }
}

fn add_staging_group(stack: &Stack) {
    stack.block_on(async {
        stack
            .codedeploy()
            .create_deployment_group()
            .application_name(stack.application())
            .deployment_group_name("web-staging")
            .service_role_arn(format!("arn:aws:iam::{}:role/CodeDeployServiceRole", ferry_test_stack::PRODUCTION_ACCOUNT))
            .tags(aws_sdk_codedeploy::types::Tag::builder().key(ferry_test_stack::INSTANCES_TAG).value("1").build())
            .send()
            .await
            .unwrap();
    });
}

fn assert_clean_log(stack: &Stack, out: &common::Run, what: &str) {
    assert_eq!(out.code, 0, "{what} failed:\n{}", out.all());
    assert!(!out.all().contains('\u{1b}') && !out.all().contains('\r'), "{what}: ANSI or CR in a Jenkins log:\n{}", out.all());
    assert_no_secrets(stack, out);
}

fn deployed_version(stack: &Stack, group: &str) -> String {
    let dir = stack.emulator_work_dir().join(group);
    let instance = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    std::fs::read_to_string(instance.join("opt/hello/VERSION")).unwrap().trim().to_string()
}

fn jenkinsfile(name: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join("jenkins").join(name)).unwrap()
}

#[test]
fn jenkinsfile_sh_steps_release_to_staging_and_production_and_leave_receipts() {
    let stack = Stack::start_with(StackOptions { instances: 2, policy_groups: vec!["web-staging".into()], ..Default::default() });
    add_staging_group(&stack);
    let ws = Workspace::new(&stack, "1.0.0");
    let steps = sh_steps(&jenkinsfile("Jenkinsfile"));
    assert_eq!(steps.len(), 5, "build, check, bundle, staging, production: {steps:?}");

    for step in &steps {
        let out = ws.sh(&stack, step, 41, &[]);
        assert_clean_log(&stack, &out, step);
    }

    for receipt in ["ferry-receipt-staging.json", "ferry-receipt.json"] {
        let path = ws.root.join(receipt);
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("archiveArtifacts looks for {}: {e}", path.display())),
        )
        .unwrap();
        assert_eq!(json["outcome"], "succeeded", "{receipt}: {json}");
        assert_eq!(json["session_name"], "jenkins-web-main-41");
        // Archived artifacts: no long-term key, and none of the role
        // sessions moto issued to ferry during this build.
        common::assert_text_has_no_secrets(&stack, &json.to_string());
    }
    assert_eq!(deployed_version(&stack, "web-staging"), "1.0.0");
    assert_eq!(deployed_version(&stack, stack.deployment_group()), "1.0.0");
    // What the post blocks hand to `junit`: one passing test case per instance.
    for (report, instances) in [("ferry-junit-staging.xml", 1), ("ferry-junit.xml", 2)] {
        let path = ws.root.join(report);
        let xml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("junit looks for {}: {e}", path.display()));
        common::assert_text_has_no_secrets(&stack, &xml);
        let suites = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap();
        let cases: usize = suites.suites.iter().map(|s| s.cases.len()).sum();
        assert_eq!(cases, instances, "{report}: {xml}");
        assert!(
            suites.suites.iter().flat_map(|s| &s.cases).all(|c| matches!(c.status, junit_parser::TestStatus::Success)),
            "{report}: {xml}"
        );
    }
}

#[test]
fn rollback_job_returns_production_to_the_previous_release() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let ws = Workspace::new(&stack, "1.0.0");
    let release = "make dist && ferry release build/app --env production";
    assert_clean_log(&stack, &ws.sh(&stack, release, 1, &[]), "first release");
    let ws2 = Workspace::new(&stack, "2.0.0");
    assert_clean_log(&stack, &ws2.sh(&stack, release, 2, &[]), "second release");
    assert_eq!(deployed_version(&stack, stack.deployment_group()), "2.0.0");

    let steps = sh_steps(&jenkinsfile("Jenkinsfile.rollback"));
    assert_eq!(steps.len(), 2, "history, rollback: {steps:?}");
    assert!(steps[1].contains("ferry rollback"), "{steps:?}");
    for step in &steps {
        let out = ws.sh(&stack, step, 3, &[("ENVIRONMENT", "production"), ("TARGET", "")]);
        assert_clean_log(&stack, &out, step);
    }
    assert_eq!(deployed_version(&stack, stack.deployment_group()), "1.0.0");
    assert!(ws.root.join("ferry-receipt.json").exists());
}

/// `groovy`, ready to run: Debian's launcher needs JAVA_HOME to name a real
/// JVM, so it is derived from `java` on PATH when unset or wrong. Without
/// groovy or java the test fails and says how to install them: a Jenkins
/// snippet nobody ran must not count as a passed test.
fn groovy() -> Command {
    let found = |tool: &str| {
        std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(tool)).find(|p| p.is_file()))
    };
    let install = "install it: `apt-get install groovy` (Debian's package brings a JVM), or run scripts/test, \
                   which sources scripts/groovy-env to install it";
    assert!(found("groovy").is_some(), "groovy is not on PATH; tests/jenkins.rs runs the Jenkins snippets with it. To {install}");
    let java = found("java").unwrap_or_else(|| panic!("java is not on PATH; groovy needs it. To {install}"));
    let mut cmd = Command::new("groovy");
    let java_home_ok = std::env::var_os("JAVA_HOME").is_some_and(|h| Path::new(&h).join("bin/java").is_file());
    if !java_home_ok {
        let real = std::fs::canonicalize(&java).unwrap();
        cmd.env("JAVA_HOME", real.parent().and_then(Path::parent).unwrap());
    }
    cmd.current_dir(REPO);
    cmd
}

/// Renders a shared-library step with Groovy and returns its sh script.
fn render_step(step: &str, args: &[&str]) -> String {
    let out = groovy()
        .arg(Path::new(REPO).join("scripts/groovy/render-step.groovy"))
        .arg(Path::new(REPO).join("jenkins/vars").join(format!("{step}.groovy")))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn shared_library_release_step_runs_a_real_release() {
    let script = render_step("ferryRelease", &["env=production", "bundle=build/app", "timeout=5m"]);
    assert!(!script.contains("--wait"), "ferry release follows by default: {script}");
    let stack = Stack::start();
    let ws = Workspace::new(&stack, "3.1.4");
    assert_clean_log(&stack, &ws.sh(&stack, "make dist", 7, &[]), "make dist");
    let out = ws.sh(&stack, &script, 7, &[]);
    assert_clean_log(&stack, &out, &script);
    assert_eq!(deployed_version(&stack, stack.deployment_group()), "3.1.4");
    assert!(ws.root.join("ferry-receipt.json").exists());
}

#[test]
fn shared_library_step_refuses_missing_arguments() {
    let out = groovy()
        .arg(Path::new(REPO).join("scripts/groovy/render-step.groovy"))
        .arg(Path::new(REPO).join("jenkins/vars/ferryRelease.groovy"))
        .arg("env=production")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'bundle' argument is required"));
}

#[test]
fn shared_library_release_step_takes_an_image_instead_of_a_bundle() {
    let image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4";
    let script = render_step("ferryRelease", &["env=production", &format!("image={image}")]);
    assert!(script.contains(&format!("'release' '--image' '{image}' '--env' 'production'")), "{script}");
    let out = groovy()
        .arg(Path::new(REPO).join("scripts/groovy/render-step.groovy"))
        .arg(Path::new(REPO).join("jenkins/vars/ferryRelease.groovy"))
        .args(["env=production", "bundle=build/app", &format!("image={image}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"), "{}", String::from_utf8_lossy(&out.stderr));
}

// ------------------------------------------------------------------------
// Exit codes -> build results, run in scripts/groovy/harness.groovy.

/// Every exit code ferry documents, one it does not (127: ferry not found,
/// no receipt), and `abort`: Jenkins aborting the `sh` step itself.
const CODES: [&str; 13] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "130", "143", "127", "abort"];

/// The receipt ferry writes for each code, with every field as ferry writes
/// it (nulls included); 127 has none.
fn receipts() -> serde_json::Value {
    let receipt = |code: &str, id: &str, outcome: Option<&str>, error: Option<&str>| {
        let rolled_back = code == "7";
        let rollback_id = rolled_back.then_some("d-ROLL00007");
        let rollback_outcome = rolled_back.then_some("succeeded");
        let signal = match code {
            "130" => Some("SIGINT"),
            "143" | "abort" => Some("SIGTERM"),
            _ => None,
        };
        serde_json::json!({
            "environment": "production", "role_arn": "arn:aws:iam::222222222222:role/CA_ServiceDeployer",
            "session_name": "jenkins-web-main-42", "bucket": "acme-prod-releases", "key": "releases/x.zip",
            "sha256": "ab".repeat(32), "etag": "\"e\"", "version_id": null, "application": "web",
            "deployment_group": "web-prod", "deployment_id": id, "outcome": outcome, "build": "jenkins-web-main-42",
            "rollback_deployment_id": rollback_id, "rollback_outcome": rollback_outcome,
            "started_at": "2026-11-27T21:40:01Z", "finished_at": "2026-11-27T21:52:13Z", "elapsed_ms": 732000,
            "signal": signal,
            "error": error,
        })
    };
    serde_json::json!({
        "0": receipt("0", "d-TEST00000", Some("succeeded"), None),
        "1": receipt("1", "", None, Some("ferry.toml: [env.production] has no bucket")),
        "2": receipt("2", "", None, Some("AWS refused AssumeRole: AccessDenied")),
        "3": receipt("3", "d-TEST00003", Some("failed"), None),
        "4": receipt("4", "d-TEST00004", Some("stopped"), None),
        "5": receipt("5", "d-TEST00005", Some("timed_out"), None),
        "6": receipt("6", "d-TEST00006", Some("ready"), None),
        "7": receipt("7", "d-TEST00007", Some("rolled_back"), None),
        "8": receipt("8", "d-TEST00008", Some("superseded"), None),
        "130": receipt("130", "d-TEST00130", Some("aborted"), None),
        "143": receipt("143", "d-TEST00143", Some("aborted"), None),
        "abort": receipt("abort", "d-TESTABORT", Some("aborted"), None),
    })
}

/// What each code must do to the build and to the stage that ran ferry, and
/// words the build's messages must carry (the receipt's reason or a hint).
fn expected(code: &str) -> (&'static str, &'static [&'static str]) {
    match code {
        "0" => ("SUCCESS", &["d-TEST00000 succeeded"]),
        "1" => ("FAILURE", &["has no bucket"]),
        "2" => ("FAILURE", &["AccessDenied"]),
        "3" => ("FAILURE", &["d-TEST00003 failed"]),
        "4" => ("ABORTED", &["d-TEST00004 was stopped"]),
        "5" => ("FAILURE", &["ferry watch d-TEST00005"]),
        "6" => ("UNSTABLE", &["ferry continue d-TEST00006"]),
        "7" => ("UNSTABLE", &["d-ROLL00007"]),
        "8" => ("NOT_BUILT", &["superseded"]),
        "130" => ("ABORTED", &["SIGINT"]),
        "143" => ("ABORTED", &["SIGTERM"]),
        "127" => ("FAILURE", &["exited 127", "no receipt"]),
        "abort" => ("ABORTED", &[]),
        _ => unreachable!(),
    }
}

/// One harness run: a JSON line per code, keyed by code.
fn harness(args: &[&str]) -> std::collections::BTreeMap<String, serde_json::Value> {
    harness_with(&receipts(), args)
}

/// [`harness`] with other receipts (by code; a code without one gets none).
fn harness_with(receipts: &serde_json::Value, args: &[&str]) -> std::collections::BTreeMap<String, serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let receipts_file = dir.path().join("receipts.json");
    std::fs::write(&receipts_file, receipts.to_string()).unwrap();
    let out = groovy()
        .arg("scripts/groovy/harness.groovy")
        .arg("--receipts")
        .arg(receipts_file)
        .arg("--codes")
        .arg(CODES.join(","))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "harness {args:?} failed:\n{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let runs: std::collections::BTreeMap<String, serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .map(|v| (v["code"].as_str().unwrap().to_string(), v))
        .collect();
    assert_eq!(runs.len(), CODES.len(), "one line per code: {stdout}");
    runs
}

/// Everything the build said: the error that ended it and the log.
fn messages(run: &serde_json::Value) -> String {
    format!(
        "{}\n{}",
        run["thrown"].as_str().unwrap_or(""),
        run["log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("\n")
    )
}

/// Asserts the documented mapping for every code on `stage`, plus the
/// description (deployment id and outcome from the receipt) and the reason.
fn assert_mapping(what: &str, runs: &std::collections::BTreeMap<String, serde_json::Value>, stage: &str) {
    for code in CODES {
        let run = &runs[code];
        let (result, words) = expected(code);
        assert_eq!(run["build"], result, "{what}, exit {code}: build result\n{run:#}");
        assert_eq!(run["stages"][stage]["result"], result, "{what}, exit {code}: stage {stage}\n{run:#}");
        let said = messages(run);
        for word in words {
            assert!(said.contains(word), "{what}, exit {code}: the build should say `{word}`:\n{said}");
        }
        let receipt = &receipts()[code];
        if code != "abort" {
            let description = run["description"].as_str().unwrap_or_else(|| panic!("{what}, exit {code}: no description"));
            match receipt["deployment_id"].as_str() {
                Some(id) if !id.is_empty() => {
                    let outcome = receipt["outcome"].as_str().unwrap();
                    assert!(description.contains(&format!("{id} {outcome}")), "{what}, exit {code}: {description}");
                }
                _ => assert!(description.contains("no deployment"), "{what}, exit {code}: {description}"),
            }
            assert!(!description.contains("null"), "{what}, exit {code}: a JSON null leaked: {description}");
        }
        assert!(!said.contains("null"), "{what}, exit {code}: a JSON null leaked into the messages:\n{said}");
    }
}

#[test]
fn the_ecs_jenkinsfile_releases_the_image_and_sets_the_documented_result_for_each_exit_code() {
    let runs = harness(&["--stage", "Production", "jenkinsfile", "jenkins/Jenkinsfile.ecs"]);
    assert_mapping("Jenkinsfile.ecs, Production", &runs, "Production");
    let text = jenkinsfile("Jenkinsfile.ecs");
    assert!(text.contains("ferryRelease(env: 'production', image: env.IMAGE"), "{text}");
}

#[test]
fn jenkinsfile_production_stage_sets_the_documented_result_for_each_exit_code() {
    let runs = harness(&["--stage", "Production", "jenkinsfile", "jenkins/Jenkinsfile"]);
    assert_mapping("Jenkinsfile, Production", &runs, "Production");
    for code in CODES {
        // The receipt is archived whatever happened, an abort included.
        assert!(runs[code]["archived"].as_array().unwrap().contains(&"ferry-receipt.json".into()), "exit {code}");
        // The receipt read is the one the command wrote.
        assert!(
            runs[code]["sh"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().contains("--receipt ferry-receipt.json"))
        );
    }
}

#[test]
fn wave_jenkinsfile_production_stage_sets_the_documented_result_for_each_exit_code() {
    let runs = harness(&["--stage", "Production", "jenkinsfile", "jenkins/Jenkinsfile.wave"]);
    assert_mapping("Jenkinsfile.wave, Production", &runs, "Production");
    let script = runs["0"]["sh"].as_array().unwrap().iter().filter_map(|s| s.as_str()).find(|s| s.contains("--wave"));
    let script = script.unwrap_or_else(|| panic!("no ferry release --wave step: {}", runs["0"]));
    // Jenkins' timeout above ferry's own deadline, as the file says.
    assert!(script.contains("'--timeout' '2h'"), "{script}");
    assert_eq!(runs["0"]["stages"]["Production"]["timeout_minutes"], 125, "{}", runs["0"]);
}

#[test]
fn jenkinsfile_staging_result_other_than_success_skips_approval_and_production() {
    let runs = harness(&["--stage", "Staging", "jenkinsfile", "jenkins/Jenkinsfile"]);
    assert_mapping("Jenkinsfile, Staging", &runs, "Staging");
    for code in CODES {
        let stages = &runs[code]["stages"];
        let later = if code == "0" { "SUCCESS" } else { "SKIPPED" };
        for stage in ["Approve production", "Production"] {
            assert_eq!(stages[stage]["result"], later, "staging exit {code}: {stage}\n{stages:#}");
        }
    }
}

/// A duration as ferry's flags take it (`50m`, `1h30m`, `90s`), in seconds.
fn seconds(text: &str) -> u64 {
    let (mut total, mut n) = (0, 0);
    for c in text.chars() {
        match c {
            '0'..='9' => n = n * 10 + u64::from(c.to_digit(10).unwrap()),
            'h' => (total, n) = (total + n * 3600, 0),
            'm' => (total, n) = (total + n * 60, 0),
            's' => (total, n) = (total + n, 0),
            _ => panic!("not a duration: {text}"),
        }
    }
    total + n
}

/// The value of `--flag VALUE` in a shell command, or `default`.
fn flag<'a>(script: &'a str, name: &str, default: &'a str) -> &'a str {
    let words: Vec<&str> = script.split_whitespace().collect();
    words.iter().position(|w| *w == name).map_or(default, |i| words[i + 1])
}

#[test]
fn jenkinsfile_waits_for_approval_without_an_agent_and_gives_ferry_its_time() {
    let runs = harness(&["jenkinsfile", "jenkins/Jenkinsfile"]);
    let run = &runs["0"];
    assert_eq!(run["build"], "SUCCESS", "{run:#}");
    assert_eq!(run["pipeline_agent"], "none", "agent none at the top: no executor held for the whole build");
    let stages = run["stages"].as_object().unwrap();
    for (name, stage) in stages {
        let steps: Vec<&str> = stage["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        if steps.contains(&"input") {
            // Neither the stage nor any stage around it holds an agent while a person decides.
            let mut at = Some(name.as_str());
            while let Some(n) = at {
                assert!(stages[n]["agent"].is_null(), "input in {name} waits inside an agent ({n}): {stage:#}");
                at = stages[n]["parent"].as_str();
            }
        }
        if stages.values().any(|s| s["parent"] == name.as_str()) {
            continue; // a parent stage: its children are checked themselves
        }
        let Some(release) = steps.iter().position(|s| s.starts_with("sh:ferry release")) else { continue };
        // A milestone before the release retires older builds.
        assert!(steps[..release].iter().any(|s| s.starts_with("milestone:")), "{name}: no milestone before ferry: {steps:?}");
        assert!(stage["lock"].as_str().is_some_and(|l| l.ends_with("-deploy")), "{name}: no lock: {stage:#}");
        // Jenkins' timeout outlasts ferry's own: --timeout (which counts
        // from ferry's start: upload and queueing are inside it) and
        // --abort-grace; and --timeout leaves the deployment at least
        // 20 minutes after the longest queueing.
        let script = run["sh"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .find(|s| s.contains("ferry release") && s.contains(&format!("--env {}", name.to_lowercase())));
        let script = script.unwrap_or_else(|| panic!("{name}: no ferry release for its environment"));
        let timeout = seconds(flag(script, "--timeout", "60m"));
        let queue = seconds(flag(script, "--queue-timeout", "30m"));
        assert!(timeout >= queue + 20 * 60, "{name}: --timeout leaves the deployment under 20 minutes ({script})");
        let ferry = timeout + seconds(flag(script, "--abort-grace", "60s"));
        let jenkins = stage["timeout_minutes"].as_u64().unwrap_or_else(|| panic!("{name}: no timeout")) * 60;
        assert!(jenkins > ferry, "{name}: Jenkins' timeout {jenkins}s is not above ferry's {ferry}s ({script})");
    }
    let steps: Vec<&str> = run["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let input = steps.iter().position(|s| *s == "input").expect("production is approved by a person");
    let production = steps.iter().position(|s| s.contains("ferry release production")).unwrap();
    assert!(input < production, "{steps:?}");
    assert!(steps[..input].iter().any(|s| s.starts_with("milestone:")), "a milestone before the approval: {steps:?}");
}

#[test]
fn rollback_job_asks_before_production_and_sets_the_documented_results() {
    let runs =
        harness(&["--param", "ENVIRONMENT=production", "--param", "TARGET=", "jenkinsfile", "jenkins/Jenkinsfile.rollback"]);
    assert_mapping("Jenkinsfile.rollback, production", &runs, "Rollback");
    let run = &runs["0"];
    assert_eq!(run["pipeline_agent"], "none");
    assert!(run["stages"]["Confirm"]["agent"].is_null(), "the question holds no executor: {run:#}");
    let steps: Vec<&str> = run["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let input = steps.iter().position(|s| *s == "input").expect("production asks first");
    let rollback = steps.iter().position(|s| s.starts_with("sh:ferry rollback")).unwrap();
    assert!(input < rollback, "{steps:?}");
    assert_eq!(run["stages"]["Rollback"]["lock"], "production-deploy", "the release pipeline's lock");

    let staging =
        harness(&["--param", "ENVIRONMENT=staging", "--param", "TARGET=", "jenkinsfile", "jenkins/Jenkinsfile.rollback"]);
    assert_eq!(staging["0"]["stages"]["Confirm"]["result"], "SKIPPED", "staging rolls back without asking");
    // The default (first) choice is not production.
    let text = jenkinsfile("Jenkinsfile.rollback");
    assert!(text.contains("choices: ['staging', 'production']"), "staging must be the default choice");
}

#[test]
fn shared_library_steps_set_the_documented_result_for_each_exit_code() {
    let release = harness(&["step", "jenkins/vars/ferryRelease.groovy", "env=production", "bundle=build/app"]);
    assert_mapping("ferryRelease", &release, "step");
    let rollback = harness(&["step", "jenkins/vars/ferryRollback.groovy", "env=production"]);
    assert_mapping("ferryRollback", &rollback, "step");
    let wave = harness(&["step", "jenkins/vars/ferryWave.groovy", "wave=prod", "bundle=build/app", "rollback=all"]);
    assert_mapping("ferryWave", &wave, "step");
    let script = wave["0"]["sh"][0].as_str().unwrap();
    assert!(script.contains("'--wave' 'prod'") && script.contains("'--wave-rollback' 'all'"), "{script}");
    for (code, result) in [("7", "UNSTABLE"), ("8", "NOT_BUILT"), ("143", "ABORTED")] {
        // Codes that let the pipeline go on return what happened.
        let returned = &release[code]["returned"];
        assert_eq!(returned["result"], result, "{returned}");
        assert_eq!(returned["code"], code.parse::<i64>().unwrap());
        assert_eq!(returned["deploymentId"], format!("d-TEST{code:0>5}"), "{returned}");
    }
    assert_eq!(release["7"]["returned"]["rollbackDeploymentId"], "d-ROLL00007");
    let script = release["0"]["sh"][0].as_str().unwrap();
    assert!(!script.contains("--wait"), "ferry release follows by default: {script}");

    // returnStatus: the code comes back and the build result is left alone.
    let status =
        harness(&["step", "jenkins/vars/ferryRelease.groovy", "env=production", "bundle=build/app", "returnStatus=true"]);
    for code in CODES.iter().filter(|c| c.parse::<i64>().is_ok()) {
        assert_eq!(status[*code]["build"], "SUCCESS", "returnStatus, exit {code}");
        assert_eq!(status[*code]["returned"], code.parse::<i64>().unwrap());
    }
}

/// A wave's receipt has no deployment of its own: the build says each
/// environment's, and why the wave halted.
#[test]
fn ferry_wave_step_names_each_environments_deployment_and_the_halt_reason() {
    let wave = |outcome: &str, reason: Option<&str>| {
        serde_json::json!({
            "wave": "prod", "sha256": "ab".repeat(32), "build": null, "outcome": outcome, "exit_code": 0,
            "rollback_policy": "failed", "halted_at_stage": null, "halted_reason": reason, "signal": null, "error": null,
            "stages": [["eu"], ["us"], ["ap"]],
            "envs": [
                { "stage": 1, "started": true, "environment": "eu", "deployment_id": "d-EU", "outcome": "succeeded", "error": null },
                { "stage": 2, "started": true, "environment": "us", "deployment_id": "d-US", "outcome": "failed", "error": null },
                { "stage": 3, "started": false, "environment": "ap", "deployment_id": null, "outcome": null, "error": null },
            ],
        })
    };
    let receipts = serde_json::json!({
        "0": wave("succeeded", None),
        "3": wave("halted", Some("us: deployment d-US ended Failed")),
    });
    let runs = harness_with(&receipts, &["step", "jenkins/vars/ferryWave.groovy", "wave=prod", "bundle=build/app"]);
    assert_eq!(runs["0"]["build"], "SUCCESS");
    let description = runs["0"]["description"].as_str().unwrap();
    assert!(description.contains("ferry wave prod: eu=d-EU us=d-US succeeded"), "{description}");
    assert_eq!(runs["3"]["build"], "FAILURE");
    let said = messages(&runs["3"]);
    assert!(said.contains("ferry wave prod: us: deployment d-US ended Failed"), "{said}");
    assert!(!said.contains("null") && !description.contains("null"), "{said}\n{description}");
}

/// The mapping snippet of docs/jenkins.md: the ```groovy block after the
/// "To map codes yourself" line.
fn docs_snippet() -> String {
    let guide = std::fs::read_to_string(Path::new(REPO).join("docs/jenkins.md")).unwrap();
    let at = guide.find("To map codes yourself").expect("docs/jenkins.md keeps its mapping snippet");
    let block = &guide[at..];
    let start = block.find("```groovy\n").expect("a groovy block") + "```groovy\n".len();
    let end = block[start..].find("```").unwrap();
    block[start..start + end].to_string()
}

#[test]
fn docs_mapping_snippet_sets_the_documented_result_for_each_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let snippet = dir.path().join("snippet.groovy");
    std::fs::write(&snippet, docs_snippet()).unwrap();
    let runs = harness(&["snippet", snippet.to_str().unwrap()]);
    assert_mapping("docs/jenkins.md snippet", &runs, "Production");
}

#[test]
fn docs_snippet_and_rollback_job_carry_the_jenkinsfiles_mapping_unchanged() {
    let function = |text: &str| {
        let start = text.find("def ferryBuildResult(").expect("ferryBuildResult");
        text[start..].trim_end().to_string()
    };
    let release = function(&jenkinsfile("Jenkinsfile"));
    assert_eq!(function(&jenkinsfile("Jenkinsfile.rollback")), release, "Jenkinsfile.rollback's copy drifted");
    assert_eq!(function(&docs_snippet()), release, "docs/jenkins.md's copy drifted");
}

/// The harness itself: a mapping that forgets `returnPojo` reads JSON null
/// as json-lib's JSONNull, which Groovy counts as true, so the reason would
/// say "null" in real Jenkins; the harness must show that too.
#[test]
fn harness_shows_the_jsonnull_trap_of_readjson_without_returnpojo() {
    let dir = tempfile::tempdir().unwrap();
    let snippet = dir.path().join("trap.groovy");
    std::fs::write(
        &snippet,
        "stage('Production') { steps { script {\n\
         int code = sh(returnStatus: true, script: 'ferry release x --receipt r.json')\n\
         Map r = readJSON(file: 'r.json')\n\
         if (code != 0) { error(\"${r.error ?: 'deployment failed'}\") }\n\
         } } }\n",
    )
    .unwrap();
    let runs = harness(&["snippet", snippet.to_str().unwrap()]);
    assert_eq!(runs["3"]["thrown"], "null", "{:#}", runs["3"]);
}

/// A fake release tarball `ferry-0.2.0-ARCH-linux.tar.gz` in `dir` whose
/// `bin/ferry` prints ARCH; returns its SHA-256.
fn fake_tarball(dir: &Path, arch: &str) -> String {
    let name = format!("ferry-0.2.0-{arch}-linux");
    let root = dir.join("src").join(&name);
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let bin = root.join("bin/ferry");
    std::fs::write(&bin, format!("#!/bin/sh\necho {arch}\n")).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tarball = dir.join(format!("{name}.tar.gz"));
    let ok = Command::new("tar").arg("-czf").arg(&tarball).arg("-C").arg(dir.join("src")).arg(&name).status().unwrap();
    assert!(ok.success());
    let out = Command::new("sha256sum").arg(&tarball).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// Runs jenkins/resources/ferry/install.sh as the ferryInstall step does,
/// on a machine whose `uname -m` says `machine`.
fn install(dir: &Path, root: &Path, machine: &str, sums: (&str, &str)) -> std::process::Output {
    let fakebin = dir.join(format!("fakebin-{machine}"));
    std::fs::create_dir_all(&fakebin).unwrap();
    // Written aside and renamed into place: executors installing at once
    // each write this shim, and one truncated by a rewrite while another
    // runs it answers nothing (install.sh then names no architecture).
    // (Closed before the rename: a file open for writing cannot be run.)
    let fresh = tempfile::NamedTempFile::new_in(&fakebin).unwrap().into_temp_path();
    std::fs::write(&fresh, format!("#!/bin/sh\necho {machine}\n")).unwrap();
    std::fs::set_permissions(&fresh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fresh.persist(fakebin.join("uname")).unwrap();
    let path = format!("{}:{}", fakebin.display(), std::env::var("PATH").unwrap());
    Command::new("sh")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/jenkins/resources/ferry/install.sh"))
        .env("PATH", path)
        .env("FERRY_ROOT", root)
        .env("FERRY_VERSION", "0.2.0")
        .env("FERRY_BASE_URL", format!("file://{}", dir.display()))
        .env("FERRY_SHA256_X86_64", sums.0)
        .env("FERRY_SHA256_AARCH64", sums.1)
        .output()
        .unwrap()
}

#[test]
fn ferry_install_picks_the_tarball_of_the_agents_architecture_and_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let (x86, arm) = (fake_tarball(dir.path(), "x86_64"), fake_tarball(dir.path(), "aarch64"));
    for (machine, want) in [("x86_64", "x86_64"), ("aarch64", "aarch64"), ("arm64", "aarch64")] {
        let root = dir.path().join(format!("cache-{machine}/0.2.0"));
        let out = install(dir.path(), &root, machine, (&x86, &arm));
        assert!(out.status.success(), "{machine}: {}", String::from_utf8_lossy(&out.stderr));
        let ran = Command::new(root.join("bin/ferry")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), want, "{machine} gets the {want} build");
    }

    // A tarball that is not the one named by its SHA-256 is never unpacked.
    let root = dir.path().join("cache-bad/0.2.0");
    let out = install(dir.path(), &root, "aarch64", (&x86, &x86));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not have the SHA-256"), "{out:?}");
    assert!(!root.exists(), "nothing installed");
    let leftovers: Vec<_> = std::fs::read_dir(root.parent().unwrap()).unwrap().collect();
    assert!(leftovers.is_empty(), "no temporary directory left: {leftovers:?}");

    let out = install(dir.path(), &dir.path().join("cache-mips/0.2.0"), "mips", (&x86, &arm));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ferry build for mips"), "{out:?}");
}

#[test]
fn ferry_install_by_two_executors_at_once_leaves_one_whole_install() {
    let dir = tempfile::tempdir().unwrap();
    let (x86, arm) = (fake_tarball(dir.path(), "x86_64"), fake_tarball(dir.path(), "aarch64"));
    let root = dir.path().join("cache/0.2.0");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let (d, r, x, a) = (dir.path().to_path_buf(), root.clone(), x86.clone(), arm.clone());
            std::thread::spawn(move || install(&d, &r, "x86_64", (&x, &a)))
        })
        .collect();
    for run in runs {
        let out = run.join().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let ran = Command::new(root.join("bin/ferry")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), "x86_64");
    let names: Vec<_> = std::fs::read_dir(dir.path().join("cache")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("0.2.0")], "no temporary directories left");
}
