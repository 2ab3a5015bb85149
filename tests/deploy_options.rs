//! CreateDeployment options (issue 16) against the emulator's model of the
//! agent: DISALLOW fails Install with the agent's message when a file that
//! no revision installed is in the way, OVERWRITE replaces it, RETAIN keeps
//! it; a failing ApplicationStop is ignored only when asked; the options
//! that only travel (targets, outdated-only, alarms, the description) reach
//! CodeDeploy as sent. `ferry continue` on a deployment that is not Ready.

mod common;

use std::path::{Path, PathBuf};

use common::{FERRY, Run, Stack, StackOptions, run};

/// A revision whose appspec copies `site/` to /var/www/site and runs
/// `stop.sh` at ApplicationStop (of the *next* deployment, as the agent does).
fn revision(dir: &Path, name: &str, files: &[(&str, &str)], stop_exit: i32) -> PathBuf {
    let app = dir.join(name);
    std::fs::create_dir_all(app.join("site")).unwrap();
    std::fs::create_dir_all(app.join("scripts")).unwrap();
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www/site\n\
         hooks:\n  ApplicationStop:\n    - location: scripts/stop.sh\n      timeout: 30\n",
    )
    .unwrap();
    for (file, text) in files {
        std::fs::write(app.join("site").join(file), text).unwrap();
    }
    std::fs::write(app.join("scripts/stop.sh"), format!("#!/bin/bash\necho stopping\nexit {stop_exit}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(app.join("scripts/stop.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    app
}

fn release(stack: &Stack, config: &Path, app: &Path, extra: &[&str]) -> Run {
    run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--wait", "--timeout", "2m", "--config"])
        .arg(config)
        .args(extra))
}

/// The one instance's root directory in the emulator.
fn instance_root(stack: &Stack) -> PathBuf {
    let group = stack.emulator_work_dir().join(stack.deployment_group());
    let mut roots: Vec<PathBuf> = std::fs::read_dir(&group).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(roots.len(), 1, "{roots:?}");
    roots.pop().unwrap()
}

/// Releases v1 (index.html), then drops a file that no revision installed
/// where v2 will put its own copy.
fn v1_then_a_stray_file(stack: &Stack, dir: &Path, config: &Path) -> PathBuf {
    let v1 = revision(dir, "v1", &[("index.html", "v1\n")], 0);
    let out = release(stack, config, &v1, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let stray = instance_root(stack).join("var/www/site/new.html");
    std::fs::write(&stray, "put here by hand\n").unwrap();
    revision(dir, "v2", &[("index.html", "v2\n"), ("new.html", "v2\n")], 0)
}

#[test]
fn disallow_fails_install_with_the_agents_message_when_a_stray_file_is_in_the_way() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let v2 = v1_then_a_stray_file(&stack, dir.path(), &config);

    let out = release(&stack, &config, &v2, &["--file-exists-behavior", "DISALLOW"]);
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stderr.contains("a specified file already exists at this location: /var/www/site/new.html"),
        "the agent's message names the file:\n{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(instance_root(&stack).join("var/www/site/new.html")).unwrap(), "put here by hand\n");
}

#[test]
fn overwrite_replaces_the_stray_file_and_retain_keeps_it() {
    for (behavior, expect) in [("OVERWRITE", "v2\n"), ("RETAIN", "put here by hand\n")] {
        let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
        let dir = tempfile::tempdir().unwrap();
        let config = stack.write_config(dir.path(), "production");
        let v2 = v1_then_a_stray_file(&stack, dir.path(), &config);

        let out = release(&stack, &config, &v2, &["--file-exists-behavior", behavior]);
        assert_eq!(out.code, 0, "{behavior}: {}", out.all());
        let root = instance_root(&stack);
        assert_eq!(std::fs::read_to_string(root.join("var/www/site/new.html")).unwrap(), expect, "{behavior}");
        assert_eq!(std::fs::read_to_string(root.join("var/www/site/index.html")).unwrap(), "v2\n", "{behavior}");
        let id = out.stdout.trim().to_string();
        let info = stack.block_on(async {
            stack.codedeploy().get_deployment().deployment_id(&id).send().await.unwrap().deployment_info().unwrap().clone()
        });
        assert_eq!(info.file_exists_behavior().map(|b| b.as_str()), Some(behavior));
    }
}

#[test]
fn a_failing_application_stop_fails_the_release_unless_ignored() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    // v1's own ApplicationStop fails: it runs when v1 is replaced.
    let v1 = revision(dir.path(), "v1", &[("index.html", "v1\n")], 1);
    assert_eq!(release(&stack, &config, &v1, &[]).code, 0);
    let v2 = revision(dir.path(), "v2", &[("index.html", "v2\n")], 0);

    let failed = release(&stack, &config, &v2, &[]);
    assert_eq!(failed.code, 3, "{}", failed.all());
    assert!(failed.stderr.contains("failed ApplicationStop"), "{}", failed.stderr);

    let ignored = release(&stack, &config, &v2, &["--ignore-application-stop-failures"]);
    assert_eq!(ignored.code, 0, "{}", ignored.all());
    assert_eq!(std::fs::read_to_string(instance_root(&stack).join("var/www/site/index.html")).unwrap(), "v2\n");
}

#[test]
fn options_that_travel_reach_codedeploy_as_sent_from_flags_and_ferry_toml() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(
        "update_outdated_instances_only = true\ndescription = \"CHG-42 weekly\"\n\
         [env.production.override_alarm_configuration]\nenabled = true\nalarms = [\"web-5xx\"]\n",
    );
    std::fs::write(&config, toml).unwrap();
    let app = revision(dir.path(), "v1", &[("index.html", "v1\n")], 0);

    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", app.to_str().unwrap(), "--env", "production", "--config"])
        .arg(&config)
        .args(["--target-instances", "tag:Role=web", "--target-instances", "asg:web-asg", "--ignore-poll-alarm-failure"])
        .env("BUILD_NUMBER", "42")
        .env("JOB_NAME", "web-deploy"));
    assert_eq!(out.code, 0, "{}", out.all());
    let id = out.stdout.trim().to_string();
    let info = stack.block_on(async {
        stack.codedeploy().get_deployment().deployment_id(&id).send().await.unwrap().deployment_info().unwrap().clone()
    });
    assert!(info.update_outdated_instances_only());
    let targets = info.target_instances().expect("targetInstances sent");
    assert_eq!(targets.auto_scaling_groups(), ["web-asg"]);
    let tag = &targets.tag_filters()[0];
    assert_eq!((tag.key(), tag.value(), tag.r#type().map(|t| t.as_str())), (Some("Role"), Some("web"), Some("KEY_AND_VALUE")));
    let alarms = info.override_alarm_configuration().expect("overrideAlarmConfiguration sent");
    assert!(alarms.enabled() && alarms.ignore_poll_alarm_failure(), "{alarms:?}");
    assert_eq!(alarms.alarms()[0].name(), Some("web-5xx"));
    let description = info.description().unwrap();
    assert!(description.starts_with("CHG-42 weekly · ferry build 42 of web-deploy"), "{description}");

    // ferry still reads its build back behind the prefix.
    let history =
        run(stack.ferry_command(FERRY).args(["history", "--env", "production", "--output", "json", "--config"]).arg(&config));
    assert!(history.stdout.contains(r#""build":"42""#), "{}", history.stdout);
}

#[test]
fn bad_option_values_are_refused_before_any_aws_call() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = revision(dir.path(), "v1", &[("index.html", "v1\n")], 0);
    for (args, says) in [
        (vec!["--file-exists-behavior", "clobber"], "DISALLOW, OVERWRITE or RETAIN"),
        (vec!["--target-instances", "Role=web"], "tag:KEY=VALUE"),
        (vec!["--description", "ferry build 1 of x"], "ferry reads the build back"),
        (vec!["--ignore-poll-alarm-failure"], "override_alarm_configuration"),
    ] {
        let out = release(&stack, &config, &app, &args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.all());
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    assert!(common::deployment_ids(&stack).is_empty(), "nothing was deployed");
}

#[test]
fn continue_on_a_deployment_that_is_not_ready_says_what_can_be_continued() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = revision(dir.path(), "v1", &[("index.html", "v1\n")], 0);
    let out = release(&stack, &config, &app, &[]);
    let id = out.stdout.trim().to_string();

    let cont = run(stack.ferry_command(FERRY).args(["continue", &id, "--env", "production", "--config"]).arg(&config));
    // Like `ferry stop` on an ended deployment (issue 26 item 10): the
    // deployment's state, not AWS access, is the problem, so exit 1.
    assert_eq!(cont.code, 1, "{}", cont.all());
    assert!(cont.stderr.contains("has already ended (Succeeded)"), "{}", cont.stderr);
    assert!(cont.stderr.contains("nothing to continue"), "{}", cont.stderr);
}
