//! `ferry release`: config → bundle → assume → upload → deploy → watch.
//!
//! Local checks (config, bundle, appspec) all run before the first AWS call,
//! so bad input never leaves half a release behind. The receipt is filled in
//! as each step succeeds and written however the release ends. SIGINT and
//! SIGTERM are caught from the first line: a signal in any step stops it and
//! cleans up after it (see `crate::abort`).

use std::path::PathBuf;
use std::time::Duration;

use crate::abort::{self, Guard, OnAbort, Phase, Received};
use crate::bundle::Bundle;
use crate::cli::ReleaseArgs;
use crate::cmd::error::Error;
use crate::config::Environment;
use crate::deployments::Build;
use crate::event::{Event, Receipt, Reporter};
use crate::exit::ExitCode;
use crate::jenkins::BuildEnv;
use crate::launch;
use crate::promote::{self, S3Uri};
use crate::receipt::{self, Clock, Keeper};
use crate::{config, deploy, queue, upload};

/// How long an interrupted release may spend aborting its multipart upload.
const UPLOAD_CLEANUP: Duration = Duration::from_secs(3);

/// Runs a release and returns the exit code its outcome maps to.
pub async fn run(args: &ReleaseArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    if let Some(wave) = &args.wave {
        return super::wave::run(args, wave, config_path, reporter).await;
    }
    let receipt_path = receipt::path(args.ending.receipt.as_deref());
    // Before any AWS call: nothing may be deployed that cannot be recorded.
    if let Some(path) = &receipt_path {
        receipt::check_path(path)?;
    }
    let mut guard = Guard::install(reporter);
    let receipt = Receipt { build: receipt::build_from_env(), ..Default::default() };
    let mut keeper = Keeper::new(receipt, Clock::start(), receipt_path);
    let result = release(args, config_path, reporter, &mut guard, &mut keeper).await;
    keeper.finish(result, true, reporter)
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
    receipt::set_target(&mut keeper.receipt, &env);
    keeper.receipt.session_name = super::planned_session_name(&env);
    // A directory is bundled in a temporary directory of ferry's own, which
    // an interrupt removes (half-written archive included) at once.
    let temp = super::bundle_temp_dir()?;
    // `s3://…` promotes a bundle already uploaded; anything else is built
    // and checked here, before any AWS call.
    let shipping = match args.path.to_str().and_then(S3Uri::parse) {
        Some(uri) => Shipping::Promote(uri),
        None => {
            let prepared = super::prepare_bundle_in(&args.path, args.shipping.bundle_type, temp.path(), reporter);
            let bundle = match guard.run(prepared).await {
                Ok(bundle) => bundle?,
                Err(sig) => {
                    drop(temp);
                    crate::bundle::cache::Cache::discard_own_partials();
                    return Ok(abort::interrupted(keeper, sig, Phase::Bundle, reporter));
                }
            };
            keeper.receipt.sha256 = bundle.sha256.clone();
            keeper.receipt.key = upload::key_for(&env, &bundle);
            Shipping::Upload(bundle)
        }
    };

    let (sdk, session) = match guard.run(super::assume_role(&env, reporter)).await {
        Ok(assumed) => assumed?,
        Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Assume, reporter)),
    };
    receipt::set_session(&mut keeper.receipt, &session);

    let s3 = upload::s3_client(&sdk);
    let (uploaded, sha256, kind) = match &shipping {
        Shipping::Promote(uri) => {
            let p = match guard.run(promote::promote(&s3, &env, uri)).await {
                Ok(p) => p?,
                Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Upload, reporter)),
            };
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
            keeper.receipt.sha256 = p.sha256.clone();
            (p.uploaded, p.sha256, p.kind)
        }
        Shipping::Upload(bundle) => {
            let metadata = upload::metadata_from_env(&env, &bundle.sha256, Some(&session.session_name));
            let opts = upload::UploadOptions { concurrency: args.shipping.upload_concurrency as usize, ..Default::default() };
            let uploaded = match guard.run(upload::upload(&s3, &env, bundle, &metadata, &opts, reporter)).await {
                Ok(uploaded) => uploaded?,
                Err(sig) => return Ok(upload_interrupted(&s3, &env, sig, guard, keeper, reporter).await),
            };
            (uploaded, bundle.sha256.clone(), bundle.kind)
        }
    };
    let r = &mut keeper.receipt;
    r.bucket = uploaded.bucket.clone();
    r.key = uploaded.key.clone();
    r.etag = uploaded.etag.clone();
    r.version_id = uploaded.version_id.clone();
    // The bundle is in S3: its temporary file goes now, not at exit, so no
    // later way out (a second signal included) can leave it behind.
    drop(shipping);
    drop(temp);

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
    let following = args.ending.following(!args.no_wait, &args.follow, OnAbort::StopAndRollback);
    Ok(launch::launch(&cd, &request, &following, guard, keeper, reporter).await?)
}

/// What a release ships: a bundle built or checked here, or one already in S3.
enum Shipping {
    /// Bundled from a directory or a ready archive; uploaded next.
    Upload(Bundle),
    /// `s3://…`: promoted as it is.
    Promote(S3Uri),
}

/// A signal stopped the upload: the receipt is written at once, then every
/// multipart upload of the bundle's key is aborted and S3 is asked to
/// confirm none is left open; the receipt says what was found. A second
/// signal skips the clean-up.
async fn upload_interrupted(
    s3: &aws_sdk_s3::Client,
    env: &Environment,
    sig: Received,
    guard: &mut Guard,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
) -> ExitCode {
    let code = abort::interrupted(keeper, sig, Phase::Upload, reporter);
    let key = keeper.receipt.key.clone();
    let cleanup = tokio::time::timeout(UPLOAD_CLEANUP, upload::abandon(s3, env, &key));
    let outcome = match guard.run(cleanup).await {
        Ok(Ok(Ok(done))) => Ok(done),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(_)) => Err(format!("S3 did not answer within {}s", UPLOAD_CLEANUP.as_secs())),
        Err(second) => Err(format!("a second signal ({}) came first", second.name())),
    };
    match outcome {
        Ok(done) => {
            reporter.report(&Event::UploadAborted {
                bucket: env.bucket.clone(),
                key: key.clone(),
                upload_ids: done.aborted.clone(),
                open: done.open,
            });
            if let Some(a) = keeper.receipt.abort.as_mut() {
                a.uploads_aborted = Some(done.aborted.len() as u32);
                a.uploads_open = Some(done.open);
                a.complete = done.open == 0;
            }
        }
        Err(why) => reporter.report(&Event::Warning {
            message: format!(
                "could not confirm that the multipart upload of s3://{}/{key} was aborted: {why}. A bucket lifecycle \
                 rule (AbortIncompleteMultipartUpload) removes it, or the next release of this bundle resumes it.",
                env.bucket
            ),
        }),
    }
    keeper.save(reporter);
    code
}
