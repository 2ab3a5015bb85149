//! `ferry upload <DIR|FILE>`: bundle, check and upload into the environment's
//! bucket, verified, without deploying: stages a release ahead of time, or
//! puts a bundle where a deployment made elsewhere can pick it up.
//!
//! With `--no-assume` the ambient credentials are used as they are, for an
//! agent that already runs as the production identity. The account in the
//! environment's `role_arn` is still the ExpectedBucketOwner.

use std::path::PathBuf;

use aws_config::{BehaviorVersion, Region};

use crate::cli::UploadArgs;
use crate::cmd::error::Error;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;
use crate::{config, upload};

/// Uploads the bundle and reports where it is; prints its `s3://` URI.
pub async fn run(args: &UploadArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let bundle = super::prepare_bundle(&args.path, args.shipping.bundle_type, reporter)?;
    let (sdk, session) = if args.no_assume {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(env.region.clone()))
            .timeout_config(crate::deadline::sdk())
            .load()
            .await;
        (sdk, None)
    } else {
        let (sdk, session) = super::assume_role(&env, reporter).await?;
        (sdk, Some(session.session_name))
    };
    let metadata = upload::metadata_from_env(&env, &bundle.sha256, session.as_deref());
    let s3 = upload::s3_client(&sdk);
    let opts = upload::UploadOptions { concurrency: args.shipping.upload_concurrency as usize, ..Default::default() };
    let up = upload::upload(&s3, &env, &bundle, &metadata, &opts, reporter).await?;
    reporter.report(&Event::Staged { uri: format!("s3://{}/{}", up.bucket, up.key), etag: up.etag, version_id: up.version_id });
    Ok(ExitCode::Success)
}
