//! `ferry continue <deployment-id>`: ContinueDeployment for a blue/green
//! deployment that is Ready (ferry exited 6), or, with `--wait-type
//! termination`, whose original instances wait to be terminated; then
//! follow it to its end.

use std::path::PathBuf;

use crate::cli::ContinueArgs;
use crate::cmd::error::Error;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;
use crate::{config, deploy, follow};

/// Exits with the outcome's code, or 0 right after the request with `--no-wait`.
pub async fn run(args: &ContinueArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let (sdk, _session) = super::assume_role(&env, reporter).await?;
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    if let Err(e) = deploy::continue_deployment(&cd, &args.deployment_id, args.wait_type).await {
        // An ended deployment is refused as `ferry stop` refuses one: exit 1.
        if let Ok(status) = crate::rollback::status_of(&cd, &args.deployment_id).await
            && matches!(status.as_str(), "Succeeded" | "Failed" | "Stopped")
        {
            return Err(Error::AlreadyEnded { deployment_id: args.deployment_id.clone(), status });
        }
        return Err(e.into());
    }
    let wait = match args.wait_type {
        deploy::ContinueWait::Ready => "ready",
        deploy::ContinueWait::Termination => "termination",
    };
    reporter.report(&Event::ContinueRequested { deployment_id: args.deployment_id.clone(), wait: wait.into() });
    if args.no_wait {
        return Ok(ExitCode::Success);
    }
    // The deployment was asked to leave Ready: one still Ready when first
    // read has not got round to it yet, so it is followed through, not
    // answered with exit 6 again.
    let mut options = args.follow.options();
    options.wait_ready |= args.wait_type == deploy::ContinueWait::Ready;
    let followed = follow::follow(&cd, &args.deployment_id, &options, reporter).await?;
    Ok(followed.outcome.exit_code())
}
