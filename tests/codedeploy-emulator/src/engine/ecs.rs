//! An ECS deployment (blue/green on the group's service): a replacement
//! task set of the appspec's task definition is created beside the
//! original, gets test traffic, then production traffic step by step as
//! the config says; it becomes the service's primary task set and the
//! original is removed after the termination wait. Its one target is the
//! service.
//!
//! From AWS's documentation: the eight events (BeforeInstall, Install,
//! AfterInstall, AllowTestTraffic, AfterAllowTestTraffic,
//! BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic), hook functions on
//! five of them, the `trafficRoutingConfig` of the ECS configs, the Ready
//! and termination waits of `blueGreenDeploymentConfiguration`, and
//! `taskSetsInfo` with each task set's `trafficWeight` and Blue/Green label.
//! ECS (moto) holds the task sets; their traffic weights are the emulator's,
//! as moto has no load balancer listener to move.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::hookfn::{self, Ended};
use super::lambda::{finish, mark, one_event, sleep_minutes, steps};
use super::{Context, Halt, pace, success, unknown_error};
use crate::ecs::{EVENTS, EcsError};
use crate::model::{
    ALLOW_TRAFFIC_EVENTS, Deployment, DeploymentStatus, EcsAppSpec, EcsRun, ErrorInformation, Label, TargetStatus,
};

/// Index of AfterAllowTestTraffic in [`EVENTS`]: the Ready wait follows it.
const AFTER_TEST_TRAFFIC: usize = 4;

/// Reads the appspec of an ECS deployment whose revision is in S3 (a YAML
/// or JSON object); nothing to do for others.
pub(super) async fn read_appspec(shared: &Arc<crate::store::Shared>, id: &str) -> Result<(), String> {
    let location = {
        let store = shared.lock();
        let Some(d) = store.deployments.get(id) else { return Ok(()) };
        match (&d.ecs, &d.revision.s3_location) {
            (Some(run), Some(s3)) if run.appspec.is_none() && !run.rollback => s3.clone(),
            _ => return Ok(()),
        }
    };
    let bytes = crate::bundle::download(shared, &location).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "The AppSpec file is not UTF-8 text.".to_string())?;
    let spec = crate::ecs::parse_appspec(text)?;
    if let Some(run) = shared.lock().deployments.get_mut(id).and_then(|d| d.ecs.as_mut()) {
        run.appspec = Some(spec);
    }
    Ok(())
}

fn failed((code, message): EcsError) -> Halt {
    (DeploymentStatus::Failed, ErrorInformation { code: code.into(), message })
}

/// Applies `f` to the deployment's ECS state.
fn with_run<T>(ctx: &Context, f: impl FnOnce(&mut EcsRun) -> T) -> Option<T> {
    ctx.update(|d| d.ecs.as_mut().map(f)).flatten()
}

/// Runs the deployment (or its rollback) on the group's service.
pub(super) async fn run(ctx: &Arc<Context>, run: &EcsRun, routing: Option<&Value>) -> Result<(), Halt> {
    if run.rollback {
        return roll_back(ctx, run).await;
    }
    let spec = run.appspec.clone().unwrap_or_default();
    let group = &run.group;
    let service = crate::ecs::service(&ctx.shared, group).await.map_err(failed)?;
    // The task set that serves the service now. ECS gives a CODE_DEPLOY
    // service one when it is created; moto does not, so the emulator stands
    // it up from the service's task definition.
    let original = match &service.primary {
        Some((arn, id, _)) => crate::model::TaskSetRun {
            arn: arn.clone(),
            id: id.clone(),
            desired_count: service.desired_count,
            status: "PRIMARY".into(),
            traffic_weight: 100.0,
            target_group: group.target_groups[0].clone(),
            label: Label::Blue,
        },
        None => {
            let definition = service.task_definition.clone().ok_or_else(|| {
                failed(("INVALID_ECS_SERVICE", format!("The ECS service {} has no task definition.", group.service)))
            })?;
            let mut set =
                crate::ecs::create_task_set(&ctx.shared, group, &service, &spec, &definition, &group.target_groups[0], "")
                    .await
                    .map_err(failed)?;
            crate::ecs::make_primary(&ctx.shared, group, &set.arn).await.map_err(failed)?;
            set.status = "PRIMARY".into();
            set.traffic_weight = 100.0;
            set.label = Label::Blue;
            set
        }
    };
    with_run(ctx, |r| r.original = Some(original));
    for (index, event) in EVENTS.iter().enumerate() {
        let body = async {
            match *event {
                "Install" => install(ctx, run, &service, &spec).await,
                // The test listener now reaches the replacement's target
                // group: nothing changes in ECS.
                "AllowTestTraffic" => Ok(()),
                "AllowTraffic" => shift(ctx, run, routing).await,
                _ => hookfn::run(ctx, &spec.hooks, event).await,
            }
        };
        // The service's own events fail as ECS updates, the others as hooks.
        let own = matches!(*event, "Install" | "AllowTestTraffic" | "AllowTraffic");
        let code = if own { "ECS_UPDATE_ERROR" } else { "HOOK_EXECUTION_FAILURE" };
        one_event(ctx, index, event, body, code).await?;
        if index == AFTER_TEST_TRAFFIC && group.config.stop_when_ready {
            ctx.update(|d| d.instances[0].status = TargetStatus::Ready);
            let continued = |d: &Deployment| d.ecs.as_ref().is_some_and(|r| r.continue_ready);
            super::bluegreen::ready_wait(ctx, group.config.ready_wait_minutes, continued).await?;
        }
    }
    finish(ctx, EVENTS.len(), TargetStatus::Succeeded);
    if !group.config.terminate_blue {
        return Ok(());
    }
    let started = |d: &mut Deployment| {
        if let Some(r) = &mut d.ecs {
            r.termination_wait_started = true;
        }
    };
    let continued = |d: &Deployment| d.ecs.as_ref().is_some_and(|r| r.continue_termination);
    super::bluegreen::termination_wait(ctx, group.config.termination_wait_minutes, started, continued).await?;
    let arn = with_run(ctx, |r| r.original.as_ref().map(|o| o.arn.clone())).flatten().unwrap_or_default();
    crate::ecs::delete_task_set(&ctx.shared, group, &arn).await.map_err(failed)?;
    with_run(ctx, |r| r.original.iter_mut().for_each(|o| o.status = "DRAINING".into()));
    Ok(())
}

/// Install: the replacement task set, with no production traffic yet.
async fn install(ctx: &Context, run: &EcsRun, service: &crate::ecs::Service, spec: &EcsAppSpec) -> Result<(), Ended> {
    let group = &run.group;
    let set =
        crate::ecs::create_task_set(&ctx.shared, group, service, spec, &spec.task_definition, &group.target_groups[1], &ctx.id)
            .await
            .map_err(|(_, m)| Ended::Failed(unknown_error(m)))?;
    with_run(ctx, |r| r.replacement = Some(set));
    Ok(())
}

/// Gives the replacement `percent` of production traffic, the original the rest.
fn set_weights(ctx: &Context, percent: f64) {
    with_run(ctx, |r| {
        r.replacement.iter_mut().for_each(|s| s.traffic_weight = percent);
        r.original.iter_mut().for_each(|s| s.traffic_weight = 100.0 - percent);
    });
}

/// AllowTraffic: production traffic to the replacement step by step, then
/// the replacement is made the service's primary task set.
async fn shift(ctx: &Context, run: &EcsRun, routing: Option<&Value>) -> Result<(), Ended> {
    let (shares, interval) = steps(false, routing);
    for percent in shares {
        set_weights(ctx, f64::from(percent));
        if !sleep_minutes(ctx, interval).await {
            return Err(Ended::Stopped);
        }
    }
    set_weights(ctx, 100.0);
    let arn = with_run(ctx, |r| r.replacement.as_ref().map(|s| s.arn.clone())).flatten().unwrap_or_default();
    crate::ecs::make_primary(&ctx.shared, &run.group, &arn).await.map_err(|(_, m)| Ended::Failed(unknown_error(m)))?;
    with_run(ctx, |r| {
        r.replacement.iter_mut().for_each(|s| s.status = "PRIMARY".into());
        r.original.iter_mut().for_each(|s| s.status = "ACTIVE".into());
    });
    Ok(())
}

/// A rollback: all traffic back to the original task set at once, which is
/// primary again, and the replacement removed. No hooks run.
async fn roll_back(ctx: &Arc<Context>, run: &EcsRun) -> Result<(), Halt> {
    let step = ctx.shared.config.step_delay;
    for (index, event) in ALLOW_TRAFFIC_EVENTS.iter().enumerate() {
        let started = Instant::now();
        mark(ctx, index, TargetStatus::InProgress, None);
        if *event == "AllowTraffic"
            && let Err(e) = restore(ctx, run).await
        {
            mark(ctx, index, TargetStatus::Failed, Some(unknown_error(e.1.clone())));
            finish(ctx, index + 1, TargetStatus::Failed);
            return Err(failed(e));
        }
        pace(started, step).await;
        mark(ctx, index, TargetStatus::Succeeded, Some(success()));
    }
    finish(ctx, ALLOW_TRAFFIC_EVENTS.len(), TargetStatus::Succeeded);
    Ok(())
}

async fn restore(ctx: &Context, run: &EcsRun) -> Result<(), EcsError> {
    set_weights(ctx, 0.0);
    if let Some(original) = run.original.as_ref().filter(|o| o.status != "PRIMARY") {
        crate::ecs::make_primary(&ctx.shared, &run.group, &original.arn).await?;
    }
    if let Some(replacement) = &run.replacement {
        crate::ecs::delete_task_set(&ctx.shared, &run.group, &replacement.arn).await?;
    }
    with_run(ctx, |r| {
        r.original.iter_mut().for_each(|s| s.status = "PRIMARY".into());
        r.replacement.iter_mut().for_each(|s| s.status = "DRAINING".into());
    });
    Ok(())
}
