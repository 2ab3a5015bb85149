//! lambda: a Lambda release's code made the function's next version.
//! `UpdateFunctionCode` from exactly the S3 object the upload stage put in
//! the bucket (bucket, key and, when versioned, version) with `Publish`,
//! then `GetFunctionConfiguration` until Lambda says the update is
//! `Successful`, and Lambda's `CodeSha256` held to the bundle's SHA-256:
//! the version CodeDeploy shifts traffic to is the code that was built.

use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::LastUpdateStatus;
use base64::Engine;

use crate::appspec::lambda::Versions;
use crate::aws_error::{describe_sdk_error, is_unreachable};
use crate::config::LambdaFunction;
use crate::exit::ExitCode;
use crate::upload::Uploaded;

/// How often the update's status is read while Lambda works on it.
const POLL: Duration = Duration::from_millis(500);
/// How long Lambda may take to finish an update (its own limit is minutes).
const UPDATE_LIMIT: Duration = Duration::from_secs(600);

/// Why no version was published, or not the one built. The bundle stays
/// in S3; the alias was not touched.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// Lambda answered an error.
    #[error("Lambda refused to {action} {function}: {detail}. {fix}")]
    Refused {
        /// GetAlias, UpdateFunctionCode, …, as a phrase.
        action: &'static str,
        /// The function.
        function: String,
        /// Lambda's code and message.
        detail: String,
        /// What to do about it.
        fix: String,
    },
    /// The update ended `Failed`.
    #[error(
        "Lambda could not update {function} from s3://{bucket}/{key}: {reason}. Check that the bundle is a zip of the \
         function's code for its runtime and handler; the alias was not touched."
    )]
    UpdateFailed {
        /// The function.
        function: String,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// `LastUpdateStatusReason`.
        reason: String,
    },
    /// The update did not end in time.
    #[error(
        "Lambda was still updating {function} after {}s; the version may yet be published. Run the release again \
         once `aws lambda get-function-configuration` shows LastUpdateStatus Successful.",
        UPDATE_LIMIT.as_secs()
    )]
    StillUpdating {
        /// The function.
        function: String,
    },
    /// Lambda's code is not the bundle.
    #[error(
        "{function} version {version} has CodeSha256 {got}, but the uploaded bundle's is {want}: the published code is \
         not what was built (was the object replaced between the upload and UpdateFunctionCode?). Nothing was deployed; \
         release again."
    )]
    Mismatch {
        /// The function.
        function: String,
        /// The version published.
        version: String,
        /// Lambda's CodeSha256 (base64).
        got: String,
        /// The bundle's (base64).
        want: String,
    },
    /// Lambda could not be reached.
    #[error("could not reach Lambda: {detail}. Check the network or proxy, and AWS_ENDPOINT_URL_LAMBDA if you set it.")]
    Unreachable {
        /// The connection error.
        detail: String,
    },
}

impl LambdaError {
    /// Exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Aws
    }
}

/// The version published from a bundle, and the one the alias is on.
#[derive(Clone, Debug)]
pub struct Published {
    /// Alias version now → the published one.
    pub versions: Versions,
    /// Lambda's `CodeSha256` of the published version (base64).
    pub code_sha256: String,
}

/// The SHA-256 of the bundle as Lambda writes `CodeSha256`: base64 of the
/// digest's bytes, not hex.
pub fn code_sha256(sha256_hex: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hex::decode(sha256_hex).unwrap_or_default())
}

/// The version `function`'s alias points at now.
pub async fn alias_version(lambda: &aws_sdk_lambda::Client, function: &LambdaFunction) -> Result<String, LambdaError> {
    let out = lambda.get_alias().function_name(&function.name).name(&function.alias).send().await;
    let out = out.map_err(|e| refused("read alias of", function, &e))?;
    Ok(out.function_version().unwrap_or_default().to_string())
}

/// Publishes `uploaded` as `function`'s next version and checks it is the
/// bundle whose SHA-256 is `sha256_hex`.
pub async fn publish(
    lambda: &aws_sdk_lambda::Client,
    function: &LambdaFunction,
    uploaded: &Uploaded,
    sha256_hex: &str,
) -> Result<Published, LambdaError> {
    // Read first: an alias that does not exist fails the release before a
    // version is published.
    let current = alias_version(lambda, function).await?;
    let out = lambda
        .update_function_code()
        .function_name(&function.name)
        .s3_bucket(&uploaded.bucket)
        .s3_key(&uploaded.key)
        .set_s3_object_version(uploaded.version_id.clone())
        .publish(true)
        .send()
        .await
        .map_err(|e| refused("update the code of", function, &e))?;
    let version = out.version().unwrap_or_default().to_string();
    let got = wait_updated(lambda, function, uploaded, &version).await?;
    let want = code_sha256(sha256_hex);
    if got != want {
        return Err(LambdaError::Mismatch { function: function.name.clone(), version, got, want });
    }
    Ok(Published { versions: Versions { current, target: version }, code_sha256: got })
}

/// Reads the published version until its update is `Successful`; its `CodeSha256`.
async fn wait_updated(
    lambda: &aws_sdk_lambda::Client,
    function: &LambdaFunction,
    uploaded: &Uploaded,
    version: &str,
) -> Result<String, LambdaError> {
    let deadline = tokio::time::Instant::now() + UPDATE_LIMIT;
    loop {
        let out = lambda
            .get_function_configuration()
            .function_name(&function.name)
            .qualifier(version)
            .send()
            .await
            .map_err(|e| refused("read the configuration of", function, &e))?;
        match out.last_update_status() {
            // No status: an API (or an old function) that does not track
            // updates; the code is in place once UpdateFunctionCode answered.
            Some(LastUpdateStatus::Successful) | None => return Ok(out.code_sha256().unwrap_or_default().to_string()),
            Some(LastUpdateStatus::Failed) => {
                return Err(LambdaError::UpdateFailed {
                    function: function.name.clone(),
                    bucket: uploaded.bucket.clone(),
                    key: uploaded.key.clone(),
                    reason: out.last_update_status_reason().unwrap_or("no reason given").to_string(),
                });
            }
            Some(_) if tokio::time::Instant::now() >= deadline => {
                return Err(LambdaError::StillUpdating { function: function.name.clone() });
            }
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

fn refused<E, R>(action: &'static str, function: &LambdaFunction, e: &aws_sdk_lambda::error::SdkError<E, R>) -> LambdaError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if is_unreachable(e) {
        return LambdaError::Unreachable { detail: describe_sdk_error(e) };
    }
    let fix = match e.code().unwrap_or_default() {
        "ResourceNotFoundException" => format!(
            "Create function {} with alias {} (pointing at the version that runs now) in the target account, or fix \
             `function_name`/`function_alias` in ferry.toml",
            function.name, function.alias
        ),
        "AccessDeniedException" | "AccessDenied" => {
            "Give the role lambda:GetAlias, UpdateFunctionCode, PublishVersion and GetFunctionConfiguration on the \
             function (see `ferry policy deploy`)"
                .into()
        }
        "InvalidParameterValueException" => {
            "Lambda takes a zip of the function's code; check the bundle and that the bucket is in the function's region".into()
        }
        _ => "Check the function in the Lambda console".into(),
    };
    LambdaError::Refused { action, function: function.name.clone(), detail: describe_sdk_error(e), fix: format!("{fix}.") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sha256_is_the_base64_of_the_digest_lambda_reports() {
        // SHA-256 of the empty string, hex and as Lambda would report it.
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(code_sha256(hex), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }
}
