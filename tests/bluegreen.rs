//! EC2 blue/green, end to end on the stack: ferry releases to a group whose
//! deployments replace its instances, follows both fleets, stops at Ready
//! (exit 6) for `ferry continue`, and is rolled back, stopped and aborted
//! like an in-place release. Everything here rests on the CodeDeploy
//! emulator's model of blue/green (see its README): there is no load
//! balancer and no EC2 behind it.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_codedeploy::types::{DeploymentInfo, InstanceTarget, TargetLabel};
use common::traffic::{self, Deployments, Running};
use common::{FERRY, Run, Stack, StackOptions, app_tree, on_a_terminal, run, wait_until};
use ferry_test_stack::application::{BlueGreen, Group, create_blue_green_group};

/// The blue/green group, beside the stack's in-place `web-prod`.
const GROUP: &str = "web-bg";
/// How ferry names the replacement instances.
const GREEN: &str = "tag:fleet=green";

struct BlueGreenStack {
    stack: Stack,
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// A stack with a blue/green group of two instances that rolls back on
/// failure, and a ferry.toml pointing `production` at it.
fn stack(waits: BlueGreen) -> BlueGreenStack {
    with_group(Stack::start_with(StackOptions { policy_groups: vec![GROUP.into()], ..Default::default() }), waits)
}

/// [`stack`] on a stack of one's own.
fn with_group(stack: Stack, waits: BlueGreen) -> BlueGreenStack {
    let group = Group {
        application: stack.application(),
        name: GROUP,
        instances: 2,
        extra_tags: &[],
        auto_rollback: true,
        on_premises_tag: None,
    };
    stack.block_on(create_blue_green_group(&stack.codedeploy(), &group, waits)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = stack.config_toml("production");
    let in_place = format!("deployment_group = \"{}\"", stack.deployment_group());
    assert!(toml.contains(&in_place), "{toml}");
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, toml.replace(&in_place, &format!("deployment_group = \"{GROUP}\""))).unwrap();
    BlueGreenStack { stack, dir, config }
}

impl BlueGreenStack {
    fn ferry(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.stack.ferry_command(FERRY);
        cmd.args(args).args(["--env", "production", "--config"]).arg(&self.config);
        cmd
    }

    /// `ferry release` of an app whose ValidateService runs `validate`.
    fn release(&self, name: &str, validate: &str, extra: &[&str]) -> Run {
        let app = self.app(name, validate);
        run(self.ferry(&["release", app.to_str().unwrap(), "--target-instances", GREEN]).args(extra))
    }

    fn app(&self, name: &str, validate: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        app_tree(&dir, validate)
    }

    fn deployment(&self, id: &str) -> DeploymentInfo {
        self.stack.block_on(async {
            self.stack.codedeploy().get_deployment().deployment_id(id).send().await.unwrap().deployment_info.unwrap()
        })
    }

    /// Every deployment of the group, newest first.
    fn deployments(&self) -> Vec<String> {
        self.stack.block_on(async {
            let out = self
                .stack
                .codedeploy()
                .list_deployments()
                .application_name(self.stack.application())
                .deployment_group_name(GROUP)
                .send()
                .await
                .unwrap();
            out.deployments().to_vec()
        })
    }

    fn targets(&self, id: &str) -> Vec<InstanceTarget> {
        self.stack.block_on(async {
            let cd = self.stack.codedeploy();
            let ids = cd.list_deployment_targets().deployment_id(id).send().await.unwrap().target_ids.unwrap_or_default();
            let out = cd.batch_get_deployment_targets().deployment_id(id).set_target_ids(Some(ids)).send().await.unwrap();
            out.deployment_targets().iter().map(|t| t.instance_target.clone().unwrap()).collect()
        })
    }
}

impl Deployments for BlueGreenStack {
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

fn with_label(targets: &[InstanceTarget], label: TargetLabel) -> Vec<String> {
    targets.iter().filter(|t| t.instance_label() == Some(&label)).map(|t| t.target_id().unwrap().to_string()).collect()
}

fn event_names(targets: &[InstanceTarget], id: &str) -> Vec<String> {
    let t = targets.iter().find(|t| t.target_id() == Some(id)).unwrap();
    t.lifecycle_events().iter().map(|e| e.lifecycle_event_name().unwrap().to_string()).collect()
}

/// The deployment id ferry printed on stdout.
fn printed_id(run: &Run) -> String {
    let id = run.stdout.split_whitespace().find(|w| w.starts_with("d-")).unwrap_or_else(|| panic!("no id:\n{}", run.all()));
    id.to_string()
}

#[test]
fn a_release_installs_on_the_replacement_moves_traffic_and_shows_both_fleets() {
    let bg = stack(BlueGreen::default());
    let junit = bg.dir.path().join("junit.xml");
    let text = bg.release("v1", "exit 0", &["--junit", junit.to_str().unwrap()]);
    assert_eq!(text.code, 0, "{}", text.all());
    let id = printed_id(&text);
    let targets = bg.targets(&id);
    let (green, blue) = (with_label(&targets, TargetLabel::Green), with_label(&targets, TargetLabel::Blue));
    assert_eq!((green.len(), blue.len()), (2, 2), "{targets:?}");
    // Plain lines: each instance named with its fleet, then its events.
    for g in &green {
        assert!(text.stderr.contains(&format!("{g} Green (replacement environment)")), "{}", text.stderr);
        assert!(text.stderr.contains(&format!("{g} AllowTraffic Succeeded")), "{}", text.stderr);
        assert_eq!(event_names(&targets, g).last().unwrap(), "AfterAllowTraffic");
    }
    for b in &blue {
        assert!(text.stderr.contains(&format!("{b} Blue (original environment)")), "{}", text.stderr);
        assert!(text.stderr.contains(&format!("{b} BlockTraffic Succeeded")), "{}", text.stderr);
        assert_eq!(event_names(&targets, b), ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]);
    }
    let report = std::fs::read_to_string(&junit).unwrap();
    for (ids, label) in [(&green, "Green"), (&blue, "Blue")] {
        for i in ids {
            assert!(report.contains(&format!("name=\"{i} ({label})\"")), "{report}");
        }
    }

    // JSON events: the same labels, as `target_labelled`; the last
    // replacement is the next release's original environment.
    let json = bg.release("v2", "exit 0", &["--output", "json"]);
    assert_eq!(json.code, 0, "{}", json.all());
    let events = json.events();
    let labelled = |label: &str| -> Vec<String> {
        let mut ids: Vec<String> = events
            .iter()
            .filter(|e| e["event"] == "target_labelled" && e["label"] == label)
            .map(|e| e["target_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut previous_green = green.clone();
    previous_green.sort();
    assert_eq!(labelled("Blue"), previous_green, "{}", json.stdout);
    assert_eq!(labelled("Green").len(), 2, "{}", json.stdout);
    assert!(labelled("Green").iter().all(|g| !previous_green.contains(g)));
}

#[test]
fn a_failing_hook_on_the_replacement_is_rolled_back_and_exits_7() {
    let bg = stack(BlueGreen::default());
    assert_eq!(bg.release("v1", "exit 0", &[]).code, 0);
    let failed = bg.release("v2", "echo broken >&2; exit 1", &[]);
    assert_eq!(failed.code, 7, "{}", failed.all());
    assert!(failed.stderr.contains("ValidateService"), "{}", failed.stderr);
    let ids = bg.deployments();
    let (rollback, bad) = (&ids[0], &ids[1]);
    let info = bg.deployment(bad);
    assert_eq!(info.status().unwrap().as_str(), "Failed");
    assert_eq!(info.rollback_info().unwrap().rollback_deployment_id(), Some(rollback.as_str()));
    assert_eq!(bg.status(rollback), "Succeeded");
    // The rollback moved traffic back onto the originals, off the replacement.
    let targets = bg.targets(rollback);
    let originals = with_label(&targets, TargetLabel::Blue);
    assert_eq!(event_names(&targets, &originals[0]), ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]);
}

#[test]
fn ready_exits_6_and_ferry_continue_reroutes_then_ends_the_termination_wait() {
    // Ready for up to 60 minutes, originals terminated 60 minutes after
    // traffic moved (a minute is one second on the stack): only
    // ContinueDeployment ends either wait within the test.
    let bg = stack(BlueGreen { ready_wait_minutes: Some(60), termination_wait_minutes: Some(60) });
    let ready = bg.release("v1", "exit 0", &[]);
    assert_eq!(ready.code, 6, "{}", ready.all());
    let id = printed_id(&ready);
    assert_eq!(bg.status(&id), "Ready");
    assert!(ready.stderr.contains("READY"), "{}", ready.stderr);

    let early = run(&mut bg.ferry(&["continue", &id, "--wait-type", "termination"]));
    assert_eq!(early.code, 2, "{}", early.all());
    assert!(early.stderr.contains("wait to be terminated"), "{}", early.stderr);

    let rerouted = run(&mut bg.ferry(&["continue", &id, "--no-wait"]));
    assert_eq!(rerouted.code, 0, "{}", rerouted.all());
    wait_until("the termination wait", || bg.deployment(&id).instance_termination_wait_time_started);
    let done = run(&mut bg.ferry(&["continue", &id, "--wait-type", "termination"]));
    assert_eq!(done.code, 0, "{}", done.all());
    assert_eq!(bg.status(&id), "Succeeded");
    assert!(done.stderr.contains("AllowTraffic Succeeded"), "{}", done.stderr);
}

#[test]
fn wait_ready_follows_through_the_ready_wait_to_the_end() {
    let bg = stack(BlueGreen { ready_wait_minutes: Some(60), termination_wait_minutes: None });
    let app = bg.app("v1", "exit 0");
    let release = Running::spawn(&mut bg.ferry(&["release", app.to_str().unwrap(), "--target-instances", GREEN, "--wait-ready"]));
    // The continue comes from elsewhere (the console, a person).
    let log = traffic::wait_ready_then_continue(&bg, release, |id| {
        bg.stack.block_on(async { bg.stack.codedeploy().continue_deployment().deployment_id(id).send().await.unwrap() });
    });
    assert!(log.contains("AllowTraffic Succeeded"), "{log}");
}

fn spawn_release(bg: &BlueGreenStack, name: &str, extra: &[&str]) -> Running {
    let app = bg.app(name, "sleep 0.5");
    Running::spawn(bg.ferry(&["release", app.to_str().unwrap(), "--target-instances", GREEN]).args(extra))
}

#[test]
fn a_stop_from_outside_exits_4() {
    let bg = stack(BlueGreen::default());
    let release = spawn_release(&bg, "v1", &[]);
    traffic::stop_from_outside(&bg, release, "Green (replacement environment)", |id| bg.ferry(&["stop", id]));
}

#[test]
fn sigterm_while_following_stops_rolls_back_and_writes_the_receipt() {
    let bg = stack(BlueGreen::default());
    assert_eq!(bg.release("v1", "exit 0", &[]).code, 0);
    let receipt = bg.dir.path().join("receipt.json");
    let release = spawn_release(&bg, "v2", &["--receipt", receipt.to_str().unwrap()]);
    let (_, _, rollback) = traffic::sigterm_rolls_back(&bg, release, "Green (replacement environment)", || (), &receipt);
    let targets = bg.targets(&rollback);
    assert_eq!(with_label(&targets, TargetLabel::Blue).len(), 2, "the originals got traffic back");
}

#[test]
fn the_live_board_names_each_instance_with_its_fleet() {
    // Slow steps, so the board is drawn while instances are in flight.
    let stack = Stack::start_with(StackOptions {
        policy_groups: vec![GROUP.into()],
        step_delay: Duration::from_millis(300),
        ..Default::default()
    });
    let bg = with_group(stack, BlueGreen::default());
    let app = bg.app("v1", "exit 0");
    let (screens, code) = on_a_terminal(&bg.ferry(&["release", app.to_str().unwrap(), "--target-instances", GREEN]));
    assert_eq!(code, 0, "{}", screens.last().unwrap_or(&String::new()));
    let rows = |label: &str| -> Vec<String> {
        screens
            .iter()
            .flat_map(|s| s.lines())
            .filter(|l| l.trim_start().starts_with("i-") && l.contains(&format!(" {label} ")) && l.contains('['))
            .map(String::from)
            .collect()
    };
    let green = rows("Green");
    assert!(green.iter().any(|r| r.contains("/10")), "a replacement's row runs through ten events: {green:?}");
    let blue = rows("Blue");
    assert!(blue.iter().any(|r| r.contains("BlockTraffic") && r.contains("/3")), "an original's row: {blue:?}");
}
