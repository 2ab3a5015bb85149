//! One AssumeRole (or AssumeRoleWithWebIdentity) hop as an SDK credentials
//! provider.
//!
//! `aws_config::sts::AssumeRoleProvider` cannot set `SourceIdentity`, so
//! ferry wraps the STS client's own `assume_role()` call instead; a web
//! identity hop wraps `assume_role_with_web_identity()` the same way, so the
//! session gets ferry's name and duration, and the token file is read anew
//! on every refresh (Jenkins' OIDC plugin and Kubernetes rotate it). Nothing
//! is cached here: the `SdkConfig`'s identity cache in front of this
//! provider decides when to call it again (before expiry), as it would for
//! the SDK's provider.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, future};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
use aws_sdk_sts::types::Tag;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use super::RoleArn;

/// What one `sts:AssumeRole` call asks for.
#[derive(Clone)]
pub struct HopRequest {
    /// The role to assume.
    pub role: RoleArn,
    /// 1-based position in the chain, for error messages.
    pub position: usize,
    /// Length of the chain.
    pub of: usize,
    /// Role session name.
    pub session_name: String,
    /// `sts:ExternalId`.
    pub external_id: Option<String>,
    /// `DurationSeconds`.
    pub duration: Duration,
    /// Session tags (key, value).
    pub tags: Vec<(String, String)>,
    /// `SourceIdentity`.
    pub source_identity: Option<String>,
    /// Inline session policy (JSON).
    pub policy: Option<String>,
    /// For a web identity hop: the file holding the OIDC token, read at
    /// every call. `None` for AssumeRole.
    pub web_identity_token_file: Option<PathBuf>,
    /// `SerialNumber` and `TokenCode`, on the first hop of a human's
    /// release (see [`super::mfa`]).
    pub mfa: Option<MfaToken>,
}

/// An MFA device and the code it shows now.
#[derive(Clone)]
pub struct MfaToken {
    /// The device's ARN or serial number.
    pub serial: String,
    /// The six-digit code.
    pub code: String,
}

// The external id is not a credential, but ferry never prints it either.
impl fmt::Debug for HopRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HopRequest")
            .field("role", &self.role.arn)
            .field("position", &self.position)
            .field("session_name", &self.session_name)
            .field("external_id", &self.external_id.as_ref().map(|_| "(hidden)"))
            .field("duration", &self.duration)
            .field("tags", &self.tags)
            .field("source_identity", &self.source_identity)
            .field("policy", &self.policy.is_some())
            .field("web_identity_token_file", &self.web_identity_token_file)
            .field("mfa_serial", &self.mfa.as_ref().map(|m| m.serial.as_str()))
            .finish()
    }
}

/// Why a hop failed: STS's error with the hop it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{} on {role} (hop {position} of {of})", source.action())]
pub struct HopError {
    /// The role of the failed hop.
    pub role: String,
    /// Its 1-based position.
    pub position: usize,
    /// Length of the chain.
    pub of: usize,
    /// STS's answer, or the connection error.
    #[source]
    pub source: HopFailure,
}

/// What went wrong on one hop.
#[derive(Debug, thiserror::Error)]
pub enum HopFailure {
    /// `sts:AssumeRole` failed.
    #[error(transparent)]
    AssumeRole(SdkError<AssumeRoleError, HttpResponse>),
    /// `sts:AssumeRoleWithWebIdentity` failed.
    #[error(transparent)]
    WebIdentity(SdkError<AssumeRoleWithWebIdentityError, HttpResponse>),
    /// The web identity token file could not be read.
    #[error("cannot read the web identity token file {}: {source}", path.display())]
    TokenFile {
        /// AWS_WEB_IDENTITY_TOKEN_FILE or `web_identity_token_file`.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl HopFailure {
    /// The STS action of the hop.
    pub fn action(&self) -> &'static str {
        match self {
            HopFailure::AssumeRole(_) => "AssumeRole",
            HopFailure::WebIdentity(_) | HopFailure::TokenFile { .. } => "AssumeRoleWithWebIdentity",
        }
    }

    /// STS could not be reached at all.
    pub fn unreachable(&self) -> bool {
        match self {
            HopFailure::AssumeRole(e) => crate::aws_error::is_unreachable(e),
            HopFailure::WebIdentity(e) => crate::aws_error::is_unreachable(e),
            HopFailure::TokenFile { .. } => false,
        }
    }
}

/// A credentials provider that calls `sts:AssumeRole` with [`HopRequest`],
/// signing with whatever credentials `sts` was built with.
#[derive(Debug)]
pub struct HopProvider {
    sts: aws_sdk_sts::Client,
    request: HopRequest,
}

impl HopProvider {
    /// A provider for `request` that calls STS through `sts`.
    pub fn new(sts: aws_sdk_sts::Client, request: HopRequest) -> HopProvider {
        HopProvider { sts, request }
    }

    fn failed(&self, source: HopFailure) -> CredentialsError {
        let r = &self.request;
        CredentialsError::provider_error(HopError { role: r.role.arn.clone(), position: r.position, of: r.of, source })
    }

    async fn assume(&self) -> provider::Result {
        let r = &self.request;
        if let Some(path) = &r.web_identity_token_file {
            return self.assume_with_web_identity(path).await;
        }
        let tags = r
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(CredentialsError::invalid_configuration)?;
        let sent = self
            .sts
            .assume_role()
            .role_arn(&r.role.arn)
            .role_session_name(&r.session_name)
            .set_external_id(r.external_id.clone())
            .duration_seconds(i32::try_from(r.duration.as_secs()).unwrap_or(i32::MAX))
            .set_tags((!tags.is_empty()).then_some(tags))
            .set_source_identity(r.source_identity.clone())
            .set_policy(r.policy.clone())
            .set_serial_number(r.mfa.as_ref().map(|m| m.serial.clone()))
            .set_token_code(r.mfa.as_ref().map(|m| m.code.clone()))
            .send()
            .await;
        let out = sent.map_err(|e| self.failed(HopFailure::AssumeRole(e)))?;
        credentials(out.credentials, "ferry-assume-role")
    }

    /// The web identity hop: the token is whatever the file holds now.
    async fn assume_with_web_identity(&self, path: &std::path::Path) -> provider::Result {
        let r = &self.request;
        // Off the runtime's threads: a file system that hangs must not stop
        // the abort guard or the deadline.
        let owned = path.to_path_buf();
        let token = tokio::task::spawn_blocking(move || super::token::read(&owned))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| self.failed(HopFailure::TokenFile { path: path.to_path_buf(), source }))?;
        let sent = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&r.role.arn)
            .role_session_name(&r.session_name)
            .web_identity_token(token)
            .duration_seconds(i32::try_from(r.duration.as_secs()).unwrap_or(i32::MAX))
            .set_policy(r.policy.clone())
            .send()
            .await;
        let out = sent.map_err(|e| self.failed(HopFailure::WebIdentity(e)))?;
        credentials(out.credentials, "ferry-web-identity")
    }
}

fn credentials(c: Option<aws_sdk_sts::types::Credentials>, provider: &'static str) -> provider::Result {
    let c = c.ok_or_else(|| CredentialsError::unhandled("STS answered without credentials"))?;
    let expiry = SystemTime::try_from(c.expiration)
        .map_err(|_| CredentialsError::unhandled("STS returned an expiration time this system cannot represent"))?;
    Ok(Credentials::builder()
        .access_key_id(c.access_key_id)
        .secret_access_key(c.secret_access_key)
        .session_token(c.session_token)
        .expiry(expiry)
        .provider_name(provider)
        .build())
}

impl ProvideCredentials for HopProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.assume())
    }
}
