//! assume: credentials for the target account's role, on top of whatever the
//! standard AWS chain finds (env keys, a profile, the instance role).
//!
//! The assumed credentials live only inside the SDK's identity cache, which
//! refreshes them before they expire; ferry never writes them anywhere.

use std::fmt;
use std::time::SystemTime;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sts::config::Region;

use crate::config::Environment;
use crate::error::{ExitCode, describe_sdk_error, find_source, is_unreachable};

/// An IAM role ARN, split into the parts ferry needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn {
    /// The full ARN as given.
    pub arn: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The 12-digit account that owns the role (and the bucket).
    pub account: String,
    /// The role's name, without its path.
    pub name: String,
}

impl RoleArn {
    /// Parses `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`. The error is a
    /// sentence saying what is wrong and what a role ARN looks like.
    pub fn parse(s: &str) -> Result<RoleArn, String> {
        const SHAPE: &str = "a role ARN looks like arn:aws:iam::222222222222:role/CA_ServiceDeployer";
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" {
            return Err(format!("it is not an ARN; {SHAPE}."));
        }
        let (partition, service, region, account, resource) = (parts[1], parts[2], parts[3], parts[4], parts[5]);
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(format!("unknown partition `{partition}`; {SHAPE}."));
        }
        if service != "iam" {
            return Err(format!("it is an ARN for `{service}`, not an IAM role; {SHAPE}."));
        }
        if !region.is_empty() {
            return Err(format!("IAM ARNs have no region, but this one has `{region}`; {SHAPE}."));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("the account `{account}` is not 12 digits; {SHAPE}."));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(format!("`{resource}` is not a role (users and policies cannot be assumed); {SHAPE}."));
        };
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !name_ok {
            return Err(format!(
                "the role name `{name}` is empty, longer than 64 characters, or has characters IAM does not allow; {SHAPE}."
            ));
        }
        Ok(RoleArn {
            arn: s.to_string(),
            partition: partition.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// The role session name ferry uses: Jenkins' `BUILD_TAG` when set (so
/// CloudTrail shows which build deployed), else `ferry-<user>`.
pub fn session_name(build_tag: Option<&str>, user: Option<&str>) -> String {
    let raw = match build_tag.filter(|t| !t.trim().is_empty()) {
        Some(tag) => tag.to_string(),
        None => format!("ferry-{}", user.filter(|u| !u.is_empty()).unwrap_or("unknown")),
    };
    sanitize_session_name(&raw)
}

/// [`session_name`] from the process environment: `BUILD_TAG`, then
/// `BUILD_USER_ID` (Jenkins' build-user plugin) or `USER`.
pub fn session_name_from_env() -> String {
    let build_tag = std::env::var("BUILD_TAG").ok();
    let user = std::env::var("BUILD_USER_ID").or_else(|_| std::env::var("USER")).ok();
    session_name(build_tag.as_deref(), user.as_deref())
}

/// Maps a string onto STS's role-session-name alphabet (`[\w+=,.@-]`, 2-64
/// characters): other characters become `-`, runs of them collapse.
pub fn sanitize_session_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(64));
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let mut out: String = out.trim_matches('-').chars().take(64).collect();
    while out.len() < 2 {
        out.push_str("-x");
        out = out.trim_start_matches('-').to_string();
    }
    out
}

/// Who ferry is deploying as, for the log and the receipt. No secrets.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Session {
    /// The role that was assumed.
    pub role_arn: String,
    /// The role session name (visible in CloudTrail).
    pub session_name: String,
    /// The assumed-role principal STS reports.
    pub assumed_arn: String,
    /// When the current credentials expire; the SDK refreshes them before then.
    #[serde(skip)]
    pub expires: Option<SystemTime>,
}

/// Why the role could not be assumed.
#[derive(Debug, thiserror::Error)]
pub enum AssumeError {
    /// No source credentials were found in the standard chain.
    #[error(
        "no AWS credentials found to assume {role} with: {detail}. On a Jenkins agent attach an instance role \
         (e.g. JenkinsRole) or wrap the step in withAWS/withCredentials; elsewhere set AWS_PROFILE or \
         AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."
    )]
    NoSourceCredentials {
        /// The role we wanted.
        role: String,
        /// What the chain said.
        detail: String,
    },
    /// STS answered but refused.
    #[error(
        "could not assume {role}{source_identity}: {detail}. Check that the role's trust policy names this identity \
         (see `ferry policy trust`), that the identity may call sts:AssumeRole on the role, and that the external ID matches."
    )]
    Refused {
        /// The role we wanted.
        role: String,
        /// " as <arn>" when the source identity could be named.
        source_identity: String,
        /// STS's code and message.
        detail: String,
    },
    /// STS could not be reached.
    #[error(
        "could not reach STS to assume {role}{source_identity}: {detail}. Check the network or proxy from this agent, and \
         AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS if you set them."
    )]
    Unreachable {
        /// The role we wanted.
        role: String,
        /// " with access key <id>" naming the source credentials, when found
        /// (STS, the service that could name the identity, is unreachable).
        source_identity: String,
        /// The connection error.
        detail: String,
    },
}

impl AssumeError {
    /// Exit code for this error (always the AWS row).
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Aws
    }
}

/// Options for assuming the role that do not come from the environment table.
#[derive(Clone, Debug)]
pub struct AssumeOptions {
    /// The role session name (see [`session_name`]).
    pub session_name: String,
    /// How long each set of credentials lasts; STS's default (1 h) when `None`.
    pub duration: Option<std::time::Duration>,
}

/// Loads the standard chain's configuration for `env.region` and returns an
/// `SdkConfig` whose credentials are the assumed role's, refreshed by the SDK.
///
/// The first credentials are fetched here (one AssumeRole, one
/// GetCallerIdentity) so a trust-policy problem is reported as such, before
/// any bundle is uploaded.
pub async fn assume(env: &Environment, opts: &AssumeOptions) -> Result<(SdkConfig, Session), AssumeError> {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(env.region.clone()))
        .load()
        .await;
    let mut builder = AssumeRoleProvider::builder(env.role.arn.clone())
        .session_name(opts.session_name.clone())
        .configure(&base);
    if let Some(id) = &env.external_id {
        builder = builder.external_id(id.clone());
    }
    if let Some(d) = opts.duration {
        builder = builder.session_length(d);
    }
    let provider = builder.build().await;
    let config = base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();

    let sts = aws_sdk_sts::Client::new(&config);
    match sts.get_caller_identity().send().await {
        Ok(out) => Ok((
            config,
            Session {
                role_arn: env.role.arn.clone(),
                session_name: opts.session_name.clone(),
                assumed_arn: out.arn().unwrap_or_default().to_string(),
                expires: None,
            },
        )),
        Err(err) => Err(classify(&base, env, &err).await),
    }
}

async fn classify<R: fmt::Debug + 'static>(
    base: &SdkConfig,
    env: &Environment,
    err: &aws_smithy_runtime_api::client::result::SdkError<aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError, R>,
) -> AssumeError {
    let role = env.role.arn.clone();
    let detail = match find_source::<CredentialsError>(err) {
        Some(CredentialsError::CredentialsNotLoaded(_)) => {
            return AssumeError::NoSourceCredentials { role, detail: crate::error::chain(err) };
        }
        Some(cred) => credentials_detail(cred),
        None => describe_sdk_error(err),
    };
    if is_unreachable(err) || detail.contains("dispatch failure") || detail.contains("error trying to connect") {
        return AssumeError::Unreachable { role, source_identity: source_access_key(base).await, detail };
    }
    // Naming the identity that was refused is the fastest way to a fix; it
    // costs one more call, made only on this error path.
    let source_identity = match aws_sdk_sts::Client::new(base).get_caller_identity().send().await {
        Ok(me) => format!(" as {}", me.arn().unwrap_or("an unknown identity")),
        Err(_) => String::new(),
    };
    AssumeError::Refused { role, source_identity, detail }
}

/// " with access key AKIA…" for the source credentials, read locally from
/// the chain. The access key id is an identifier, not a secret.
async fn source_access_key(base: &SdkConfig) -> String {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = base.credentials_provider() else { return String::new() };
    match provider.provide_credentials().await {
        Ok(creds) => format!(" with access key {}", creds.access_key_id()),
        Err(_) => String::new(),
    }
}

/// The useful part of a credentials error: the STS service error when there
/// is one, the full chain otherwise.
fn credentials_detail(err: &CredentialsError) -> String {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    type AssumeSdkError = aws_smithy_runtime_api::client::result::SdkError<AssumeRoleError, HttpResponse>;
    match find_source::<AssumeSdkError>(err) {
        Some(sdk) => describe_sdk_error(sdk),
        None => crate::error::chain(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_role_arn_with_a_path() {
        let arn = RoleArn::parse("arn:aws:iam::222222222222:role/deploy/CA_ServiceDeployer").unwrap();
        assert_eq!(arn.account, "222222222222");
        assert_eq!(arn.name, "CA_ServiceDeployer");
        assert_eq!(arn.partition, "aws");
    }

    #[test]
    fn refuses_malformed_role_arns_with_a_reason() {
        let cases = [
            ("CA_ServiceDeployer", "not an ARN"),
            ("arn:aws:iam::2222:role/x", "not 12 digits"),
            ("arn:aws:iam::222222222222:user/jenkins", "not a role"),
            ("arn:aws:s3:::bucket/key", "not an IAM role"),
            ("arn:aws:iam:eu-west-1:222222222222:role/x", "no region"),
            ("arn:foo:iam::222222222222:role/x", "partition"),
            ("arn:aws:iam::222222222222:role/has space", "role name"),
        ];
        for (input, expect) in cases {
            let err = RoleArn::parse(input).unwrap_err();
            assert!(err.contains(expect), "{input}: {err}");
            assert!(err.contains("arn:aws:iam::222222222222:role/CA_ServiceDeployer"), "{err}");
        }
    }

    #[test]
    fn session_name_comes_from_build_tag() {
        assert_eq!(session_name(Some("jenkins-web-deploy-42"), Some("bob")), "jenkins-web-deploy-42");
    }

    #[test]
    fn session_name_falls_back_to_the_user() {
        assert_eq!(session_name(None, Some("bob")), "ferry-bob");
        assert_eq!(session_name(Some("  "), None), "ferry-unknown");
    }

    #[test]
    fn session_name_is_sanitized_and_capped_at_64() {
        let tag = format!("jenkins-My Folder/web app-{}", "x".repeat(200));
        let name = session_name(Some(&tag), None);
        assert!(name.len() <= 64, "{}", name.len());
        assert!(name.starts_with("jenkins-My-Folder-web-app-"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)));
    }

    #[test]
    fn session_name_never_shorter_than_two() {
        let name = sanitize_session_name("/");
        assert!(name.len() >= 2, "{name}");
    }
}
