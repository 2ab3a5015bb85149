//! `ferry release --wave` end to end: one bundle through ordered stages of
//! environments (each its own deployment group and bucket in the emulator
//! and moto), halting on the first failure, rolling back by policy, baking,
//! and aborting on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{FERRY, Stack, StackOptions, run};
use ferry_test_stack::{ExtraEnv, PREFIX};

/// Three environments: `eu` (the stack's own group), `us` and `ap`.
const EU: &str = "web-prod";
const US: &str = "web-us";
const AP: &str = "web-ap";

fn stack_with(us: ExtraEnv, step_delay: Duration) -> Stack {
    Stack::start_with(StackOptions {
        step_delay,
        extra_envs: vec![us, ExtraEnv::new(AP, "ferry-ap-releases")],
        ..Default::default()
    })
}

/// ferry.toml with `[env.eu]`, `[env.us]`, `[env.ap]` and `wave`.
fn write_config(stack: &Stack, dir: &Path, wave: &str) -> PathBuf {
    let text = format!("{}\n{}\n{}\n{wave}\n", stack.env_toml("eu", EU), stack.env_toml("us", US), stack.env_toml("ap", AP));
    let path = dir.join("ferry.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An app whose ValidateService hook runs `validate` (with CodeDeploy's
/// `DEPLOYMENT_GROUP_NAME` in its environment) and whose page says `version`.
fn app(dir: &Path, version: &str, validate: &str) -> PathBuf {
    let app = dir.join(format!("app-{version}"));
    std::fs::create_dir_all(app.join("scripts")).unwrap();
    std::fs::create_dir_all(app.join("site")).unwrap();
    std::fs::write(app.join("site/index.html"), format!("{version}\n")).unwrap();
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www/hello\nhooks:\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 30\n",
    )
    .unwrap();
    let script = app.join("scripts/validate.sh");
    std::fs::write(&script, format!("#!/bin/bash\n{validate}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    app
}

fn wave_command(stack: &Stack, app: &Path, config: &Path, receipt: &Path, extra: &[&str]) -> Command {
    wave_command_within("3m", stack, app, config, receipt, extra)
}

/// [`wave_command`] with `--timeout timeout`.
fn wave_command_within(timeout: &str, stack: &Stack, app: &Path, config: &Path, receipt: &Path, extra: &[&str]) -> Command {
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(["--progress", "plain", "release"])
        .arg(app)
        .args(["--wave", "prod", "--timeout", timeout, "--config"])
        .arg(config)
        .arg("--receipt")
        .arg(receipt)
        .args(extra);
    cmd
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("no receipt at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The receipt's entry for environment `name`.
fn env_of<'a>(receipt: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    receipt["envs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == name)
        .unwrap_or_else(|| panic!("no {name} in {receipt}"))
}

/// The group's deployments, newest first: (id, status, creator, key).
fn deployments(stack: &Stack, group: &str) -> Vec<(String, String, String, String)> {
    stack.block_on(async {
        let cd = stack.codedeploy();
        let ids = cd.list_deployments().application_name(stack.application()).deployment_group_name(group).send().await.unwrap();
        let mut out = Vec::new();
        for id in ids.deployments() {
            let d = cd.get_deployment().deployment_id(id).send().await.unwrap();
            let info = d.deployment_info().unwrap();
            let key = info.revision().and_then(|r| r.s3_location()).and_then(|l| l.key()).unwrap_or_default();
            out.push((
                id.clone(),
                info.status().unwrap().as_str().to_string(),
                info.creator().map(|c| c.as_str().to_string()).unwrap_or_default(),
                key.to_string(),
            ));
        }
        out
    })
}

fn object_exists(stack: &Stack, bucket: &str, key: &str) -> bool {
    stack.block_on(async { stack.s3_as_prod().head_object().bucket(bucket).key(key).send().await.is_ok() })
}

#[test]
fn a_green_wave_ships_one_bundle_to_every_environment_stage_by_stage() {
    // us names another region: its calls are signed for eu-west-1 (see ExtraEnv).
    let us = ExtraEnv { region: Some("eu-west-1".into()), ..ExtraEnv::new(US, "ferry-us-releases") };
    let stack = stack_with(us, Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config = write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\"], [\"us\", \"ap\"]]\n");
    let receipt = dir.path().join("receipt.json");

    let out = run(&mut wave_command(&stack, &app, &config, &receipt, &[]));
    assert_eq!(out.code, 0, "{}", out.all());
    common::assert_no_secrets(&stack, &out);

    // Stage 2 started only after stage 1 was done.
    let log = &out.stderr;
    let stage1_done = log.find("stage 1 done").unwrap_or_else(|| panic!("{log}"));
    let stage2 = log.find("stage 2/2: releasing to us, ap").unwrap_or_else(|| panic!("{log}"));
    assert!(stage1_done < stage2, "{log}");
    assert!(log.contains("[us] created deployment") && log.contains("[ap] created deployment"), "{log}");
    assert!(log.contains("wave prod succeeded (exit 0)"), "{log}");

    let r = json(&receipt);
    assert_eq!(r["outcome"], "succeeded", "{r}");
    assert_eq!(r["exit_code"], 0);
    let sha = r["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    for (name, group, bucket, stage) in
        [("eu", EU, stack.bucket(), 1), ("us", US, "ferry-us-releases", 2), ("ap", AP, "ferry-ap-releases", 2)]
    {
        let e = env_of(&r, name);
        assert_eq!(e["outcome"], "succeeded", "{name}: {e}");
        assert_eq!(e["stage"], stage);
        assert_eq!(e["sha256"], sha.as_str(), "the same bundle everywhere");
        assert_eq!(e["bucket"], bucket);
        assert_eq!(e["deployment_group"], group);
        // The same content address, in each environment's own bucket.
        let key = e["key"].as_str().unwrap();
        assert!(key.starts_with(PREFIX) && key.contains(&sha), "{key}");
        assert!(object_exists(&stack, bucket, key), "s3://{bucket}/{key}");
        let created = deployments(&stack, group);
        assert_eq!(created.len(), 1, "{group}: {created:?}");
        assert_eq!(created[0].0, e["deployment_id"].as_str().unwrap());
        assert_eq!(created[0].1, "Succeeded");
        assert_eq!(created[0].3, key);
    }
    // stdout: one `ENV<TAB>DEPLOYMENT` line per environment.
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);

    // `ferry history --wave` says which release each environment runs.
    let history =
        run(stack.ferry_command(FERRY).args(["--progress", "plain", "history", "--wave", "prod", "--config"]).arg(&config));
    assert_eq!(history.code, 0, "{}", history.all());
    let rows: Vec<&str> = history.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{}", history.stdout);
    for (row, name) in rows.iter().zip(["eu", "us", "ap"]) {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols[0], name, "{row}");
        assert_eq!(cols[2], env_of(&r, name)["deployment_id"].as_str().unwrap(), "{row}");
        assert_eq!(cols[3], "Succeeded", "{row}");
        assert_eq!(cols[5], &sha[..12], "{row}");
    }
}

#[test]
fn json_events_of_a_wave_name_their_environment_and_the_wave_receipt_lists_each() {
    let stack = stack_with(ExtraEnv::new(US, "ferry-us-releases"), Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config = write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\", \"us\"]]\n");
    let receipt = dir.path().join("receipt.json");
    let mut cmd = wave_command(&stack, &app, &config, &receipt, &[]);
    cmd.arg("--output").arg("json");
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "{}", out.all());
    let events: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kind = |e: &serde_json::Value| e["event"].as_str().unwrap().to_string();
    let created: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| kind(e) == "deployment_created")
        .map(|e| (e["env"].as_str().unwrap(), e["deployment_group"].as_str().unwrap()))
        .collect();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created.contains(&("eu", EU)) && created.contains(&("us", US)), "{created:?}");
    for e in &events {
        match kind(e).as_str() {
            "wave_started" | "stage_started" | "stage_done" | "wave_finished" | "wave_receipt" | "bundle_ready"
            | "receipt_written" => {
                assert!(e.get("env").is_none(), "the wave's own events have no env: {e}")
            }
            _ => assert!(e["env"] == "eu" || e["env"] == "us", "an environment's event names it: {e}"),
        }
    }
    let r = events.iter().find(|e| kind(e) == "wave_receipt").expect("the wave's receipt is an event");
    assert_eq!(r["envs"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["outcome"], "succeeded");
}

/// The emulator's fault injection fails every deployment of `us`'s group.
#[test]
fn a_failure_in_stage_2_halts_the_wave_before_stage_3_and_policy_none_rolls_nothing_back() {
    let stack = stack_with(ExtraEnv::failing(US, "ferry-us-releases", "AfterInstall"), Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config = write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\"], [\"us\"], [\"ap\"]]\nrollback = \"none\"\n");
    let receipt = dir.path().join("receipt.json");

    let out = run(&mut wave_command(&stack, &app, &config, &receipt, &[]));
    assert_eq!(out.code, 3, "the worst environment failed:\n{}", out.all());
    let log = &out.stderr;
    assert!(log.contains("[us] instance") && log.contains("failed AfterInstall"), "{log}");
    assert!(log.contains("WAVE HALTED in stage 2 (us)"), "{log}");
    assert!(!log.contains("stage 3/3"), "{log}");

    assert!(deployments(&stack, AP).is_empty(), "stage 3 was never started");
    assert_eq!(deployments(&stack, EU).len(), 1, "nothing rolled back in eu");
    assert_eq!(deployments(&stack, US).len(), 1, "nothing rolled back in us");

    let r = json(&receipt);
    assert_eq!(r["outcome"], "halted");
    assert_eq!(r["halted_at_stage"], 2);
    assert_eq!(r["exit_code"], 3);
    assert_eq!(env_of(&r, "eu")["outcome"], "succeeded");
    assert_eq!(env_of(&r, "us")["outcome"], "failed");
    assert_eq!(env_of(&r, "us")["exit_code"], 3);
    let ap = env_of(&r, "ap");
    assert_eq!(ap["started"], false);
    assert_eq!(ap["deployment_id"], serde_json::Value::Null);
}

#[test]
fn an_environment_whose_bucket_refuses_the_upload_halts_the_wave_with_exit_2() {
    let stack = stack_with(ExtraEnv::new(US, "ferry-us-releases"), Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    // us points at a bucket the deployer role has no rights on.
    let us = stack.env_toml("us", US).replace("ferry-us-releases", "someone-elses-bucket");
    let text = format!(
        "{}\n{us}\n{}\n[wave.prod]\nstages = [[\"eu\"], [\"us\"], [\"ap\"]]\n",
        stack.env_toml("eu", EU),
        stack.env_toml("ap", AP)
    );
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, text).unwrap();
    let receipt = dir.path().join("receipt.json");

    let out = run(&mut wave_command(&stack, &app, &config, &receipt, &[]));
    assert_eq!(out.code, 2, "AWS refused: {}", out.all());
    assert!(out.stderr.contains("[us] error:"), "{}", out.stderr);
    assert!(out.stderr.contains("WAVE HALTED in stage 2 (us): us: could not be released"), "{}", out.stderr);
    assert!(deployments(&stack, US).is_empty() && deployments(&stack, AP).is_empty(), "{}", out.stderr);
    let r = json(&receipt);
    let us = env_of(&r, "us");
    assert_eq!(us["exit_code"], 2);
    assert_eq!(us["deployment_id"], serde_json::Value::Null);
    assert!(us["error"].as_str().is_some_and(|e| e.contains("someone-elses-bucket")), "{us}");
    // Nothing was deployed in us, so even `failed` has nothing to roll back there.
    assert_eq!(us["wave_rollback_deployment_id"], serde_json::Value::Null);
    assert_eq!(deployments(&stack, EU).len(), 1);
}

/// A stack whose wave `prod` (eu → us → ap) released v1 everywhere, and
/// v2, whose ValidateService fails in `us`'s group only:
/// (stack, its temp dir, config, receipt path, v2).
fn v1_released_and_failing_v2(step_delay: Duration) -> (Stack, tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let stack = stack_with(ExtraEnv::new(US, "ferry-us-releases"), step_delay);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\"], [\"us\"], [\"ap\"]]\n");
    let receipt = dir.path().join("receipt.json");
    let v1 = app(dir.path(), "v1", "exit 0");
    let first = run(&mut wave_command(&stack, &v1, &config, &receipt, &[]));
    assert_eq!(first.code, 0, "{}", first.all());
    let v2 = app(
        dir.path(),
        "v2",
        &format!("test \"$DEPLOYMENT_GROUP_NAME\" != {US} || {{ echo broken in $DEPLOYMENT_GROUP_NAME; exit 1; }}"),
    );
    (stack, dir, config, receipt, v2)
}

/// v1 everywhere, then v2 whose ValidateService fails only in `us`'s group.
fn release_v1_then_failing_v2(policy: &str) -> (Stack, serde_json::Value, String, tempfile::TempDir) {
    let (stack, dir, config, receipt, v2) = v1_released_and_failing_v2(Duration::from_millis(20));
    let out = run(&mut wave_command(&stack, &v2, &config, &receipt, &["--wave-rollback", policy]));
    println!("--- ferry release --wave prod --wave-rollback {policy} ---\n{}", out.stderr);
    assert!(out.stderr.contains("WAVE HALTED in stage 2 (us)"), "{}", out.all());
    let r = json(&receipt);
    println!("--- {} ---\n{}", receipt.display(), serde_json::to_string_pretty(&r).unwrap());
    (stack, r, out.stderr, dir)
}

/// The wave's rollback `rollback` of `group` exists, Succeeded, was made by
/// ferry (creator `user`), and deployed v1's bundle: the key of the group's
/// other deployment, not v2's (the environment's receipt key).
fn assert_back_on_v1(stack: &Stack, group: &str, env: &serde_json::Value, rollback: &str) {
    let all = deployments(stack, group);
    let (_, status, creator, key) = all.iter().find(|d| d.0 == rollback).expect("the rollback deployment exists");
    assert_eq!((status.as_str(), creator.as_str()), ("Succeeded", "user"), "{group}: {all:?}");
    let v2_key = env["key"].as_str().unwrap();
    assert_ne!(key, v2_key, "{group}: {all:?}");
    assert!(all.iter().any(|d| d.0 != rollback && &d.3 == key && d.1 == "Succeeded"), "{group}: {all:?}");
}

#[test]
fn a_halted_wave_with_policy_failed_rolls_back_only_the_failed_environment() {
    let (stack, r, log, _dir) = release_v1_then_failing_v2("failed");
    assert!(log.contains("rolling back us"), "{log}");
    assert_eq!(r["exit_code"], 7, "the failed environment runs v1 again: {r}");
    let us = env_of(&r, "us");
    assert_eq!(us["outcome"], "failed");
    assert_eq!(us["exit_code"], 7);
    let rollback = us["wave_rollback_deployment_id"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(us["wave_rollback_outcome"], "succeeded");
    assert_back_on_v1(&stack, US, us, rollback);

    // eu keeps v2 (it passed there); ap never saw v2.
    let eu = env_of(&r, "eu");
    assert_eq!(eu["wave_rollback_deployment_id"], serde_json::Value::Null);
    assert_eq!(deployments(&stack, EU).len(), 2, "v1 and v2, no rollback");
    assert_eq!(deployments(&stack, AP).len(), 1, "only v1: stage 3 never started");
}

#[test]
fn a_halted_wave_with_policy_all_rolls_back_every_environment_it_released_to() {
    let (stack, r, log, _dir) = release_v1_then_failing_v2("all");
    assert!(log.contains("rolling back eu, us"), "{log}");
    for (name, group) in [("eu", EU), ("us", US)] {
        let e = env_of(&r, name);
        let id = e["wave_rollback_deployment_id"].as_str().unwrap_or_else(|| panic!("{name}: {r}"));
        assert_eq!(e["wave_rollback_outcome"], "succeeded", "{name}: {r}");
        assert_eq!(deployments(&stack, group).len(), 3, "v1, v2 and the rollback in {group}");
        assert_back_on_v1(&stack, group, e, id);
    }
    assert_eq!(deployments(&stack, AP).len(), 1, "only v1: stage 3 never started");
    assert_eq!(r["exit_code"], 7, "{r}");
}

#[test]
fn a_deployment_failing_in_a_baked_group_halts_the_wave() {
    let stack = stack_with(ExtraEnv::new(US, "ferry-us-releases"), Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config =
        write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\"], [\"us\"]]\nbake = \"60s\"\nrollback = \"none\"\n");
    let receipt = dir.path().join("receipt.json");
    let mut child =
        wave_command(&stack, &app, &config, &receipt, &[]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    while !log.contains("baking stage 1") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ferry ended before the bake:\n{log}");
        log.push_str(&line);
    }
    // Someone else deploys to eu's group during the bake, and it is stopped.
    let bad = stack.block_on(async {
        let cd = stack.codedeploy();
        let d = cd
            .create_deployment()
            .application_name(stack.application())
            .deployment_group_name(EU)
            .revision(
                aws_sdk_codedeploy::types::RevisionLocation::builder()
                    .revision_type(aws_sdk_codedeploy::types::RevisionLocationType::S3)
                    .s3_location(
                        aws_sdk_codedeploy::types::S3Location::builder()
                            .bucket(stack.bucket())
                            .key("hotfix-by-hand.zip")
                            .bundle_type(aws_sdk_codedeploy::types::BundleType::Zip)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let id = d.deployment_id().unwrap().to_string();
        cd.stop_deployment().deployment_id(&id).send().await.unwrap();
        id
    });
    let started = Instant::now();
    let status = child.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "the bake noticed long before its 60 s: {:?}", started.elapsed());
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains(&format!("WAVE HALTED in stage 1 (eu): deployment {bad} in {EU} ended")), "{log}");
    assert!(deployments(&stack, US).is_empty(), "stage 2 was never started");
    let r = json(&receipt);
    assert_eq!(r["outcome"], "halted");
    assert_eq!(r["halted_at_stage"], 1);
    assert!(r["halted_reason"].as_str().unwrap().contains(&bad), "{r}");
    assert_eq!(env_of(&r, "eu")["exit_code"], 3);
}

/// Issue 23 item 6: `bake = "2m"` with `--timeout 20s` ran 125 s and
/// exited 0. The bake ends at the deadline: the wave halts there, exit 5,
/// no later stage started, nothing rolled back.
#[test]
fn the_bake_ends_at_the_command_timeout_and_the_wave_halts_with_exit_5() {
    let stack = stack_with(ExtraEnv::new(US, "ferry-us-releases"), Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config = write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\"], [\"us\"]]\nbake = \"10m\"\n");
    let receipt = dir.path().join("receipt.json");
    let out = run(&mut wave_command_within("45s", &stack, &app, &config, &receipt, &[]));
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.stderr.contains("ran out during stage 1's bake"), "{}", out.all());
    assert!(deployments(&stack, US).is_empty(), "stage 2 was started: {:?}", deployments(&stack, US));
    let r = json(&receipt);
    assert_eq!(r["outcome"], "halted", "{r:#}");
    assert_eq!(r["exit_code"], 5, "{r:#}");
    assert!(env_of(&r, "eu")["wave_rollback_deployment_id"].is_null(), "{r:#}");
}

#[test]
fn a_bake_with_healthy_groups_passes_and_the_next_stage_starts() {
    let stack = stack_with(ExtraEnv::new(US, "ferry-us-releases"), Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config = write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\"], [\"us\"]]\nbake = \"3s\"\n");
    let receipt = dir.path().join("receipt.json");
    let out = run(&mut wave_command(&stack, &app, &config, &receipt, &[]));
    assert_eq!(out.code, 0, "{}", out.all());
    let log = &out.stderr;
    let passed = log.find("bake of stage 1 passed").unwrap_or_else(|| panic!("{log}"));
    assert!(passed < log.find("stage 2/2").unwrap(), "{log}");
}

#[test]
fn sigterm_mid_wave_stops_every_running_deployment_and_writes_the_receipt() {
    // Slow steps: both deployments of the stage are still running at the SIGTERM.
    let stack = stack_with(ExtraEnv::new(US, "ferry-us-releases"), Duration::from_millis(1500));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config = write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\", \"us\"], [\"ap\"]]\n");
    let receipt = dir.path().join("receipt.json");
    let mut child = wave_command(&stack, &app, &config, &receipt, &["--abort-grace", "4s"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    while !(log.contains("[eu] created deployment") && log.contains("[us] created deployment")) {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ferry ended before both deployments existed:\n{log}");
        log.push_str(&line);
    }
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    // Jenkins' kill window: SIGKILL 5 s after SIGTERM.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            child.kill().unwrap();
            panic!("ferry was still running 5 s after SIGTERM:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(
        log.contains("[eu] SIGTERM received while following") && log.contains("[us] SIGTERM received while following"),
        "{log}"
    );

    let r = json(&receipt);
    assert_eq!(r["outcome"], "aborted", "{r}");
    assert_eq!(r["signal"], "SIGTERM");
    assert_eq!(r["exit_code"], 143);
    for (name, group) in [("eu", EU), ("us", US)] {
        let e = env_of(&r, name);
        assert_eq!(e["outcome"], "aborted", "{name}: {e}");
        assert!(e["abort"]["stop_requested_after_ms"].as_u64().is_some_and(|ms| ms < 2000), "{name}: {e}");
        let id = e["deployment_id"].as_str().unwrap();
        let status = deployments(&stack, group).into_iter().find(|d| d.0 == id).unwrap().1;
        assert_eq!(status, "Stopped", "{group}");
    }
    assert_eq!(env_of(&r, "ap")["started"], false);
    assert!(deployments(&stack, AP).is_empty(), "stage 2 was never started");
}

#[test]
fn sigterm_while_the_wave_rolls_back_leaves_the_rollback_running_and_exits_143() {
    // Slower steps, so the SIGTERM lands while the rollback deployment runs.
    let (stack, _dir, config, receipt, v2) = v1_released_and_failing_v2(Duration::from_millis(300));
    let mut child = wave_command(&stack, &v2, &config, &receipt, &["--abort-grace", "4s"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ferry ended before the rollback was created:\n{log}");
        log.push_str(&line);
        if log.contains("WAVE HALTED") && line.contains("[us] created deployment") {
            break;
        }
    }
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    assert!(sent.elapsed() < Duration::from_secs(5), "{:?}:\n{log}", sent.elapsed());
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(log.contains("[us] SIGTERM received while following") && log.contains("leaving it running"), "{log}");
    let r = json(&receipt);
    assert_eq!(r["outcome"], "aborted", "{r}");
    assert_eq!(r["signal"], "SIGTERM");
    assert_eq!(r["exit_code"], 143);
    let rollback = env_of(&r, "us")["wave_rollback_deployment_id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    // Left running, not stopped: it ends on v1.
    let status = deployments(&stack, US).into_iter().find(|d| d.0 == rollback).unwrap().1;
    assert_ne!(status, "Stopped", "{log}");
}

#[test]
fn a_wave_naming_an_unknown_environment_is_refused_before_any_aws_call_and_the_receipt_says_why() {
    let wire = common::Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config = format!("{}\n[wave.prod]\nstages = [[\"production\"], [\"prod-us\"]]\n", common::OFFLINE_CONFIG);
    std::fs::write(dir.path().join("ferry.toml"), config).unwrap();
    let out = run(wire.command(dir.path()).args(["--progress", "plain", "release"]).arg(&app).args([
        "--wave",
        "prod",
        "--receipt",
        "receipt.json",
    ]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("wave `prod` in ferry.toml is invalid: stage 2 names environment `prod-us`"), "{}", out.stderr);
    assert!(out.stderr.contains("Defined environments: production"), "{}", out.stderr);
    assert!(!wire.tripped(), "a config error must not reach AWS");
    let r = json(&dir.path().join("receipt.json"));
    assert_eq!(r["wave"], "prod");
    assert!(r["error"].as_str().unwrap().contains("prod-us"), "{r}");
    assert_eq!(r["envs"], serde_json::json!([]));
}

#[test]
fn on_a_terminal_each_environment_of_a_stage_has_a_live_section() {
    let stack = stack_with(ExtraEnv::new(US, "ferry-us-releases"), Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let config = write_config(&stack, dir.path(), "[wave.prod]\nstages = [[\"eu\", \"us\"]]\n");
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(["--progress", "tty", "release"]).arg(&app).args(["--wave", "prod", "--timeout", "2m", "--config"]).arg(&config);
    let (screens, code) = common::on_a_terminal(&cmd);
    let last = screens.last().cloned().unwrap_or_default();
    assert_eq!(code, 0, "{last}");
    // A section's live line: `  <spinner> [ENV]  <what it does now> <elapsed>`.
    let live = |screen: &str, env: &str| {
        screen
            .lines()
            .find(|l| l.starts_with("  ") && l.trim_start().chars().nth(2) == Some('[') && l.contains(&format!("[{env}]")))
            .map(str::to_string)
    };
    let both_at_work = screens.iter().find(|s| {
        [live(s, "eu"), live(s, "us")].iter().all(|l| l.as_ref().is_some_and(|l| l.contains("InProgress") || l.contains(" i-")))
    });
    let both_at_work = both_at_work.unwrap_or_else(|| panic!("no screen showed both deploying:\n{}", screens.join("\n-----\n")));
    // Shown with --no-capture: the capture in docs/waves.md comes from here.
    eprintln!("both at work:\n{both_at_work}\nlast:\n{last}");
    // At the end each section leaves its last word, above the wave's.
    for env in ["eu", "us"] {
        assert!(last.contains(&format!("\n  [{env}] ✓ succeeded\n")), "{last}");
        assert!(last.contains(&format!("[{env}] created deployment")), "{last}");
    }
    assert!(last.contains("✓ succeeded\nwave prod succeeded (exit 0)"), "{last}");
}

#[path = "common/lambda.rs"]
mod lambda_env;

/// A stack with a Lambda environment `fn` (stage 1) and the EC2 group as
/// `eu` (stage 2), the wave `prod` over both, and its ferry.toml.
fn lambda_then_ec2(dir: &Path) -> (Stack, PathBuf) {
    let defaults = StackOptions::default();
    let ec2 = format!(
        "[env.eu]\nrole_arn = \"arn:aws:iam::{}:role/{}\"\nregion = \"{}\"\nbucket = \"{}\"\nprefix = \"{PREFIX}\"\n\
         application = \"{}\"\ndeployment_group = \"{}\"\n",
        ferry_test_stack::PRODUCTION_ACCOUNT,
        ferry_test_stack::DEPLOYER_ROLE,
        ferry_test_stack::REGION,
        defaults.bucket,
        defaults.application,
        defaults.deployment_group
    );
    let toml = format!("{ec2}\n{}\n[wave.prod]\nstages = [[\"fn\"], [\"eu\"]]\n", lambda_env::env_toml("fn", ""));
    let stack = lambda_env::start(dir, &toml, &["eu", "fn"]);
    let config = dir.join("ferry.toml");
    std::fs::write(&config, &toml).unwrap();
    (stack, config)
}

#[test]
fn a_wave_releases_a_lambda_function_then_an_ec2_group_with_the_same_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, config) = lambda_then_ec2(dir.path());
    // One bundle for both: an EC2 revision (appspec.yml checked) is also a
    // function's code to Lambda.
    let app = app(dir.path(), "v1", "exit 0");
    let receipt = dir.path().join("receipt.json");

    let out = run(&mut wave_command(&stack, &app, &config, &receipt, &[]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("published checkout version 2"), "{}", out.stderr);
    let (published, eu_created) = (out.stderr.find("published checkout").unwrap(), out.stderr.find("[eu] created deployment"));
    assert!(eu_created.is_some_and(|eu| published < eu), "stage 2 after stage 1:\n{}", out.stderr);
    assert_eq!(lambda_env::alias_version(&stack), "2", "the alias moved onto the published version");
    let r = json(&receipt);
    assert_eq!(r["outcome"], "succeeded", "{r}");
    let sha = r["sha256"].as_str().unwrap();
    for (name, group) in [("fn", lambda_env::GROUP), ("eu", EU)] {
        let e = env_of(&r, name);
        assert_eq!((e["outcome"].as_str(), e["deployment_group"].as_str()), (Some("succeeded"), Some(group)), "{e}");
        assert_eq!(e["sha256"], sha, "the same bundle everywhere");
    }
    assert_eq!(deployments(&stack, EU)[0].1, "Succeeded");
}

#[test]
fn a_wave_of_lambda_environments_ships_function_code_without_an_appspec() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("{}\n[wave.prod]\nstages = [[\"fn\"]]\n", lambda_env::env_toml("fn", ""));
    let stack = lambda_env::start(dir.path(), &toml, &["fn"]);
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, &toml).unwrap();
    let code = lambda_env::code_dir(dir.path(), 2);
    assert!(!code.join("appspec.yml").exists());
    let out = run(&mut wave_command(&stack, &code, &config, &dir.path().join("receipt.json"), &[]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(lambda_env::alias_version(&stack), "2");
}

#[test]
fn a_halted_wave_with_policy_all_moves_a_lambda_alias_back_to_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, config) = lambda_then_ec2(dir.path());
    let app = app(dir.path(), "v1", "exit 1");
    let receipt = dir.path().join("receipt.json");

    let out = run(&mut wave_command(&stack, &app, &config, &receipt, &["--wave-rollback", "all"]));
    assert_ne!(out.code, 0, "{}", out.all());
    assert_eq!(lambda_env::alias_version(&stack), "1", "back on the version it was on:\n{}", out.stderr);
    let e = env_of(&json(&receipt), "fn").clone();
    assert_eq!(e["outcome"], "succeeded", "{e}");
    assert_eq!(e["wave_rollback_outcome"], "succeeded", "{e}");
    assert!(out.stderr.contains("checkout:live version 1"), "the rollback says where to:\n{}", out.stderr);
}

#[test]
fn a_wave_holding_an_ecs_environment_is_refused_before_any_aws_call() {
    let wire = common::Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "v1", "exit 0");
    let ecs = common::OFFLINE_CONFIG.replace("[env.production]", "[env.web-ecs]") + "compute_platform = \"ECS\"\n";
    let config = format!("{}\n{ecs}\n[wave.prod]\nstages = [[\"production\"], [\"web-ecs\"]]\n", common::OFFLINE_CONFIG);
    std::fs::write(dir.path().join("ferry.toml"), config).unwrap();
    let out = run(wire.command(dir.path()).args(["--progress", "plain", "release"]).arg(&app).args(["--wave", "prod"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("[env.web-ecs] deploys an ECS service"), "{}", out.stderr);
    assert!(out.stderr.contains("--image"), "{}", out.stderr);
    assert!(!wire.tripped(), "refused before any AWS call");
}
