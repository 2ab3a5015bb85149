//! pipeline: the one release path after the bundle, which `ferry release
//! --env` and each environment of a wave both run: assume → upload (or
//! promote) → receipt → description → [`queue::Request`] → [`launch`].
//!
//! A signal during any step stops it and cleans up after it the same way
//! wherever the release runs: during the upload, every multipart upload of
//! the bundle's key is aborted and S3 asked to confirm none is left open
//! ([`upload_interrupted`]). [`start`] is the command start-up that every
//! command which may deploy shares (receipt path check, signal guard,
//! receipt keeper); [`session`] assumes an environment's role.
//!
//! A new compute platform extends [`Release`] (what it ships) and
//! [`release`] (how); the commands and the wave stay as they are. Lambda
//! does so: after the upload, the bundle is published as the function's
//! next version ([`lambda`]) and the deployment's revision is the appspec
//! moving the alias onto it. ECS does too: before the upload, the image is
//! registered in a copy of the service's task definition ([`ecs`]), and
//! the appspec naming it is what is uploaded (content-addressed, like a
//! bundle) and deployed.

pub mod ecs;
pub mod lambda;
pub mod session;
pub mod start;

use std::borrow::Borrow;
use std::time::Duration;

use aws_sdk_codedeploy::types::AutoRollbackConfiguration;

use crate::abort::{self, Guard, Phase, Received};
use crate::bundle::Bundle;
use crate::config::Environment;
use crate::deployments::Build;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;
use crate::jenkins::BuildEnv;
use crate::launch::{self, Following, LaunchError};
use crate::promote::{self, S3Uri};
use crate::receipt::{self, Keeper};
use crate::{deploy, queue, upload};

pub use session::{assume_options, assume_recorded, assume_role, planned_session_name};
pub use start::Start;

/// How long an interrupted release may spend aborting its multipart upload.
const UPLOAD_CLEANUP: Duration = Duration::from_secs(3);

/// Why a release ended without an outcome: the step's own error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The environment's role could not be assumed.
    #[error(transparent)]
    Assume(#[from] crate::assume::AssumeError),
    /// `--timeout` ran out before the release got as far as a deployment.
    #[error(transparent)]
    Deadline(#[from] crate::deadline::Passed),
    /// The bundle could not be put into the environment's bucket.
    #[error(transparent)]
    Upload(#[from] crate::upload::UploadError),
    /// A bundle already in S3 could not be promoted.
    #[error(transparent)]
    Promote(#[from] crate::promote::PromoteError),
    /// A Lambda release's code was not published as a version.
    #[error(transparent)]
    Lambda(#[from] crate::lambda::LambdaError),
    /// An ECS release's task definition was not registered.
    #[error(transparent)]
    Ecs(#[from] crate::ecs::EcsError),
    /// No deployment was created, or following it failed.
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

impl PipelineError {
    /// Which row of the exit-code table this error belongs to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            PipelineError::Assume(e) => e.exit_code(),
            PipelineError::Deadline(_) => ExitCode::TimedOut,
            PipelineError::Upload(e) => e.exit_code(),
            PipelineError::Promote(e) => e.exit_code(),
            PipelineError::Lambda(e) => e.exit_code(),
            PipelineError::Ecs(e) => e.exit_code(),
            PipelineError::Launch(LaunchError::Queue(e)) => e.exit_code(),
            PipelineError::Launch(LaunchError::Watch(_)) => ExitCode::Aws,
        }
    }

    /// The step, as the `error` event's `class` names it.
    pub fn class(&self) -> &'static str {
        match self {
            PipelineError::Assume(_) => "assume",
            PipelineError::Deadline(_) => "timeout",
            PipelineError::Upload(_) | PipelineError::Promote(_) => "upload",
            PipelineError::Lambda(_) => "lambda",
            PipelineError::Ecs(_) => "ecs",
            PipelineError::Launch(LaunchError::Queue(_)) => "deploy",
            PipelineError::Launch(LaunchError::Watch(_)) => "watch",
        }
    }
}

/// What a release ships: a bundle built or checked here (`B` owns it, or
/// borrows one a wave shares), or one already in S3.
pub enum Shipping<B: Borrow<Bundle>> {
    /// Bundled from a directory or a ready archive; uploaded next, then
    /// dropped (a built bundle's temporary file with it).
    Upload(B),
    /// `s3://…`: promoted as it is.
    Promote(S3Uri),
    /// `--image`: an ECS release, registered as a task definition.
    Image(Box<ecs::EcsRelease>),
}

/// One environment's release, everything but the bundle.
pub struct Release<'a> {
    /// The environment, resolved.
    pub env: &'a Environment,
    /// Parallel part uploads.
    pub upload_concurrency: usize,
    /// `--rollback-on`, for the deployment.
    pub auto_rollback: Option<AutoRollbackConfiguration>,
    /// How long to wait for a busy group.
    pub queue_timeout: Duration,
    /// How the deployment is followed and aborted.
    pub following: &'a Following,
    /// The wave this release is part of, named in the description.
    pub wave: Option<&'a str>,
}

/// The clients a release made once its role was assumed, kept by a wave
/// for the bake and a rollback.
#[derive(Clone)]
pub struct Clients {
    /// CodeDeploy.
    pub cd: aws_sdk_codedeploy::Client,
    /// S3, path-style where the endpoint needs it.
    pub s3: aws_sdk_s3::Client,
    /// The role session name STS gave.
    pub session_name: String,
    /// The assumed role's SDK configuration, for a platform's own clients
    /// (Lambda's, when a wave rolls a function's alias back).
    pub sdk: aws_config::SdkConfig,
}

/// Runs one environment's release after the bundle and returns its exit
/// code. `clients` is set as soon as the role is assumed. Every step
/// records what it learnt in `keeper` (saved as it goes); a signal ends
/// the step it came in, cleaned up.
pub async fn release<B: Borrow<Bundle>>(
    step: &Release<'_>,
    shipping: Shipping<B>,
    clients: &mut Option<Clients>,
    guard: &mut Guard,
    keeper: &mut Keeper,
    reporter: &dyn Reporter,
) -> Result<ExitCode, PipelineError> {
    let env = step.env;
    receipt::set_target(&mut keeper.receipt, env);
    if let Shipping::Upload(bundle) = &shipping {
        let bundle: &Bundle = bundle.borrow();
        keeper.receipt.sha256 = bundle.sha256.clone();
        keeper.receipt.key = upload::key_for(env, bundle);
    }
    // An ECS service deploys an image, every other platform a bundle:
    // refused before the role is assumed.
    if env.platform.ecs().is_some() != matches!(shipping, Shipping::Image(_)) {
        return Err(crate::ecs::EcsError::Platform(platform_mismatch(env)).into());
    }
    keeper.save(reporter);
    let (sdk, session) = match assume_recorded(env, guard, keeper, reporter).await? {
        Ok(assumed) => assumed,
        Err(interrupted) => return Ok(interrupted),
    };
    let s3 = upload::s3_client(&sdk);
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    *clients = Some(Clients { cd: cd.clone(), s3: s3.clone(), session_name: session.session_name.clone(), sdk: sdk.clone() });

    let shipped = match &shipping {
        Shipping::Promote(uri) => match guard.run(promote::promote(&s3, env, uri)).await {
            Ok(p) => promoted(p?, keeper, reporter),
            Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Upload, reporter)),
        },
        Shipping::Upload(bundle) => {
            let bundle: &Bundle = bundle.borrow();
            let metadata = upload::metadata_from_env(env, &bundle.sha256, Some(&session.session_name));
            let opts = upload::UploadOptions { concurrency: step.upload_concurrency, ..Default::default() };
            match guard.run(upload::upload(&s3, env, bundle, &metadata, &opts, reporter)).await {
                Ok(uploaded) => Shipped { uploaded: uploaded?, sha256: bundle.sha256.clone(), kind: Some(bundle.kind) },
                Err(sig) => return Ok(upload_interrupted(&s3, env, sig, guard, keeper, reporter).await),
            }
        }
        Shipping::Image(release) => {
            let service = env.platform.ecs().expect("checked above");
            // A task definition registered already is harmless: nothing runs it.
            let registered = match guard.run(ecs::register(&sdk, &cd, env, service, release, reporter)).await {
                Ok(registered) => registered?,
                Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Upload, reporter)),
            };
            let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(registered.appspec.as_bytes()));
            let r = &mut keeper.receipt;
            r.image = Some(registered.image.clone());
            r.task_definition_arn = Some(registered.task_definition_arn.clone());
            r.sha256 = sha256.clone();
            r.key = upload::appspec_key(env, &sha256);
            keeper.save(reporter);
            let metadata = upload::metadata_from_env(env, &sha256, Some(&session.session_name));
            match guard.run(upload::upload_appspec(&s3, env, &registered.appspec, &metadata, reporter)).await {
                Ok(uploaded) => Shipped { uploaded: uploaded?, sha256, kind: None },
                Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Upload, reporter)),
            }
        }
    };
    let r = &mut keeper.receipt;
    r.bucket = shipped.uploaded.bucket.clone();
    r.key = shipped.uploaded.key.clone();
    r.etag = shipped.uploaded.etag.clone();
    r.version_id = shipped.uploaded.version_id.clone();
    keeper.save(reporter);
    // The bundle is in S3: a built one's temporary file goes now, not at
    // exit, so no later way out (a second signal included) leaves it behind.
    drop(shipping);

    // A Lambda release's bundle is the function's code: published as a
    // version, it is the appspec that CodeDeploy deploys.
    let revision = match (env.platform.lambda(), shipped.kind) {
        (None, Some(kind)) => deploy::revision(&shipped.uploaded, kind),
        (None, None) => deploy::appspec_object_revision(&shipped.uploaded),
        (Some(function), _) => {
            let client = aws_sdk_lambda::Client::new(&sdk);
            let published = lambda::publish(&client, function, &shipped.uploaded, &shipped.sha256, reporter);
            match guard.run(published).await {
                Ok(appspec) => deploy::appspec_revision(&appspec?),
                // A version published already is harmless: nothing points at it.
                Err(sig) => return Ok(abort::interrupted(keeper, sig, Phase::Upload, reporter)),
            }
        }
    };
    let build = Build::of(BuildEnv::current());
    let request = queue::Request {
        env,
        revision,
        description: description(step, build.as_ref(), &session.session_name, &shipped.sha256),
        auto_rollback: step.auto_rollback.clone(),
        build,
        queue_timeout: step.queue_timeout,
    };
    Ok(launch::launch(&cd, &request, step.following, guard, keeper, reporter).await?)
}

/// The bundle in S3, as the deployment names it.
struct Shipped {
    uploaded: upload::Uploaded,
    sha256: String,
    /// The bundle's type; none for an appspec ferry wrote (ECS).
    kind: Option<crate::bundle::BundleType>,
}

/// Reports a promotion as an upload (or its skip) and records its SHA-256.
fn promoted(p: promote::Promoted, keeper: &mut Keeper, reporter: &dyn Reporter) -> Shipped {
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
    Shipped { uploaded: p.uploaded, sha256: p.sha256, kind: Some(p.kind) }
}

/// Why what was shipped cannot go to `env`.
pub fn platform_mismatch(env: &Environment) -> String {
    if env.platform.ecs().is_some() {
        format!(
            "environment {} deploys an ECS service (compute_platform = \"ECS\"): release an image with `ferry release \
             --image URI --env {}`, not a bundle",
            env.name, env.name
        )
    } else {
        format!(
            "--image releases an ECS service, but environment {} deploys to the {} platform: give it a bundle (a directory \
             or archive), or set compute_platform = \"ECS\" for an ECS service",
            env.name,
            env.platform.name()
        )
    }
}

/// The deployment's description: the build marker leads (`queue` reads it
/// back to keep an older build from overwriting a newer one), then who and
/// what, then the wave, if any.
fn description(step: &Release<'_>, build: Option<&Build>, session_name: &str, sha256: &str) -> String {
    let who = match build {
        Some(b) => b.marker(),
        None => format!("ferry release {}", BuildEnv::current().build_tag.as_deref().unwrap_or("manual")),
    };
    let wave = step.wave.map(|w| format!(", wave {w}")).unwrap_or_default();
    let short = sha256.get(..12).unwrap_or(sha256);
    step.env.deploy.describe(&format!("{who} by {session_name} (sha256 {short}{wave})"))
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
