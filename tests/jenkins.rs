//! The Jenkins snippets under jenkins/ are part of the product: this runs
//! every `sh` step of the Jenkinsfiles, and the shared-library steps as
//! rendered by Groovy, with bash in a Jenkins-like environment against the
//! local stack, and checks what a build would leave behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{FERRY, Stack, StackOptions, assert_no_secrets, run};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The `sh '…'` and `sh '''…'''` steps of a Jenkinsfile, in order.
fn sh_steps(text: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("sh '") {
        let before = rest[..pos].chars().last();
        let start = &rest[pos + 3..];
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
    let text = "steps {\n  sh 'make dist'\n  echo 'no'\n  sh '''\n    set -eu\n    ferry x\n  '''\n  bash 'no'\n}";
    assert_eq!(sh_steps(text), vec!["make dist".to_string(), "\n    set -eu\n    ferry x\n  ".to_string()]);
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
    let stack = Stack::start_with(StackOptions { instances: 2, ..Default::default() });
    add_staging_group(&stack);
    let ws = Workspace::new(&stack, "1.0.0");
    let steps = sh_steps(&jenkinsfile("Jenkinsfile"));
    assert_eq!(steps.len(), 4, "build, check, staging, production: {steps:?}");

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
    }
    assert_eq!(deployed_version(&stack, "web-staging"), "1.0.0");
    assert_eq!(deployed_version(&stack, stack.deployment_group()), "1.0.0");
}

#[test]
fn rollback_job_returns_production_to_the_previous_release() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let ws = Workspace::new(&stack, "1.0.0");
    let release = "make dist && ferry release build/app --env production --wait";
    assert_clean_log(&stack, &ws.sh(&stack, release, 1, &[]), "first release");
    let ws2 = Workspace::new(&stack, "2.0.0");
    assert_clean_log(&stack, &ws2.sh(&stack, release, 2, &[]), "second release");
    assert_eq!(deployed_version(&stack, stack.deployment_group()), "2.0.0");

    let steps = sh_steps(&jenkinsfile("Jenkinsfile.rollback"));
    assert_eq!(steps.len(), 2, "history, rollback: {steps:?}");
    for step in &steps {
        let out = ws.sh(&stack, step, 3, &[("ENVIRONMENT", "production"), ("TARGET", "")]);
        assert_clean_log(&stack, &out, step);
    }
    assert_eq!(deployed_version(&stack, stack.deployment_group()), "1.0.0");
    assert!(ws.root.join("ferry-receipt.json").exists());
}

/// Renders a shared-library step with Groovy and returns its sh script.
fn render_step(step: &str, args: &[&str]) -> Option<String> {
    let java_ok = Command::new("groovy").arg("--version").output().is_ok_and(|o| o.status.success());
    if !java_ok {
        assert!(std::env::var_os("CI").is_none(), "groovy must be available in CI (scripts/groovy-env installs it)");
        eprintln!("skipping: groovy not available (source scripts/groovy-env)");
        return None;
    }
    let out = Command::new("groovy")
        .arg(Path::new(REPO).join("scripts/groovy/render-step.groovy"))
        .arg(Path::new(REPO).join("jenkins/vars").join(format!("{step}.groovy")))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn shared_library_release_step_runs_a_real_release() {
    let Some(script) = render_step("ferryRelease", &["env=production", "bundle=build/app", "timeout=5m"]) else {
        return;
    };
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
    let java_ok = Command::new("groovy").arg("--version").output().is_ok_and(|o| o.status.success());
    if !java_ok {
        assert!(std::env::var_os("CI").is_none(), "groovy must be available in CI");
        return;
    }
    let out = Command::new("groovy")
        .arg(Path::new(REPO).join("scripts/groovy/render-step.groovy"))
        .arg(Path::new(REPO).join("jenkins/vars/ferryRelease.groovy"))
        .arg("env=production")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'bundle' argument is required"));
}
