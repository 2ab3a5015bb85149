//! `ferry status` as a script reads it (the state word on stdout, the exit
//! code by state, as README's table for `release`), and `ferry watch` of a
//! deployment that has already ended (issue 26 item 11).

mod common;

use common::{FERRY, Stack, app_tree, run};

/// `ferry [args…] --env production --config CONFIG`.
fn ferry(stack: &Stack, config: &std::path::Path, args: &[&str]) -> common::Run {
    run(stack.ferry_command(FERRY).args(args).args(["--env", "production", "--config"]).arg(config))
}

#[test]
fn status_prints_the_state_on_stdout_and_exits_by_it() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let good = app_tree(&dir.path().join("good"), "exit 0");
    let bad = app_tree(&dir.path().join("bad"), "echo broken >&2; exit 1");

    let ok = ferry(&stack, &config, &["release", good.to_str().unwrap()]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    let failed = ferry(&stack, &config, &["release", bad.to_str().unwrap(), "--rollback-on", "never"]);
    assert_eq!(failed.code, 3, "{}", failed.all());

    for (release, state, code) in [(&ok, "Succeeded", 0), (&failed, "Failed", 3)] {
        let id = release.stdout.trim();
        let out = ferry(&stack, &config, &["status", id]);
        assert_eq!(out.stdout, format!("{state}\n"), "stdout is the state alone:\n{}", out.all());
        assert_eq!(out.code, code, "{state} exits {code}, as a release ending there does:\n{}", out.all());
        assert!(out.stderr.contains(&format!("deployment {id} {state}")), "the detail stays on stderr:\n{}", out.stderr);

        let json = ferry(&stack, &config, &["status", id, "--output", "json"]);
        assert_eq!(json.code, code, "{}", json.all());
        let read: serde_json::Value = json
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["event"] == "status_read")
            .unwrap_or_else(|| panic!("no status_read event:\n{}", json.stdout));
        assert_eq!((read["deployment_id"].as_str(), read["status"].as_str()), (Some(id), Some(state)));
        assert_eq!(read["exit_code"], code);
    }
}

#[test]
fn watching_an_ended_deployment_reports_codedeploys_own_duration() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app_tree(dir.path(), "exit 0");
    let release = ferry(&stack, &config, &["release", app.to_str().unwrap()]);
    assert_eq!(release.code, 0, "{}", release.all());
    let id = release.stdout.trim().to_string();

    let info = stack.block_on(async {
        let out = stack.codedeploy().get_deployment().deployment_id(&id).send().await.unwrap();
        out.deployment_info().unwrap().clone()
    });
    let took = (info.complete_time().unwrap().as_secs_f64() - info.create_time().unwrap().as_secs_f64()) * 1000.0;
    assert!(took > 0.0, "the emulator's deployment takes its steps' time: {took} ms");

    let watch = ferry(&stack, &config, &["watch", &id, "--output", "json"]);
    assert_eq!(watch.code, 0, "{}", watch.all());
    let finished: serde_json::Value = watch
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "finished")
        .unwrap_or_else(|| panic!("no finished event:\n{}", watch.stdout));
    assert_eq!(finished["elapsed_ms"], took as u64, "CodeDeploy's createTime → completeTime, not ferry's 0 ms");

    let text = ferry(&stack, &config, &["watch", &id]);
    let summary = text.stderr.lines().find(|l| l.contains(&format!("deployment {id} succeeded after"))).unwrap_or_default();
    assert!(!summary.contains("after 0ms"), "{}", text.stderr);
}
