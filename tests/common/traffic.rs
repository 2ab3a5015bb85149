//! The shape every traffic-shifting platform's stop and abort tests share
//! (tests/bluegreen.rs, tests/lambda.rs, tests/ecs.rs): a release spawned,
//! read until `marker` says traffic is moving, then stopped from outside
//! (`ferry stop`: exit 4) or sent SIGTERM (exit 143, stopped and rolled
//! back, the receipt saying so), or, with `--wait-ready`, followed through
//! the Ready wait. The platform checks its own state after.

use std::io::{BufReader, Read};
use std::process::{Child, ChildStderr, Command, Stdio};

use super::{Stack, read_until, run, wait_until};

/// A release running in the background, its stderr read line by line.
pub struct Running {
    /// The process.
    pub child: Child,
    /// Its stderr.
    pub stderr: BufReader<ChildStderr>,
}

impl Running {
    /// Spawns `release`.
    pub fn spawn(release: &mut Command) -> Running {
        let mut child = release.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        Running { child, stderr }
    }

    /// Waits for the process; its exit code and its whole log.
    pub fn wait(self) -> (Option<i32>, String) {
        self.finish(String::new())
    }

    /// Waits for the process; its exit code and the rest of its log after `log`.
    fn finish(mut self, mut log: String) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.stderr.read_to_string(&mut log).unwrap();
        (status.code(), log)
    }
}

/// What a platform's test supplies: its newest deployment and a
/// deployment's status (CodeDeploy's spelling), read as the inspector.
pub trait Deployments {
    /// The group's newest deployment, once there is one.
    fn newest(&self) -> Option<String>;
    /// `Succeeded`, `Stopped`, …
    fn status(&self, id: &str) -> String;
    /// The deployment CodeDeploy started to roll `id` back, if any.
    fn rollback_of(&self, id: &str) -> Option<String>;
}

/// Once `marker` is logged, `stop` (the `ferry stop` command for the
/// deployment id it is given) stops the release: it exits 4 and the
/// deployment stands Stopped. Returns the deployment id and the log.
pub fn stop_from_outside(
    group: &impl Deployments,
    running: Running,
    marker: &str,
    stop: impl FnOnce(&str) -> Command,
) -> (String, String) {
    let mut running = running;
    let log = read_until(&mut running.stderr, marker);
    let id = group.newest().expect("the release created a deployment");
    let stopped = run(&mut stop(&id));
    assert_eq!(stopped.code, 0, "{}", stopped.all());
    let (code, log) = running.finish(log);
    assert_eq!(code, Some(4), "{log}");
    assert_eq!(group.status(&id), "Stopped");
    (id, log)
}

/// Once `marker` is logged (and `at_marker` has checked the platform's
/// state mid-shift), SIGTERM: ferry exits 143 having stopped the
/// deployment and started its rollback, and the receipt at `receipt` says
/// so. Waits for the rollback to succeed; returns the receipt, the
/// deployment id and the rollback's id.
pub fn sigterm_rolls_back(
    group: &impl Deployments,
    running: Running,
    marker: &str,
    at_marker: impl FnOnce(),
    receipt: &std::path::Path,
) -> (serde_json::Value, String, String) {
    let mut running = running;
    let log = read_until(&mut running.stderr, marker);
    at_marker();
    let ok = Command::new("kill").args(["-TERM", &running.child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let (code, log) = running.finish(log);
    assert_eq!(code, Some(143), "{log}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(receipt).unwrap()).unwrap();
    assert_eq!(r["outcome"], "aborted", "{r}");
    assert_eq!(r["signal"], "SIGTERM");
    assert_eq!(r["abort"]["action"], "stop-and-rollback", "{r}");
    let id = r["deployment_id"].as_str().unwrap().to_string();
    assert_eq!(group.status(&id), "Stopped");
    let rollback = group.rollback_of(&id).unwrap_or_else(|| panic!("{id} was not rolled back"));
    assert_eq!(r["rollback_deployment_id"], rollback.as_str(), "{r}");
    wait_until("the rollback to succeed", || group.status(&rollback) == "Succeeded");
    (r, id, rollback)
}

/// A release with `--wait-ready` on a group that stands Ready: ferry keeps
/// following until `continue_deployment` (ContinueDeployment from
/// elsewhere, as from the console) moves the traffic, then exits 0. Returns
/// the log after Ready.
pub fn wait_ready_then_continue(group: &impl Deployments, running: Running, continue_deployment: impl FnOnce(&str)) -> String {
    let mut running = running;
    wait_until("Ready", || group.newest().is_some_and(|id| group.status(&id) == "Ready"));
    let id = group.newest().expect("seen above");
    assert!(running.child.try_wait().unwrap().is_none(), "ferry ended at Ready despite --wait-ready");
    continue_deployment(&id);
    let (code, log) = running.wait();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(group.status(&id), "Succeeded");
    log
}

/// Plays the hook function moto cannot run: waits for CodeDeploy's first
/// hook invocation, checks it is `function` at `event`, and reports Failed
/// through PutLifecycleEventHookExecutionStatus, as a failing function
/// would. Returns the deployment's id.
pub fn hook_function_fails(stack: &Stack, event: &str, function: &str) -> String {
    wait_until("the hook to be invoked", || !stack.emulator().hook_executions().is_empty());
    let hook = stack.emulator().hook_executions().remove(0);
    assert_eq!((hook.lifecycle_event.as_str(), hook.function.as_str()), (event, function));
    stack.block_on(async {
        stack
            .codedeploy()
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&hook.deployment_id)
            .lifecycle_event_hook_execution_id(&hook.execution_id)
            .status(aws_sdk_codedeploy::types::LifecycleEventStatus::Failed)
            .send()
            .await
            .unwrap()
    });
    hook.deployment_id
}
