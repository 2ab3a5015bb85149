//! profile: the AWS profile (`--profile` or `AWS_PROFILE`) a manual release
//! runs from, checked before anything else, and the region ferry falls back
//! to when ferry.toml gives none (`AWS_REGION`, `AWS_DEFAULT_REGION`, then
//! the profile's `region`), read with aws-config's own profile support.

use std::borrow::Cow;

use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_types::os_shim_internal::{Env, Fs};

use crate::config::AwsDefaults;
use crate::exit::ExitCode;

/// Why the named profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile is in neither ~/.aws/config nor ~/.aws/credentials.
    #[error(
        "AWS profile `{name}` (from {from}) does not exist in the shared config or credentials file ({files}); \
         {known}. Name one that exists, create it (`aws configure --profile {name}`), or unset {from}."
    )]
    Missing {
        /// The profile asked for.
        name: String,
        /// `--profile` or `AWS_PROFILE`.
        from: &'static str,
        /// Where aws-config looked.
        files: String,
        /// "the profiles there are: a, b" or "there are none".
        known: String,
    },
    /// A shared config file could not be read or parsed.
    #[error(
        "cannot read the AWS profile `{name}` (from {from}): {detail}. Fix the file (or AWS_CONFIG_FILE / \
         AWS_SHARED_CREDENTIALS_FILE), or unset {from}."
    )]
    Unreadable {
        /// The profile asked for.
        name: String,
        /// `--profile` or `AWS_PROFILE`.
        from: &'static str,
        /// aws-config's words.
        detail: String,
    },
}

impl ProfileError {
    /// Bad input: nothing was sent to AWS.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// The profile in effect (`flag` wins over `AWS_PROFILE`), checked to exist
/// when one is named, and the fallback region.
pub async fn defaults(flag: Option<&str>) -> Result<AwsDefaults, ProfileError> {
    let from_env = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let (profile, from) = match (flag.filter(|p| !p.is_empty()), from_env) {
        (Some(p), _) => (Some(p.to_string()), "--profile"),
        (None, Some(p)) => (Some(p), "AWS_PROFILE"),
        (None, None) => (None, ""),
    };
    if let Some(name) = &profile {
        check_exists(name, from).await?;
    }
    let mut file_region = ProfileFileRegionProvider::builder();
    if let Some(name) = &profile {
        file_region = file_region.profile_name(name);
    }
    let chain = RegionProviderChain::first_try(aws_config::environment::EnvironmentVariableRegionProvider::new())
        .or_else(file_region.build());
    let region = chain.region().await.map(|r| r.to_string());
    Ok(AwsDefaults { profile, region })
}

async fn check_exists(name: &str, from: &'static str) -> Result<(), ProfileError> {
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &Default::default(), Some(Cow::Owned(name.into())))
        .await
        .map_err(|e| ProfileError::Unreadable { name: name.into(), from, detail: crate::aws_error::chain(&e) })?;
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = set.profiles().collect();
    known.sort_unstable();
    let files = [("AWS_CONFIG_FILE", "~/.aws/config"), ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")]
        .iter()
        .map(|(var, default)| std::env::var(var).unwrap_or_else(|_| (*default).to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ProfileError::Missing {
        name: name.into(),
        from,
        files,
        known: if known.is_empty() {
            "there are no profiles there".into()
        } else {
            format!("the profiles there are: {}", known.join(", "))
        },
    })
}

/// What ferry needs to know of the profile in effect, read from the shared
/// config files (no credentials are read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileFacts {
    /// The profile's name.
    pub name: String,
    /// It gets credentials from IAM Identity Center (`sso_session` or the
    /// legacy `sso_start_url`).
    pub sso: bool,
    /// Its `mfa_serial`, if any.
    pub mfa_serial: Option<String>,
    /// It assumes a role itself (`role_arn`), which aws-config does
    /// without MFA.
    pub role_arn: Option<String>,
}

/// [`ProfileFacts`] of the profile in effect (`--profile`, `AWS_PROFILE`),
/// or `None` when none is named or it cannot be read (the checks at start-up
/// have reported that already).
pub async fn facts() -> Option<ProfileFacts> {
    let name = crate::config::aws_defaults().profile?;
    let set =
        aws_config::profile::load(&Fs::real(), &Env::real(), &Default::default(), Some(Cow::Owned(name.clone()))).await.ok()?;
    let profile = set.get_profile(&name)?;
    let get = |k: &str| profile.get(k).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    Some(ProfileFacts {
        sso: get("sso_session").is_some() || get("sso_start_url").is_some(),
        mfa_serial: get("mfa_serial"),
        role_arn: get("role_arn"),
        name,
    })
}
