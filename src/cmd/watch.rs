//! `ferry watch <deployment-id>`: attach to any deployment, e.g. after a
//! Jenkins restart or one started from the console, and end with its outcome
//! (following CodeDeploy's rollback of it, if one starts).

use std::path::PathBuf;

use crate::abort::{self, Abort, Guard, OnAbort, Phase};
use crate::cli::WatchArgs;
use crate::cmd::error::Error;
use crate::config;
use crate::event::{Receipt, Reporter};
use crate::exit::ExitCode;
use crate::receipt::{self, Clock, Keeper};

/// Follows the deployment and returns the exit code of its outcome.
pub async fn run(args: &WatchArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let receipt_path = receipt::path(args.ending.receipt.as_deref());
    // Before any AWS call: nothing may be deployed that cannot be recorded.
    if let Some(path) = &receipt_path {
        receipt::check_path(path)?;
    }
    let mut guard = Guard::install(reporter);
    let receipt =
        Receipt { build: receipt::build_from_env(), deployment_id: Some(args.deployment_id.clone()), ..Default::default() };
    let mut keeper = Keeper::new(receipt, Clock::start(), receipt_path);
    let result = watch(args, config_path, reporter, &mut guard, &mut keeper).await;
    keeper.finish(result, false, reporter)
}

async fn watch(
    args: &WatchArgs,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
    guard: &mut Guard,
    keeper: &mut Keeper,
) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    receipt::set_target(&mut keeper.receipt, &env);
    keeper.receipt.session_name = super::planned_session_name(&env);
    let (sdk, session) = match guard.run(super::assume_role(&env, reporter)).await {
        Ok(assumed) => assumed?,
        Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Assume, reporter)),
    };
    receipt::set_session(&mut keeper.receipt, &session);
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
