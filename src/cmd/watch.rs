//! `ferry watch <deployment-id>`: attach to any deployment, e.g. after a
//! Jenkins restart or one started from the console, and end with its outcome.

use std::path::PathBuf;

use crate::cli::WatchArgs;
use crate::error::{Error, ExitCode};
use crate::report::Reporter;
use crate::watch;
use crate::config;

/// Follows the deployment and returns the exit code of its outcome.
pub async fn run(args: &WatchArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let (sdk, _session) = super::assume_role(&env, reporter).await?;
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let outcome = watch::watch(&cd, &args.deployment_id, &args.follow.options(), reporter).await?;
    Ok(outcome.exit_code())
}
