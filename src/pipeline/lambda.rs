//! The Lambda step of a release, between the upload and CreateDeployment:
//! the uploaded code published as the function's next version, and the
//! appspec that moves the alias onto it.

use crate::appspec::lambda as spec;
use crate::config::LambdaFunction;
use crate::event::{Event, Reporter};
use crate::lambda::{self, LambdaError};
use crate::upload::Uploaded;

/// Publishes the uploaded code (`sha256` is the bundle's, hex) and returns
/// the deployment's appspec.
pub async fn publish(
    client: &aws_sdk_lambda::Client,
    function: &LambdaFunction,
    uploaded: &Uploaded,
    sha256: &str,
    reporter: &dyn Reporter,
) -> Result<String, LambdaError> {
    let published = lambda::publish(client, function, uploaded, sha256).await?;
    let v = &published.versions;
    reporter.report(&Event::FunctionPublished {
        function: function.name.clone(),
        version: v.target.clone(),
        alias_version: v.current.clone(),
        alias: function.alias.clone(),
        code_sha256: published.code_sha256.clone(),
    });
    if v.current == v.target {
        reporter.report(&Event::Warning {
            message: format!(
                "{} version {} is the code the alias {} already runs (Lambda publishes no new version of unchanged \
                 code); the deployment moves no traffic",
                function.name, v.target, function.alias
            ),
        });
    }
    Ok(spec::write(function, v))
}
