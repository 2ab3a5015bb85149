//! sso: what to say when an IAM Identity Center profile gives no
//! credentials. aws-config's own SSO provider does the work (reads the
//! token `aws sso login` cached under ~/.aws/sso/cache, calls the portal's
//! GetRoleCredentials, caches the answer); ferry only turns its failure into
//! the one fix that applies.

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;

/// Why an SSO profile's credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// No token, an expired one, or one the portal no longer accepts.
    #[error(
        "AWS profile `{profile}` gets its credentials from IAM Identity Center (SSO), and its sign-in is missing, \
         expired or no longer accepted ({detail}). Run `aws sso login --profile {profile}`, then run ferry again; \
         nothing was sent to STS."
    )]
    Login {
        /// The SSO profile.
        profile: String,
        /// aws-config's words.
        detail: String,
    },
    /// The portal could not be reached.
    #[error(
        "could not reach the IAM Identity Center portal for AWS profile `{profile}`: {detail}. Check the network or \
         proxy, and AWS_ENDPOINT_URL_SSO if you set it."
    )]
    Unreachable {
        /// The SSO profile.
        profile: String,
        /// The connection error.
        detail: String,
    },
}

impl SsoError {
    /// The fix alone, for `doctor`'s ✗ line.
    pub fn fix(&self) -> String {
        match self {
            SsoError::Login { profile, .. } => format!("sign in again: `aws sso login --profile {profile}`"),
            SsoError::Unreachable { .. } => {
                "let this machine reach the IAM Identity Center portal (proxy, firewall), or correct AWS_ENDPOINT_URL_SSO".into()
            }
        }
    }
}

/// When the profile in effect is an SSO profile and the standard chain
/// gives no credentials: why, as an [`SsoError`]. `None` otherwise (the
/// caller's own diagnosis applies).
pub async fn failure(base: &SdkConfig) -> Option<SsoError> {
    let facts = super::profile::facts().await.filter(|f| f.sso)?;
    let err = base.credentials_provider()?.provide_credentials().await.err()?;
    let detail = crate::aws_error::chain(&err);
    let profile = facts.name;
    Some(if detail.contains("dispatch failure") || detail.contains("error trying to connect") {
        SsoError::Unreachable { profile, detail }
    } else {
        SsoError::Login { profile, detail }
    })
}
