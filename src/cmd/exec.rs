//! `ferry exec -- <command> [args…]`: runs a command with the assumed
//! credentials in its environment; its exit code becomes ferry's.
//!
//! The credentials are fetched once and last the environment's `duration`;
//! a command that runs longer needs `credential-process` instead.

use std::path::PathBuf;

use crate::cli::ExecArgs;
use crate::cmd::error::Error;
use crate::event::Reporter;
use crate::exit::ExitCode;
use crate::{assume, config, handoff};

/// Runs the command and returns its exit status.
pub async fn run(args: &ExecArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let opts = super::assume_options(&env, reporter);
    let creds = assume::credentials(&env, &opts).await?;
    let vars = handoff::variables(&creds, &env.region);
    Ok(handoff::run_child(&args.command, &vars).await?)
}
