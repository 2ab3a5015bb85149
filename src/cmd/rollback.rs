//! `ferry rollback`: redeploy an earlier revision, chosen from CodeDeploy's
//! own history and pinned by eTag/version, saying from what to what first.

use std::path::PathBuf;
use std::time::Duration;

use crate::abort::{self, Guard, OnAbort, Phase};
use crate::cli::RollbackArgs;
use crate::cmd::error::Error;
use crate::event::{Receipt, Reporter};
use crate::exit::ExitCode;
use crate::launch;
use crate::pipeline::{self, Start};
use crate::receipt::Keeper;
use crate::{config, deployments, queue, rollback, upload};

/// Plans the rollback, reports it, creates the deployment and, unless
/// `--no-wait`, follows it. SIGINT/SIGTERM are caught from the first line.
pub async fn run(args: &RollbackArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    Start::run(args.ending.receipt.as_deref(), Receipt::default(), true, reporter, async |guard, keeper| {
        roll_back(args, config_path, reporter, guard, keeper).await
    })
    .await
}

async fn roll_back(
    args: &RollbackArgs,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
    guard: &mut Guard,
    keeper: &mut Keeper,
) -> Result<ExitCode, Error> {
    let mut selection = args.target.selection(config_path);
    args.deploy.apply(&mut selection.overrides);
    let env = config::resolve(&selection)?;
    let (sdk, session) = match pipeline::assume_recorded(&env, guard, keeper, reporter).await? {
        Ok(assumed) => assumed,
        Err(interrupted) => return Ok(interrupted),
    };
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    if let Some(function) = env.platform.lambda() {
        let client = aws_sdk_lambda::Client::new(&sdk);
        let planned = pipeline::lambda::rollback_plan(&cd, &client, &env, function, args.to.as_deref());
        let plan = match guard.run(planned).await {
            Ok(plan) => plan.map_err(|e| match e {
                pipeline::lambda::RollbackError::Lambda(e) => Error::Lambda(e),
                pipeline::lambda::RollbackError::Rollback(e) => Error::Rollback(e),
            })?,
            Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Plan, reporter)),
        };
        reporter.report(&plan.event(&env, function));
        let v = &plan.versions;
        let description = env.deploy.describe(&format!(
            "ferry rollback by {} of {}:{} from version {} to {}",
            session.session_name, function.name, function.alias, v.current, v.target
        ));
        let request = queue::Request {
            env: &env,
            revision: crate::deploy::appspec_revision(&plan.appspec),
            description,
            auto_rollback: None,
            build: None,
            queue_timeout: Duration::ZERO,
        };
        let following = args.ending.following(!args.no_wait, &args.follow, OnAbort::Leave);
        return Ok(launch::launch(&cd, &request, &following, guard, keeper, reporter).await?);
    }
    let s3 = upload::s3_client(&sdk);

    let plan = match guard.run(rollback::plan(&cd, &s3, &env, args.to.as_deref())).await {
        Ok(plan) => plan?,
        Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Plan, reporter)),
    };
    for message in &plan.warnings {
        reporter.report(&crate::event::Event::Warning { message: message.clone() });
    }
    reporter.report(&plan.event(&env));
    let rev = &plan.revision;
    let r = &mut keeper.receipt;
    r.bucket = rev.bucket().unwrap_or_default().to_string();
    r.key = rev.key().unwrap_or_default().to_string();
    r.etag = rev.e_tag().unwrap_or_default().to_string();
    r.version_id = rev.version().map(String::from);
    r.sha256 = deployments::sha256_of_key(&r.key).unwrap_or_default();
    r.task_definition_arn = plan.task_definition.clone();

    let from = plan.from.as_ref().and_then(|d| d.deployment_id()).unwrap_or("nothing");
    let description =
        env.deploy.describe(&format!("ferry rollback by {} from {from} to {}", session.session_name, deployments::s3_url(rev)));
    let request = queue::Request {
        env: &env,
        revision: plan.revision_location(),
        description,
        auto_rollback: None,
        // A rollback deliberately deploys an older build: no superseded check.
        build: None,
        // `plan` refused a busy group already; do not wait behind a newcomer.
        queue_timeout: Duration::ZERO,
    };
    // A rollback is left running on abort by default: stopping it half-way
    // would leave the group on neither revision.
    let following = args.ending.following(!args.no_wait, &args.follow, OnAbort::Leave);
    Ok(launch::launch(&cd, &request, &following, guard, keeper, reporter).await?)
}
