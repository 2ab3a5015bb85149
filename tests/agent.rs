//! `ferry release` through real CodeDeploy agents: the v1.8.1 Ruby agent,
//! one process per instance, registered as on-premises instances, polling
//! the emulator's command service over https and fetching bundles from moto
//! (see tests/stack/src/agent.rs). What these tests read back (status,
//! errorCode, message, logTail, installed files) comes from the agent, not
//! from the emulator's own hook runner.
//!
//! They need `scripts/setup-agent` (ruby, the agent's gems and source) and
//! root: without them the stack panics saying so; nothing is skipped.

mod common;

use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{FERRY, Run, Stack, StackOptions, assert_no_secrets, run};
use ferry_test_stack::AgentMode;
use ferry_test_stack::agent::INSTANCE_ROOT;

/// A stack whose group is `instances` real agents.
fn agent_stack(instances: usize, auto_rollback: bool) -> Stack {
    Stack::start_with(StackOptions {
        instances,
        agent: AgentMode::Real,
        auto_rollback,
        step_delay: Duration::ZERO,
        ..Default::default()
    })
}

/// An application: `site/index.html` saying `version`, installed to
/// INSTANCE_ROOT/www, and the given hook scripts `(event, body, timeout)`.
fn app(dir: &Path, version: &str, appspec_extra: &str, hooks: &[(&str, &str, u32)]) -> PathBuf {
    app_to(dir, version, appspec_extra, "www", hooks)
}

/// [`app`] installing to INSTANCE_ROOT/`www`.
fn app_to(dir: &Path, version: &str, appspec_extra: &str, www: &str, hooks: &[(&str, &str, u32)]) -> PathBuf {
    let app = dir.join(format!("app-{version}"));
    std::fs::create_dir_all(app.join("scripts")).unwrap();
    std::fs::create_dir_all(app.join("site")).unwrap();
    std::fs::write(app.join("site/index.html"), format!("{version}\n")).unwrap();
    let mut appspec =
        format!("version: 0.0\nos: linux\n{appspec_extra}files:\n  - source: site\n    destination: {INSTANCE_ROOT}/{www}\n");
    if !hooks.is_empty() {
        appspec.push_str("hooks:\n");
    }
    for (event, body, timeout) in hooks {
        let script = format!("scripts/{event}.sh");
        std::fs::write(app.join(&script), format!("#!/bin/bash\n{body}\n")).unwrap();
        std::fs::set_permissions(app.join(&script), std::fs::Permissions::from_mode(0o755)).unwrap();
        appspec.push_str(&format!("  {event}:\n    - location: {script}\n      timeout: {timeout}\n"));
    }
    std::fs::write(app.join("appspec.yml"), appspec).unwrap();
    app
}

fn release(stack: &Stack, config: &Path, app: &Path, extra: &[&str]) -> Run {
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "5m"])
        .args(extra)
        .arg("--config")
        .arg(config);
    run(&mut cmd)
}

fn deployment(stack: &Stack, id: &str) -> aws_sdk_codedeploy::types::DeploymentInfo {
    stack.block_on(async {
        stack.codedeploy().get_deployment().deployment_id(id).send().await.unwrap().deployment_info().unwrap().clone()
    })
}

/// Every lifecycle event of every target: (target, event, status, diagnostics).
fn events(stack: &Stack, id: &str) -> Vec<(String, String, String, Option<aws_sdk_codedeploy::types::Diagnostics>)> {
    stack.block_on(async {
        let cd = stack.codedeploy();
        let ids = cd.list_deployment_targets().deployment_id(id).send().await.unwrap().target_ids().to_vec();
        let targets = cd.batch_get_deployment_targets().deployment_id(id).set_target_ids(Some(ids)).send().await.unwrap();
        let mut out = Vec::new();
        for t in targets.deployment_targets() {
            let t = t.instance_target().unwrap();
            for e in t.lifecycle_events() {
                out.push((
                    t.target_id().unwrap().to_string(),
                    e.lifecycle_event_name().unwrap().to_string(),
                    e.status().unwrap().as_str().to_string(),
                    e.diagnostics().cloned(),
                ));
            }
        }
        out
    })
}

fn page(stack: &Stack, instance: usize) -> String {
    page_in(stack, instance, "www")
}

fn page_in(stack: &Stack, instance: usize, www: &str) -> String {
    let path = stack.agents()[instance].instance_path(&format!("{INSTANCE_ROOT}/{www}/index.html"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| format!("{}: {e}", path.display())).trim().to_string()
}

#[test]
fn a_release_through_two_real_agents_succeeds_and_every_agent_installs_and_runs_the_hooks() {
    let stack = agent_stack(2, false);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let log = format!("{INSTANCE_ROOT}/hooks.log");
    let hook = format!("echo \"$LIFECYCLE_EVENT $DEPLOYMENT_ID $BUNDLE_BUCKET\" >> {log}");
    let app = app(
        dir.path(),
        "v1",
        "",
        &[("BeforeInstall", hook.as_str(), 30), ("AfterInstall", hook.as_str(), 30), ("ValidateService", hook.as_str(), 30)],
    );

    let out = release(&stack, &config, &app, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let id = out.stdout.trim();
    assert_eq!(deployment(&stack, id).status().unwrap().as_str(), "Succeeded");
    assert!(out.stderr.contains("2 succeeded, 0 failed, 0 skipped of 2 instances"), "{}", out.stderr);
    assert_no_secrets(&stack, &out);

    for (i, agent) in stack.agents().iter().enumerate() {
        assert_eq!(page(&stack, i), "v1", "{} installed the revision", agent.name);
        let ran = std::fs::read_to_string(agent.instance_path(&log)).unwrap();
        let expected: Vec<String> =
            ["BeforeInstall", "AfterInstall", "ValidateService"].iter().map(|e| format!("{e} {id} {}", stack.bucket())).collect();
        assert_eq!(ran.lines().collect::<Vec<_>>(), expected, "{}'s hooks, in order, with the agent's environment", agent.name);
        // The agent's own record of the deployment, in its own deployment root.
        let scripts_log =
            walk(&agent.dir.join("root")).into_iter().find(|p| p.ends_with("logs/scripts.log")).expect("scripts.log");
        assert!(std::fs::read_to_string(scripts_log).unwrap().contains("LifecycleEvent - ValidateService"), "{}", agent.name);
    }
    let all = events(&stack, id);
    assert_eq!(all.len(), 14, "{all:?}");
    for (target, event, status, diag) in &all {
        assert_eq!(status, "Succeeded", "{target} {event}");
        let diag = diag.as_ref().unwrap();
        assert_eq!(diag.error_code().unwrap().as_str(), "Success");
        // As the service shows a success (the agent reports "Succeeded: ").
        assert_eq!(diag.message(), Some("Succeeded"), "{target} {event}");
    }
}

/// Issue 22 item 4, end to end: a bundle ferry builds keeps what lands on
/// the instance. Released through two real agents, a 0600 file is
/// installed 0600 (not world-readable 0644), a 0640 and a 0755 file keep
/// their modes, an empty directory exists, and each file keeps its own
/// time (to the zip's 2 s) instead of 1980-01-01.
#[test]
fn a_bundle_ferry_builds_lands_with_the_sources_modes_times_and_empty_directories() {
    let stack = agent_stack(2, false);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app(dir.path(), "modes", "", &[]);
    let site = app.join("site");
    let files = [("secret.env", 0o600), ("group.conf", 0o640), ("tool.sh", 0o755)];
    // An hour ago, on an even second: the zip stores times to 2 s.
    let mtime = std::time::SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 3600) & !1,
        );
    for (name, mode) in files {
        let path = site.join(name);
        std::fs::write(&path, format!("{name}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    }
    std::fs::create_dir_all(site.join("uploads/empty")).unwrap();

    let out = release(&stack, &config, &app, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    for agent in stack.agents() {
        for (name, mode) in files {
            let installed = agent.instance_path(&format!("{INSTANCE_ROOT}/www/{name}"));
            let meta = std::fs::metadata(&installed).unwrap_or_else(|e| panic!("{}: {e}", installed.display()));
            use std::os::unix::fs::MetadataExt;
            assert_eq!(
                meta.mode() & 0o7777,
                mode,
                "{}: {name} installed {:o}, source {mode:o}",
                agent.name,
                meta.mode() & 0o7777
            );
            assert_eq!(meta.modified().unwrap(), mtime, "{}: {name} keeps its own time", agent.name);
        }
        let empty = agent.instance_path(&format!("{INSTANCE_ROOT}/www/uploads/empty"));
        assert!(empty.is_dir(), "{}: the empty directory was installed", agent.name);
    }
}

#[test]
fn a_failing_hook_shows_the_agents_own_log_tail_in_the_log_json_and_junit() {
    let stack = agent_stack(2, false);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app(dir.path(), "bad", "", &[("ValidateService", "echo 'health check: 503' >&2; exit 3", 30)]);
    let junit = dir.path().join("junit.xml");

    let text = release(
        &stack,
        &config,
        &app,
        &["--deployment-config", "CodeDeployDefault.AllAtOnce", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(text.code, 3, "{}", text.all());
    let id = text.stdout.trim().to_string();
    let expected_tail = "LifecycleEvent - ValidateService\nScript - scripts/ValidateService.sh\n[stderr]health check: 503\n";
    let failed: Vec<_> = events(&stack, &id).into_iter().filter(|e| e.2 == "Failed").collect();
    assert_eq!(failed.len(), 2, "both agents failed ValidateService: {failed:?}");
    for (target, event, _, diag) in &failed {
        assert_eq!(event, "ValidateService");
        let diag = diag.as_ref().unwrap();
        assert_eq!(diag.error_code().unwrap().as_str(), "ScriptFailed", "{target}");
        assert_eq!(diag.script_name(), Some("scripts/ValidateService.sh"));
        assert_eq!(diag.message(), Some("Script at specified location: scripts/ValidateService.sh failed with exit code 3"));
        assert_eq!(diag.log_tail(), Some(expected_tail), "{target}: the agent's ScriptLog");
    }
    // The agent wrote the same lines to its own scripts.log on the instance.
    for agent in stack.agents() {
        let found = walk(&agent.dir.join("root")).into_iter().find(|p| p.ends_with("logs/scripts.log")).expect("scripts.log");
        assert!(std::fs::read_to_string(found).unwrap().contains("[stderr]health check: 503"), "{}", agent.name);
    }
    // ferry's plain log shows it decoded.
    assert!(text.stderr.lines().any(|l| l.ends_with("! health check: 503")), "{}", text.stderr);
    assert!(text.stderr.contains("ScriptFailed"), "{}", text.stderr);

    // JUnit: the failure's description carries the agent's log tail.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let suites = junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes())).unwrap();
    let described: Vec<String> = suites
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter_map(|c| match &c.status {
            junit_parser::TestStatus::Failure(f) => Some(f.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(described.len(), 2, "{xml}");
    // (The parser trims the text's last newline.)
    for d in &described {
        assert!(d.ends_with(expected_tail.trim_end()), "{d:?}");
    }

    // JSON: a second, identical release gives the log tail raw.
    let json = release(&stack, &config, &app, &["--deployment-config", "CodeDeployDefault.AllAtOnce", "--output", "json"]);
    assert_eq!(json.code, 3, "{}", json.all());
    let tails: Vec<String> = json
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "lifecycle_failed")
        .map(|e| e["log_tail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(tails, vec![expected_tail.to_string(); 2], "{}", json.stdout);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_script_over_its_timeout_is_reported_timed_out_by_the_agent() {
    let stack = agent_stack(2, false);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app(dir.path(), "slow", "", &[("AfterInstall", "echo starting; sleep 60", 2)]);

    let out = release(&stack, &config, &app, &["--deployment-config", "CodeDeployDefault.AllAtOnce"]);
    assert_eq!(out.code, 3, "{}", out.all());
    let failed: Vec<_> = events(&stack, out.stdout.trim()).into_iter().filter(|e| e.2 == "Failed").collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (_, event, _, diag) in failed {
        assert_eq!(event, "AfterInstall");
        let diag = diag.unwrap();
        assert_eq!(diag.error_code().unwrap().as_str(), "ScriptTimedOut");
        assert_eq!(diag.message(), Some("Script at specified location: scripts/AfterInstall.sh failed to complete in 2 seconds"));
        assert_eq!(diag.log_tail(), Some("LifecycleEvent - AfterInstall\nScript - scripts/AfterInstall.sh\n[stdout]starting\n"));
    }
}

#[test]
fn a_failed_release_rolls_back_to_the_previous_revision_on_every_agent() {
    let stack = agent_stack(2, false);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let good = release(&stack, &config, &app(dir.path(), "v1", "", &[("ValidateService", "exit 0", 30)]), &[]);
    assert_eq!(good.code, 0, "{}", good.all());
    assert_eq!((page(&stack, 0), page(&stack, 1)), ("v1".into(), "v1".into()));

    let bad = release(
        &stack,
        &config,
        &app(dir.path(), "v2", "", &[("ValidateService", "echo broken >&2; exit 1", 30)]),
        &["--rollback-on", "failure", "--deployment-config", "CodeDeployDefault.AllAtOnce"],
    );
    assert_eq!(bad.code, 7, "failed and rolled back:\n{}", bad.all());
    let failed = deployment(&stack, bad.stdout.trim());
    assert_eq!(failed.status().unwrap().as_str(), "Failed");
    let rollback_id = failed.rollback_info().unwrap().rollback_deployment_id().unwrap().to_string();
    let rollback = deployment(&stack, &rollback_id);
    assert_eq!(rollback.status().unwrap().as_str(), "Succeeded");
    assert_eq!(rollback.creator().unwrap().as_str(), "codeDeployRollback");
    assert_eq!((page(&stack, 0), page(&stack, 1)), ("v1".into(), "v1".into()), "the agents reinstalled v1");
}

#[test]
fn file_exists_behavior_is_applied_by_the_agent_each_way() {
    let stack = agent_stack(2, false);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    // A file no revision installed, at the destination, on every instance.
    // Each case installs to a directory of its own: the agent first removes
    // what the previous successful install put down, planted copies included.
    let plant = |www: &str, text: &str| {
        for agent in stack.agents() {
            let p = agent.instance_path(&format!("{INSTANCE_ROOT}/{www}/index.html"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    };
    let cases = [
        // (appspec line, --file-exists-behavior, exit, page afterwards)
        ("", None, 3, "hand-made"),
        ("", Some("OVERWRITE"), 0, "v-overwrite"),
        ("", Some("RETAIN"), 0, "hand-made"),
        // The appspec's own setting wins over the deployment's.
        ("file_exists_behavior: RETAIN\n", Some("OVERWRITE"), 0, "hand-made"),
    ];
    for (i, (appspec, flag, code, expected)) in cases.iter().enumerate() {
        let www = format!("www{i}");
        plant(&www, "hand-made\n");
        let version = match flag {
            Some("OVERWRITE") if appspec.is_empty() => "v-overwrite".to_string(),
            _ => format!("v{i}"),
        };
        let mut extra = vec!["--deployment-config", "CodeDeployDefault.AllAtOnce"];
        if let Some(f) = flag {
            extra.extend(["--file-exists-behavior", f]);
        }
        let out = release(&stack, &config, &app_to(dir.path(), &version, appspec, &www, &[]), &extra);
        assert_eq!(out.code, *code, "case {i} ({appspec:?}, {flag:?}):\n{}", out.all());
        if *code != 0 {
            let failed: Vec<_> = events(&stack, out.stdout.trim()).into_iter().filter(|e| e.2 == "Failed").collect();
            assert_eq!(failed.len(), 2, "{failed:?}");
            for (_, event, _, diag) in failed {
                assert_eq!(event, "Install");
                let message = diag.unwrap().message().unwrap_or_default().to_string();
                assert!(message.contains("already exists at this location"), "the agent's DISALLOW message: {message}");
            }
        }
        for n in 0..2 {
            assert_eq!(page_in(&stack, n, &www), *expected, "case {i} ({appspec:?}, {flag:?}), instance {n}");
        }
    }
}

#[test]
fn a_jenkins_abort_mid_deployment_stops_the_deployment_the_agents_run() {
    let stack = agent_stack(2, false);
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    // OneAtATime and a slow hook: the signal lands while the first agent works.
    let app = app(dir.path(), "slow", "", &[("BeforeInstall", "sleep 4", 30)]);
    let mut child = stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "5m"])
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = common::read_until(&mut stderr, "InProgress");
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    log.push_str(&rest);
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(log.contains("SIGTERM received while following"), "{log}");
    let id = common::deployment_ids(&stack).into_iter().next().expect("one deployment");
    let info = deployment(&stack, &id);
    assert_eq!(info.status().unwrap().as_str(), "Stopped", "{log}");
    // The second agent was never asked to run anything.
    let second: Vec<_> = events(&stack, &id).into_iter().filter(|e| e.0 == stack.agents()[1].name).collect();
    assert!(second.iter().all(|e| e.2 == "Skipped"), "{second:?}");
}
