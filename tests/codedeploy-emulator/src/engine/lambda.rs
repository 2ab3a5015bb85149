//! A Lambda deployment: BeforeAllowTraffic hooks, the alias's traffic moved
//! to the target version step by step as the config says, AfterAllowTraffic
//! hooks. Its one target is the function's alias.
//!
//! From AWS's documentation: the three events; `TimeBasedCanary` sends
//! `canaryPercentage` of the traffic to the target version for
//! `canaryInterval` minutes, then all of it; `TimeBasedLinear` adds
//! `linearPercentage` every `linearInterval` minutes; `AllAtOnce` moves it
//! at once. The alias's `RoutingConfig.AdditionalVersionWeights` carries the
//! target's share meanwhile; at the end the alias points at the target.
//! Hooks are invoked as `hookfn` says.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::hookfn::{self, Ended};
use super::{Context, Halt, pace, stopped, success, unknown_error};
use crate::model::{ALLOW_TRAFFIC_EVENTS, DeploymentStatus, Diagnostics, ErrorInformation, LambdaRun, TargetStatus, now};

/// How often a wait looks for a stop.
const POLL: Duration = Duration::from_millis(10);

/// Reads the appspec of a Lambda deployment whose revision is in S3 (a
/// YAML or JSON object) into its [`LambdaRun`]; nothing to do for others.
pub(super) async fn read_appspec(shared: &Arc<crate::store::Shared>, id: &str) -> Result<(), String> {
    let location = {
        let store = shared.lock();
        let Some(d) = store.deployments.get(id) else { return Ok(()) };
        match (&d.lambda, &d.revision.s3_location) {
            (None, Some(s3)) if d.compute_platform == "Lambda" => s3.clone(),
            _ => return Ok(()),
        }
    };
    let bytes = crate::bundle::download(shared, &location).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "The AppSpec file is not UTF-8 text.".to_string())?;
    let run = crate::lambda::parse_appspec(text)?;
    if let Some(d) = shared.lock().deployments.get_mut(id) {
        d.lambda = Some(run);
    }
    Ok(())
}

/// Runs the three events on the deployment's one target.
pub(super) async fn run(ctx: &Arc<Context>, run: &LambdaRun, routing: Option<&Value>) -> Result<(), Halt> {
    for (index, event) in ALLOW_TRAFFIC_EVENTS.iter().enumerate() {
        let traffic = *event == "AllowTraffic";
        let body = async { if traffic { shift(ctx, run, routing).await } else { hookfn::run(ctx, &run.hooks, event).await } };
        let code = if traffic { "INVALID_LAMBDA_FUNCTION" } else { "HOOK_EXECUTION_FAILURE" };
        one_event(ctx, index, event, body, code).await?;
    }
    finish(ctx, ALLOW_TRAFFIC_EVENTS.len(), TargetStatus::Succeeded);
    Ok(())
}

/// Runs event `index` (`event`) of a deployment's one target (a Lambda
/// alias, an ECS service): `body` unless a stop or a fault tag comes
/// first, taking at least a step. A failure fails the deployment with
/// `failure_code`.
pub(super) async fn one_event(
    ctx: &Context,
    index: usize,
    event: &str,
    body: impl Future<Output = Result<(), Ended>>,
    failure_code: &str,
) -> Result<(), Halt> {
    let started = Instant::now();
    let result = if ctx.stop_requested() {
        Err(Ended::Stopped)
    } else {
        mark(ctx, index, TargetStatus::InProgress, None);
        match &ctx.fault {
            Some(fault) if fault.hits(event, 0) => Err(Ended::Failed(super::instance::injected(event))),
            _ => body.await,
        }
    };
    pace(started, ctx.shared.config.step_delay).await;
    match result {
        Ok(()) => {
            mark(ctx, index, TargetStatus::Succeeded, Some(success()));
            Ok(())
        }
        Err(Ended::Stopped) => {
            finish(ctx, index, TargetStatus::Failed);
            Err(stopped())
        }
        Err(Ended::Failed(diagnostics)) => {
            mark(ctx, index, TargetStatus::Failed, Some(diagnostics.clone()));
            finish(ctx, index + 1, TargetStatus::Failed);
            Err((DeploymentStatus::Failed, ErrorInformation { code: failure_code.into(), message: diagnostics.message }))
        }
    }
}

/// Sets event `index`'s status (its start or end) on the target.
pub(super) fn mark(ctx: &Context, index: usize, status: TargetStatus, diagnostics: Option<Diagnostics>) {
    ctx.update(|d| {
        let target = &mut d.instances[0];
        let t = now();
        target.status = TargetStatus::InProgress;
        target.last_updated = t;
        let e = &mut target.events[index];
        e.status = status;
        if status == TargetStatus::InProgress {
            e.start_time = Some(t);
        } else {
            e.end_time = Some(t);
            e.diagnostics = diagnostics;
        }
    });
}

/// Skips the events from `from` on and gives the target its final status.
pub(super) fn finish(ctx: &Context, from: usize, status: TargetStatus) {
    super::instance::finish_instance(ctx, 0, from, status);
}

fn minutes(ctx: &Context, n: u32) -> Duration {
    ctx.shared.config.minute.saturating_mul(n)
}

/// Waits `n` minutes unless a stop arrives (`false` then).
pub(super) async fn sleep_minutes(ctx: &Context, n: u32) -> bool {
    let deadline = Instant::now() + minutes(ctx, n);
    while Instant::now() < deadline {
        if ctx.stop_requested() {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    !ctx.stop_requested()
}

/// The target's share after each step before the last, and the minutes
/// each step lasts, from the config's `trafficRoutingConfig`. A rollback
/// moves at once.
pub(super) fn steps(rollback: bool, routing: Option<&Value>) -> (Vec<u32>, u32) {
    let number = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_u64).unwrap_or(0) as u32;
    match routing.and_then(|r| r.get("type")).and_then(Value::as_str) {
        _ if rollback => (Vec::new(), 0),
        Some("TimeBasedCanary") => {
            let c = routing.and_then(|r| r.get("timeBasedCanary"));
            (vec![number(c, "canaryPercentage")], number(c, "canaryInterval"))
        }
        Some("TimeBasedLinear") => {
            let l = routing.and_then(|r| r.get("timeBasedLinear"));
            let step = number(l, "linearPercentage").max(1);
            ((1..).map(|k| k * step).take_while(|p| *p < 100).collect(), number(l, "linearInterval"))
        }
        _ => (Vec::new(), 0),
    }
}

/// AllowTraffic: the alias's traffic to the target version, step by step.
async fn shift(ctx: &Context, run: &LambdaRun, routing: Option<&Value>) -> Result<(), Ended> {
    let (shares, interval) = steps(run.rollback, routing);
    for percent in shares {
        let weight = f64::from(percent) / 100.0;
        crate::lambda::route(&ctx.shared, run, &run.current, Some(weight)).await.map_err(|m| Ended::Failed(unknown_error(m)))?;
        set_weight(ctx, weight);
        if !sleep_minutes(ctx, interval).await {
            return Err(Ended::Stopped);
        }
    }
    crate::lambda::route(&ctx.shared, run, &run.target, None).await.map_err(|m| Ended::Failed(unknown_error(m)))?;
    set_weight(ctx, 1.0);
    Ok(())
}

fn set_weight(ctx: &Context, weight: f64) {
    ctx.update(|d| {
        if let Some(l) = &mut d.lambda {
            l.target_weight = weight;
        }
    });
}
