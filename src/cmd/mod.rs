//! One file per subcommand, each a thin script over the pipeline modules.

pub mod bundle;
pub mod check;
pub mod release;
pub mod upload;
pub mod watch;

use aws_config::SdkConfig;

use std::path::Path;

use crate::assume::{self, AssumeOptions, Session};
use crate::bundle::{Bundle, BundleType};
use crate::config::Environment;
use crate::error::Error;
use crate::report::{Event, Reporter};

/// Assumes the environment's role with the session name from the process
/// environment, and reports who ferry now is.
pub(crate) async fn assume_role(env: &Environment, reporter: &dyn Reporter) -> Result<(SdkConfig, Session), Error> {
    let opts = AssumeOptions { session_name: assume::session_name_from_env(), duration: None };
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
