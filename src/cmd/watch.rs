//! `ferry watch <deployment-id>`: attach to any deployment, e.g. after a
//! Jenkins restart or one started from the console, and end with its outcome
//! (following CodeDeploy's rollback of it, if one starts).

use std::path::PathBuf;

use crate::abort::{self, OnAbort, Signals};
use crate::cli::WatchArgs;
use crate::cmd::error::Error;
use crate::config;
use crate::event::{Receipt, Reporter};
use crate::exit::ExitCode;
use crate::receipt::{self, Clock};

/// Follows the deployment and returns the exit code of its outcome.
pub async fn run(args: &WatchArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let clock = Clock::start();
    let mut r = Receipt { build: receipt::build_from_env(), deployment_id: args.deployment_id.clone(), ..Default::default() };
    let result = watch(args, config_path, reporter, &mut r).await;
    receipt::finish(result, r, clock, receipt::path(args.ending.receipt.as_deref()).as_deref(), false, reporter)
}

async fn watch(
    args: &WatchArgs,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
    r: &mut Receipt,
) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    receipt::set_target(r, &env);
    let mut signals = Signals::install().ok();
    let (sdk, session) = super::assume_role(&env, reporter).await?;
    receipt::set_session(r, &session);
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let on_abort = args.ending.on_abort.unwrap_or(OnAbort::Leave);
    let ended = match signals.as_mut() {
        Some(signals) => {
            abort::follow_or_abort(
                &cd,
                &args.deployment_id,
                &args.follow.options(),
                on_abort,
                args.ending.abort_grace,
                signals,
                reporter,
            )
            .await?
        }
        None => abort::Ended {
            followed: crate::follow::follow(&cd, &args.deployment_id, &args.follow.options(), reporter).await?,
            signal: None,
        },
    };
    Ok(ended.record(r))
}
