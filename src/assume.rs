//! assume: credentials for the target account's role, on top of whatever the
//! standard AWS chain finds (env keys, a profile, the instance role).
//!
//! The assumed credentials live only inside the SDK's identity cache, which
//! refreshes them before they expire; ferry never writes them anywhere,
//! with one exception a person asks for: the session an MFA code bought
//! is kept, 0600, for its lifetime ([`mfa`]), so the next command needs no
//! new code. Long-term keys are never written.

mod hop;
pub mod mfa;
pub mod profile;
pub mod provenance;
pub mod sources;
pub mod sso;
pub mod token;

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::config::Region;

pub use hop::{HopError, HopFailure, HopProvider, HopRequest};

use crate::aws_error::{describe_sdk_error, find_source, is_unreachable};
use crate::config::{Environment, RoleArn};
use crate::exit::ExitCode;
use crate::jenkins::BuildEnv;

/// The role session name ferry uses: Jenkins' `BUILD_TAG` when set (so
/// CloudTrail shows which build deployed), else `ferry-<user>`.
pub fn session_name(build_tag: Option<&str>, user: Option<&str>) -> String {
    let raw = match build_tag.filter(|t| !t.trim().is_empty()) {
        Some(tag) => tag.to_string(),
        None => format!("ferry-{}", user.filter(|u| !u.is_empty()).unwrap_or("unknown")),
    };
    sanitize_session_name(&raw)
}

/// [`session_name`] for a build: the configured `session_name`
/// (`--session-name`, ferry.toml) when set, else `BUILD_TAG`, then
/// `BUILD_USER_ID` (Jenkins' build-user plugin) or `USER`.
pub fn session_name_for(build: &BuildEnv, configured: Option<&str>) -> String {
    match configured.filter(|c| !c.trim().is_empty()) {
        Some(name) => sanitize_session_name(name),
        None => session_name(build.build_tag.as_deref(), build.user.as_deref()),
    }
}

/// STS's longest role session name (and source identity).
const SESSION_NAME_MAX: usize = 64;
/// Characters kept from the start of a name too long for STS.
const KEEP_HEAD: usize = 20;
/// Hex digits of the hash that stands for the cut middle.
const CUT_HASH: usize = 8;

/// Maps a string onto STS's role-session-name alphabet (`[\w+=,.@-]`, 2-64
/// characters): other characters become `-`, runs of them collapse. A name
/// longer than 64 keeps its start and its end, where Jenkins' `BUILD_TAG`
/// (`jenkins-FOLDER-JOB-BRANCH-NUMBER`) holds the branch and the build
/// number, and the cut middle becomes a short hash of itself: two builds of
/// one long job get different names, one build always the same.
pub fn sanitize_session_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(SESSION_NAME_MAX));
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let mut out = shorten(out.trim_matches('-'));
    while out.len() < 2 {
        out.push_str("-x");
        out = out.trim_start_matches('-').to_string();
    }
    out
}

/// `head-HASH-tail` in 64 characters, for an ASCII name longer than that.
fn shorten(name: &str) -> String {
    use sha2::{Digest, Sha256};
    if name.len() <= SESSION_NAME_MAX {
        return name.to_string();
    }
    let tail_len = SESSION_NAME_MAX - KEEP_HEAD - CUT_HASH - 2;
    let (head, rest) = name.split_at(KEEP_HEAD);
    let (middle, tail) = rest.split_at(rest.len() - tail_len);
    let hash = hex::encode(Sha256::digest(middle.as_bytes()));
    // A `-` at either cut would double the separator.
    format!("{}-{}-{}", head.trim_end_matches('-'), &hash[..CUT_HASH], tail.trim_start_matches('-'))
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
}

/// Why the role could not be assumed.
#[derive(Debug, thiserror::Error)]
pub enum AssumeError {
    /// No source credentials were found in the standard chain.
    #[error(
        "no AWS credentials on this agent to assume {role} with: nothing reached STS, because there was nothing to \
         sign the request with. {}",
        sources::explain(&sources::survey(|k| std::env::var(k).ok(), std::env::var_os("HOME").map(Into::into)))
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
    /// Something other than AWS answered the STS call (a proxy, a wrong
    /// endpoint): see [`crate::aws_error::NotAws`].
    #[error("could not assume {role}: {detail}.")]
    NotAws {
        /// The role we wanted.
        role: String,
        /// The status, the body's kind and the proxy/endpoint settings.
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
    /// The web identity token file is missing, not a regular file, too
    /// big, not UTF-8 or empty: a problem with the file, not with the trust
    /// policy, and nothing was sent to STS.
    #[error(
        "cannot use the web identity token file {} to assume {role}: {detail}. Nothing was sent to STS. Bind the OpenID \
         Connect Provider plugin's \"id token as file\" credential to AWS_WEB_IDENTITY_TOKEN_FILE (withCredentials) for \
         this step, or fix `web_identity_token_file` in ferry.toml.",
        path.display()
    )]
    TokenFile {
        /// The role we wanted.
        role: String,
        /// The token file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// An IAM Identity Center profile gave no credentials.
    #[error(transparent)]
    Sso(#[from] sso::SsoError),
    /// MFA is asked for and cannot be used as set up.
    #[error(transparent)]
    Mfa(#[from] mfa::MfaError),
}

impl AssumeError {
    /// Exit code for this error: the AWS row, except for a token file or an
    /// MFA setting that cannot be used (bad input; nothing reached STS).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AssumeError::TokenFile { .. } => ExitCode::Usage,
            AssumeError::Mfa(e) => e.exit_code(),
            _ => ExitCode::Aws,
        }
    }
}

/// Options for assuming the role that do not come from the environment table.
#[derive(Clone, Debug, Default)]
pub struct AssumeOptions {
    /// The role session name (see [`session_name`]).
    pub session_name: String,
    /// Overrides the environment's `duration` when set.
    pub duration: Option<Duration>,
    /// Session tags (see [`provenance::session_tags`]); sent on every hop.
    pub tags: Vec<(String, String)>,
    /// `SourceIdentity`, sent on the first hop; STS carries it down the chain.
    pub source_identity: Option<String>,
    /// Inline session policy for the last hop (see [`crate::policy::session`]).
    pub policy: Option<String>,
}

/// STS's limit on sessions obtained with role-chained credentials.
pub const CHAINED_SESSION_LIMIT: Duration = Duration::from_secs(3600);

/// The STS calls ferry will make, in order, and sentences about what it
/// had to adjust to make them valid (for the log).
///
/// With a web identity (`web_identity_*` or the standard
/// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), the first call is
/// AssumeRoleWithWebIdentity; when its role is the deployer itself, it is
/// the only call: no long-lived key and no second role anywhere.
pub fn plan(env: &Environment, opts: &AssumeOptions) -> (Vec<HopRequest>, Vec<String>) {
    let mut notes = Vec::new();
    let mut duration = opts.duration.unwrap_or(env.duration);
    if duration < Duration::from_secs(*crate::config::SESSION_SECONDS.start()) {
        notes.push(format!(
            "sessions last only {} s (FERRY_UNSAFE_SESSION_SECONDS): real STS refuses less than 900 s, so this only works \
             against an emulator; unset it for real deployments.",
            duration.as_secs()
        ));
    }
    // The web identity hop, unless its role is the deployer: then it is the
    // deployer's hop itself.
    let direct = env.web_identity.as_ref().is_some_and(|w| w.role == env.role && env.role_chain.is_empty());
    let first: Option<&RoleArn> = env.web_identity.as_ref().filter(|_| !direct).map(|w| &w.role);
    let assumed: Vec<&RoleArn> = env.role_chain.iter().chain(std::iter::once(&env.role)).collect();
    let chained = assumed.len() > 1 || first.is_some();
    if chained && duration > CHAINED_SESSION_LIMIT {
        notes.push(format!(
            "duration is {} s, but STS limits role-chained sessions to 1 hour, so each hop of the {}-role chain asks \
             for 3600 s; ferry refreshes the chain before it expires, so long deployments still finish.",
            duration.as_secs(),
            assumed.len() + usize::from(first.is_some())
        ));
        duration = CHAINED_SESSION_LIMIT;
    }
    if direct {
        for (set, what) in [
            (env.external_id.is_some(), "external_id"),
            (!opts.tags.is_empty(), "session_tags"),
            (opts.source_identity.is_some(), "source_identity"),
        ] {
            if set {
                notes.push(format!(
                    "{what} is not sent: the role is assumed with a web identity, where the OIDC token's claims stand in \
                     for it (pin them in the trust policy, see `ferry policy trust --oidc-issuer`)."
                ));
            }
        }
    }
    let of = assumed.len() + usize::from(first.is_some());
    let mut hops = Vec::with_capacity(of);
    if let (Some(role), Some(w)) = (first, &env.web_identity) {
        hops.push(web_identity_hop(role, &w.token_file, of, opts, duration, None));
    }
    let offset = hops.len();
    for (i, role) in assumed.into_iter().enumerate() {
        let position = offset + i + 1;
        let last = position == of;
        if direct && let Some(w) = &env.web_identity {
            hops.push(web_identity_hop(role, &w.token_file, of, opts, duration, opts.policy.clone()));
            continue;
        }
        hops.push(HopRequest {
            role: role.clone(),
            position,
            of,
            session_name: opts.session_name.clone(),
            external_id: if last { env.external_id.clone() } else { None },
            duration,
            tags: opts.tags.clone(),
            // STS carries it down the chain from the first AssumeRole.
            source_identity: if i == 0 { opts.source_identity.clone() } else { None },
            policy: if last { opts.policy.clone() } else { None },
            web_identity_token_file: None,
            mfa: None,
        });
    }
    (hops, notes)
}

fn web_identity_hop(
    role: &RoleArn,
    token_file: &std::path::Path,
    of: usize,
    opts: &AssumeOptions,
    duration: Duration,
    policy: Option<String>,
) -> HopRequest {
    HopRequest {
        role: role.clone(),
        position: 1,
        of,
        session_name: opts.session_name.clone(),
        external_id: None,
        duration,
        tags: Vec::new(),
        source_identity: None,
        policy,
        web_identity_token_file: Some(token_file.to_path_buf()),
        mfa: None,
    }
}

/// Builds the chain of [`HopProvider`]s on top of `base`'s credentials and
/// returns `base` with the last hop's credentials, behind `base`'s identity
/// cache (which refreshes each hop before it expires).
fn chain(base: &SdkConfig, hops: Vec<HopRequest>) -> SdkConfig {
    let mut config = base.clone();
    for hop in hops {
        let sts = if hop.web_identity_token_file.is_some() {
            // The token is the credential: the call goes unsigned, so an
            // agent without any AWS key never needs one.
            let mut unsigned = aws_sdk_sts::config::Builder::from(&config);
            unsigned.set_credentials_provider(None);
            aws_sdk_sts::Client::from_conf(unsigned.build())
        } else {
            aws_sdk_sts::Client::new(&config)
        };
        let provider = HopProvider::new(sts, hop);
        config = base.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
    }
    config
}

async fn load_base(env: &Environment) -> SdkConfig {
    // Every client ferry makes comes from this config, so every AWS call
    // has connect, read and operation timeouts: a hung endpoint costs one
    // attempt, not the build.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(env.region.clone()))
        .timeout_config(crate::deadline::sdk());
    // `--profile` (AWS_PROFILE the SDK reads itself).
    if let Some(profile) = crate::config::aws_defaults().profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// The standard chain's configuration, the configuration the remaining
/// hops start from, and those hops. With an MFA device ([`mfa::device`]),
/// the first hop is made here (or taken from the session cache) and the
/// rest start from its session, which is not refreshed: a new one needs a
/// new code. Without one, the chain starts from the standard chain.
async fn start(env: &Environment, opts: &AssumeOptions) -> Result<(SdkConfig, SdkConfig, Vec<HopRequest>), AssumeError> {
    let base = load_base(env).await;
    let (mut hops, _) = plan(env, opts);
    let web_first = hops.first().is_some_and(|h| h.web_identity_token_file.is_some());
    let Some(device) = mfa::device(web_first).await? else { return Ok((base.clone(), base, hops)) };
    let first = hops.remove(0);
    match mfa::session(&base, first, &device).await {
        Ok(creds) => {
            let start = base.to_builder().credentials_provider(SharedCredentialsProvider::new(creds)).build();
            Ok((base, start, hops))
        }
        Err(mfa::Failure::Mfa(e)) => Err(e.into()),
        Err(mfa::Failure::Credentials(err)) => {
            let unreachable = find_source::<HopError>(&err).is_some_and(|h| h.source.unreachable());
            Err(classify(&base, env, &err, unreachable).await)
        }
    }
}

/// Loads the standard chain's configuration for `env.region` and returns an
/// `SdkConfig` whose credentials are the assumed role's, refreshed by the SDK.
///
/// The first credentials are fetched here (the AssumeRole chain, then one
/// GetCallerIdentity) so a trust-policy problem is reported as such, before
/// any bundle is uploaded.
pub async fn assume(env: &Environment, opts: &AssumeOptions) -> Result<(SdkConfig, Session), AssumeError> {
    let (base, start, hops) = start(env, opts).await?;
    let config = chain(&start, hops);
    let sts = aws_sdk_sts::Client::new(&config);
    match sts.get_caller_identity().send().await {
        Ok(out) => Ok((
            config,
            Session {
                role_arn: env.role.arn.clone(),
                session_name: opts.session_name.clone(),
                assumed_arn: out.arn().unwrap_or_default().to_string(),
            },
        )),
        Err(err) => Err(classify(&base, env, &err, is_unreachable(&err)).await),
    }
}

/// One set of the role's credentials, fetched now, for handing to another
/// program (`ferry exec`, `ferry env`, `credential-process`). These are not
/// refreshed: they last the configured `duration`.
pub async fn credentials(env: &Environment, opts: &AssumeOptions) -> Result<Credentials, AssumeError> {
    let (base, start, hops) = start(env, opts).await?;
    let config = chain(&start, hops);
    let Some(provider) = config.credentials_provider() else {
        return Err(AssumeError::NoSourceCredentials { role: env.role.arn.clone(), detail: "no provider".into() });
    };
    match provider.provide_credentials().await {
        Ok(creds) => Ok(creds),
        Err(err) => {
            let unreachable = find_source::<HopError>(&err).is_some_and(|h| h.source.unreachable());
            Err(classify(&base, env, &err, unreachable).await)
        }
    }
}

/// The ARN of the identity ferry starts from (the standard chain's
/// credentials, before any AssumeRole), from GetCallerIdentity.
pub async fn caller_arn(env: &Environment) -> Result<String, AssumeError> {
    let base = load_base(env).await;
    match aws_sdk_sts::Client::new(&base).get_caller_identity().send().await {
        Ok(me) => Ok(me.arn().unwrap_or_default().to_string()),
        Err(err) => {
            let role = env.role.arn.clone();
            let detail = crate::aws_error::chain(&err);
            // Without credentials the SDK never sends the call, and says so
            // as a dispatch failure: ask the chain before blaming the network.
            let unsent = err.as_service_error().is_none();
            if find_source::<CredentialsError>(&err).is_some() || (unsent && !has_source_credentials(&base).await) {
                Err(no_source(&base, role, detail).await)
            } else if let Some(foreign) = crate::aws_error::not_aws(&err) {
                Err(AssumeError::NotAws { role, detail: foreign.describe("STS", "AWS_ENDPOINT_URL_STS") })
            } else if is_unreachable(&err) {
                Err(AssumeError::Unreachable { role, source_identity: source_access_key(&base).await, detail })
            } else {
                Err(AssumeError::Refused { role, source_identity: String::new(), detail: describe_sdk_error(&err) })
            }
        }
    }
}

async fn classify(
    base: &SdkConfig,
    env: &Environment,
    err: &(dyn std::error::Error + 'static),
    unreachable: bool,
) -> AssumeError {
    let role = env.role.arn.clone();
    if let Some(HopFailure::TokenFile { path, source }) = find_source::<HopError>(err).map(|h| &h.source) {
        return AssumeError::TokenFile { role, path: path.clone(), detail: source.to_string() };
    }
    if let Some(foreign) = foreign_sts_answer(err) {
        return AssumeError::NotAws { role, detail: foreign.describe("STS", "AWS_ENDPOINT_URL_STS") };
    }
    let detail = match find_source::<CredentialsError>(err) {
        Some(CredentialsError::CredentialsNotLoaded(_)) => {
            return no_source(base, role, crate::aws_error::chain(err)).await;
        }
        Some(cred) => credentials_detail(cred),
        None => crate::aws_error::chain(err),
    };
    if unreachable || detail.contains("dispatch failure") || detail.contains("error trying to connect") {
        // The SDK reports "no credentials to sign with" as a dispatch
        // failure of the STS call: ask the chain itself before blaming the network.
        if !has_source_credentials(base).await {
            return no_source(base, role, detail).await;
        }
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

/// The standard chain gave no credentials: an SSO profile's sign-in to
/// renew ([`sso::failure`]), else the chain's sources surveyed.
async fn no_source(base: &SdkConfig, role: String, detail: String) -> AssumeError {
    match sso::failure(base).await {
        Some(e) => e.into(),
        None => AssumeError::NoSourceCredentials { role, detail },
    }
}

/// A hop's answer that did not come from AWS, wherever it sits in `err`'s chain.
fn foreign_sts_answer(err: &(dyn std::error::Error + 'static)) -> Option<crate::aws_error::NotAws> {
    use crate::aws_error::not_aws;
    if let Some(e) = find_source::<
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
            aws_smithy_runtime_api::http::Response,
        >,
    >(err)
        && let Some(foreign) = not_aws(e)
    {
        return Some(foreign);
    }
    match &find_source::<HopError>(err)?.source {
        hop::HopFailure::AssumeRole(e) => not_aws(e),
        hop::HopFailure::WebIdentity(e) => not_aws(e),
        hop::HopFailure::TokenFile { .. } => None,
    }
}

/// Whether the standard chain yields any credentials at all.
async fn has_source_credentials(base: &SdkConfig) -> bool {
    use aws_credential_types::provider::ProvideCredentials;
    match base.credentials_provider() {
        Some(provider) => provider.provide_credentials().await.is_ok(),
        None => false,
    }
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

/// The useful part of a credentials error: the hop and STS's answer when
/// there is one, the full chain otherwise.
fn credentials_detail(err: &CredentialsError) -> String {
    match find_source::<HopError>(err) {
        Some(hop) if hop.of > 1 => format!("{hop}: {}", describe_hop_error(hop)),
        Some(hop) => describe_hop_error(hop),
        None => crate::aws_error::chain(err),
    }
}

/// STS's code and message; when the SDK could not parse an error body (some
/// proxies and emulators answer in another shape), its status and text.
fn describe_hop_error(hop: &HopError) -> String {
    match &hop.source {
        HopFailure::AssumeRole(e) => describe_sts_error(e),
        HopFailure::WebIdentity(e) => describe_sts_error(e),
        other => other.to_string(),
    }
}

fn describe_sts_error<E>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let described = describe_sdk_error(e);
    let parsed = e.as_service_error().is_some_and(|e| e.code().is_some());
    match e.raw_response() {
        Some(raw) if !parsed => {
            let body = raw.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
            let text = strip_markup(&body);
            format!("HTTP {} from STS: {}", raw.status().as_u16(), if text.is_empty() { described } else { text })
        }
        _ => described,
    }
}

/// The text of an XML error body, tags removed and whitespace collapsed,
/// at most 300 characters.
fn strip_markup(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(name.starts_with("jenkins-My-Folder-we"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)));
    }

    /// A multibranch BUILD_TAG: `jenkins-` + folder/repo/branch (the branch
    /// URL-encoded) + build number.
    fn multibranch(branch: &str, number: u32) -> String {
        format!("jenkins-platform-team/payments-service-monorepo/{branch}-{number}")
    }

    #[test]
    fn two_builds_of_one_long_multibranch_job_get_different_session_names() {
        let branch = "feature%2FPAY-1234-rework-the-settlement-batch-exporter";
        let (b57, b58) = (session_name(Some(&multibranch(branch, 57)), None), session_name(Some(&multibranch(branch, 58)), None));
        assert!(multibranch(branch, 57).len() > 64);
        assert!(b57.len() <= 64 && b57.len() >= 60, "{b57}");
        assert_eq!(b57.len(), b58.len(), "{b57} {b58}");
        assert_ne!(b57, b58);
        assert!(b57.ends_with("-settlement-batch-exporter-57"), "the job's end and the build number survive: {b57}");
        assert!(b58.ends_with("-settlement-batch-exporter-58"), "{b58}");
        assert!(b57.starts_with("jenkins-platform-tea"), "{b57}");
        assert!(b57.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)), "{b57}");
    }

    #[test]
    fn one_build_always_gets_the_same_session_name() {
        let tag = multibranch("release%2F2026.11-hotfix-for-the-ledger-reconciliation", 1204);
        assert_eq!(session_name(Some(&tag), None), session_name(Some(&tag), None));
        assert_eq!(session_name(Some(&tag), None), sanitize_session_name(&tag));
    }

    #[test]
    fn long_tags_that_differ_only_in_the_cut_middle_still_differ() {
        let a = multibranch("feature%2FPAY-1111-rework-the-settlement-batch-exporter", 7);
        let b = multibranch("feature%2FPAY-2222-rework-the-settlement-batch-exporter", 7);
        let (na, nb) = (session_name(Some(&a), None), session_name(Some(&b), None));
        assert_ne!(na, nb, "the hash stands for the middle");
        assert_eq!(na.len(), nb.len());
        assert_eq!(na[..19], nb[..19]);
        assert_eq!(na[na.len() - 30..], nb[nb.len() - 30..]);
    }

    #[test]
    fn names_up_to_64_characters_are_kept_whole() {
        let tag = format!("jenkins-web-{}", "a".repeat(52));
        assert_eq!(tag.len(), 64);
        assert_eq!(session_name(Some(&tag), None), tag);
    }

    #[test]
    fn a_configured_session_name_wins_over_build_tag() {
        let build = BuildEnv { build_tag: Some("jenkins-web-42".into()), ..Default::default() };
        assert_eq!(session_name_for(&build, Some("deploy web/42")), "deploy-web-42");
        assert_eq!(session_name_for(&build, None), "jenkins-web-42");
        assert_eq!(session_name_for(&build, Some(" ")), "jenkins-web-42");
    }

    fn env_with_chain(chain: &[&str], secs: u64) -> Environment {
        Environment {
            name: "production".into(),
            role: RoleArn::parse("arn:aws:iam::222222222222:role/app").unwrap(),
            external_id: Some("ops-to-prod".into()),
            region: "eu-west-1".into(),
            bucket: "acme-releases".into(),
            prefix: String::new(),
            application: "web".into(),
            deployment_group: "web-prod".into(),
            deployment_config: None,
            confirm: false,
            duration: Duration::from_secs(secs),
            source_identity: None,
            session_tags: false,
            session_name: None,
            role_chain: chain.iter().map(|a| RoleArn::parse(a).unwrap()).collect(),
            session_policy: false,
            kms_key_id: None,
            tags: Default::default(),
            metadata: Default::default(),
            deploy: Default::default(),
            web_identity: None,
            platform: Default::default(),
        }
    }

    #[test]
    fn a_single_role_is_one_hop_with_the_configured_duration() {
        let (hops, notes) = plan(&env_with_chain(&[], 7200), &AssumeOptions::default());
        assert_eq!(hops.len(), 1);
        assert_eq!(hops[0].duration, Duration::from_secs(7200));
        assert_eq!(hops[0].external_id.as_deref(), Some("ops-to-prod"));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn chained_sessions_are_clamped_to_an_hour_and_the_clamp_is_explained() {
        let env = env_with_chain(&["arn:aws:iam::111111111111:role/ops", "arn:aws:iam::333333333333:role/hub"], 7200);
        let opts = AssumeOptions {
            source_identity: Some("alice".into()),
            policy: Some("{}".into()),
            tags: vec![("ferry:job".into(), "web".into())],
            ..AssumeOptions::default()
        };
        let (hops, notes) = plan(&env, &opts);
        let roles: Vec<&str> = hops.iter().map(|h| h.role.name.as_str()).collect();
        assert_eq!(roles, ["ops", "hub", "app"]);
        assert!(hops.iter().all(|h| h.duration == CHAINED_SESSION_LIMIT));
        assert!(notes.len() == 1 && notes[0].contains("1 hour") && notes[0].contains("7200"), "{notes:?}");
        // Source identity is set once and carried by STS; the policy and
        // external id belong to the environment's own role.
        assert_eq!(hops.iter().map(|h| h.source_identity.is_some()).collect::<Vec<_>>(), [true, false, false]);
        assert_eq!(hops.iter().map(|h| h.policy.is_some()).collect::<Vec<_>>(), [false, false, true]);
        assert_eq!(hops.iter().map(|h| h.external_id.is_some()).collect::<Vec<_>>(), [false, false, true]);
        assert!(hops.iter().all(|h| h.tags.len() == 1));
    }

    #[test]
    fn a_chain_within_the_hour_is_not_clamped() {
        let (hops, notes) = plan(&env_with_chain(&["arn:aws:iam::111111111111:role/ops"], 1800), &AssumeOptions::default());
        assert!(hops.iter().all(|h| h.duration == Duration::from_secs(1800)));
        assert!(notes.is_empty());
    }

    #[test]
    fn sessions_below_stss_floor_come_with_a_warning() {
        let (_, notes) = plan(&env_with_chain(&[], 5), &AssumeOptions::default());
        assert!(notes.len() == 1 && notes[0].contains("FERRY_UNSAFE_SESSION_SECONDS"), "{notes:?}");
    }

    #[test]
    fn hop_debug_output_hides_the_external_id() {
        let (hops, _) = plan(&env_with_chain(&[], 3600), &AssumeOptions::default());
        let text = format!("{:?}", hops[0]);
        assert!(!text.contains("ops-to-prod") && text.contains("(hidden)"), "{text}");
    }

    #[test]
    fn session_name_never_shorter_than_two() {
        let name = sanitize_session_name("/");
        assert!(name.len() >= 2, "{name}");
    }
}
