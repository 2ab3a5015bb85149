//! One AssumeRole hop as an SDK credentials provider.
//!
//! `aws_config::sts::AssumeRoleProvider` cannot set `SourceIdentity`, so
//! ferry wraps the STS client's own `assume_role()` call instead. Nothing is
//! cached here: the `SdkConfig`'s identity cache in front of this provider
//! decides when to call it again (before expiry), as it would for the SDK's
//! provider.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, future};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
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
            .finish()
    }
}

/// Why a hop failed: STS's error with the hop it happened on.
#[derive(Debug, thiserror::Error)]
#[error("AssumeRole on {role} (hop {position} of {of})")]
pub struct HopError {
    /// The role of the failed hop.
    pub role: String,
    /// Its 1-based position.
    pub position: usize,
    /// Length of the chain.
    pub of: usize,
    /// STS's answer, or the connection error.
    #[source]
    pub source: SdkError<AssumeRoleError, HttpResponse>,
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

    async fn assume(&self) -> provider::Result {
        let r = &self.request;
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
            .send()
            .await;
        let out = sent.map_err(|source| {
            CredentialsError::provider_error(HopError { role: r.role.arn.clone(), position: r.position, of: r.of, source })
        })?;
        let c = out.credentials.ok_or_else(|| CredentialsError::unhandled("STS answered AssumeRole without credentials"))?;
        let expiry = SystemTime::try_from(c.expiration)
            .map_err(|_| CredentialsError::unhandled("STS returned an expiration time this system cannot represent"))?;
        Ok(Credentials::builder()
            .access_key_id(c.access_key_id)
            .secret_access_key(c.secret_access_key)
            .session_token(c.session_token)
            .expiry(expiry)
            .provider_name("ferry-assume-role")
            .build())
    }
}

impl ProvideCredentials for HopProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.assume())
    }
}
