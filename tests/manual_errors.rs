//! Errors a person at the keyboard meets, each blaming the right thing
//! (issue 26: "errors that blame the right thing").

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use common::{OFFLINE_CONFIG, app_tree, command_with_endpoint, run};

/// A loopback server that answers every request with `response` (a whole
/// HTTP/1.1 answer), as a proxy or load balancer in front of AWS would.
fn answering(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    endpoint
}

const PROXY_403: &str = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 58\r\nConnection: close\r\n\r\n<html><body><h1>Blocked by the corporate proxy</h1></body>";
const EMPTY_502: &str = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#[test]
fn doctor_names_a_proxy_html_403_as_not_aws_and_never_blames_the_trust_policy() {
    let endpoint = answering(PROXY_403);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), OFFLINE_CONFIG).unwrap();
    let out = run(command_with_endpoint(&endpoint, dir.path()).args(["doctor", "--env", "production"]));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("HTTP 403 with an HTML page"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("AWS_ENDPOINT_URL={endpoint}")), "the endpoint in effect is named:\n{}", out.stderr);
    assert!(out.stderr.contains("NO_PROXY"), "{}", out.stderr);
    assert!(!out.stderr.contains("error parsing XML"), "{}", out.stderr);
    assert!(!out.stderr.contains("give this agent AWS credentials"), "{}", out.stderr);
    assert!(!out.stderr.contains("trust policy names"), "{}", out.stderr);
}

#[test]
fn release_names_an_empty_502_as_not_aws_with_the_status_and_endpoint() {
    let endpoint = answering(EMPTY_502);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), OFFLINE_CONFIG).unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let out = run(command_with_endpoint(&endpoint, dir.path()).args(["release", "--env", "production"]).arg(&app));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("HTTP 502 with an empty body"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("AWS_ENDPOINT_URL={endpoint}")), "{}", out.stderr);
    assert!(!out.stderr.contains("Check that the role's trust policy"), "{}", out.stderr);
}

#[test]
fn rollback_to_a_malformed_deployment_id_is_refused_before_any_aws_call() {
    let wire = common::Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), OFFLINE_CONFIG).unwrap();
    let out = run(wire.command(dir.path()).args(["rollback", "--env", "production", "--to", "d-NOPE"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("`d-NOPE` is not a CodeDeploy deployment id"), "{}", out.stderr);
    assert!(!wire.tripped(), "nothing may reach AWS for a malformed id");
}

/// The test stack, a directory holding its ferry.toml, and an app.
fn on_stack() -> (common::Stack, tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let stack = common::Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app_tree(dir.path(), "exit 0");
    (stack, dir, config, app)
}

/// `ferry release --deployment-group web-prd` (the stack's group is
/// web-prod), which must end with exit 2.
fn release_to_mistyped_group(stack: &common::Stack, config: &std::path::Path, app: &std::path::Path) -> common::Run {
    let out = run(stack
        .ferry_command(common::FERRY)
        .args(["release", "--env", "production", "--deployment-group", "web-prd", "--config"])
        .arg(config)
        .arg(app));
    assert_eq!(out.code, 2, "{}", out.all());
    out
}

#[test]
fn a_mistyped_deployment_group_is_named_as_possibly_missing_not_only_as_permissions() {
    let (stack, _dir, config, app) = on_stack();
    let out = release_to_mistyped_group(&stack, &config, &app);
    // `ferry policy deploy` grants ListDeploymentGroups, so the groups that
    // exist are named instead of "either … or the policy lacks it".
    assert!(out.stderr.contains("Deployment group `web-prd` does not exist in application `web`"), "{}", out.stderr);
    assert!(out.stderr.contains("its groups are: web-prod"), "{}", out.stderr);
    assert!(out.stderr.contains("--deployment-group, or `deployment_group` in [env.production]"), "{}", out.stderr);
}

/// The last line ferry wrote to stderr that is not blank.
fn last_line(stderr: &str) -> String {
    stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
}

#[test]
fn a_failed_release_that_was_rolled_back_ends_its_log_with_the_verdict() {
    let stack = common::Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let release = |app: &std::path::Path, extra: &[&str]| {
        run(stack
            .ferry_command(common::FERRY)
            .args(extra)
            .args(["release", "--env", "production", "--config"])
            .arg(&config)
            .args(["--rollback-on", "failure", "--deployment-config", "CodeDeployDefault.AllAtOnce"])
            .arg(app))
    };
    let (good_dir, bad_dir) = (dir.path().join("good"), dir.path().join("bad"));
    let good = release(&app_tree(&good_dir, "exit 0"), &[]);
    assert_eq!(good.code, 0, "{}", good.all());
    let bad_app = app_tree(&bad_dir, "echo broken >&2; exit 1");
    // The TTY renderer prints the same sentence (report::describe) after
    // clearing the board; on a pipe it draws nothing, so only plain is read here.
    {
        let progress = ["--progress", "plain"];
        let bad = release(&bad_app, &progress);
        assert_eq!(bad.code, 7, "{}", bad.all());
        let id = bad.stdout.trim();
        let last = last_line(&bad.stderr);
        assert!(
            last.contains(&format!("deployment {id} FAILED; the previous revision was restored by rollback d-"))
                && last.ends_with("(exit 7)"),
            "{progress:?}: the log must end with the verdict, not the rollback's success:\n{}",
            bad.stderr
        );
    }
}

/// A tripwire for every AWS endpoint, a directory with the offline
/// ferry.toml, and an app to release from it.
fn offline_release() -> (common::Tripwire, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), OFFLINE_CONFIG).unwrap();
    let app = app_tree(dir.path(), "exit 0");
    (common::Tripwire::new(), dir, app)
}

#[test]
fn a_bare_number_for_timeout_is_refused_with_the_units_to_write() {
    let (wire, dir, app) = offline_release();
    for flag in ["--timeout", "--queue-timeout"] {
        let out = run(wire.command(dir.path()).args(["release", "--env", "production", flag, "5"]).arg(&app));
        assert_eq!(out.code, 1, "{}", out.all());
        assert!(out.stderr.contains("`5` has no unit. Write 5m for minutes"), "{flag}: {}", out.stderr);
    }
    assert!(!wire.tripped());
}

#[test]
fn ferry_env_in_the_environment_does_not_conflict_with_wave_but_a_typed_env_does() {
    let (wire, dir, app) = offline_release();
    // FERRY_ENV alone: the wave is looked up (and is not there), no conflict.
    let out = run(wire.command(dir.path()).env("FERRY_ENV", "production").args(["release", "--wave", "all"]).arg(&app));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!out.stderr.contains("cannot be used with"), "{}", out.stderr);
    assert!(out.stderr.contains("wave") && out.stderr.contains("`all`"), "{}", out.stderr);
    let out = run(wire.command(dir.path()).args(["release", "--env", "production", "--wave", "all"]).arg(&app));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("--env production and --wave all both pick where to deploy"), "{}", out.stderr);
    assert!(!wire.tripped());
}

#[test]
fn continue_and_stop_on_an_ended_deployment_exit_alike() {
    let (stack, _dir, config, app) = on_stack();
    let ferry =
        |args: &[&str]| run(stack.ferry_command(common::FERRY).args(args).args(["--env", "production", "--config"]).arg(&config));
    let release =
        run(stack.ferry_command(common::FERRY).args(["release", "--env", "production", "--config"]).arg(&config).arg(&app));
    assert_eq!(release.code, 0, "{}", release.all());
    let id = release.stdout.trim().to_string();
    let stop = ferry(&["stop", &id]);
    let cont = ferry(&["continue", &id]);
    assert_eq!((stop.code, cont.code), (1, 1), "stop:\n{}\ncontinue:\n{}", stop.all(), cont.all());
    assert!(stop.stderr.contains(&format!("deployment {id} has already ended (Succeeded)")), "{}", stop.stderr);
    assert!(cont.stderr.contains(&format!("deployment {id} has already ended (Succeeded)")), "{}", cont.stderr);
}

/// An app directory like [`app_tree`]'s with its appspec renamed to `name`
/// and, for `ecs`, an ECS appspec's text.
fn app_with_appspec_named(dir: &std::path::Path, name: &str, ecs: bool) -> std::path::PathBuf {
    let app = app_tree(dir, "exit 0");
    std::fs::remove_file(app.join("appspec.yml")).unwrap();
    let text = if ecs {
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: arn\n"
    } else {
        "version: 0.0\nos: linux\n"
    };
    std::fs::write(app.join(name), text).unwrap();
    app
}

#[test]
fn a_bundle_holding_appspec_yaml_is_named_with_the_rename_to_make() {
    let (wire, dir, _) = offline_release();
    let app = app_with_appspec_named(&dir.path().join("yaml"), "appspec.yaml", false);
    for args in [&["check"][..], &["release", "--env", "production"][..]] {
        let out = run(wire.command(dir.path()).args(args).arg(&app));
        assert_eq!(out.code, 1, "{}", out.all());
        assert!(out.stderr.contains("has no appspec.yml but holds `appspec.yaml`"), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("the name ECS and Lambda deployments use"), "{}", out.stderr);
        assert!(out.stderr.contains("`mv appspec.yaml appspec.yml`"), "{}", out.stderr);
    }
    let ecs = app_with_appspec_named(&dir.path().join("ecs"), "appspec.yaml", true);
    // `ferry check` validates it as the ECS appspec it is (tests/check.rs);
    // a release to an EC2 environment names it as the near miss.
    let out = run(wire.command(dir.path()).arg("check").arg(&ecs));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("is not a task definition ARN"), "{}", out.stderr);
    let out = run(wire.command(dir.path()).args(["release", "--env", "production"]).arg(&ecs));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("`appspec.yaml`, an ECS/Lambda appspec"), "{}", out.stderr);
    assert!(out.stderr.contains("set `compute_platform = \"Lambda\"`"), "the Lambda way is named:\n{}", out.stderr);
    assert!(out.stderr.contains("does not release ECS services yet"), "{}", out.stderr);
    assert!(!wire.tripped());
}

#[test]
fn a_mistyped_group_with_neither_list_nor_get_allowed_names_both_causes() {
    // The deploy policy without ListDeploymentGroups: `web-prd` can then be
    // neither listed nor read (GetDeploymentGroup is granted on web-prod
    // only), so ferry cannot tell a missing group from a missing grant.
    let policy = common::group_scoped_deployer_policy();
    let stack = common::Stack::start_with(common::StackOptions { deployer_policy: Some(policy), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app_tree(dir.path(), "exit 0");
    let out = release_to_mistyped_group(&stack, &config, &app);
    assert!(out.stderr.contains("The role may not act on deployment group `web/web-prd`"), "{}", out.stderr);
    assert!(out.stderr.contains("either the group does not exist"), "{}", out.stderr);
    assert!(out.stderr.contains("--deployment-group, or `deployment_group` in [env.production]"), "{}", out.stderr);
    assert!(out.stderr.contains("codedeploy:CreateDeployment on it (see `ferry policy deploy`)"), "{}", out.stderr);
    assert!(!out.stderr.contains("its groups are"), "nothing could be listed:\n{}", out.stderr);
}
