//! Hook functions, shared by Lambda and ECS deployments: CodeDeploy invokes
//! the Lambda function an appspec names for an event with a
//! `lifecycleEventHookExecutionId`, and waits up to an hour (AWS's limit)
//! for PutLifecycleEventHookExecutionStatus with that id.
//!
//! The emulator's own rule: moto cannot run the function, so nothing calls
//! back unless a test does (with the ids from `Emulator::hook_executions`).
//! A hook not called back within the hour is decided by the function's
//! `emulator:hook-status` tag in Lambda: `Succeeded`, else it fails, as a
//! hook that never reports fails on AWS.

use std::time::{Duration, Instant};

use super::{Context, unknown_error};
use crate::model::{Diagnostics, HookExecution};

/// How often a wait looks for a hook's status or a stop.
const POLL: Duration = Duration::from_millis(10);
/// How long a hook may take to report, in minutes (AWS allows an hour).
const HOOK_WAIT_MINUTES: u32 = 60;

/// Why an event did not succeed.
pub(super) enum Ended {
    Stopped,
    Failed(Diagnostics),
}

/// Runs the hook functions `hooks` names for `event`, one after the other.
pub(super) async fn run(ctx: &Context, hooks: &[(String, String)], event: &str) -> Result<(), Ended> {
    for (_, function) in hooks.iter().filter(|(e, _)| e == event) {
        hook(ctx, event, function).await?;
    }
    Ok(())
}

/// Invokes one hook function and waits for its status.
async fn hook(ctx: &Context, event: &str, function: &str) -> Result<(), Ended> {
    let execution_id = uuid::Uuid::new_v4().to_string();
    ctx.update(|d| {
        let execution = HookExecution { event: event.into(), function: function.into(), status: None };
        d.hook_executions.insert(execution_id.clone(), execution);
    });
    let deadline = Instant::now() + ctx.shared.config.minute.saturating_mul(HOOK_WAIT_MINUTES);
    let reported = loop {
        if ctx.stop_requested() {
            return Err(Ended::Stopped);
        }
        let status = ctx.update(|d| d.hook_executions.get(&execution_id)?.status.clone()).flatten();
        if status.is_some() || Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(POLL).await;
    };
    let status = match reported {
        Some(status) => status,
        None => crate::lambda::tagged_status(&ctx.shared, function)
            .await
            .map_err(|m| Ended::Failed(unknown_error(m)))?
            .unwrap_or_else(|| "Failed".into()),
    };
    if status == "Succeeded" {
        Ok(())
    } else {
        Err(Ended::Failed(unknown_error(format!(
            "The {event} hook function {function} reported {status} (lifecycleEventHookExecutionId {execution_id})."
        ))))
    }
}
