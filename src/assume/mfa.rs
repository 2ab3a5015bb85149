//! mfa: a human's AssumeRole with an MFA code, and the session it yields
//! kept for its lifetime, so a release and its rollback ask for one code
//! (as the aws CLI and aws-vault do).
//!
//! The device is `FERRY_MFA_SERIAL`, else the profile's `mfa_serial`; the
//! code is `--mfa-code`, else asked for on a terminal, never without one
//! (Jenkins gets a clear error instead of a hung build). The first hop of
//! ferry's chain carries `SerialNumber` and `TokenCode`; its credentials
//! are written, with their expiry and nothing else, to a `0600` file in a
//! private directory under the user's cache dir, keyed by everything the
//! call asked for and the source access key id. The long-term keys that
//! signed the call are never written. A session with less than
//! [`FRESH_FOR`] left is not used: a deployment started on it could not
//! finish.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;

use super::hop::{HopProvider, HopRequest, MfaToken};
use crate::bundle::cachedir;

/// The environment variable naming the MFA device.
pub const SERIAL_VAR: &str = "FERRY_MFA_SERIAL";

/// How long a cached session must still last to be used.
pub const FRESH_FOR: Duration = Duration::from_secs(15 * 60);

/// The largest cache file ferry reads.
const CACHE_CAP: u64 = 16 * 1024;

static CODE: OnceLock<Option<String>> = OnceLock::new();

/// Sets `--mfa-code` once, at start-up.
pub fn set_code(code: Option<String>) {
    let _ = CODE.set(code.filter(|c| !c.trim().is_empty()));
}

fn flag_code() -> Option<String> {
    CODE.get().cloned().flatten()
}

/// Why MFA could not be used. Nothing was sent to AWS for any of these.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// A code is needed and there is no terminal to ask on.
    #[error(
        "assuming {role} needs an MFA code for {serial} (from {from}), and there is no terminal to ask for one on. \
         Pass it with `--mfa-code 123456`, or unset {from_fix}; nothing was sent to AWS."
    )]
    CodeNeeded {
        /// The role of the first hop.
        role: String,
        /// The MFA device.
        serial: String,
        /// Where the device came from.
        from: String,
        /// How to stop asking.
        from_fix: String,
    },
    /// The code is not six digits.
    #[error("the MFA code from {from} is not six digits; type the code your MFA device shows now. Nothing was sent to AWS.")]
    BadCode {
        /// `--mfa-code` or "the prompt".
        from: &'static str,
    },
    /// MFA asked for on an IAM Identity Center profile.
    #[error(
        "{from} names an MFA device, but AWS profile `{profile}` gets its credentials from IAM Identity Center (SSO): \
         there MFA happens when you sign in (`aws sso login`), and the role credentials the portal hands out are \
         already MFA-checked; STS has no MFA device to match against them. Unset {from_fix}."
    )]
    WithSso {
        /// The SSO profile.
        profile: String,
        /// Where the device came from.
        from: String,
        /// How to stop asking.
        from_fix: String,
    },
    /// The profile assumes a role itself, which aws-config does without MFA.
    #[error(
        "AWS profile `{profile}` has mfa_serial and assumes {role} itself, but the AWS SDK ferry uses cannot send an \
         MFA code for a profile's own role_arn. Point --profile at its source_profile (the one with the keys) and put \
         the role in ferry.toml's role_chain (or role_arn): ferry then assumes it with the MFA code."
    )]
    ProfileRole {
        /// The profile.
        profile: String,
        /// Its role_arn.
        role: String,
    },
    /// The first hop is a web identity, which takes no MFA code.
    #[error(
        "{from} names an MFA device, but ferry starts from a web identity token here, which takes no MFA code. \
         Unset {from_fix}."
    )]
    WebIdentity {
        /// Where the device came from.
        from: String,
        /// How to stop asking.
        from_fix: String,
    },
    /// STS refused the code (wrong, reused, or the device is not this user's).
    #[error(
        "STS refused the MFA code for {serial} while assuming {role}: {detail}. Run again with the code your device          shows now (a code is good once), and check that {serial} is this user's MFA device."
    )]
    CodeRefused {
        /// The role of the first hop.
        role: String,
        /// The MFA device.
        serial: String,
        /// STS's words.
        detail: String,
    },
    /// The cache directory cannot be trusted.
    #[error("{why}. Nothing was sent to AWS.")]
    CacheDir {
        /// [`cachedir::distrust`]'s words.
        why: String,
    },
}

impl MfaError {
    /// Bad input, nothing sent to AWS; except a code STS refused.
    pub fn exit_code(&self) -> crate::exit::ExitCode {
        match self {
            MfaError::CodeRefused { .. } => crate::exit::ExitCode::Aws,
            _ => crate::exit::ExitCode::Usage,
        }
    }
}

/// The MFA device in effect and where it was named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its ARN (or a hardware device's serial number).
    pub serial: String,
    /// `FERRY_MFA_SERIAL` or "profile `NAME`".
    pub from: String,
    /// How to stop using it, for error messages.
    pub from_fix: String,
}

/// The MFA device for this run, if any, after checking it can be used:
/// not on an SSO profile, not on a profile that assumes a role itself, not
/// before a web identity hop.
pub async fn device(starts_with_web_identity: bool) -> Result<Option<Device>, MfaError> {
    let facts = super::profile::facts().await;
    let from_env = std::env::var(SERIAL_VAR).ok().filter(|s| !s.trim().is_empty());
    let device = match (from_env, facts.as_ref().and_then(|f| f.mfa_serial.clone())) {
        (Some(serial), _) => Device { serial: serial.trim().into(), from: SERIAL_VAR.into(), from_fix: SERIAL_VAR.into() },
        (None, Some(serial)) => {
            let name = facts.as_ref().map(|f| f.name.as_str()).unwrap_or_default();
            Device { serial, from: format!("profile `{name}`'s mfa_serial"), from_fix: format!("mfa_serial in [profile {name}]") }
        }
        (None, None) => return Ok(None),
    };
    if let Some(f) = facts.as_ref().filter(|f| f.sso) {
        return Err(MfaError::WithSso { profile: f.name.clone(), from: device.from, from_fix: device.from_fix });
    }
    if let Some(f) = &facts
        && let (Some(role), Some(_)) = (&f.role_arn, &f.mfa_serial)
    {
        return Err(MfaError::ProfileRole { profile: f.name.clone(), role: role.clone() });
    }
    if starts_with_web_identity {
        return Err(MfaError::WebIdentity { from: device.from, from_fix: device.from_fix });
    }
    Ok(Some(device))
}

/// What went wrong getting the MFA session.
#[derive(Debug)]
pub enum Failure {
    /// A local problem ([`MfaError`]).
    Mfa(MfaError),
    /// The source credentials or STS failed: for the caller's diagnosis.
    Credentials(CredentialsError),
}

/// The first hop's credentials: from the cache while they last, else from
/// STS with `SerialNumber` and a code (asked for if need be), then cached.
pub async fn session(base: &SdkConfig, mut hop: HopRequest, device: &Device) -> Result<Credentials, Failure> {
    let source = match base.credentials_provider() {
        Some(p) => p.provide_credentials().await.map_err(Failure::Credentials)?,
        None => return Err(Failure::Credentials(CredentialsError::not_loaded("no credentials provider"))),
    };
    let dir = cache_dir();
    if let Some(dir) = &dir
        && let Some(why) = cachedir::distrust(dir)
    {
        // The bundle cache's words, made about sessions (the test holds them to it).
        let why = why
            .replace("a bundle that ferry would deploy", "an AWS session that ferry would deploy with")
            .replace("The cache is not used", "ferry will not use it");
        return Err(Failure::Mfa(MfaError::CacheDir { why }));
    }
    let file = dir.as_ref().map(|d| d.join(format!("{}.json", key(&hop, &device.serial, source.access_key_id()))));
    if let Some(cached) = file.as_deref().and_then(load).filter(|c| usable(c.expiry(), SystemTime::now())) {
        return Ok(cached);
    }
    let code = code(&hop, device).await.map_err(Failure::Mfa)?;
    hop.mfa = Some(MfaToken { serial: device.serial.clone(), code });
    let role = hop.role.arn.clone();
    let sts = aws_sdk_sts::Client::new(base);
    let creds = HopProvider::new(sts, hop).provide_credentials().await.map_err(|e| refused_code(e, &role, device))?;
    if let (Some(dir), Some(file)) = (&dir, &file) {
        // Best effort: the session is good either way; without the file the
        // next command asks for a code again.
        let _ = store(dir, file, &creds);
    }
    Ok(creds)
}

/// STS's "MultiFactorAuthentication failed …" as [`MfaError::CodeRefused`]
/// (not a trust-policy problem); any other failure for the caller.
fn refused_code(err: CredentialsError, role: &str, device: &Device) -> Failure {
    let detail = crate::aws_error::chain(&err);
    match detail.find("MultiFactorAuthentication") {
        Some(at) => Failure::Mfa(MfaError::CodeRefused {
            role: role.into(),
            serial: device.serial.clone(),
            detail: detail[at..].to_string(),
        }),
        None => Failure::Credentials(err),
    }
}

/// Whether a session expiring at `expiry` may start a command at `now`.
pub fn usable(expiry: Option<SystemTime>, now: SystemTime) -> bool {
    expiry.is_some_and(|e| e > now + FRESH_FOR)
}

/// `$XDG_CACHE_HOME/ferry/sessions`, else `$HOME/.cache/ferry/sessions`.
fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let bundles = cachedir::base_dir(var("XDG_CACHE_HOME"), var("HOME"))?;
    Some(bundles.parent()?.join("sessions"))
}

/// The file name: a hash of everything the call asks for, the device, and
/// the access key id that signs it, so no other role, session policy, tag
/// set or user ever gets this session.
fn key(hop: &HopRequest, serial: &str, access_key_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let what = serde_json::json!({
        "role": hop.role.arn,
        "session_name": hop.session_name,
        "external_id": hop.external_id,
        "duration": hop.duration.as_secs(),
        "tags": hop.tags,
        "source_identity": hop.source_identity,
        "policy": hop.policy,
        "serial": serial,
        "source": access_key_id,
    });
    hex::encode(Sha256::digest(what.to_string().as_bytes()))
}

/// The code: `--mfa-code`, else asked for on the terminal.
async fn code(hop: &HopRequest, device: &Device) -> Result<String, MfaError> {
    let (code, from) = match flag_code() {
        Some(code) => (code, "--mfa-code"),
        None => {
            let (role, d) = (hop.role.arn.clone(), device.clone());
            let asked = tokio::task::spawn_blocking(move || prompt(&role, &d)).await;
            (asked.unwrap_or(Ok(None))?.unwrap_or_default(), "the prompt")
        }
    };
    let code = code.trim().to_string();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MfaError::BadCode { from });
    }
    Ok(code)
}

/// Asks on the terminal; a clear error where there is none.
fn prompt(role: &str, device: &Device) -> Result<Option<String>, MfaError> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(MfaError::CodeNeeded {
            role: role.into(),
            serial: device.serial.clone(),
            from: device.from.clone(),
            from_fix: device.from_fix.clone(),
        });
    }
    // The prompt is input, not output: it goes to the terminal's stderr,
    // outside the reporter, which has no way to read an answer.
    let _asking = crate::deadline::AskingUser::begin();
    // One write, so nothing the terminal echoes lands inside it.
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(format!("MFA code for {} (to assume {role}): ", device.serial).as_bytes());
    let _ = err.flush();
    let mut line = String::new();
    Ok(std::io::stdin().lock().read_line(&mut line).ok().map(|_| line))
}

/// What the cache file holds: the temporary session and its expiry.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// Seconds since the epoch.
    expiration: u64,
}

fn load(path: &Path) -> Option<Credentials> {
    let bytes = cachedir::read_own(path, CACHE_CAP)?;
    let c: Cached = serde_json::from_slice(&bytes).ok()?;
    let mut b = Credentials::builder()
        .access_key_id(c.access_key_id)
        .secret_access_key(c.secret_access_key)
        .expiry(UNIX_EPOCH + Duration::from_secs(c.expiration))
        .provider_name("ferry-mfa-session-cache");
    b.set_session_token(c.session_token);
    Some(b.build())
}

fn store(dir: &Path, file: &Path, creds: &Credentials) -> std::io::Result<()> {
    let expiration = creds.expiry().and_then(|e| e.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs());
    let Some(expiration) = expiration else { return Ok(()) };
    let cached = Cached {
        access_key_id: creds.access_key_id().into(),
        secret_access_key: creds.secret_access_key().into(),
        session_token: creds.session_token().map(str::to_string),
        expiration,
    };
    cachedir::create(dir)?;
    // write_durably's temporary file is created 0600 and renamed into place.
    cachedir::write_durably(file, &serde_json::to_vec(&cached).map_err(std::io::Error::other)?)?;
    sweep(dir, SystemTime::now());
    Ok(())
}

/// Deletes the sessions in `dir` that have expired: credentials no one can
/// use are not left lying around. Only ferry's own file names are touched.
fn sweep(dir: &Path, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.flatten().map(|e| e.path()) {
        let own = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| cachedir::is_own_name(n, &["json"]));
        if own && load(&path).is_some_and(|c| c.expiry().is_none_or(|e| e <= now)) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(role: &str, policy: Option<&str>) -> HopRequest {
        HopRequest {
            role: crate::config::RoleArn::parse(role).unwrap(),
            position: 1,
            of: 1,
            session_name: "ferry-alice".into(),
            external_id: None,
            duration: Duration::from_secs(3600),
            tags: Vec::new(),
            source_identity: None,
            policy: policy.map(str::to_string),
            web_identity_token_file: None,
            mfa: None,
        }
    }

    #[test]
    fn a_cached_session_is_never_shared_across_roles_policies_devices_or_keys() {
        let prod = "arn:aws:iam::222222222222:role/app";
        let base = key(&hop(prod, None), "mfa/alice", "AKIA1");
        assert_eq!(base, key(&hop(prod, None), "mfa/alice", "AKIA1"), "the same call finds its session");
        for other in [
            key(&hop("arn:aws:iam::333333333333:role/app", None), "mfa/alice", "AKIA1"),
            key(&hop(prod, Some("{}")), "mfa/alice", "AKIA1"),
            key(&hop(prod, None), "mfa/bob", "AKIA1"),
            key(&hop(prod, None), "mfa/alice", "AKIA2"),
        ] {
            assert_ne!(base, other);
        }
        assert!(cachedir::is_own_name(&format!("{base}.json"), &["json"]));
    }

    #[test]
    fn a_session_near_its_end_is_not_used() {
        let now = SystemTime::now();
        assert!(usable(Some(now + Duration::from_secs(3600)), now));
        assert!(!usable(Some(now + FRESH_FOR - Duration::from_secs(1)), now));
        assert!(!usable(Some(now - Duration::from_secs(1)), now));
        assert!(!usable(None, now), "a session without an expiry is not trusted");
    }
}
