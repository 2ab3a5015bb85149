//! `ferry stop <deployment-id> [--rollback]`: StopDeployment, then follow the
//! deployment to Stopped and, with `--rollback`, CodeDeploy's rollback to its end.

use std::path::PathBuf;

use crate::cli::StopArgs;
use crate::cmd::error::Error;
use crate::event::{Event, Outcome, Reporter};
use crate::exit::ExitCode;
use crate::{config, follow, rollback};

/// Exits 0 when the deployment stopped (and, with `--rollback`, the rollback
/// succeeded), 3 when the rollback failed, 1 when the deployment ended on
/// its own before the stop took hold.
pub async fn run(args: &StopArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let (sdk, _session) = super::assume_role(&env, reporter).await?;
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    // Explicit both ways: `ferry stop` never rolls back unless asked, whatever
    // the group is configured to do.
    rollback::request_stop(&cd, &args.deployment_id, Some(args.rollback), reporter).await?;
    let followed = follow::follow(&cd, &args.deployment_id, &args.follow.options(), reporter).await?;
    Ok(match (followed.deployment_outcome, followed.outcome) {
        (_, Outcome::TimedOut) => ExitCode::TimedOut,
        (Outcome::Stopped, Outcome::Stopped | Outcome::RolledBack) => ExitCode::Success,
        (Outcome::Stopped, _) => ExitCode::DeploymentFailed,
        (ended, _) => {
            reporter.report(&Event::Warning {
                message: format!("deployment {} ended on its own ({ended:?}) before the stop took hold", args.deployment_id),
            });
            ExitCode::Usage
        }
    })
}
