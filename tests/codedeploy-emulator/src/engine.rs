//! The deployment runner: moves a deployment from Created through InProgress
//! to Succeeded, Failed or Stopped, deploying to its group's simulated
//! instances in batches sized by the deployment config, and starts automatic
//! rollbacks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{
    ALLOW_TRAFFIC_EVENTS, BlueGreenRun, Deployment, DeploymentStatus, Diagnostics, EcsRun, ErrorInformation, InstanceRun,
    LIFECYCLE_EVENTS, Label, LambdaRun, LastDeploymentInfo, RevisionLocation, RollbackInfo, TargetStatus, now,
};
use crate::store::{Shared, Store};

mod bluegreen;
mod ecs;
pub mod faults;
mod hookfn;
mod install;
mod instance;
mod lambda;

pub use faults::Fault;

/// Message of the service when too many instances failed.
pub const HEALTH_CONSTRAINTS_MESSAGE: &str = "The overall deployment failed because too many individual instances failed deployment, too few healthy instances are available for deployment, or some instances in your deployment group are experiencing problems.";

/// Starts running deployment `id` in the background.
pub fn spawn(shared: Arc<Shared>, id: String) {
    tokio::spawn(run(shared, id));
}

/// What every instance of one deployment shares.
pub(crate) struct Context {
    pub shared: Arc<Shared>,
    pub id: String,
    pub application_name: String,
    pub group_name: String,
    pub group_id: String,
    pub revision: RevisionLocation,
    pub file_exists_behavior: String,
    pub ignore_application_stop_failures: bool,
    pub fault: Option<Fault>,
    /// The bundle is fetched once per deployment and shared by its instances:
    /// they would all get the same object, and a big fleet shouldn't hammer S3.
    pub bundle: tokio::sync::OnceCell<Result<Arc<Vec<u8>>, String>>,
    /// `creator` of the deployment (`user`, `codeDeployRollback`).
    pub creator: String,
    /// Host identifiers of the instances that are registered on-premises
    /// instances, by instance name: their events run on real agents.
    pub agent_hosts: std::collections::BTreeMap<String, String>,
    /// The deployment specification the agents get, signed once.
    pub signed_spec: tokio::sync::OnceCell<Result<String, String>>,
    /// The fleets of a blue/green deployment.
    pub blue_green: Option<BlueGreenRun>,
    /// A Lambda deployment's function and versions, and its config's
    /// `trafficRoutingConfig`.
    pub lambda: Option<(LambdaRun, Option<serde_json::Value>)>,
    /// An ECS deployment's service and appspec, and its config's
    /// `trafficRoutingConfig`.
    pub ecs: Option<(EcsRun, Option<serde_json::Value>)>,
}

impl Context {
    /// Applies `f` to this deployment under the store lock.
    pub fn update<T>(&self, f: impl FnOnce(&mut Deployment) -> T) -> Option<T> {
        let mut store = self.shared.lock();
        store.deployments.get_mut(&self.id).map(f)
    }

    /// Whether a StopDeployment arrived.
    pub fn stop_requested(&self) -> bool {
        self.update(|d| d.stop.is_some()).unwrap_or(true)
    }
}

/// How many instances may be unhealthy at once under a config, or why none may.
fn max_unhealthy(kind: &str, value: i64, total: usize) -> Result<usize, String> {
    let total_i = total as i64;
    let min_healthy = match kind {
        // OneAtATime: every instance but one stays healthy.
        "MOST_CONCURRENCY" => total_i - 1,
        "HOST_COUNT" => value,
        "FLEET_PERCENT" => (total_i * value + 99) / 100,
        other => return Err(format!("Unknown minimum healthy hosts type {other}.")),
    };
    let allowed = total_i - min_healthy;
    if allowed <= 0 && kind != "MOST_CONCURRENCY" {
        return Err(format!(
            "The deployment failed because the deployment configuration requires a minimum of {min_healthy} healthy instances ({kind} {value}), but the deployment group has only {total} instances, so no instance can be deployed to."
        ));
    }
    Ok(allowed.max(1) as usize)
}

enum Start {
    Run(Arc<Context>, usize, usize),
    Finished(Option<String>),
}

async fn run(shared: Arc<Shared>, id: String) {
    // Deployments sit in Created briefly, as on AWS.
    tokio::time::sleep(shared.config.step_delay).await;
    let read = match lambda::read_appspec(&shared, &id).await {
        Ok(()) => ecs::read_appspec(&shared, &id).await,
        Err(e) => Err(e),
    };
    if let Err(message) = read {
        let error = ErrorInformation { code: "INVALID_REVISION".into(), message };
        complete(&mut shared.lock(), &id, DeploymentStatus::Failed, Some(error));
        return;
    }
    let start = {
        let mut store = shared.lock();
        prepare(&shared, &mut store, &id)
    };
    let (ctx, total, allowed) = match start {
        Start::Run(ctx, total, allowed) => (ctx, total, allowed),
        Start::Finished(rollback) => {
            if let Some(rollback) = rollback {
                spawn(shared.clone(), rollback);
            }
            return;
        }
    };

    let outcome = match (&ctx.blue_green, &ctx.lambda, &ctx.ecs) {
        (_, _, Some((run, routing))) => ecs::run(&ctx, run, routing.as_ref()).await,
        (_, Some((run, routing)), None) => lambda::run(&ctx, run, routing.as_ref()).await,
        (Some(run), None, None) => bluegreen::run(&ctx, run, allowed).await,
        (None, None, None) => {
            batches(&ctx, &(0..total).collect::<Vec<_>>(), 0..LIFECYCLE_EVENTS.len(), TargetStatus::Succeeded, allowed).await
        }
    };
    let (status, error) = match outcome {
        Ok(()) => (DeploymentStatus::Succeeded, None),
        Err((status, error)) => (status, Some(error)),
    };
    // A stop that raced the last batch still wins, as the caller asked for
    // it; so does a stop whose interrupted instances count as failed, or a
    // one-instance deployment stopped mid-flight would end Failed.
    let (status, error) = if status != DeploymentStatus::Stopped && ctx.stop_requested() {
        (DeploymentStatus::Stopped, Some(stop_error()))
    } else {
        (status, error)
    };
    let rollback = {
        let mut store = shared.lock();
        complete(&mut store, &id, status, error)
    };
    if let Some(rollback) = rollback {
        spawn(shared.clone(), rollback);
    }
}

/// Why a deployment ended before its last phase: Stopped or Failed, and its error.
pub(crate) type Halt = (DeploymentStatus, ErrorInformation);

fn stopped() -> Halt {
    (DeploymentStatus::Stopped, stop_error())
}

fn unhealthy() -> Halt {
    (DeploymentStatus::Failed, health_error())
}

/// Runs `events` on the instances at `indices` in batches of at most
/// `allowed` unhealthy instances, as the deployment config sizes them;
/// each instance that ends healthy gets status `done`.
async fn batches(
    ctx: &Arc<Context>,
    indices: &[usize],
    events: std::ops::Range<usize>,
    done: TargetStatus,
    allowed: usize,
) -> Result<(), Halt> {
    let total = indices.len();
    let mut next = 0;
    let mut failed = 0;
    loop {
        if next == total {
            return if failed < total { Ok(()) } else { Err(unhealthy()) };
        }
        if ctx.stop_requested() {
            return Err(stopped());
        }
        let slots = allowed.saturating_sub(failed);
        if slots == 0 {
            return Err(unhealthy());
        }
        let end = (next + slots).min(total);
        let mut batch = tokio::task::JoinSet::new();
        for &index in &indices[next..end] {
            batch.spawn(instance::run(ctx.clone(), index, events.clone(), done));
        }
        while let Some(result) = batch.join_next().await {
            if !result.unwrap_or(false) {
                failed += 1;
            }
        }
        next = end;
    }
}

fn health_error() -> ErrorInformation {
    ErrorInformation { code: "HEALTH_CONSTRAINTS".into(), message: HEALTH_CONSTRAINTS_MESSAGE.into() }
}

fn stop_error() -> ErrorInformation {
    ErrorInformation { code: "MANUAL_STOP".into(), message: "The deployment was stopped by a user request.".into() }
}

/// Moves a Created deployment to InProgress, or finishes it when it cannot run.
fn prepare(shared: &Arc<Shared>, store: &mut Store, id: &str) -> Start {
    let Some(d) = store.deployments.get(id) else { return Start::Finished(None) };
    if d.stop.is_some() {
        return Start::Finished(complete(store, id, DeploymentStatus::Stopped, Some(stop_error())));
    }
    let fail = |store: &mut Store, code: &str, message: String| {
        Start::Finished(complete(store, id, DeploymentStatus::Failed, Some(ErrorInformation { code: code.into(), message })))
    };
    let Some(group) = store.groups.get(&(d.application_name.clone(), d.group_name.clone())) else {
        let message = format!("The deployment group {} no longer exists.", d.group_name);
        return fail(store, "DEPLOYMENT_GROUP_MISSING", message);
    };
    let blue_green = d.blue_green.clone();
    let lambda = d.lambda.clone();
    let ecs = d.ecs.clone();
    let instances = match (&blue_green, &lambda, &ecs) {
        // One target: the service, `CLUSTER:SERVICE`.
        (_, _, Some(run)) => vec![format!("{}:{}", run.group.cluster, run.group.service)],
        // One target: the function's alias.
        (_, Some(run), None) => vec![format!("{}:{}", run.function, run.alias)],
        (Some(run), None, None) => run.green.iter().chain(&run.blue).cloned().collect(),
        (None, None, None) => group.instances.clone(),
    };
    let fault = match Fault::from_tags(&group.tags) {
        Ok(fault) => fault.filter(|f| f.applies_to_creator(&d.creator)),
        Err(e) => return fail(store, "INTERNAL_ERROR", e),
    };
    if instances.is_empty() {
        return fail(
            store,
            "NO_INSTANCES",
            "The deployment failed because no instances were found for your deployment group. Check your deployment group settings to make sure the tags for your EC2 instances or Auto Scaling groups correctly identify the instances you want to deploy to, and then try again.".into(),
        );
    }
    if blue_green.as_ref().is_some_and(|run| run.load_balancer_info.is_none()) {
        return fail(
            store,
            "MISSING_ELB_INFORMATION",
            "The deployment failed because the deployment group has no load balancer information (loadBalancerInfo), which a blue/green deployment needs to reroute traffic.".into(),
        );
    }
    let Some(config) = store.configs.get(&d.config_name) else {
        let message = format!("The deployment configuration {} no longer exists.", d.config_name);
        return fail(store, "CODEDEPLOY_RESOURCE_CANNOT_BE_FOUND", message);
    };
    let hosts = &config.minimum_healthy_hosts;
    let routing = config.traffic_routing.clone();
    // A blue/green deployment's config paces the replacement environment.
    let paced = blue_green.as_ref().map_or(instances.len(), |run| run.green.len());
    let allowed = match max_unhealthy(&hosts.kind, hosts.value, paced) {
        _ if lambda.is_some() || ecs.is_some() => 1,
        Ok(n) => n,
        Err(message) => return fail(store, "HEALTH_CONSTRAINTS_INVALID", message),
    };
    let ctx = Arc::new(Context {
        shared: shared.clone(),
        id: id.to_string(),
        application_name: d.application_name.clone(),
        group_name: d.group_name.clone(),
        group_id: group.id.clone(),
        revision: d.revision.clone(),
        file_exists_behavior: d.file_exists_behavior.clone(),
        ignore_application_stop_failures: d.ignore_application_stop_failures,
        fault,
        bundle: tokio::sync::OnceCell::new(),
        creator: d.creator.clone(),
        agent_hosts: instances
            .iter()
            .filter_map(|i| store.on_premises.get(i).map(|o| (i.clone(), o.iam_user_arn.clone())))
            .collect(),
        signed_spec: tokio::sync::OnceCell::new(),
        blue_green: blue_green.clone(),
        lambda: lambda.map(|run| (run, routing.clone())),
        ecs: ecs.clone().map(|run| (run, routing)),
    });
    let total = instances.len();
    let d = store.deployments.get_mut(id).expect("looked up above");
    d.status = DeploymentStatus::InProgress;
    d.start_time = Some(now());
    d.instances = match (&blue_green, d.lambda.is_some()) {
        _ if ecs.as_ref().is_some_and(|run| !run.rollback) => {
            instances.into_iter().map(|id| InstanceRun::with_events(id, Label::Blue, &crate::ecs::EVENTS)).collect()
        }
        _ if ecs.is_some() => {
            instances.into_iter().map(|id| InstanceRun::with_events(id, Label::Blue, &ALLOW_TRAFFIC_EVENTS)).collect()
        }
        (_, true) => instances.into_iter().map(|id| InstanceRun::with_events(id, Label::Blue, &ALLOW_TRAFFIC_EVENTS)).collect(),
        (Some(run), false) => bluegreen::targets(run),
        (None, false) => instances.into_iter().map(InstanceRun::new).collect(),
    };
    Start::Run(ctx, total, allowed)
}

/// Finishes a deployment: settles instance states, updates its group and,
/// when the rollback settings ask for it, creates the rollback deployment
/// (whose id is returned for the caller to start).
pub(crate) fn complete(store: &mut Store, id: &str, status: DeploymentStatus, error: Option<ErrorInformation>) -> Option<String> {
    let finished = now();
    let d = store.deployments.get_mut(id)?;
    for instance in &mut d.instances {
        if matches!(instance.status, TargetStatus::Pending | TargetStatus::Unknown) {
            instance.status = TargetStatus::Skipped;
            instance.last_updated = finished;
            for event in &mut instance.events {
                event.status = TargetStatus::Skipped;
            }
        } else if matches!(instance.status, TargetStatus::Ready | TargetStatus::InProgress) {
            // A blue/green replacement installed but never given traffic:
            // its traffic events were skipped when the deployment ended.
            instance.status = TargetStatus::Skipped;
            instance.last_updated = finished;
            for event in instance.events.iter_mut().filter(|e| e.status == TargetStatus::Pending) {
                event.status = TargetStatus::Skipped;
                event.end_time = Some(finished);
            }
        }
    }
    d.status = status;
    d.complete_time = Some(finished);
    d.error = error;
    let d = store.deployments.get(id)?.clone();
    let key = (d.application_name.clone(), d.group_name.clone());
    let group = store.groups.get_mut(&key);
    let info = LastDeploymentInfo { deployment_id: d.id.clone(), status, end_time: Some(finished), create_time: d.create_time };
    let group = group?;
    if group.last_attempted.as_ref().is_some_and(|l| l.deployment_id == d.id) {
        group.last_attempted = Some(info.clone());
    }
    if status == DeploymentStatus::Succeeded {
        group.last_successful = Some(info);
        group.last_successful_revision = Some(d.revision.clone());
        // The replacement environment is the group's fleet from now on.
        if let Some(run) = d.blue_green.as_ref().filter(|run| !run.rollback) {
            group.instances = run.green.clone();
        }
        return None;
    }
    let config = d.effective_auto_rollback(Some(group)).cloned().unwrap_or_default();
    let wanted = match status {
        DeploymentStatus::Failed => config.covers("DEPLOYMENT_FAILURE"),
        DeploymentStatus::Stopped => match d.stop.and_then(|s| s.auto_rollback) {
            Some(explicit) => explicit,
            None => config.covers("DEPLOYMENT_STOP_ON_REQUEST"),
        },
        _ => false,
    };
    // A failed rollback is not rolled back again, nor a Lambda deployment
    // whose appspec could not be read (no versions to go back to), nor an
    // ECS one that never found its original task set.
    let unread =
        (d.compute_platform == "Lambda" && d.lambda.is_none()) || d.ecs.as_ref().is_some_and(|run| run.original.is_none());
    if !wanted || d.creator == "codeDeployRollback" || unread {
        return None;
    }
    // A Lambda rollback needs no earlier success: the alias goes back to
    // the version it pointed at.
    // Nor an ECS one: traffic goes back to the original task set.
    let previous =
        if d.lambda.is_some() || d.ecs.is_some() { Some(d.revision.clone()) } else { group.last_successful_revision.clone() };
    let Some(target) = previous else {
        store.deployments.get_mut(id)?.rollback_info = Some(RollbackInfo {
            rollback_message: Some(
                "Automatic rollback was not performed because the deployment group has no previous successful deployment to roll back to.".into(),
            ),
            ..Default::default()
        });
        return None;
    };
    let rollback = crate::ops::new_rollback(store, &d, target);
    store.deployments.get_mut(id)?.rollback_info =
        Some(RollbackInfo { rollback_deployment_id: Some(rollback.clone()), ..Default::default() });
    Some(rollback)
}

/// The diagnostics of a succeeded event: the agent reports success with an
/// empty script name and an empty log, and the service shows `Succeeded`.
pub(crate) fn success() -> Diagnostics {
    Diagnostics { error_code: "Success".into(), script_name: String::new(), message: "Succeeded".into(), log_tail: String::new() }
}

/// A failure that did not involve a script.
pub(crate) fn unknown_error(message: String) -> Diagnostics {
    Diagnostics { error_code: "UnknownError".into(), script_name: String::new(), message, log_tail: String::new() }
}

/// Sleeps what is left of `step` after `started`, so every event takes at least `step`.
pub(crate) async fn pace(started: Instant, step: Duration) {
    if let Some(left) = step.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
}

#[cfg(test)]
mod tests {
    use super::max_unhealthy;

    #[test]
    fn batch_limits_follow_the_documented_examples() {
        // AWS's own examples: nine instances, HOST_COUNT 6 → three at a time;
        // FLEET_PERCENT 40 → five at a time.
        assert_eq!(max_unhealthy("HOST_COUNT", 6, 9), Ok(3));
        assert_eq!(max_unhealthy("FLEET_PERCENT", 40, 9), Ok(5));
        assert_eq!(max_unhealthy("FLEET_PERCENT", 50, 5), Ok(2), "half, rounded down");
        assert_eq!(max_unhealthy("MOST_CONCURRENCY", 1, 1), Ok(1));
        assert_eq!(max_unhealthy("MOST_CONCURRENCY", 1, 10), Ok(1));
        assert_eq!(max_unhealthy("HOST_COUNT", 0, 10), Ok(10));
    }

    #[test]
    fn a_config_that_allows_no_unhealthy_instance_is_invalid() {
        assert!(max_unhealthy("HOST_COUNT", 3, 3).is_err());
        assert!(max_unhealthy("FLEET_PERCENT", 50, 1).is_err());
    }
}
