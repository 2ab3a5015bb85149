//! One file per subcommand, each a thin script over the pipeline modules.

pub mod bundle;
pub mod check;
pub mod completions;
pub mod credential_process;
pub mod doctor;
pub mod env;
pub mod exec;
pub mod history;
pub mod policy;
pub mod release;
pub mod rollback;
pub mod status;
pub mod stop;
pub mod upload;
pub mod watch;

use aws_config::SdkConfig;

use std::path::Path;

use crate::assume::{self, AssumeOptions, Session, provenance};
use crate::bundle::{Bundle, BundleType};
use crate::config::Environment;
use crate::error::Error;
use crate::report::{Event, Reporter};

/// Assumes the environment's role with the session name from the process
/// environment, and reports who ferry now is.
pub(crate) async fn assume_role(env: &Environment, reporter: &dyn Reporter) -> Result<(SdkConfig, Session), Error> {
    let opts = assume_options(env, reporter);
    let (sdk, session) = assume::assume(env, &opts).await?;
    reporter.report(&Event::Assumed {
        role_arn: session.role_arn.clone(),
        session_name: session.session_name.clone(),
        assumed_arn: session.assumed_arn.clone(),
    });
    Ok((sdk, session))
}

/// Builds or takes the bundle at `path`, checked, and reports it.
pub(crate) fn prepare_bundle(path: &Path, kind: BundleType, reporter: &dyn Reporter) -> Result<Bundle, Error> {
    let bundle = crate::bundle::prepare_as(path, kind)?;
    reporter.report(&Event::BundleReady {
        path: path.display().to_string(),
        bundle_type: bundle.kind,
        size: bundle.size,
        sha256: bundle.sha256.clone(),
        built: bundle.built,
    });
    Ok(bundle)
}

/// The session ferry asks STS for, from the environment's settings and the
/// build's variables; reports the plan and anything ferry had to adjust.
pub(crate) fn assume_options(env: &Environment, reporter: &dyn Reporter) -> AssumeOptions {
    let lookup = |k: &str| std::env::var(k).ok();
    let opts = AssumeOptions {
        session_name: assume::session_name_from_env(),
        duration: None,
        tags: if env.session_tags { provenance::session_tags(lookup) } else { Vec::new() },
        source_identity: provenance::source_identity(env.source_identity.as_deref(), lookup),
        policy: env.session_policy.then(|| crate::policy::session(env)),
    };
    let (hops, notes) = assume::plan(env, &opts);
    for message in notes {
        reporter.report(&Event::Warning { message });
    }
    reporter.report(&Event::SessionPlanned {
        hops: hops.iter().map(|h| h.role.arn.clone()).collect(),
        duration_seconds: hops.last().map_or(0, |h| h.duration.as_secs()),
        tags: opts.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        source_identity: opts.source_identity.clone(),
        session_policy: opts.policy.is_some(),
    });
    opts
}
