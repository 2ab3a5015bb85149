//! Blue/green on EC2: install on the replacement (green) instances, stand
//! Ready when the group says so, move traffic onto the replacement and off
//! the originals (blue), then wait and terminate the originals.
//!
//! Event lists follow AWS's "Lifecycle event hook availability" table: a
//! replacement runs the in-place events then BeforeAllowTraffic,
//! AllowTraffic, AfterAllowTraffic; an original runs BeforeBlockTraffic,
//! BlockTraffic, AfterBlockTraffic. A rollback swaps them: the originals
//! get traffic back, the replacements lose it.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Context, Halt, batches, instance, stopped, unhealthy};
use crate::model::{
    ALLOW_TRAFFIC_EVENTS, BLOCK_TRAFFIC_EVENTS, BlueGreenRun, Deployment, DeploymentStatus, ErrorInformation, InstanceRun,
    LIFECYCLE_EVENTS, Label, StopRequest, TargetStatus,
};

/// How often a wait looks for ContinueDeployment or StopDeployment.
const POLL: Duration = Duration::from_millis(10);

/// The targets of a blue/green deployment, in the order they are worked on.
pub(super) fn targets(run: &BlueGreenRun) -> Vec<InstanceRun> {
    let green_events: Vec<&str> = LIFECYCLE_EVENTS.into_iter().chain(ALLOW_TRAFFIC_EVENTS).collect();
    let green = |events: &[&str]| {
        run.green.iter().map(|id| InstanceRun::with_events(id.clone(), Label::Green, events)).collect::<Vec<_>>()
    };
    let blue =
        |events: &[&str]| run.blue.iter().map(|id| InstanceRun::with_events(id.clone(), Label::Blue, events)).collect::<Vec<_>>();
    if run.rollback {
        blue(&ALLOW_TRAFFIC_EVENTS).into_iter().chain(green(&BLOCK_TRAFFIC_EVENTS)).collect()
    } else {
        green(&green_events).into_iter().chain(blue(&BLOCK_TRAFFIC_EVENTS)).collect()
    }
}

/// Runs every phase; `allowed` is how many replacement instances may be
/// unhealthy at once while installing.
pub(super) async fn run(ctx: &Arc<Context>, run: &BlueGreenRun, allowed: usize) -> Result<(), Halt> {
    let (blue_n, green_n) = (run.blue.len(), run.green.len());
    if run.rollback {
        let blue: Vec<usize> = (0..blue_n).collect();
        let green: Vec<usize> = (blue_n..blue_n + green_n).collect();
        together(ctx, &blue, 0..ALLOW_TRAFFIC_EVENTS.len()).await?;
        return together(ctx, &green, 0..BLOCK_TRAFFIC_EVENTS.len()).await;
    }
    let green: Vec<usize> = (0..green_n).collect();
    let blue: Vec<usize> = (green_n..green_n + blue_n).collect();
    let installed = LIFECYCLE_EVENTS.len();
    let waits = run.config.stop_when_ready;
    let after_install = if waits { TargetStatus::Ready } else { TargetStatus::InProgress };
    batches(ctx, &green, 0..installed, after_install, allowed).await?;
    if ctx.stop_requested() {
        return Err(stopped());
    }
    // Only the replacements that installed get traffic.
    let healthy: Vec<usize> =
        ctx.update(|d| green.iter().copied().filter(|&i| d.instances[i].status == after_install).collect()).unwrap_or_default();
    if waits {
        ready_wait(ctx, run.config.ready_wait_minutes, |d| d.blue_green.as_ref().is_some_and(|bg| bg.continue_ready)).await?;
    }
    together(ctx, &healthy, installed..installed + ALLOW_TRAFFIC_EVENTS.len()).await?;
    together(ctx, &blue, 0..BLOCK_TRAFFIC_EVENTS.len()).await?;
    if run.config.terminate_blue {
        let started = |d: &mut Deployment| {
            if let Some(bg) = &mut d.blue_green {
                bg.termination_wait_started = true;
            }
        };
        let continued = |d: &Deployment| d.blue_green.as_ref().is_some_and(|bg| bg.continue_termination);
        termination_wait(ctx, run.config.termination_wait_minutes, started, continued).await?;
        ctx.shared.lock().terminated.extend(run.blue.iter().cloned());
    }
    Ok(())
}

/// Runs `events` on all of `indices` at once (traffic moves for the whole
/// environment); any failure fails the deployment.
async fn together(ctx: &Arc<Context>, indices: &[usize], events: Range<usize>) -> Result<(), Halt> {
    let mut all = tokio::task::JoinSet::new();
    for &index in indices {
        all.spawn(instance::run(ctx.clone(), index, events.clone(), TargetStatus::Succeeded));
    }
    let mut healthy = true;
    while let Some(result) = all.join_next().await {
        healthy &= result.unwrap_or(false);
    }
    if ctx.stop_requested() {
        Err(stopped())
    } else if healthy {
        Ok(())
    } else {
        Err(unhealthy())
    }
}

/// The deployment's minutes as emulator time.
fn minutes(ctx: &Context, n: u64) -> Duration {
    ctx.shared.config.minute.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
}

/// How a wait ended.
enum WaitEnd {
    Continued,
    Stopped,
    TimedOut,
}

/// Waits up to `wait_minutes` for `continued` (a ContinueDeployment) or a stop.
async fn wait(ctx: &Context, wait_minutes: u64, continued: fn(&Deployment) -> bool) -> WaitEnd {
    let deadline = Instant::now() + minutes(ctx, wait_minutes);
    loop {
        let (stop, go) = ctx.update(|d| (d.stop.is_some(), continued(d))).unwrap_or((true, false));
        if stop {
            return WaitEnd::Stopped;
        }
        if go {
            return WaitEnd::Continued;
        }
        if Instant::now() >= deadline {
            return WaitEnd::TimedOut;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stands Ready until ContinueDeployment (READY_WAIT, which sets what
/// `continued` reads) or StopDeployment; when `wait_minutes` run out first
/// the deployment is Stopped, as AWS documents for STOP_DEPLOYMENT. EC2 and
/// ECS deployments share it.
pub(super) async fn ready_wait(ctx: &Context, wait_minutes: u64, continued: fn(&Deployment) -> bool) -> Result<(), Halt> {
    ctx.update(|d| d.status = DeploymentStatus::Ready);
    match wait(ctx, wait_minutes, continued).await {
        WaitEnd::Continued => {
            ctx.update(|d| d.status = DeploymentStatus::InProgress);
            Ok(())
        }
        WaitEnd::Stopped => Err(stopped()),
        WaitEnd::TimedOut => {
            // Not a stop on request: no automatic rollback follows.
            ctx.update(|d| d.stop = Some(StopRequest { auto_rollback: Some(false) }));
            Err((
                DeploymentStatus::Stopped,
                ErrorInformation {
                    code: "TIMEOUT".into(),
                    message: format!(
                        "The deployment was stopped because traffic was not rerouted (ContinueDeployment) within the {wait_minutes} minutes its deployment group allows."
                    ),
                },
            ))
        }
    }
}

/// Waits `wait_minutes` before the originals are terminated, unless
/// ContinueDeployment (TERMINATION_WAIT, which sets what `continued` reads)
/// ends the wait or a stop arrives; `started` marks the wait as begun.
pub(super) async fn termination_wait(
    ctx: &Context,
    wait_minutes: u64,
    started: fn(&mut Deployment),
    continued: fn(&Deployment) -> bool,
) -> Result<(), Halt> {
    ctx.update(started);
    match wait(ctx, wait_minutes, continued).await {
        WaitEnd::Stopped => Err(stopped()),
        WaitEnd::Continued | WaitEnd::TimedOut => Ok(()),
    }
}
