//! Handing the assumed credentials to other programs: `ferry exec`,
//! `ferry env` and `ferry credential-process`, against moto.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{FERRY, Stack, assert_no_secrets, assert_text_has_no_secrets, moto_sessions, run};

fn ferry(stack: &Stack, dir: &Path, args: &[&str]) -> std::process::Command {
    let config = stack.write_config(dir, "production");
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(args).arg("--env").arg("production").arg("--config").arg(config).env("BUILD_TAG", "handoff-test");
    cmd
}

#[test]
fn exec_passes_the_commands_exit_code_through_with_assumed_credentials() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("key");
    let script =
        format!("printf %s \"$AWS_ACCESS_KEY_ID\" > '{}'; test -n \"$AWS_SESSION_TOKEN\" || exit 99; exit 7", seen.display());
    let out = run(ferry(&stack, dir.path(), &["exec"]).args(["--", "sh", "-c", &script]));

    assert_eq!(out.code, 7, "ferry exec must exit with the command's code:\n{}", out.all());
    let key = std::fs::read_to_string(&seen).unwrap();
    assert_ne!(key, stack.ops_access_key(), "the child got the source keys, not the role's");
    let session = moto_sessions(&stack).into_iter().find(|s| s.access_key_id == key);
    let session = session.unwrap_or_else(|| panic!("moto issued no session with key {key}"));
    assert_eq!((session.role_arn.as_str(), session.session_name.as_str()), (stack.role_arn(), "handoff-test"));
    assert_no_secrets(&stack, &out);
}

#[test]
fn exec_forwards_sigterm_to_the_command() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!("trap 'exit 42' TERM; touch '{}'; while :; do sleep 0.1; done", ready.display());
    let child = ferry(&stack, dir.path(), &["exec"])
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only ferry is signalled, as Jenkins' abort does; the command's trap
    // runs only if ferry forwards it.
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let out = common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(out.code, 42, "{}", out.all());
    assert_no_secrets(&stack, &out);
}

#[test]
fn exec_of_a_missing_command_exits_127_and_names_it() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let out = run(ferry(&stack, dir.path(), &["exec"]).args(["--", "no-such-command-ferry"]));
    assert_eq!(out.code, 127, "{}", out.all());
    assert!(out.stderr.contains("no-such-command-ferry") && out.stderr.contains("PATH"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);
}

#[test]
fn env_prints_the_role_sessions_variables_and_nothing_secret_on_stderr() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut ferry(&stack, dir.path(), &["env", "--format", "json"]));
    assert_eq!(out.code, 0, "{}", out.all());
    let vars: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let key = vars["AWS_ACCESS_KEY_ID"].as_str().unwrap();
    assert!(moto_sessions(&stack).iter().any(|s| s.access_key_id == key && s.role_arn == stack.role_arn()));
    assert!(vars["AWS_SESSION_TOKEN"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(vars["AWS_CREDENTIAL_EXPIRATION"].as_str().is_some());
    assert_eq!(vars["AWS_REGION"], stack.region());
    // stdout is the product; stderr is a log and must stay clean.
    assert_text_has_no_secrets(&stack, &out.stderr);

    // The shared scan every test runs knows this session's secret too.
    let secret = vars["AWS_SECRET_ACCESS_KEY"].as_str().unwrap();
    assert!(common::moto_secrets(&stack).iter().any(|s| s == secret), "the scan knows ferry's session secrets");
}

#[test]
fn env_refuses_a_terminal_and_says_why() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    // script(1) gives ferry a pseudo-terminal as stdout.
    let line = format!("{FERRY} env --env production --config {}", config.display());
    let before = moto_sessions(&stack).len();
    let out = run(stack.ferry_command("script").args(["-qec", &line, "/dev/null"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.contains("stdout is a terminal") && out.stdout.contains("--force"), "{}", out.all());
    assert_eq!(moto_sessions(&stack).len(), before, "a refusal must not assume the role");
    assert_no_secrets(&stack, &out);
}

#[test]
fn credential_process_output_is_accepted_by_the_sdk_as_a_profile() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    // The SDK runs credential_process with its own environment; the wrapper
    // gives ferry the stack's source keys and endpoints, as a Jenkins agent's
    // environment would.
    let env_file = dir.path().join("stack.env");
    stack.write_env_file(&env_file);
    let wrapper = dir.path().join("ferry-cp");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n. '{}'\nexport BUILD_TAG=credential-process-test\nexec '{FERRY}' credential-process --env production --config '{}'\n",
            env_file.display(),
            config.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let aws_config = dir.path().join("aws-config");
    std::fs::write(&aws_config, format!("[profile ferry]\ncredential_process = {}\n", wrapper.display())).unwrap();

    // The non-deprecated names live in aws-runtime, which ferry does not
    // depend on; these aliases are the same types.
    #[allow(deprecated)]
    let put = stack.block_on(async {
        use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
        let files = ProfileFiles::builder().with_file(ProfileFileKind::Config, &aws_config).build();
        let provider =
            aws_config::profile::ProfileFileCredentialsProvider::builder().profile_files(files).profile_name("ferry").build();
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(stack.region().to_string()))
            .endpoint_url(stack.moto_endpoint())
            .force_path_style(true)
            .credentials_provider(provider)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
            .put_object()
            .bucket(stack.bucket())
            .key("releases/credential-process-probe")
            .body(b"via credential_process".to_vec().into())
            .send()
            .await
    });
    // The jenkins keys alone are denied on this bucket, so success means the
    // SDK signed with the role session ferry printed.
    put.unwrap_or_else(|e| {
        panic!("S3 through the credential_process profile failed: {}", aws_smithy_types::error::display::DisplayErrorContext(e))
    });
    assert!(moto_sessions(&stack).iter().any(|s| s.session_name == "credential-process-test" && s.role_arn == stack.role_arn()));
}

#[test]
fn credential_process_prints_version_1_json_with_an_expiration() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut ferry(&stack, dir.path(), &["credential-process"]));
    assert_eq!(out.code, 0, "{}", out.all());
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["Version"], 1);
    for key in ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"] {
        assert!(doc[key].as_str().is_some_and(|v| !v.is_empty()), "{key} missing: {doc}");
    }
    assert_text_has_no_secrets(&stack, &out.stderr);
}

/// Issue 18 item 8: with `--output json`, a `{"event":"session_planned"…}`
/// line came first on stdout: `json.load` failed and `$GITHUB_ENV` got a
/// junk line. Credential commands keep stdout for the credentials alone;
/// their events go to stderr.
#[test]
fn credential_commands_keep_stdout_for_the_credentials_alone_even_with_json_output() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();

    let env_json = run(ferry(&stack, dir.path(), &["env", "--format", "json"]).args(["--output", "json"]));
    assert_eq!(env_json.code, 0, "{}", env_json.all());
    let vars: serde_json::Value = serde_json::from_str(&env_json.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}):\n{}", env_json.stdout));
    assert!(vars["AWS_ACCESS_KEY_ID"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(env_json.stderr.contains("\"event\":\"session_planned\""), "the events went to stderr:\n{}", env_json.stderr);

    let github = run(ferry(&stack, dir.path(), &["env", "--format", "github"]).args(["--output", "json"]));
    assert_eq!(github.code, 0, "{}", github.all());
    for line in github.stdout.lines() {
        let (name, _) = line.split_once('=').unwrap_or_else(|| panic!("not NAME=value: {line}"));
        assert!(name.starts_with("AWS_") && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "junk line: {line}");
    }

    let sh = run(ferry(&stack, dir.path(), &["env", "--format", "sh"]).args(["--output", "json"]));
    assert!(sh.stdout.lines().all(|l| l.starts_with("export AWS_")), "{}", sh.stdout);

    let cp = run(ferry(&stack, dir.path(), &["credential-process"]).args(["--output", "json"]));
    assert_eq!(cp.code, 0, "{}", cp.all());
    let doc: serde_json::Value = serde_json::from_str(&cp.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", cp.stdout));
    assert_eq!(doc["Version"], 1);
    for out in [&env_json, &github, &sh, &cp] {
        assert_text_has_no_secrets(&stack, &out.stderr);
    }
}

/// Issue 18 item 8: `credential-process` on a terminal printed the secret;
/// it now refuses as `ferry env` does, before assuming anything.
#[test]
fn credential_process_refuses_a_terminal_like_env_does() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let line = format!("{FERRY} credential-process --env production --config {}", config.display());
    let before = moto_sessions(&stack).len();
    let out = run(stack.ferry_command("script").args(["-qec", &line, "/dev/null"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.contains("stdout is a terminal") && out.stdout.contains("credential_process"), "{}", out.all());
    assert!(!out.stdout.contains("SecretAccessKey"), "{}", out.all());
    assert_eq!(moto_sessions(&stack).len(), before, "a refusal must not assume the role");
    assert_no_secrets(&stack, &out);
}
