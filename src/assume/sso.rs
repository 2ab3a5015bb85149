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
    /// The portal answered, but not with credentials: the role is not
    /// assigned, or something other than the portal answered.
    #[error(
        "IAM Identity Center did not hand out credentials for AWS profile `{profile}`: {detail}. Check the profile's \
         sso_account_id and sso_role_name (the permission set must be assigned to you in that account), and \
         AWS_ENDPOINT_URL_SSO / AWS_ENDPOINT_URL and the proxy if you set them."
    )]
    Refused {
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
            SsoError::Refused { profile, .. } => {
                format!("check sso_account_id and sso_role_name of [profile {profile}] against your assignments")
            }
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
    Some(if signed_out(&detail) {
        SsoError::Login { profile, detail }
    } else if detail.contains("dispatch failure") || detail.contains("error trying to connect") {
        SsoError::Unreachable { profile, detail }
    } else {
        SsoError::Refused { profile, detail }
    })
}

/// Whether aws-config's words mean the sign-in is gone: no cached token,
/// an expired one it could not refresh, or one the portal no longer takes.
fn signed_out(detail: &str) -> bool {
    ["UnauthorizedException", "access token", "SSO token", "sso/cache"].iter().any(|n| detail.contains(n))
}

#[cfg(test)]
mod tests {
    use super::signed_out;

    #[test]
    fn only_a_lost_sign_in_sends_people_to_aws_sso_login() {
        // aws-config 1.8's words for each case.
        for lost in [
            "an error occurred while loading credentials: an error occurred while loading an access token: failed to load the cached SSO token",
            "an error occurred while loading credentials: failed to read `/home/a/.aws/sso/cache/40169c.json`: No such file or directory (os error 2)",
            "an error occurred while loading an access token: the SSO token has expired and cannot be refreshed",
            "service error: UnauthorizedException: Session token not found or invalid",
        ] {
            assert!(signed_out(lost), "{lost}");
        }
        for other in [
            "service error: ForbiddenException: No access",
            "service error: unhandled error: Error at offset 0: unexpected token '<'",
            "dispatch failure: io error: error trying to connect: tcp connect error: Connection refused",
        ] {
            assert!(!signed_out(other), "{other}");
        }
    }
}
