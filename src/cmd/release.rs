//! `ferry release`: config → bundle → assume → upload → deploy [→ watch].
//!
//! Local checks (config, bundle, appspec) all run before the first AWS call,
//! so bad input never leaves half a release behind.

use std::path::PathBuf;

use crate::cli::ReleaseArgs;
use crate::error::{Error, ExitCode};
use crate::report::{Event, Outcome, Receipt, Reporter};
use crate::watch::{self, WatchOptions};
use crate::{config, deploy, upload};

/// Runs a release and returns the exit code its outcome maps to.
pub async fn run(args: &ReleaseArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let bundle = super::prepare_bundle(&args.path, args.shipping.bundle_type, reporter)?;

    let (sdk, session) = super::assume_role(&env, reporter).await?;

    let metadata = upload::metadata_from_env(&env, &bundle.sha256, Some(&session.session_name));
    let s3 = upload::s3_client(&sdk);
    let opts = upload::UploadOptions { concurrency: args.shipping.upload_concurrency as usize, ..Default::default() };
    let uploaded = upload::upload(&s3, &env, &bundle, &metadata, &opts, reporter).await?;

    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let build_tag = std::env::var("BUILD_TAG").ok();
    let description = format!(
        "ferry release {} by {} (sha256 {})",
        build_tag.as_deref().unwrap_or("manual"),
        session.session_name,
        &bundle.sha256[..12]
    );
    let deployment_id = deploy::create(&cd, &env, deploy::revision(&uploaded, bundle.kind), &description).await?;
    reporter.report(&Event::DeploymentCreated {
        deployment_id: deployment_id.clone(),
        application: env.application.clone(),
        deployment_group: env.deployment_group.clone(),
    });

    let outcome = if args.wait {
        watch::watch(&cd, &deployment_id, &WatchOptions { timeout: args.timeout }, reporter).await?
    } else {
        Outcome::Created
    };
    reporter.report(&Event::Receipt(Receipt {
        environment: env.name.clone(),
        role_arn: session.role_arn,
        session_name: session.session_name,
        bucket: uploaded.bucket,
        key: uploaded.key,
        sha256: bundle.sha256.clone(),
        etag: uploaded.etag,
        version_id: uploaded.version_id,
        application: env.application,
        deployment_group: env.deployment_group,
        deployment_id,
        outcome: Some(outcome),
    }));
    Ok(outcome.exit_code())
}
