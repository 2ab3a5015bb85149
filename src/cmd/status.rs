//! `ferry status <deployment-id>`: the deployment's state once, with each
//! instance's lifecycle events, and no waiting.

use std::path::PathBuf;

use crate::cli::StatusArgs;
use crate::cmd::error::Error;
use crate::config;
use crate::event::Reporter;
use crate::exit::ExitCode;
use crate::watch;

/// Prints the state. Exits 0 whenever the state could be read: the state is
/// the answer, not a verdict (use `ferry watch` for that).
pub async fn run(args: &StatusArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let (sdk, _session) = super::assume_role(&env, reporter).await?;
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    watch::status(&cd, &args.deployment_id, reporter).await?;
    Ok(ExitCode::Success)
}
