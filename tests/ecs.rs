//! ECS, end to end on the stack: `ferry release --image` resolves the tag
//! to its digest in ECR, registers a copy of the service's task definition
//! with it, uploads the appspec naming it (content-addressed, like a
//! bundle) and deploys it, following the task sets' traffic; a failing hook
//! function is rolled back (exit 7), Ready exits 6 for `ferry continue`, a
//! stop exits 4, SIGTERM stops and rolls back, `ferry rollback` returns to
//! the previous task definition, and a missing image registers nothing.
//!
//! What rests on moto alone: ECR's repositories, images and digests, ECS's
//! clusters, services, task definitions and task sets, and IAM's roles
//! (moto runs without auth here, as for Lambda: the emulator still holds
//! ferry's CodeDeploy calls to the generated policy, and
//! tests/policy_reference.rs checks the ECS statements against AWS's
//! authorization reference). What rests on the CodeDeploy emulator alone:
//! the traffic weights (moto's task sets have no load balancer behind
//! them), the lifecycle and hook flow (moto runs no function: the test
//! plays the hook), Ready, and the rollback (see its README, "ECS").

mod common;

use std::path::{Path, PathBuf};

use common::traffic::{self, Deployments, Running};
use common::{FERRY, Run, on_a_terminal, run, wait_until};
use ferry_test_stack::application::{EcsApp, create_ecs, ecr_image};
use ferry_test_stack::{DEPLOYER_ROLE, PREFIX, PRODUCTION_ACCOUNT, REGION, Stack, StackOptions};

const APPLICATION: &str = "shop";
const GROUP: &str = "shop-web";
const CLUSTER: &str = "shop";
const SERVICE: &str = "web";
const REPOSITORY: &str = "web";
const SMOKE: &str = "shop-smoke";
const BUCKET: &str = "ferry-prod-releases";

/// Ten percent for five minutes (five seconds on the stack), then the rest.
const CANARY: &str = "CodeDeployDefault.ECSCanary10Percent5Minutes";
/// Ten percent for fifteen minutes: long enough to stop it in the middle.
const LONG_CANARY: &str = "CodeDeployDefault.ECSCanary10Percent15Minutes";

struct EcsStack {
    stack: Stack,
    dir: tempfile::TempDir,
    config: PathBuf,
    /// The digest of each pushed tag (v1, v2, v3).
    digests: Vec<String>,
}

/// `[env.production]` of the ECS environment (cluster, service and
/// container left to the group and the service), with `extra` lines.
fn env_toml(extra: &str) -> String {
    format!(
        "[env.production]\nrole_arn = \"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{DEPLOYER_ROLE}\"\nregion = \"{REGION}\"\n\
         bucket = \"{BUCKET}\"\nprefix = \"{PREFIX}\"\napplication = \"{APPLICATION}\"\ndeployment_group = \"{GROUP}\"\n\
         compute_platform = \"ECS\"\n{extra}"
    )
}

/// What `ferry policy deploy` prints for the ECS environment, held to by
/// the emulator (CodeDeploy calls).
fn deployer_policy(dir: &Path) -> serde_json::Value {
    let path = dir.join("policy-ferry.toml");
    std::fs::write(&path, env_toml("")).unwrap();
    let selection = ferry::config::Selection {
        path: Some(path),
        env: Some("production".into()),
        overrides: ferry::config::Overrides::default(),
        unsafe_session_seconds: None,
    };
    ferry::policy::deploy(&ferry::config::resolve(&selection).unwrap())
}

/// A stack with the ECS application, group (`config`, waiting Ready for
/// `ready_wait` minutes if given, rolling back on failure and stop), the
/// service on v1, and ferry.toml's `production` on it.
fn stack(config: &str, ready_wait: Option<i32>, toml_extra: &str) -> EcsStack {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(StackOptions {
        deployer_policy: Some(deployer_policy(dir.path())),
        moto_auth: false,
        ..Default::default()
    });
    let app = EcsApp {
        application: APPLICATION,
        group: GROUP,
        config,
        ready_wait,
        cluster: CLUSTER,
        service: SERVICE,
        container: "web",
        repository: REPOSITORY,
        images: &["v1", "v2", "v3"],
        hooks: &[(SMOKE, None)],
    };
    let digests = stack
        .block_on(create_ecs(&stack.codedeploy(), &stack.ecs(), &stack.ecr(), &stack.iam_as_prod(), &stack.lambda(), &app))
        .unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, env_toml(toml_extra)).unwrap();
    EcsStack { stack, dir, config, digests }
}

impl EcsStack {
    fn ferry(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.stack.ferry_command(FERRY);
        cmd.args(args).args(["--env", "production", "--config"]).arg(&self.config);
        cmd
    }

    fn release_command(&self, tag: &str, extra: &[&str]) -> std::process::Command {
        let mut cmd = self.ferry(&["release", "--image", &ecr_image(REPOSITORY, tag)]);
        cmd.args(extra);
        cmd
    }

    fn release(&self, tag: &str, extra: &[&str]) -> Run {
        run(&mut self.release_command(tag, extra))
    }

    /// The image `tag` by digest, as the task definition names it.
    fn pinned(&self, tag: &str) -> String {
        let n: usize = tag[1..].parse().unwrap();
        format!("{PRODUCTION_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}@{}", self.digests[n - 1])
    }

    /// The task definitions of the service's family, oldest first.
    fn task_definitions(&self) -> Vec<String> {
        self.stack.block_on(async {
            let out = self.stack.ecs().list_task_definitions().family_prefix(SERVICE).send().await.unwrap();
            out.task_definition_arns().to_vec()
        })
    }

    /// The image the service's primary task set runs (the service's own
    /// task definition before any deployment).
    fn running_image(&self) -> String {
        self.stack.block_on(async {
            let ecs = self.stack.ecs();
            let svc = ecs.describe_services().cluster(CLUSTER).services(SERVICE).send().await.unwrap();
            let svc = &svc.services()[0];
            let primary = svc.task_sets().iter().find(|t| t.status() == Some("PRIMARY"));
            let definition = primary.and_then(|t| t.task_definition()).or(svc.task_definition()).unwrap().to_string();
            let d = ecs.describe_task_definition().task_definition(definition).send().await.unwrap();
            d.task_definition().unwrap().container_definitions()[0].image().unwrap().to_string()
        })
    }

    fn deployment(&self, id: &str) -> aws_sdk_codedeploy::types::DeploymentInfo {
        self.stack.block_on(async {
            self.stack.codedeploy().get_deployment().deployment_id(id).send().await.unwrap().deployment_info.unwrap()
        })
    }
}

impl Deployments for EcsStack {
    fn newest(&self) -> Option<String> {
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
            out.deployments().first().cloned()
        })
    }

    fn status(&self, id: &str) -> String {
        self.deployment(id).status().unwrap().as_str().to_string()
    }

    fn rollback_of(&self, id: &str) -> Option<String> {
        self.deployment(id).rollback_info().and_then(|r| r.rollback_deployment_id()).map(String::from)
    }
}

#[test]
fn a_release_deploys_the_image_by_digest_and_shows_the_task_sets_traffic_shifting() {
    let e = stack(CANARY, None, "");
    let receipt = e.dir.path().join("receipt.json");
    let text = e.release("v2", &["--receipt", receipt.to_str().unwrap()]);
    assert_eq!(text.code, 0, "{}", text.all());
    // docs/ecs.md's recorded run.
    eprintln!("recorded run:\n{}", text.stderr);
    let log = &text.stderr;
    assert!(log.contains(&format!("resolved to {} (ECR): the digest is what deploys", e.pinned("v2"))), "{log}");
    assert!(log.contains("registered task definition arn:aws:ecs:") && log.contains(&format!("/{SERVICE}:2 (from ")), "{log}");
    let canary = format!("{CLUSTER}:{SERVICE} traffic: replacement task set");
    let at_canary = log.find(&canary).and_then(|i| log[i..].find(" 10%, original 90%").map(|j| i + j));
    let at_end = log.rfind(" 100%, original 0%");
    assert!(at_canary.is_some() && at_end > at_canary, "the canary's share, then all of it:\n{log}");
    assert!(log.contains(&format!("{CLUSTER}:{SERVICE} AllowTestTraffic Succeeded")), "{log}");
    assert_eq!(e.running_image(), e.pinned("v2"), "the service runs the digest");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&receipt).unwrap()).unwrap();
    assert_eq!(r["image"], e.pinned("v2").as_str(), "{r}");
    assert!(r["task_definition_arn"].as_str().unwrap().ends_with(&format!("task-definition/{SERVICE}:2")), "{r}");
    assert!(r["key"].as_str().unwrap().ends_with(".yaml"), "the appspec is content-addressed: {r}");
    let spec = e.deployment(&e.newest().unwrap()).revision().and_then(|r| r.s3_location()).map(|l| l.bundle_type().cloned());
    assert_eq!(spec, Some(Some(aws_sdk_codedeploy::types::BundleType::Yaml)));

    // In JSON: the same steps as events.
    let json = e.release("v3", &["--output", "json"]);
    assert_eq!(json.code, 0, "{}", json.all());
    let events = json.events();
    let resolved = events.iter().find(|v| v["event"] == "image_resolved").unwrap_or_else(|| panic!("{}", json.stdout));
    assert_eq!((resolved["digest"].as_str(), resolved["verified"].as_bool()), (Some(e.digests[2].as_str()), Some(true)));
    let shares: Vec<f64> =
        events.iter().filter(|v| v["event"] == "task_set_traffic").map(|v| v["replacement_percent"].as_f64().unwrap()).collect();
    assert!(shares.contains(&10.0) && shares.last() == Some(&100.0), "the canary's share, then all of it: {shares:?}");
    assert_eq!(e.running_image(), e.pinned("v3"));

    // `ferry rollback`: the appspec of the release before, from the
    // group's history, so the task definition before.
    let history = run(&mut e.ferry(&["history"]));
    assert_eq!(history.code, 0, "{}", history.all());
    assert_eq!(history.all().matches(".yaml").count(), 2, "both releases' appspecs are listed: {}", history.all());
    let back = run(&mut e.ferry(&["rollback"]));
    assert_eq!(back.code, 0, "{}", back.all());
    assert!(back.stderr.contains(&format!("(task definition {}", r["task_definition_arn"].as_str().unwrap())), "{}", back.stderr);
    assert_eq!(e.running_image(), e.pinned("v2"), "the service is back on the previous task definition");
    assert_eq!(e.task_definitions().len(), 3, "a rollback registers nothing");
}

#[test]
fn a_failing_hook_function_is_rolled_back_and_exits_7() {
    let e = stack(CANARY, None, &format!("[env.production.lambda_hooks]\nAfterAllowTestTraffic = \"{SMOKE}\"\n"));
    let junit = e.dir.path().join("junit.xml");
    let release = Running::spawn(&mut e.release_command("v2", &["--junit", junit.to_str().unwrap()]));
    // moto runs no function: the test is the hook, and it reports Failed.
    let id = traffic::hook_function_fails(&e.stack, "AfterAllowTestTraffic", SMOKE);
    let (code, log) = release.wait();
    assert_eq!(code, Some(7), "{log}");
    assert!(log.contains(&format!("{CLUSTER}:{SERVICE} AfterAllowTestTraffic Failed")), "{log}");
    assert!(log.contains(SMOKE), "the failure names the hook function: {log}");
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains(&format!("name=\"{CLUSTER}:{SERVICE}\"")) && report.contains("<failure"), "{report}");
    assert_eq!(e.status(&id), "Failed");
    let rollback = e.rollback_of(&id).unwrap();
    wait_until("the rollback to succeed", || e.status(&rollback) == "Succeeded");
    assert_eq!(e.running_image(), e.pinned("v1"), "no production traffic stayed on v2");
}

#[test]
fn ready_exits_6_and_ferry_continue_moves_the_traffic() {
    // Ready for up to 60 minutes (a minute is one second on the stack):
    // only ContinueDeployment ends the wait within the test.
    let e = stack(CANARY, Some(60), "");
    let ready = e.release("v2", &[]);
    assert_eq!(ready.code, 6, "{}", ready.all());
    let id = e.newest().unwrap();
    assert_eq!(e.status(&id), "Ready");
    assert!(ready.stderr.contains("AllowTestTraffic Succeeded"), "test traffic reached the replacement: {}", ready.stderr);
    let done = run(&mut e.ferry(&["continue", &id, "--wait-type", "ready"]));
    assert_eq!(done.code, 0, "{}", done.all());
    assert_eq!(e.status(&id), "Succeeded");
    assert!(done.stderr.contains("100%, original 0%"), "{}", done.stderr);
    assert_eq!(e.running_image(), e.pinned("v2"));
}

#[test]
fn wait_ready_follows_through_the_ready_wait_to_the_end() {
    let e = stack(CANARY, Some(60), "");
    let release = Running::spawn(&mut e.release_command("v2", &["--wait-ready"]));
    let log = traffic::wait_ready_then_continue(&e, release, |id| {
        e.stack.block_on(async { e.stack.codedeploy().continue_deployment().deployment_id(id).send().await.unwrap() });
    });
    assert!(log.contains("100%, original 0%"), "{log}");
    assert_eq!(e.running_image(), e.pinned("v2"));
}

#[test]
fn a_stop_from_outside_exits_4() {
    let e = stack(LONG_CANARY, None, "");
    let release = Running::spawn(&mut e.release_command("v2", &[]));
    traffic::stop_from_outside(&e, release, "10%, original 90%", |id| e.ferry(&["stop", id]));
}

#[test]
fn sigterm_during_traffic_shifting_stops_rolls_back_and_writes_the_receipt() {
    let e = stack(LONG_CANARY, None, "");
    let receipt = e.dir.path().join("receipt.json");
    let release = Running::spawn(&mut e.release_command("v2", &["--receipt", receipt.to_str().unwrap()]));
    let (r, _, _) = traffic::sigterm_rolls_back(&e, release, "10%, original 90%", || (), &receipt);
    assert_eq!(r["image"], e.pinned("v2").as_str(), "{r}");
    assert_eq!(e.running_image(), e.pinned("v1"), "the original task set has the traffic back");
}

#[test]
fn a_missing_image_or_tag_is_refused_before_anything_is_registered() {
    let e = stack(CANARY, None, "");
    let missing = e.release("v9", &[]);
    assert_eq!(missing.code, 2, "{}", missing.all());
    assert!(missing.stderr.contains(&format!("image {} is not in ECR", ecr_image(REPOSITORY, "v9"))), "{}", missing.stderr);
    let other =
        run(&mut e.ferry(&["release", "--image", &format!("{PRODUCTION_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/nope:v1")]));
    assert_eq!(other.code, 2, "{}", other.all());
    assert!(other.stderr.contains("is not in ECR"), "{}", other.stderr);
    let outside = run(&mut e.ferry(&["release", "--image", "nginx:1.27"]));
    assert_eq!(outside.code, 1, "{}", outside.all());
    assert!(outside.stderr.contains("give it by digest"), "{}", outside.stderr);
    let server = e.dir.path().join("server.toml");
    std::fs::write(&server, env_toml("").replace("compute_platform = \"ECS\"\n", "")).unwrap();
    let mut cmd = e.stack.ferry_command(FERRY);
    let not_ecs =
        run(cmd.args(["release", "--image", &ecr_image(REPOSITORY, "v2"), "--env", "production", "--config"]).arg(&server));
    assert_eq!(not_ecs.code, 1, "{}", not_ecs.all());
    assert!(not_ecs.stderr.contains("--image releases an ECS service"), "{}", not_ecs.stderr);
    let nothing = run(&mut e.ferry(&["release"]));
    assert_eq!(nothing.code, 1, "{}", nothing.all());
    assert!(nothing.stderr.contains("<DIR|FILE>"), "clap names what is missing: {}", nothing.stderr);
    let empty = run(&mut e.ferry(&["release", ""]));
    assert_eq!(empty.code, 1, "{}", empty.all());
    assert!(empty.stderr.contains("or `--image URI` for an ECS environment"), "{}", empty.stderr);
    let bundle = run(&mut e.ferry(&["release", e.dir.path().to_str().unwrap()]));
    assert_eq!(bundle.code, 1, "{}", bundle.all());
    assert!(bundle.stderr.contains("--image"), "{}", bundle.stderr);
    assert_eq!(e.task_definitions().len(), 1, "nothing was registered");
    let listed = e.stack.block_on(async {
        e.stack.codedeploy().list_deployments().application_name(APPLICATION).deployment_group_name(GROUP).send().await.unwrap()
    });
    assert!(listed.deployments().is_empty(), "nothing was deployed");
}

#[test]
fn the_live_board_shows_the_service_with_its_traffic() {
    let e = stack(CANARY, None, "");
    let (screens, code) = on_a_terminal(&e.release_command("v2", &[]));
    assert_eq!(code, 0, "{}", screens.last().unwrap_or(&String::new()));
    let row = format!("{CLUSTER}:{SERVICE}");
    assert!(
        screens.iter().flat_map(|s| s.lines()).any(|l| l.trim_start().starts_with(&row) && l.contains("replacement 10%")),
        "the service's row names the canary's share: {:?}",
        screens.last()
    );
}

#[test]
fn doctor_checks_the_applications_platform_and_the_service() {
    let e = stack(CANARY, None, "");
    let doctor = run(&mut e.ferry(&["doctor"]));
    assert_eq!(doctor.code, 0, "{}", doctor.all());
    let text = doctor.all();
    assert!(text.contains(&format!("{APPLICATION} exists (compute platform ECS)")), "{text}");
    assert!(text.contains(&format!("{CLUSTER}/{SERVICE} is deployed by CodeDeploy")), "{text}");
    assert!(text.contains("traffic goes to container web port 80"), "{text}");

    // A service ferry.toml names that the cluster does not have.
    let wrong = e.dir.path().join("wrong.toml");
    std::fs::write(&wrong, env_toml("ecs_cluster = \"shop\"\necs_service = \"api\"\n")).unwrap();
    let mut cmd = e.stack.ferry_command(FERRY);
    let refused = run(cmd.args(["doctor", "--env", "production", "--config"]).arg(&wrong));
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert!(refused.all().contains("has no active service api"), "{}", refused.all());
}

#[test]
fn a_task_definition_file_is_registered_once_its_roles_trust_ecs_tasks() {
    let e = stack(CANARY, None, "task_definition = \"taskdef.json\"\n");
    let role = |name: &str| format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{name}");
    let taskdef = |execution: &str| {
        serde_json::json!({
            "family": SERVICE,
            "taskRoleArn": role(ferry_test_stack::application::ECS_TASK_ROLES[0]),
            "executionRoleArn": role(execution),
            "containerDefinitions": [{"name": "web", "image": "placeholder", "memory": 256,
                "portMappings": [{"containerPort": 80}], "environment": [{"name": "FROM", "value": "repo"}]}]
        })
        .to_string()
    };
    // The deployer's role exists but trusts no ECS task: refused first.
    std::fs::write(e.config.with_file_name("taskdef.json"), taskdef(DEPLOYER_ROLE)).unwrap();
    let mut cmd = e.release_command("v2", &[]);
    let refused = run(cmd.current_dir(e.dir.path()));
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(
        refused.stderr.contains(&format!("execution role {} does not trust ecs-tasks.amazonaws.com", role(DEPLOYER_ROLE))),
        "{}",
        refused.stderr
    );
    assert_eq!(e.task_definitions().len(), 1, "nothing was registered");

    std::fs::write(e.config.with_file_name("taskdef.json"), taskdef(ferry_test_stack::application::ECS_TASK_ROLES[1])).unwrap();
    let mut cmd = e.release_command("v2", &[]);
    let released = run(cmd.current_dir(e.dir.path()));
    assert_eq!(released.code, 0, "{}", released.all());
    assert!(released.stderr.contains("(from taskdef.json, container web on "), "{}", released.stderr);
    assert_eq!(e.running_image(), e.pinned("v2"));
    let env = e.stack.block_on(async {
        let d = e.stack.ecs().describe_task_definition().task_definition(format!("{SERVICE}:2")).send().await.unwrap();
        d.task_definition().unwrap().container_definitions()[0].environment()[0].value().map(String::from)
    });
    assert_eq!(env.as_deref(), Some("repo"), "the file's definition was registered, not the service's");
}
