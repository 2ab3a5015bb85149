//! What the instances report is what the real CodeDeploy agent reports:
//! `logTail` is the agent's bounded log of the event (`LifecycleEvent - `,
//! `Script - `, then `[stdout]`/`[stderr]` lines), succeeded events carry
//! empty diagnostics, and the messages are the agent's words.

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::types::{DeploymentStatus, Diagnostics, InstanceTarget, LifecycleEventStatus};
use codedeploy_emulator::Emulator;
use codedeploy_emulator::hooks::ScriptLog;

use crate::common::{Moto, app_and_group, client, create_deployment, emulator_with_s3, moto, put, s3, wait_complete, zip_of};

/// Deploys a bundle of `files` with `appspec` to a one-instance group and
/// returns what it needs to look at the result.
async fn deploy(appspec: &str, files: &[(&str, &str)]) -> (Moto, Emulator, Client, String, InstanceTarget) {
    let moto = moto();
    let mut all = vec![("appspec.yml", appspec)];
    all.extend_from_slice(files);
    put(&s3(&moto.endpoint), "releases", "app.zip", zip_of(&all)).await;
    let emulator = emulator_with_s3(&moto.endpoint, |_| {});
    let cd = client(&emulator);
    app_and_group(&cd, "shop", "prod", 1, &[]).await;
    let id = create_deployment(&cd, "prod", "releases", "app.zip", None).await;
    wait_complete(&cd, &id).await;
    let ids = crate::common::all_target_ids(&cd, &id).await;
    let target = cd.get_deployment_target().deployment_id(&id).target_id(&ids[0]).send().await.unwrap();
    let instance = target.deployment_target.unwrap().instance_target.unwrap();
    (moto, emulator, cd, id, instance)
}

fn event(instance: &InstanceTarget, name: &str) -> (LifecycleEventStatus, Option<Diagnostics>) {
    let e = instance.lifecycle_events().iter().find(|e| e.lifecycle_event_name.as_deref() == Some(name)).unwrap();
    (e.status.clone().unwrap(), e.diagnostics.clone())
}

fn hook(event: &str, location: &str, extra: &str) -> String {
    format!("version: 0.0\nos: linux\nhooks:\n  {event}:\n    - location: {location}\n{extra}")
}

#[tokio::test]
async fn a_failed_hooks_log_tail_is_the_agents_event_log() {
    // The pause keeps the two streams' lines in a known order: the agent
    // reads stdout and stderr on two threads, so only time orders them.
    let script = "#!/bin/bash\necho 'checking http://localhost/health'\nsleep 0.2\necho 'health check returned 503' >&2\nsleep 0.2\nprintf 'no newline at the end'\nexit 7\n";
    let appspec = hook("ValidateService", "scripts/check.sh", "      timeout: 30\n");
    let (_moto, emulator, _cd, id, instance) = deploy(&appspec, &[("scripts/check.sh", script)]).await;
    let (status, diag) = event(&instance, "ValidateService");
    assert_eq!(status, LifecycleEventStatus::Failed);
    let diag = diag.unwrap();
    assert_eq!(diag.error_code.unwrap().as_str(), "ScriptFailed");
    assert_eq!(diag.script_name.as_deref(), Some("scripts/check.sh"));
    assert_eq!(diag.message.as_deref(), Some("Script at specified location: scripts/check.sh failed with exit code 7"));
    assert_eq!(
        diag.log_tail.as_deref(),
        Some(
            "LifecycleEvent - ValidateService\nScript - scripts/check.sh\n[stdout]checking http://localhost/health\n[stderr]health check returned 503\n[stdout]no newline at the end"
        )
    );
    // The agent's scripts.log has the same entries, each after a timestamp.
    let instance_dir = emulator.work_dir().join("prod").join(instance.target_id().unwrap());
    let root = instance_dir.join("opt/codedeploy-agent/deployment-root");
    let log = walk(&root).into_iter().find(|p| p.ends_with(format!("{id}/logs/scripts.log"))).expect("scripts.log");
    let text = std::fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    for (line, entry) in lines.iter().zip([
        "LifecycleEvent - ValidateService",
        "Script - scripts/check.sh",
        "[stdout]checking",
        "[stderr]health",
        "[stdout]no newline",
    ]) {
        let (stamp, rest) = line.split_at(20);
        assert!(stamp.as_bytes()[4] == b'-' && stamp.as_bytes()[13] == b':' && stamp.ends_with(' '), "{line}");
        assert!(rest.starts_with(entry), "{line}");
    }
}

#[tokio::test]
async fn a_long_log_keeps_what_the_agents_rule_keeps() {
    let script = "#!/bin/bash\nfor i in $(seq 1 400); do echo \"migrating table $i of 400\"; done\nexit 1\n";
    let appspec = hook("AfterInstall", "scripts/migrate.sh", "");
    let (_moto, _emulator, _cd, _id, instance) = deploy(&appspec, &[("scripts/migrate.sh", script)]).await;
    let (_, diag) = event(&instance, "AfterInstall");
    let tail = diag.unwrap().log_tail.unwrap();
    let mut expected = ScriptLog::new();
    expected.append("LifecycleEvent - AfterInstall\n".to_string());
    expected.append("Script - scripts/migrate.sh\n".to_string());
    for i in 1..=400 {
        expected.append(format!("[stdout]migrating table {i} of 400\n"));
    }
    assert_eq!(tail, expected.text());
    assert!(tail.ends_with("[stdout]migrating table 400 of 400\n"));
    assert!(tail.starts_with("[stdout]migrating table "), "whole lines only, the header long gone: {tail}");
    assert!(tail.chars().count() <= 2048 && tail.chars().count() > 1900, "{}", tail.chars().count());
}

#[tokio::test]
async fn a_succeeded_event_reports_no_script_and_no_log() {
    let script = "#!/bin/bash\necho 'all good'\necho 'a warning' >&2\n";
    let appspec = hook("ValidateService", "scripts/check.sh", "");
    let (_moto, _emulator, cd, id, instance) = deploy(&appspec, &[("scripts/check.sh", script)]).await;
    assert_eq!(wait_complete(&cd, &id).await.status, Some(DeploymentStatus::Succeeded));
    for e in instance.lifecycle_events() {
        let diag = e.diagnostics.clone().unwrap();
        assert_eq!(diag.error_code.unwrap().as_str(), "Success", "{e:?}");
        assert_eq!(diag.script_name.as_deref(), Some(""), "{e:?}");
        assert_eq!(diag.message.as_deref(), Some("Succeeded"), "{e:?}");
        assert_eq!(diag.log_tail.as_deref(), Some(""), "{e:?}");
    }
}

#[tokio::test]
async fn a_timed_out_hook_keeps_its_output_and_the_agents_message() {
    let script = "#!/bin/bash\necho waiting\nsleep 30\n";
    let appspec = hook("ValidateService", "scripts/slow.sh", "      timeout: 1\n      runas: root\n");
    let (_moto, _emulator, _cd, _id, instance) = deploy(&appspec, &[("scripts/slow.sh", script)]).await;
    let (status, diag) = event(&instance, "ValidateService");
    assert_eq!(status, LifecycleEventStatus::Failed);
    let diag = diag.unwrap();
    assert_eq!(diag.error_code.unwrap().as_str(), "ScriptTimedOut");
    assert_eq!(diag.message.as_deref(), Some("Script at specified location: scripts/slow.sh failed to complete in 1 seconds"));
    assert_eq!(diag.log_tail.as_deref(), Some("LifecycleEvent - ValidateService\nScript - scripts/slow.sh\n[stdout]waiting\n"));
}

#[tokio::test]
async fn a_script_runs_as_its_runas_user_and_a_failure_names_the_user() {
    // ferry-hook is made by scripts/setup-agent; the script runs through
    // `su ferry-hook -c`, as the agent runs it, when the emulator is root.
    let appspec = hook("BeforeInstall", "scripts/x.sh", "      runas: ferry-hook\n");
    let (_moto, _emulator, _cd, _id, instance) = deploy(&appspec, &[("scripts/x.sh", "#!/bin/bash\nid -un\nexit 2\n")]).await;
    let (_, diag) = event(&instance, "BeforeInstall");
    let diag = diag.unwrap();
    assert_eq!(
        diag.message.as_deref(),
        Some("Script at specified location: scripts/x.sh run as user ferry-hook failed with exit code 2")
    );
    let root = std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:\t0\t"));
    if root {
        assert!(diag.log_tail.as_deref().unwrap().ends_with("[stdout]ferry-hook\n"), "{diag:?}");
    }
}

#[tokio::test]
async fn a_missing_script_is_named_by_its_path_on_the_instance() {
    let appspec = hook("BeforeInstall", "scripts/nope.sh", "");
    let (_moto, _emulator, cd, id, instance) = deploy(&appspec, &[]).await;
    let group_id = cd
        .get_deployment_group()
        .application_name("shop")
        .deployment_group_name("prod")
        .send()
        .await
        .unwrap()
        .deployment_group_info
        .unwrap()
        .deployment_group_id
        .unwrap();
    let (status, diag) = event(&instance, "BeforeInstall");
    assert_eq!(status, LifecycleEventStatus::Failed);
    let diag = diag.unwrap();
    assert_eq!(diag.error_code.unwrap().as_str(), "ScriptMissing");
    assert_eq!(diag.script_name.as_deref(), Some("scripts/nope.sh"));
    assert_eq!(
        diag.message.unwrap(),
        format!(
            "Script does not exist at specified location: /opt/codedeploy-agent/deployment-root/{group_id}/{id}/deployment-archive/scripts/nope.sh"
        )
    );
    // The agent checks before it logs the script's name.
    assert_eq!(diag.log_tail.as_deref(), Some("LifecycleEvent - BeforeInstall\n"));
}

#[tokio::test]
async fn a_background_process_holding_stdout_fails_the_hook_at_its_timeout() {
    // The classic mistake: starting a server with `&` without redirecting
    // its output. The script exits at once, but the agent waits for stdout
    // to close, until the hook's timeout.
    let script = "#!/bin/bash\necho starting\nsleep 30 &\necho started\n";
    let appspec = hook("ApplicationStart", "scripts/start.sh", "      timeout: 1\n");
    let started = std::time::Instant::now();
    let (_moto, _emulator, _cd, _id, instance) = deploy(&appspec, &[("scripts/start.sh", script)]).await;
    assert!(started.elapsed().as_secs() < 15);
    let (status, diag) = event(&instance, "ApplicationStart");
    assert_eq!(status, LifecycleEventStatus::Failed);
    let diag = diag.unwrap();
    assert_eq!(diag.message.as_deref(), Some("Script at specified location: scripts/start.sh failed to close STDOUT"));
    assert!(diag.log_tail.unwrap().ends_with("[stdout]starting\n[stdout]started\n"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
