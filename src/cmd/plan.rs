//! `ferry plan`: the bundle built and checked as `release` builds it, the
//! role assumed, then [`crate::plan`]: what the release would change against
//! what the group runs. Nothing is uploaded or deployed. `ferry release
//! --plan` and the confirmation of a `confirm = true` environment use
//! [`show`] too.

use std::path::{Path, PathBuf};

use crate::bundle::{Bundle, Holds};
use crate::cli::PlanArgs;
use crate::cmd::error::Error;
use crate::config::{self, Environment};
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;
use crate::{pipeline, upload};

/// Plans a release and reports the plan (the command's result).
pub async fn run(args: &PlanArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    refuse_ecs(&env)?;
    let temp = super::bundle_temp_dir()?;
    let bundle = super::prepare_holding(&args.path, args.bundle_type, temp.path(), holds(&env), reporter).await?;
    show(&env, &args.path, &bundle, reporter).await?;
    Ok(ExitCode::Success)
}

/// An ECS release (`--image`) has no bundle to compare with what the group
/// runs: said before anything is built or assumed, by `plan` and `release
/// --plan` alike.
pub(crate) fn refuse_ecs(env: &Environment) -> Result<(), crate::ecs::EcsError> {
    match env.platform.ecs() {
        Some(_) => Err(crate::ecs::EcsError::Platform(format!(
            "{} is an ECS environment: a plan compares a bundle with what the group runs, and an ECS release \
             (`ferry release --image URI`) has no bundle to plan. Release the image (with `confirm = true` ferry asks \
             for the environment's name first), or plan an EC2 or Lambda environment",
            env.name
        ))),
        None => Ok(()),
    }
}

/// What `env`'s bundle holds: a Lambda function's code has no appspec.yml
/// of its own (ferry writes the deployment's); anything else is a revision.
pub(crate) fn holds(env: &Environment) -> Holds {
    match env.platform {
        config::Platform::Lambda(_) => Holds::FunctionCode,
        config::Platform::Server | config::Platform::Ecs(_) => Holds::Revision,
    }
}

/// Assumes the environment's role, makes the plan of releasing `bundle`
/// (built from `path`) and reports it.
pub async fn show(env: &Environment, path: &Path, bundle: &Bundle, reporter: &dyn Reporter) -> Result<(), Error> {
    let (sdk, _session) = pipeline::assume_role(env, reporter).await?;
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let plan = match env.platform.lambda() {
        Some(function) => {
            let lambda = aws_sdk_lambda::Client::new(&sdk);
            crate::plan::lambda::plan(&cd, &lambda, env, function, path, bundle).await?
        }
        None => crate::plan::plan(&cd, &upload::s3_client(&sdk), env, path, bundle).await?,
    };
    reporter.report(&Event::Plan(plan));
    Ok(())
}
