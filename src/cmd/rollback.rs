//! `ferry rollback`: redeploy an earlier revision, chosen from CodeDeploy's
//! own history and pinned by eTag/version, saying from what to what first.

use std::path::PathBuf;
use std::time::Duration;

use crate::abort::OnAbort;
use crate::cli::RollbackArgs;
use crate::cmd::error::Error;
use crate::event::{Receipt, Reporter};
use crate::exit::ExitCode;
use crate::launch;
use crate::receipt::{self, Clock};
use crate::{config, deployments, queue, rollback, upload};

/// Plans the rollback, reports it, creates the deployment and, with
/// `--wait`, follows it.
pub async fn run(args: &RollbackArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let clock = Clock::start();
    let mut r = Receipt { build: receipt::build_from_env(), ..Default::default() };
    let result = roll_back(args, config_path, reporter, &mut r).await;
    receipt::finish(result, r, clock, receipt::path(args.ending.receipt.as_deref()).as_deref(), true, reporter)
}

async fn roll_back(
    args: &RollbackArgs,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
    r: &mut Receipt,
) -> Result<ExitCode, Error> {
    let mut selection = args.target.selection(config_path);
    args.deploy.apply(&mut selection.overrides);
    let env = config::resolve(&selection)?;
    receipt::set_target(r, &env);
    let (sdk, session) = super::assume_role(&env, reporter).await?;
    receipt::set_session(r, &session);
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let s3 = upload::s3_client(&sdk);

    let plan = rollback::plan(&cd, &s3, &env, args.to.as_deref()).await?;
    reporter.report(&plan.event(&env));
    let rev = &plan.revision;
    r.bucket = rev.bucket().unwrap_or_default().to_string();
    r.key = rev.key().unwrap_or_default().to_string();
    r.etag = rev.e_tag().unwrap_or_default().to_string();
    r.version_id = rev.version().map(String::from);
    r.sha256 = deployments::sha256_of_key(&r.key).unwrap_or_default();

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
    let following = args.ending.following(args.wait, &args.follow, OnAbort::Leave);
    Ok(launch::launch(&cd, &request, &following, r, reporter).await?)
}
