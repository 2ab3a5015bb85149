//! `ferry release`: config → bundle → assume → upload → deploy [→ watch].
//!
//! Local checks (config, bundle, appspec) all run before the first AWS call,
//! so bad input never leaves half a release behind. The receipt is filled in
//! as each step succeeds and written however the release ends.

use std::path::PathBuf;

use crate::abort::OnAbort;
use crate::bundle::Bundle;
use crate::cli::ReleaseArgs;
use crate::cmd::error::Error;
use crate::deployments::Build;
use crate::event::{Event, Receipt, Reporter};
use crate::exit::ExitCode;
use crate::jenkins::BuildEnv;
use crate::launch;
use crate::promote::{self, S3Uri};
use crate::receipt::{self, Clock};
use crate::{config, deploy, queue, upload};

/// Runs a release and returns the exit code its outcome maps to.
pub async fn run(args: &ReleaseArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let clock = Clock::start();
    let mut r = Receipt { build: receipt::build_from_env(), ..Default::default() };
    let result = release(args, config_path, reporter, &mut r).await;
    receipt::finish(result, r, clock, receipt::path(args.ending.receipt.as_deref()).as_deref(), true, reporter)
}

async fn release(
    args: &ReleaseArgs,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
    r: &mut Receipt,
) -> Result<ExitCode, Error> {
    let mut selection = args.target.selection(config_path);
    args.deploy.apply(&mut selection.overrides);
    let env = config::resolve(&selection)?;
    receipt::set_target(r, &env);
    // `s3://…` promotes a bundle already uploaded; anything else is built
    // and checked here, before any AWS call.
    let shipping = match args.path.to_str().and_then(S3Uri::parse) {
        Some(uri) => Shipping::Promote(uri),
        None => {
            let bundle = super::prepare_bundle(&args.path, args.shipping.bundle_type, reporter)?;
            r.sha256 = bundle.sha256.clone();
            Shipping::Upload(bundle)
        }
    };

    let (sdk, session) = super::assume_role(&env, reporter).await?;
    receipt::set_session(r, &session);

    let s3 = upload::s3_client(&sdk);
    let (uploaded, sha256, kind) = match &shipping {
        Shipping::Promote(uri) => {
            let p = promote::promote(&s3, &env, uri).await?;
            let u = &p.uploaded;
            reporter.report(&if u.reused {
                Event::UploadSkipped { bucket: u.bucket.clone(), key: u.key.clone() }
            } else {
                Event::Uploaded {
                    bucket: u.bucket.clone(),
                    key: u.key.clone(),
                    etag: u.etag.clone(),
                    version_id: u.version_id.clone(),
                    size: p.size,
                }
            });
            r.sha256 = p.sha256.clone();
            (p.uploaded, p.sha256, p.kind)
        }
        Shipping::Upload(bundle) => {
            let metadata = upload::metadata_from_env(&env, &bundle.sha256, Some(&session.session_name));
            let opts = upload::UploadOptions { concurrency: args.shipping.upload_concurrency as usize, ..Default::default() };
            let uploaded = upload::upload(&s3, &env, bundle, &metadata, &opts, reporter).await?;
            (uploaded, bundle.sha256.clone(), bundle.kind)
        }
    };
    r.bucket = uploaded.bucket.clone();
    r.key = uploaded.key.clone();
    r.etag = uploaded.etag.clone();
    r.version_id = uploaded.version_id.clone();

    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let build = Build::of(BuildEnv::current());
    // The build marker leads the description: `queue` reads it back to keep
    // an older build from overwriting a newer one.
    let who = match &build {
        Some(b) => b.marker(),
        None => format!("ferry release {}", BuildEnv::current().build_tag.as_deref().unwrap_or("manual")),
    };
    let description = env.deploy.describe(&format!("{who} by {} (sha256 {})", session.session_name, &sha256[..12]));
    let request = queue::Request {
        env: &env,
        revision: deploy::revision(&uploaded, kind),
        description,
        auto_rollback: args.policy.rollback_on.map(|p| p.configuration()),
        build,
        queue_timeout: args.policy.queue_timeout,
    };
    let following = args.ending.following(args.wait, &args.follow, OnAbort::StopAndRollback);
    Ok(launch::launch(&cd, &request, &following, r, reporter).await?)
}

/// What a release ships: a bundle built or checked here, or one already in S3.
enum Shipping {
    /// Bundled from a directory or a ready archive; uploaded next.
    Upload(Bundle),
    /// `s3://…`: promoted as it is.
    Promote(S3Uri),
}
