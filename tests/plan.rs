//! `ferry plan` and `ferry release --plan` against the test stack: what a
//! release changes against what the group runs, read from the running
//! bundle's central directory by ranged GETs; and `confirm = true`.

mod common;

use std::path::{Path, PathBuf};

use common::{FERRY, Run, Stack, app_tree, run};

/// `ferry ARGS --env production --config CONFIG`.
fn ferry(stack: &Stack, config: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(args).args(["--env", "production", "--config"]).arg(config);
    cmd
}

fn released(stack: &Stack, config: &Path, app: &Path) -> String {
    let out = run(ferry(stack, config, &["release"]).arg(app));
    assert_eq!(out.code, 0, "{}", out.all());
    out.stdout.trim().to_string()
}

/// The app of `app_tree` changed: index.html rewritten, a page added, a
/// big asset removed, the hook script changed and a hook added.
fn change(app: &Path) {
    std::fs::write(app.join("site/index.html"), "<h1>hello from ferry, v2</h1>\n").unwrap();
    std::fs::write(app.join("site/new.html"), "new\n").unwrap();
    std::fs::remove_file(app.join("site/big.bin")).unwrap();
    std::fs::write(app.join("scripts/validate.sh"), "#!/bin/bash\necho v2\nexit 0\n").unwrap();
    let start = app.join("scripts/start.sh");
    std::fs::write(&start, "#!/bin/bash\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&start, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www/hello\nhooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 30\n",
    )
    .unwrap();
}

/// `app_tree` with a 3 MB incompressible asset, so that reading the whole
/// running bundle would show in the bytes read.
fn big_app(dir: &Path) -> PathBuf {
    let app = app_tree(dir, "exit 0");
    std::fs::write(app.join("site/big.bin"), common::noise(3_000_000)).unwrap();
    app
}

fn plan_event(out: &Run) -> serde_json::Value {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "plan")
        .unwrap_or_else(|| panic!("no plan event:\n{}", out.all()))
}

#[test]
fn ferry_plan_on_a_changed_app_shows_the_changed_files_against_the_running_revision() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = big_app(dir.path());
    let running = released(&stack, &config, &app);
    change(&app);
    let before = common::deployment_ids(&stack).len();

    let out = run(ferry(&stack, &config, &["plan"]).arg(&app));
    assert_eq!(out.code, 0, "{}", out.all());
    let text = &out.stdout;
    assert!(text.contains("plan for production (web/web-prod)"), "{text}");
    assert!(text.contains(&format!("from {running}")), "the running revision is named:\n{text}");
    assert!(text.contains("deployed by: user at "), "{text}");
    assert!(text.contains("files:       2 added, 1 removed, 3 changed, 0 unchanged"), "{text}");
    for line in ["+ site/new.html", "- site/big.bin", "~ site/index.html", "~ scripts/validate.sh", "~ appspec.yml"] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    assert!(text.contains("ApplicationStart: + scripts/start.sh"), "{text}");
    assert!(text.contains("ValidateService: ~ scripts/validate.sh"), "its file changed:\n{text}");
    assert!(text.contains("config:      CodeDeployDefault.OneAtATime"), "{text}");
    assert_eq!(common::deployment_ids(&stack).len(), before, "a plan deploys nothing");

    // release --plan plans the same and stops, keeping no receipt: a
    // receipt always speaks of a release.
    let receipt = dir.path().join("receipt.json");
    let out = run(ferry(&stack, &config, &["release", "--plan"]).arg("--receipt").arg(&receipt).arg(&app));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("~ site/index.html"), "{}", out.stdout);
    assert_eq!(common::deployment_ids(&stack).len(), before, "release --plan deploys nothing");
    assert!(!receipt.exists(), "release --plan wrote a receipt of a release that never was");
}

#[test]
fn plan_reads_the_running_bundle_by_ranged_gets_only() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = big_app(dir.path());
    released(&stack, &config, &app);
    change(&app);
    let tee = common::TeeProxy::start(stack.moto_endpoint());
    let out = run(ferry(&stack, &config, &["plan", "--output", "json"]).arg(&app).env("AWS_ENDPOINT_URL_S3", tee.endpoint()));
    assert_eq!(out.code, 0, "{}", out.all());
    let requests = tee.requests();
    let gets: Vec<&str> = requests.split("GET /").skip(1).collect();
    assert!(!gets.is_empty(), "the running bundle is read through the proxy:\n{requests}");
    for get in &gets {
        let head = get.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
        assert!(head.contains("\r\nrange: bytes="), "every GET is ranged:\n{head}");
    }
    let read = &plan_event(&out)["running"]["read"];
    let (bytes, size) = (read["bytes"].as_u64().unwrap(), read["object_size"].as_u64().unwrap());
    assert!(size > 3_000_000 && bytes < 100_000, "a plan reads the directory, not the bundle: {read}");
    assert_eq!(read["requests"].as_u64().unwrap() as usize, gets.len(), "{read}");
}

#[test]
fn a_group_running_nothing_is_planned_as_a_first_release_listing_every_file() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app_tree(dir.path(), "exit 0");
    let out = run(ferry(&stack, &config, &["plan"]).arg(&app));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("running:     nothing: this is the group's first release"), "{}", out.stdout);
    assert!(out.stdout.contains("files:       3 added (first release)"), "{}", out.stdout);
    for file in ["+ appspec.yml", "+ site/index.html", "+ scripts/validate.sh"] {
        assert!(out.stdout.contains(file), "{file}:\n{}", out.stdout);
    }
    assert!(out.stdout.contains("ValidateService: + scripts/validate.sh"), "{}", out.stdout);
}

#[test]
fn plan_json_is_one_typed_plan_event() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app_tree(dir.path(), "exit 0");
    let first = run(ferry(&stack, &config, &["plan", "--output", "json"]).arg(&app));
    assert_eq!(first.code, 0, "{}", first.all());
    let p = plan_event(&first);
    assert_eq!(p["first_release"], true, "{p}");
    assert!(p["running"].is_null(), "{p}");
    let running = released(&stack, &config, &app);
    std::fs::write(app.join("site/index.html"), "v2\n").unwrap();
    let out = run(ferry(&stack, &config, &["plan", "--output", "json"]).arg(&app));
    assert_eq!(out.code, 0, "{}", out.all());
    let p = plan_event(&out);
    for key in [
        "environment",
        "application",
        "deployment_group",
        "bundle",
        "deployment_config",
        "deployment_config_from",
        "files",
        "hooks",
        "confirm",
    ] {
        assert!(p.get(key).is_some(), "{key} in {p}");
    }
    assert_eq!((p["environment"].as_str(), p["first_release"].as_bool()), (Some("production"), Some(false)));
    assert_eq!(p["running"]["deployment_id"], running.as_str());
    assert_eq!(p["running"]["creator"], "user");
    assert!(p["running"]["description"].as_str().unwrap().contains("ferry release"), "{p}");
    assert_eq!(p["running"]["instances"].as_i64(), Some(stack.options().instances as i64));
    let files = &p["files"];
    assert_eq!((files["compared"].as_bool(), files["unchanged"].as_u64()), (Some(true), Some(2)), "{files}");
    let changed = &files["changed"][0];
    assert_eq!(changed["path"], "site/index.html");
    assert_eq!(changed["new_size"], 3);
    assert_eq!(changed["new_crc32"].as_str().unwrap().len(), 8, "{changed}");
    assert_eq!(p["hooks"]["events"].as_array().unwrap().len(), 0, "{p}");
    assert_eq!(p["bundle"]["files"], 3);
}

#[test]
fn a_confirm_environment_refuses_without_a_terminal_and_yes_releases() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, format!("{}confirm = true\n", stack.config_toml("production"))).unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let refused = run(ferry(&stack, &config, &["release"]).arg(&app));
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(refused.stderr.contains("[env.production] is marked confirm = true, and there is no terminal"), "{}", refused.stderr);
    assert!(refused.stderr.contains("then release with --yes"), "{}", refused.stderr);
    assert!(common::deployment_ids(&stack).is_empty(), "nothing was deployed");

    let yes = run(ferry(&stack, &config, &["release", "--yes"]).arg(&app));
    assert_eq!(yes.code, 0, "{}", yes.all());
    assert_eq!(common::deployment_ids(&stack).len(), 1);
    // A plan needs no confirmation, and says the environment asks.
    let plan = run(ferry(&stack, &config, &["plan"]).arg(&app));
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("confirm:     releasing asks for `production` to be typed"), "{}", plan.stdout);
}

/// Runs `ferry release --env production` of `app` with stdin and stderr on
/// a pseudo-terminal, types `answer` once the question is asked, and
/// returns the exit code, what the terminal showed and stdout.
fn release_answering(stack: &Stack, config: &Path, app: &Path, answer: &str) -> (i32, String, String) {
    let mut cmd = ferry(stack, config, &["release", "--progress", "plain"]);
    cmd.arg(app);
    common::pty::answering(cmd, "type `production`", answer)
}

#[test]
fn a_confirm_environment_on_a_terminal_shows_the_plan_and_releases_only_when_its_name_is_typed() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, format!("{}confirm = true\n", stack.config_toml("production"))).unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let (code, shown, stdout) = release_answering(&stack, &config, &app, "prod");
    assert_eq!(code, 1, "{shown}");
    assert!(stdout.contains("running:     nothing: this is the group's first release"), "the plan came first:\n{stdout}");
    assert!(shown.contains("release to production not confirmed: `prod` was typed, not `production`"), "{shown}");
    assert!(common::deployment_ids(&stack).is_empty(), "nothing was deployed");

    let (code, shown, stdout) = release_answering(&stack, &config, &app, "production");
    assert_eq!(code, 0, "{shown}");
    assert_eq!(common::deployment_ids(&stack), [stdout.lines().last().unwrap_or_default().trim().to_string()], "{stdout}");
}

#[test]
fn a_wave_holding_a_confirm_environment_needs_yes() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    let toml = format!("{}confirm = true\n\n[wave.all]\nstages = [[\"production\"]]\n", stack.config_toml("production"));
    std::fs::write(&config, toml).unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let wave = |extra: &[&str]| {
        let mut cmd = stack.ferry_command(FERRY);
        cmd.args(["release", "--wave", "all", "--config"]).arg(&config).args(extra).arg(&app);
        run(&mut cmd)
    };
    let refused = wave(&[]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(refused.stderr.contains("wave all includes [env.production], which is marked confirm = true"), "{}", refused.stderr);
    assert!(common::deployment_ids(&stack).is_empty());
    let yes = wave(&["--yes"]);
    assert_eq!(yes.code, 0, "{}", yes.all());
    assert_eq!(common::deployment_ids(&stack).len(), 1);
}

#[test]
fn a_tgz_running_revision_is_not_compared_rather_than_downloaded() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app_tree(dir.path(), "exit 0");
    let out = run(ferry(&stack, &config, &["release", "--bundle-type", "tgz"]).arg(&app));
    assert_eq!(out.code, 0, "{}", out.all());
    let tee = common::TeeProxy::start(stack.moto_endpoint());
    let plan = run(ferry(&stack, &config, &["plan"]).arg(&app).env("AWS_ENDPOINT_URL_S3", tee.endpoint()));
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(plan.stdout.contains("files:       not compared: the running revision s3://"), "{}", plan.stdout);
    assert!(plan.stdout.contains("is a tar/tgz archive, which has no index"), "{}", plan.stdout);
    assert!(plan.stdout.contains("hooks:       not compared"), "{}", plan.stdout);
    assert!(!tee.requests().contains("GET /"), "nothing of it is read:\n{}", tee.requests());
}

#[path = "common/lambda.rs"]
mod lambda_env;

#[test]
fn a_lambda_plan_names_the_alias_version_its_code_and_hooks_and_says_when_the_code_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let toml = lambda_env::env_toml("production", "");
    let stack = lambda_env::start(dir.path(), &toml, &["production"]);
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, &toml).unwrap();
    // The same environment with a hook function: shown by the plan only
    // (moto runs no function, so a release would wait on it).
    let hooked = dir.path().join("hooked.toml");
    let hook = format!("[env.production.lambda_hooks]\nBeforeAllowTraffic = \"{}\"\n", lambda_env::PRE_TRAFFIC);
    std::fs::write(&hooked, lambda_env::env_toml("production", &hook)).unwrap();
    let code = lambda_env::code_dir(dir.path(), 2);

    let out = run(ferry(&stack, &hooked, &["plan", "--output", "json"]).arg(&code));
    assert_eq!(out.code, 0, "{}", out.all());
    let p = plan_event(&out);
    let l = &p["lambda"];
    assert_eq!((l["function"].as_str(), l["alias"].as_str()), (Some(lambda_env::FUNCTION), Some(lambda_env::ALIAS)), "{p}");
    assert_eq!((l["alias_version"].as_str(), l["code_unchanged"].as_bool()), (Some("1"), Some(false)), "{p}");
    assert_ne!(l["alias_code_sha256"], l["new_code_sha256"], "{p}");
    assert_eq!(l["hooks"], serde_json::json!([{"event": "BeforeAllowTraffic", "function": lambda_env::PRE_TRAFFIC}]));
    assert_eq!(p["deployment_config"], "CodeDeployDefault.LambdaAllAtOnce", "the group's: {p}");
    assert_eq!((p["first_release"].as_bool(), p["bundle"]["files"].as_u64()), (Some(true), Some(1)), "{p}");
    assert_eq!(lambda_env::alias_version(&stack), "1", "a plan publishes nothing");

    let released = run(ferry(&stack, &config, &["release"]).arg(&code));
    assert_eq!(released.code, 0, "{}", released.all());
    assert_eq!(lambda_env::alias_version(&stack), "2");

    let out = run(ferry(&stack, &hooked, &["plan"]).arg(&code));
    assert_eq!(out.code, 0, "{}", out.all());
    for line in [
        "running:     checkout:live version 2 (from 1)",
        "function:    checkout alias live on version 2",
        "Lambda publishes no new version and the deployment moves no traffic",
        "hook:        BeforeAllowTraffic runs function checkout-pre-traffic",
        "config:      CodeDeployDefault.LambdaAllAtOnce (the group's own)",
    ] {
        assert!(out.stdout.contains(line), "{line}:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("files:"), "a function's code has no files to compare:\n{}", out.stdout);
    assert!(!out.stdout.contains("instances:"), "a function has no instances:\n{}", out.stdout);
}

/// An ECS release has no bundle: `ferry plan` and `release --plan` on an
/// ECS environment say so, exit 1, and call nothing (the tripwire stands
/// for every AWS endpoint).
#[test]
fn an_ecs_environment_is_not_planned_and_nothing_is_called() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), format!("{}compute_platform = \"ECS\"\n", common::OFFLINE_CONFIG)).unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    for args in [&["plan"][..], &["release", "--plan"][..]] {
        let wire = common::Tripwire::new();
        let out = common::run(wire.command(dir.path()).args(args).arg(&app).args(["--env", "production"]));
        assert_eq!(out.code, 1, "{args:?}: {}", out.all());
        assert!(out.stderr.contains("ECS environment") && out.stderr.contains("--image"), "{args:?}: {}", out.stderr);
        assert!(!wire.tripped(), "{args:?} called AWS");
    }
}
