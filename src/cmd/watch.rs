//! `ferry watch <deployment-id>`: attach to any deployment, e.g. after a
//! Jenkins restart or one started from the console, and end with its outcome
//! (following CodeDeploy's rollback of it, if one starts).

use std::path::PathBuf;

use crate::abort::{self, Abort, Guard, OnAbort};
use crate::cli::WatchArgs;
use crate::cmd::error::Error;
use crate::config;
use crate::event::{Receipt, Reporter};
use crate::exit::ExitCode;
use crate::pipeline::{self, Start};
use crate::receipt::Keeper;

/// Follows the deployment and returns the exit code of its outcome.
pub async fn run(args: &WatchArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let seed = Receipt { deployment_id: Some(args.deployment_id.clone()), ..Default::default() };
    Start::run(args.ending.receipt.as_deref(), seed, false, reporter, async |guard, keeper| {
        watch(args, config_path, reporter, guard, keeper).await
    })
    .await
}

async fn watch(
    args: &WatchArgs,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
    guard: &mut Guard,
    keeper: &mut Keeper,
) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let (sdk, _session) = match pipeline::assume_recorded(&env, guard, keeper, reporter).await? {
        Ok(assumed) => assumed,
        Err(interrupted) => return Ok(interrupted),
    };
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let abort = Abort { cd: &cd, on_abort: args.ending.on_abort.unwrap_or(OnAbort::Leave), grace: args.ending.abort_grace };
    let ended = match guard.signals() {
        Some(signals) => {
            abort::follow_or_abort(&abort, &args.deployment_id, &args.follow.options(), signals, keeper, reporter).await?
        }
        None => abort::Ended {
            followed: crate::follow::follow(&cd, &args.deployment_id, &args.follow.options(), reporter).await?,
            signal: None,
        },
    };
    Ok(ended.record(&mut keeper.receipt))
}
