//! Lambda, end to end on the stack: `ferry release` uploads a function's
//! code, publishes it as a version (checked against the bundle's SHA-256),
//! deploys the appspec that moves the alias onto it, and follows the
//! alias's traffic; a failing hook function is rolled back (exit 7), a stop
//! exits 4, SIGTERM stops and rolls back.
//!
//! What rests on moto alone: functions, versions, aliases and their
//! `RoutingConfig`, `CodeSha256` (moto ignores `S3ObjectVersion` and reads
//! the key's latest object, which is the same object here). moto runs
//! without auth here (it answers SignatureDoesNotMatch to every Lambda call
//! of a non-root key): the emulator still holds ferry's CodeDeploy calls to
//! the generated policy, and tests/policy_reference.rs checks its Lambda
//! statement against AWS's authorization reference. What rests on
//! the CodeDeploy emulator alone: the traffic steps, the hook executions
//! (moto runs no function: the test plays the hook and reports its status)
//! and the rollback (see its README, "Lambda deployments").

mod common;

use std::path::{Path, PathBuf};

use common::traffic::{self, Deployments, Running};
use common::{FERRY, Run, on_a_terminal, run, wait_until};
use ferry_test_stack::application::{LambdaApp, create_lambda};
use ferry_test_stack::{DEPLOYER_ROLE, PREFIX, PRODUCTION_ACCOUNT, REGION, Stack, StackOptions};

const APPLICATION: &str = "checkout";
const GROUP: &str = "checkout-prod";
const FUNCTION: &str = "checkout";
const ALIAS: &str = "live";
const PRE_TRAFFIC: &str = "checkout-pre-traffic";
const BUCKET: &str = "ferry-prod-releases";

/// Ten percent for five minutes (five seconds on the stack), then the rest.
const CANARY: &str = "CodeDeployDefault.LambdaCanary10Percent5Minutes";
/// Ten percent for thirty minutes: long enough to stop it in the middle.
const LONG_CANARY: &str = "CodeDeployDefault.LambdaCanary10Percent30Minutes";

struct LambdaStack {
    stack: Stack,
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// `[env.production]` of the Lambda environment, with `extra` lines.
fn env_toml(extra: &str) -> String {
    format!(
        "[env.production]\nrole_arn = \"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{DEPLOYER_ROLE}\"\nregion = \"{REGION}\"\n\
         bucket = \"{BUCKET}\"\nprefix = \"{PREFIX}\"\napplication = \"{APPLICATION}\"\ndeployment_group = \"{GROUP}\"\n\
         compute_platform = \"Lambda\"\nfunction_name = \"{FUNCTION}\"\nfunction_alias = \"{ALIAS}\"\n{extra}"
    )
}

/// What `ferry policy deploy` prints for the Lambda environment, held to
/// by the emulator (CodeDeploy calls). moto would match a Lambda call only
/// against the resource `*` (it knows no Lambda resource types), so the
/// function-scoped statement is widened; tests/policy_reference.rs checks
/// the scoped one against AWS's authorization reference.
fn deployer_policy(dir: &Path) -> serde_json::Value {
    let path = dir.join("policy-ferry.toml");
    std::fs::write(&path, env_toml("")).unwrap();
    let selection = ferry::config::Selection {
        path: Some(path),
        env: Some("production".into()),
        overrides: ferry::config::Overrides::default(),
        unsafe_session_seconds: None,
    };
    let mut policy = ferry::policy::deploy(&ferry::config::resolve(&selection).unwrap());
    let statements = policy["Statement"].as_array_mut().unwrap();
    let publish = statements.iter_mut().find(|s| s["Sid"] == "PublishFunction").expect("a Lambda statement");
    assert!(publish["Resource"].to_string().contains(&format!(":function:{FUNCTION}")), "{publish}");
    publish["Resource"] = serde_json::json!("*");
    policy
}

/// A stack with the Lambda application, group (`config`, rolling back on
/// failure and stop) and function, and ferry.toml's `production` on it.
fn stack(config: &str, toml_extra: &str) -> LambdaStack {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(StackOptions {
        deployer_policy: Some(deployer_policy(dir.path())),
        moto_auth: false,
        ..Default::default()
    });
    let app = LambdaApp {
        application: APPLICATION,
        group: GROUP,
        config,
        auto_rollback: true,
        function: FUNCTION,
        alias: ALIAS,
        hooks: &[(PRE_TRAFFIC, None)],
    };
    stack.block_on(create_lambda(&stack.codedeploy(), &stack.lambda(), &app)).unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, env_toml(toml_extra)).unwrap();
    LambdaStack { stack, dir, config }
}

impl LambdaStack {
    fn ferry(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.stack.ferry_command(FERRY);
        cmd.args(args).args(["--env", "production", "--config"]).arg(&self.config);
        cmd
    }

    /// A directory holding version `n` of the function's code.
    fn code_dir(&self, n: usize) -> PathBuf {
        let dir = self.dir.path().join(format!("fn-v{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.py"), format!("def handler(event, context):\n    return {n}\n")).unwrap();
        dir
    }

    fn release(&self, path: &Path, extra: &[&str]) -> Run {
        run(self.ferry(&["release", path.to_str().unwrap()]).args(extra))
    }

    fn spawn_release(&self, path: &Path, extra: &[&str]) -> Running {
        Running::spawn(self.ferry(&["release", path.to_str().unwrap()]).args(extra))
    }

    /// The alias's version and the share of traffic sent to another one.
    fn alias(&self) -> (String, Option<std::collections::HashMap<String, f64>>) {
        self.stack.block_on(async {
            let a = self.stack.lambda().get_alias().function_name(FUNCTION).name(ALIAS).send().await.unwrap();
            let weights = a.routing_config().and_then(|r| r.additional_version_weights()).cloned().filter(|w| !w.is_empty());
            (a.function_version().unwrap().to_string(), weights)
        })
    }

    /// Every deployment of the group, newest first.
    fn deployments(&self) -> Vec<String> {
        self.stack.block_on(async {
            let out = self
                .stack
                .codedeploy()
                .list_deployments()
                .application_name(APPLICATION)
                .deployment_group_name(GROUP)
                .send()
                .await
                .unwrap();
            out.deployments().to_vec()
        })
    }

    fn deployment(&self, id: &str) -> aws_sdk_codedeploy::types::DeploymentInfo {
        self.stack.block_on(async {
            self.stack.codedeploy().get_deployment().deployment_id(id).send().await.unwrap().deployment_info.unwrap()
        })
    }

    /// Waits for a deployment's rollback to succeed; its id.
    fn rolled_back(&self, id: &str) -> String {
        let rollback = self.deployment(id).rollback_info().unwrap().rollback_deployment_id().unwrap().to_string();
        wait_until("the rollback to succeed", || self.status(&rollback) == "Succeeded");
        rollback
    }
}

impl Deployments for LambdaStack {
    fn newest(&self) -> Option<String> {
        self.deployments().first().cloned()
    }

    fn status(&self, id: &str) -> String {
        self.deployment(id).status().unwrap().as_str().to_string()
    }

    fn rollback_of(&self, id: &str) -> Option<String> {
        self.deployment(id).rollback_info().and_then(|r| r.rollback_deployment_id()).map(String::from)
    }
}

#[test]
fn a_release_publishes_the_code_and_shows_the_alias_traffic_shifting() {
    let l = stack(CANARY, "");
    // A directory, bundled as for any release, with no appspec of its own.
    let text = l.release(&l.code_dir(2), &[]);
    assert_eq!(text.code, 0, "{}", text.all());
    // docs/lambda.md's recorded run.
    eprintln!("recorded run:\n{}", text.stderr);
    assert!(text.stderr.contains(&format!("published {FUNCTION} version 2 (CodeSha256 ")), "{}", text.stderr);
    assert!(text.stderr.contains(&format!("alias {ALIAS} is on version 1")), "{}", text.stderr);
    let canary = format!("{FUNCTION}:{ALIAS} traffic: version 2 10%, version 1 90%");
    let all = format!("{FUNCTION}:{ALIAS} traffic: version 2 100%, version 1 0%");
    let (at_canary, at_end) = (text.stderr.find(&canary), text.stderr.find(&all));
    assert!(at_canary.is_some() && at_end > at_canary, "the canary's share, then all of it:\n{}", text.stderr);
    assert!(text.stderr.contains(&format!("{FUNCTION}:{ALIAS} AllowTraffic Succeeded")), "{}", text.stderr);
    assert_eq!(l.alias(), ("2".to_string(), None), "the alias points at the published version alone");
    let id = &l.deployments()[0];
    let info = l.deployment(id);
    let spec = info.revision().and_then(|r| r.app_spec_content()).and_then(|c| c.content()).unwrap();
    assert!(spec.contains("CurrentVersion: \"1\"") && spec.contains("TargetVersion: \"2\""), "{spec}");

    // A ready zip, in JSON: the same steps as events, and Lambda's
    // CodeSha256 is the archive's own.
    let zip = l.dir.path().join("function.zip");
    let mut archive = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    archive.start_file("index.py", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut archive, b"def handler(event, context):\n    return 3\n").unwrap();
    archive.finish().unwrap();
    let json = l.release(&zip, &["--output", "json"]);
    assert_eq!(json.code, 0, "{}", json.all());
    let events = json.events();
    let published = events.iter().find(|e| e["event"] == "function_published").unwrap_or_else(|| panic!("{}", json.stdout));
    use base64::Engine;
    use sha2::Digest;
    let want = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(std::fs::read(&zip).unwrap()));
    assert_eq!(published["code_sha256"], want.as_str(), "{published}");
    assert_eq!((published["version"].as_str(), published["alias_version"].as_str()), (Some("3"), Some("2")));
    let shares: Vec<f64> =
        events.iter().filter(|e| e["event"] == "traffic_shifted").map(|e| e["target_percent"].as_f64().unwrap()).collect();
    assert_eq!(shares.first(), Some(&10.0), "{}", json.stdout);
    assert_eq!(shares.last(), Some(&100.0), "{}", json.stdout);
    assert_eq!(l.alias(), ("3".to_string(), None));

    // `ferry rollback`: the version before, found in CodeDeploy's record of
    // the deployment that moved the alias onto 3.
    let back = run(&mut l.ferry(&["rollback"]));
    assert_eq!(back.code, 0, "{}", back.all());
    assert!(back.stderr.contains(&format!("{FUNCTION}:{ALIAS} version 3")), "{}", back.stderr);
    assert_eq!(l.alias(), ("2".to_string(), None), "the alias is back on the previous version");
}

#[test]
fn a_failing_hook_function_is_rolled_back_and_exits_7() {
    let l = stack(CANARY, &format!("[env.production.lambda_hooks]\nBeforeAllowTraffic = \"{PRE_TRAFFIC}\"\n"));
    let junit = l.dir.path().join("junit.xml");
    let release = l.spawn_release(&l.code_dir(2), &["--junit", junit.to_str().unwrap()]);
    // moto runs no function: the test is the hook, and it reports Failed.
    let id = traffic::hook_function_fails(&l.stack, "BeforeAllowTraffic", PRE_TRAFFIC);
    let (code, log) = release.wait();
    assert_eq!(code, Some(7), "{log}");
    assert!(log.contains(&format!("{FUNCTION}:{ALIAS} BeforeAllowTraffic Failed")), "{log}");
    assert!(log.contains(PRE_TRAFFIC), "the failure names the hook function: {log}");
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains(&format!("name=\"{FUNCTION}:{ALIAS}\"")) && report.contains("<failure"), "{report}");
    assert!(report.contains(PRE_TRAFFIC), "{report}");
    assert_eq!(l.status(&id), "Failed");
    l.rolled_back(&id);
    assert_eq!(l.alias(), ("1".to_string(), None), "no traffic ever reached version 2");
}

#[test]
fn a_stop_from_outside_exits_4() {
    let l = stack(LONG_CANARY, "");
    let release = l.spawn_release(&l.code_dir(2), &[]);
    traffic::stop_from_outside(&l, release, "traffic: version 2 10%", |id| l.ferry(&["stop", id]));
}

#[test]
fn ferry_continue_says_a_lambda_deployment_has_no_ready_wait() {
    // CodeDeploy has no Ready or termination wait for Lambda: the alias's
    // traffic moves by the config alone, so there is no exit 6 to continue.
    let l = stack(LONG_CANARY, "");
    let release = l.spawn_release(&l.code_dir(2), &[]);
    traffic::stop_from_outside(&l, release, "traffic: version 2 10%", |id| {
        let refused = run(&mut l.ferry(&["continue", id]));
        assert_eq!(refused.code, 2, "{}", refused.all());
        assert!(refused.stderr.contains("an in-place or Lambda deployment needs nothing"), "{}", refused.stderr);
        assert_eq!(l.status(id), "InProgress", "the refused continue left the shift as it was");
        l.ferry(&["stop", id])
    });
}

#[test]
fn sigterm_during_traffic_shifting_stops_rolls_back_and_writes_the_receipt() {
    let l = stack(LONG_CANARY, "");
    let receipt = l.dir.path().join("receipt.json");
    let release = l.spawn_release(&l.code_dir(2), &["--receipt", receipt.to_str().unwrap()]);
    let canary = || assert_eq!(l.alias().1.and_then(|w| w.get("2").copied()), Some(0.1), "the canary's share is on the alias");
    traffic::sigterm_rolls_back(&l, release, "traffic: version 2 10%", canary, &receipt);
    assert_eq!(l.alias(), ("1".to_string(), None), "the alias is back on version 1 alone");
}

#[test]
fn doctor_checks_the_applications_platform_and_the_functions_alias() {
    let l = stack(CANARY, "");
    let doctor = run(&mut l.ferry(&["doctor"]));
    assert_eq!(doctor.code, 0, "{}", doctor.all());
    let text = doctor.all();
    assert!(text.contains(&format!("{APPLICATION} exists (compute platform Lambda)")), "{text}");
    assert!(text.contains(&format!("{FUNCTION}:{ALIAS} is on version 1")), "{text}");

    // The same application named by an environment without the Lambda keys.
    let server = l.dir.path().join("server.toml");
    let toml = std::fs::read_to_string(&l.config).unwrap();
    let lambda_keys = format!("compute_platform = \"Lambda\"\nfunction_name = \"{FUNCTION}\"\nfunction_alias = \"{ALIAS}\"\n");
    assert!(toml.contains(&lambda_keys), "{toml}");
    std::fs::write(&server, toml.replace(&lambda_keys, "")).unwrap();
    let mut cmd = l.stack.ferry_command(FERRY);
    let refused = run(cmd.args(["doctor", "--env", "production", "--config"]).arg(&server));
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert!(refused.all().contains("is a Lambda application: set compute_platform = \"Lambda\""), "{}", refused.all());
}

#[test]
fn the_live_board_shows_the_alias_with_its_traffic() {
    let l = stack(CANARY, "");
    let (screens, code) = on_a_terminal(&l.ferry(&["release", l.code_dir(2).to_str().unwrap()]));
    assert_eq!(code, 0, "{}", screens.last().unwrap_or(&String::new()));
    let row = format!("{FUNCTION}:{ALIAS} v2 10%");
    assert!(
        screens.iter().flat_map(|s| s.lines()).any(|l| l.trim_start().starts_with(&row) && l.contains('[')),
        "the alias's row names the canary's share: {:?}",
        screens.last()
    );
}
