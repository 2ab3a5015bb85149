//! `ferry release`: config → bundle → then [`crate::pipeline`]: assume →
//! upload → deploy → watch.
//!
//! Local checks (config, bundle, appspec) all run before the first AWS call,
//! so bad input never leaves half a release behind. The receipt is filled in
//! as each step succeeds and written however the release ends. SIGINT and
//! SIGTERM are caught from the first line: a signal in any step stops it and
//! cleans up after it (see `crate::abort`).

use std::borrow::Borrow;
use std::path::PathBuf;

use crate::abort::{self, Guard, OnAbort, Phase};
use crate::bundle::Bundle;
use crate::cli::ReleaseArgs;
use crate::cmd::error::Error;
use crate::config;
use crate::event::{Receipt, Reporter};
use crate::exit::ExitCode;
use crate::pipeline::{self, Release, Shipping, Start};
use crate::promote::S3Uri;
use crate::receipt::{self, Keeper};

/// Runs a release and returns the exit code its outcome maps to.
pub async fn run(args: &ReleaseArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    if args.path.as_os_str().is_empty() && args.image.is_none() {
        return Err(Error::NothingToRelease);
    }
    if let Some(wave) = &args.wave {
        super::check_no_env_with_wave(&args.target, wave)?;
        return super::wave::run(args, wave, config_path, reporter).await;
    }
    if args.plan {
        // A plan deploys nothing, so it keeps no receipt: a receipt (and the
        // one Jenkins archives by default) always speaks of a release.
        return plan_only(args, config_path, reporter).await;
    }
    Start::run(args.ending.receipt.as_deref(), Receipt::default(), true, reporter, async |guard, keeper| {
        release(args, config_path, reporter, guard, keeper).await
    })
    .await
}

async fn release(
    args: &ReleaseArgs,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
    guard: &mut Guard,
    keeper: &mut Keeper,
) -> Result<ExitCode, Error> {
    let mut selection = args.target.selection(config_path);
    args.deploy.apply(&mut selection.overrides);
    let env = config::resolve(&selection)?;
    let confirm = env.confirm && !args.yes;
    if confirm && !on_terminal() {
        return Err(crate::plan::refuse_without_terminal(&env).into());
    }
    receipt::set_target(&mut keeper.receipt, &env);
    keeper.receipt.session_name = pipeline::planned_session_name(&env);
    if args.image.is_some() || env.platform.ecs().is_some() {
        return release_image(args, &env, confirm, reporter, guard, keeper).await;
    }
    // A directory is bundled in a temporary directory of ferry's own, which
    // an interrupt removes (half-written archive included) at once.
    let temp = super::bundle_temp_dir()?;
    // `s3://…` promotes a bundle already uploaded; anything else is built
    // and checked here, before any AWS call.
    let shipping = match args.path.to_str().and_then(S3Uri::parse) {
        Some(uri) => {
            drop(temp);
            crate::promote::check_local(&uri)?;
            Shipping::Promote(uri)
        }
        None => {
            let holds = match env.platform {
                config::Platform::Lambda(_) => crate::bundle::Holds::FunctionCode,
                config::Platform::Server | config::Platform::Ecs(_) => crate::bundle::Holds::Revision,
            };
            let prepared = super::prepare_holding(&args.path, args.shipping.bundle_type, temp.path(), holds, reporter);
            let bundle = match guard.run(prepared).await {
                Ok(bundle) => bundle?,
                Err(sig) => {
                    drop(temp);
                    crate::bundle::cache::Cache::discard_own_partials();
                    return Ok(abort::interrupted(keeper, sig, Phase::Bundle, reporter));
                }
            };
            Shipping::Upload(Built { bundle, _temp: temp })
        }
    };
    if confirm {
        let Shipping::Upload(built) = &shipping else {
            return Err(s3_bundle_not_planned(&args.path).into());
        };
        match guard.run(super::plan::show(&env, &args.path, &built.bundle, reporter)).await {
            Ok(shown) => shown?,
            Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Plan, reporter)),
        }
        if let Some(interrupted) = typed_name(&env, reporter, guard, keeper).await? {
            return Ok(interrupted);
        }
    }
    let following = args.ending.following(!args.no_wait, &args.follow, OnAbort::StopAndRollback);
    Ok(pipeline::release(&step(args, &env, &following), shipping, &mut None, guard, keeper, reporter).await?)
}

/// Asks for the environment's name to be typed (`confirm = true`): refused
/// unless it is; the exit code when a signal came first.
async fn typed_name(
    env: &config::Environment,
    reporter: &dyn Reporter,
    guard: &mut Guard,
    keeper: &mut Keeper,
) -> Result<Option<ExitCode>, Error> {
    reporter.report(&crate::event::Event::ConfirmRequested { environment: env.name.clone() });
    let typed = match guard.run(read_line()).await {
        Ok(typed) => typed,
        Err(sig) => return Ok(Some(abort::interrupted(keeper, sig, Phase::Plan, reporter))),
    };
    if typed.trim() != env.name {
        return Err(crate::plan::refuse_typed(env, &typed).into());
    }
    Ok(None)
}

/// The pipeline's step for this command's options.
fn step<'a>(args: &ReleaseArgs, env: &'a config::Environment, following: &'a crate::launch::Following) -> Release<'a> {
    Release {
        env,
        upload_concurrency: args.shipping.upload_concurrency as usize,
        auto_rollback: args.policy.rollback_on.map(|p| p.configuration()),
        queue_timeout: args.policy.queue_timeout,
        following,
        wave: None,
    }
}

/// `release --image` to an ECS environment: the image reference and the
/// repo's task definition file are checked here, before any AWS call; a
/// bundle path beside it, or an image for another platform, is refused.
/// `confirm` asks for the environment's name (there is no bundle to plan).
async fn release_image(
    args: &ReleaseArgs,
    env: &config::Environment,
    confirm: bool,
    reporter: &dyn Reporter,
    guard: &mut Guard,
    keeper: &mut Keeper,
) -> Result<ExitCode, Error> {
    use crate::ecs::EcsError;
    let (Some(image), Some(service)) = (&args.image, env.platform.ecs()) else {
        return Err(EcsError::Platform(pipeline::platform_mismatch(env)).into());
    };
    if !args.path.as_os_str().is_empty() {
        return Err(EcsError::Platform(format!(
            "`ferry release --image` deploys the image alone; drop the bundle path {} (an ECS release's appspec is written \
             by ferry from the service)",
            args.path.display()
        ))
        .into());
    }
    let shipping: Shipping<Bundle> = Shipping::Image(Box::new(pipeline::ecs::EcsRelease::prepare(image, service)?));
    if confirm && let Some(interrupted) = typed_name(env, reporter, guard, keeper).await? {
        return Ok(interrupted);
    }
    let following = args.ending.following(!args.no_wait, &args.follow, OnAbort::StopAndRollback);
    Ok(pipeline::release(&step(args, env, &following), shipping, &mut None, guard, keeper, reporter).await?)
}

/// `release --plan`: what `ferry plan` does, with this command's overrides.
async fn plan_only(args: &ReleaseArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let mut selection = args.target.selection(config_path);
    args.deploy.apply(&mut selection.overrides);
    let env = config::resolve(&selection)?;
    super::plan::refuse_ecs(&env)?;
    if args.image.is_some() {
        return Err(crate::ecs::EcsError::Platform(pipeline::platform_mismatch(&env)).into());
    }
    if args.path.to_str().and_then(S3Uri::parse).is_some() {
        return Err(s3_bundle_not_planned(&args.path).into());
    }
    let temp = super::bundle_temp_dir()?;
    let holds = super::plan::holds(&env);
    let bundle = super::prepare_holding(&args.path, args.shipping.bundle_type, temp.path(), holds, reporter).await?;
    super::plan::show(&env, &args.path, &bundle, reporter).await?;
    Ok(ExitCode::Success)
}

/// A bundle already in S3 has no local archive to compare.
fn s3_bundle_not_planned(path: &std::path::Path) -> crate::plan::PlanError {
    crate::plan::PlanError::Bundle {
        path: path.display().to_string(),
        detail: "a bundle already in S3 is planned by its local archive: run `ferry plan` on the file it was \
                 uploaded from"
            .into(),
    }
}

/// Whether a person can be asked: stdin to type on, stderr to show the
/// question and the plan.
fn on_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// One line typed on stdin (empty at end of input).
async fn read_line() -> String {
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    read.await.ok().and_then(Result::ok).unwrap_or_default()
}

/// A bundle built here with the temporary directory it lives in: both go
/// once the bundle is in S3.
struct Built {
    bundle: Bundle,
    _temp: tempfile::TempDir,
}

impl Borrow<Bundle> for Built {
    fn borrow(&self) -> &Bundle {
        &self.bundle
    }
}
