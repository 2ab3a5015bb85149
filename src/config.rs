//! `ferry.toml`: named environments, merged with command-line overrides into
//! one validated [`Environment`].
//!
//! Everything here runs before any AWS call, so a typo in a key, a missing
//! bucket or a malformed role ARN stops ferry with exit code 1 and nothing
//! sent anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod arn;
mod deploy_options;
mod keys;
mod platform;
mod secrets;
mod wave;
pub use arn::RoleArn;
pub use deploy_options::{
    AlarmOverride, BUILD_MARKER, DeployOptions, FileExistsBehavior, TagFilter, TagFilterType, TargetInstances,
};
pub use keys::{EnvSettings, KEYS, Key};
pub use platform::{ECS_HOOK_EVENTS, EcsService, LAMBDA_HOOK_EVENTS, LambdaFunction, Platform};
pub use wave::{Wave, WaveRollback, WaveSettings};

/// The file ferry looks for in the working directory when neither `--config`
/// nor `FERRY_CONFIG` names one.
pub const DEFAULT_FILE: &str = "ferry.toml";

/// A first hop by web identity (AssumeRoleWithWebIdentity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebIdentity {
    /// The token file, read at every refresh.
    pub token_file: PathBuf,
    /// The role the token is exchanged for.
    pub role: RoleArn,
    /// The issuer the token must come from, when configured.
    pub issuer: Option<String>,
    /// The audience the token must carry, when configured.
    pub audience: Option<String>,
}

/// `duration` as written: a number of seconds or a string like `1h`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum DurationSetting {
    /// Seconds.
    Seconds(u64),
    /// `90m`, `1h`, `3600`.
    Text(String),
}

/// STS's bounds for `DurationSeconds` on AssumeRole.
pub const SESSION_SECONDS: std::ops::RangeInclusive<u64> = 900..=43200;
/// What ferry asks for when `duration` is unset.
pub const DEFAULT_SESSION_SECONDS: u64 = 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    #[serde(default)]
    env: BTreeMap<String, EnvSettings>,
    /// `[wave.NAME]` tables, checked against `env` when the file is read.
    #[serde(default)]
    wave: BTreeMap<String, WaveSettings>,
}

/// A fully resolved, validated target environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    /// The environment's name (`production`); empty when only flags were
    /// given (no `[env.NAME]` was selected).
    pub name: String,
    /// The role to assume; its account is the expected bucket owner.
    pub role: RoleArn,
    /// External ID for the trust policy's `sts:ExternalId` condition.
    pub external_id: Option<String>,
    /// AWS region.
    pub region: String,
    /// Bucket that receives bundles.
    pub bucket: String,
    /// Key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// CodeDeploy application.
    pub application: String,
    /// CodeDeploy deployment group.
    pub deployment_group: String,
    /// Deployment configuration override.
    pub deployment_config: Option<String>,
    /// `confirm = true`: a release asks for the environment's name first.
    pub confirm: bool,
    /// How long each set of assumed credentials lasts.
    pub duration: std::time::Duration,
    /// `SourceIdentity` for the session, when configured.
    pub source_identity: Option<String>,
    /// Whether to tag the session with build provenance.
    pub session_tags: bool,
    /// The role session name to use instead of `BUILD_TAG`, when configured.
    pub session_name: Option<String>,
    /// Roles assumed before [`Environment::role`], in order.
    pub role_chain: Vec<RoleArn>,
    /// Whether to scope the session down with ferry's generated policy.
    pub session_policy: bool,
    /// KMS key (id, alias or ARN) of the bucket's default encryption.
    pub kms_key_id: Option<String>,
    /// Object tags for uploaded bundles.
    pub tags: BTreeMap<String, String>,
    /// Extra user metadata for uploaded bundles.
    pub metadata: BTreeMap<String, String>,
    /// CreateDeployment's options beyond revision and group.
    pub deploy: DeployOptions,
    /// A keyless first hop, when configured.
    pub web_identity: Option<WebIdentity>,
    /// What the deployments change: instances or a Lambda alias.
    pub platform: Platform,
}

/// What the command line sets: the keys a flag sets (those [`KEYS`] marks
/// `flag`), which win over the file's, and the one switch that changes a
/// key's table rather than replacing it.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// The keys flags gave (`--region`, `--description`, a switch as `Some(true)`, …).
    pub keys: EnvSettings,
    /// `--ignore-poll-alarm-failure`: sets it on the alarm override.
    pub ignore_poll_alarm_failure: bool,
}

/// What the AWS environment of this process gives ferry.toml: the profile
/// in effect and the region to use when ferry.toml (and `--region`) name none.
#[derive(Clone, Debug, Default)]
pub struct AwsDefaults {
    /// `--profile`, else `AWS_PROFILE`.
    pub profile: Option<String>,
    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, else the profile's `region`.
    pub region: Option<String>,
}

static AWS_DEFAULTS: std::sync::OnceLock<AwsDefaults> = std::sync::OnceLock::new();

/// Sets the [`AwsDefaults`] once, before any environment is resolved.
pub fn set_aws_defaults(defaults: AwsDefaults) {
    let _ = AWS_DEFAULTS.set(defaults);
}

/// The [`AwsDefaults`] set for this process (none in unit tests).
pub fn aws_defaults() -> AwsDefaults {
    AWS_DEFAULTS.get().cloned().unwrap_or_default()
}

/// Where the configuration comes from and which environment to take.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// `--config` / `FERRY_CONFIG`: this file must exist.
    pub path: Option<PathBuf>,
    /// `--env`.
    pub env: Option<String>,
    /// Command-line values that win over the file.
    pub overrides: Overrides,
    /// `FERRY_UNSAFE_SESSION_SECONDS`: a session length below STS's 900 s
    /// floor, which only emulators accept. For tests of credential refresh.
    pub unsafe_session_seconds: Option<u64>,
}

/// Why the configuration could not be resolved. Each message names the cause
/// and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An explicitly named config file is missing.
    #[error(
        "config file {} does not exist. Pass --config with the path of your ferry.toml, or set FERRY_CONFIG.",
        path.display()
    )]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// `--env` was given but there is no config file to look it up in.
    #[error(
        "--env {env} was given but there is no {DEFAULT_FILE} in the current directory. \
         Run ferry where ferry.toml is, pass --config <file>, or give every setting as a flag without --env."
    )]
    NoFile {
        /// The environment asked for.
        env: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}. Check the path and its permissions.", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not UTF-8 text.
    #[error(
        "config file {} is not UTF-8 text: byte 0x{byte:02x} on line {line} is not valid UTF-8 (saved as Latin-1 or \
         UTF-16?). TOML files must be UTF-8; convert it (e.g. `iconv -f latin1 -t utf-8`).",
        path.display()
    )]
    Encoding {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// The first invalid byte.
        byte: u8,
    },
    /// The config file is not valid TOML or has an unknown key.
    #[error("config file {} is invalid:{message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's report on lines of its own (position, the line, a caret,
        /// the reason), each line led by a newline; a did-you-mean last.
        message: String,
    },
    /// The file has environments but `--env` was not given.
    #[error(
        "no environment selected. Pass --env with one of: {}.",
        known.join(", ")
    )]
    NoEnvSelected {
        /// The environments the file defines.
        known: Vec<String>,
    },
    /// `--env` names an environment the file does not define.
    #[error(
        "environment `{env}` is not defined in {}.{} Defined environments: {}. Add an [env.{env}] table or pick one of those.",
        path.display(),
        suggestion.as_ref().map(|s| format!(" Did you mean `--env {s}`?")).unwrap_or_default(),
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    UnknownEnv {
        /// The name asked for.
        env: String,
        /// The file searched.
        path: PathBuf,
        /// The environments the file defines.
        known: Vec<String>,
        /// The defined name closest to `env`, if one is close.
        suggestion: Option<String>,
    },
    /// A required setting has no value from the file or the flags.
    /// All of them at once, so one run shows every gap.
    #[error("{}", missing_message(env, keys))]
    Missing {
        /// The environment; empty when no `[env.NAME]` was selected.
        env: String,
        /// The ferry.toml keys without a value (each has a flag of its name).
        keys: Vec<&'static str>,
    },
    /// A `[wave.NAME]` table is wrong: an unknown or repeated environment,
    /// an empty stage, a bad duration or rollback word.
    #[error("wave `{wave}` in {} is invalid: {reason}", path.display())]
    InvalidWave {
        /// The file.
        path: PathBuf,
        /// The wave's name.
        wave: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// `--wave` names a wave the file does not define.
    #[error(
        "wave `{wave}` is not defined in {}.{} Defined waves: {}. Add a [wave.{wave}] table with          `stages = [[\"env-a\"], [\"env-b\"]]`, or pick one of those.",
        path.display(),
        suggestion.as_ref().map(|s| format!(" Did you mean `--wave {s}`?")).unwrap_or_default(),
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    UnknownWave {
        /// The name asked for.
        wave: String,
        /// The file searched.
        path: PathBuf,
        /// The waves the file defines.
        known: Vec<String>,
        /// The defined name closest to `wave`, if one is close.
        suggestion: Option<String>,
    },
    /// A setting has a value AWS would reject.
    #[error("`{key}` = \"{value}\" is not valid: {reason}")]
    Invalid {
        /// The ferry.toml key.
        key: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong and what a valid value looks like.
        reason: String,
    },
}

/// The message for [`ConfigError::Missing`]: with a selected environment,
/// where to add the key; with flags only, the flag, or ferry.toml and
/// `--env` (never an environment the user did not name).
fn missing_message(env: &str, keys: &[&str]) -> String {
    let list = |f: &dyn Fn(&str) -> String| keys.iter().map(|k| f(k)).collect::<Vec<_>>().join(", ");
    let names = list(&|k| format!("`{k}`"));
    let flags = list(&|k| format!("--{}", k.replace('_', "-")));
    let lines = list(&|k| format!("`{k} = \"...\"`"));
    let region = if keys.contains(&"region") { " (the region may also come from AWS_REGION or the profile)" } else { "" };
    if env.is_empty() {
        format!(
            "no {names} {} given. Pass {flags}, or write the settings into ferry.toml under an [env.NAME] table \
             (e.g. [env.production]) and select it with --env NAME{region}.",
            if keys.len() == 1 { "was" } else { "were" }
        )
    } else {
        format!("environment `{env}` has no {names}. Add {lines} under [env.{env}] in ferry.toml, or pass {flags}{region}.")
    }
}

/// The candidate closest to `input`, when one is close enough to be what
/// was meant: the same apart from case, `_` and `-`; a prefix of it (or it
/// of `input`, 3+ characters); or a few edits away.
pub(crate) fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect::<String>();
    let wanted = norm(input);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let cand = norm(c);
        let score = if cand == wanted {
            0
        } else if wanted.len() >= 3 && (cand.starts_with(&wanted) || wanted.starts_with(&cand)) {
            1
        } else {
            // Levenshtein, counting an adjacent swap as one edit.
            let d = strsim::osa_distance(&wanted, &cand);
            if d > 2.max(wanted.len() / 4) {
                continue;
            }
            1 + d
        };
        if best.is_none_or(|(b, _)| score < b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// ferry.toml holds a few tables of short strings; a file this big is not one.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads the configuration file (if any) and merges the selected environment
/// with the overrides.
pub fn resolve(sel: &Selection) -> Result<Environment, ConfigError> {
    let (path, must_exist) = match &sel.path {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_FILE), false),
    };
    let file = match crate::small_file::read(&path, MAX_CONFIG_BYTES) {
        Ok(bytes) => Some(parse(&path, &utf8(&path, bytes)?)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if must_exist {
                return Err(ConfigError::NotFound { path });
            }
            None
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };

    let (name, from_file) = match (file, &sel.env) {
        (Some(mut file), Some(env)) => match file.env.remove(env) {
            Some(settings) => (env.clone(), settings),
            None => {
                let known: Vec<String> = file.env.keys().cloned().collect();
                let suggestion = did_you_mean(env, known.iter().map(String::as_str)).map(String::from);
                return Err(ConfigError::UnknownEnv { env: env.clone(), path, known, suggestion });
            }
        },
        (Some(file), None) if !file.env.is_empty() => {
            return Err(ConfigError::NoEnvSelected { known: file.env.keys().cloned().collect() });
        }
        (Some(_), None) => (String::new(), EnvSettings::default()),
        (None, Some(env)) => return Err(ConfigError::NoFile { env: env.clone() }),
        (None, None) => (String::new(), EnvSettings::default()),
    };
    let mut env = merge(name, from_file, &sel.overrides)?;
    if let Some(secs) = sel.unsafe_session_seconds {
        if secs == 0 {
            return Err(ConfigError::Invalid {
                key: "duration",
                value: "0".into(),
                reason: "FERRY_UNSAFE_SESSION_SECONDS must be a positive number of seconds; unset it for real use.".into(),
            });
        }
        env.duration = std::time::Duration::from_secs(secs);
    }
    Ok(env)
}

/// Reads the configuration file and resolves `--wave NAME`: the validated
/// wave and each of its environments, in stage order. The flags that pick
/// one target conflict with `--wave` on the command line, so the overrides
/// left (CreateDeployment options, session name) apply to every environment.
pub fn resolve_wave(sel: &Selection, name: &str) -> Result<(Wave, Vec<Environment>), ConfigError> {
    let path = sel.path.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
    let text = match crate::small_file::read(&path, MAX_CONFIG_BYTES) {
        Ok(bytes) => utf8(&path, bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ConfigError::NotFound { path }),
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let mut file = parse(&path, &text)?;
    let Some(settings) = file.wave.get(name) else {
        let known: Vec<String> = file.wave.keys().cloned().collect();
        let suggestion = did_you_mean(name, known.iter().map(String::as_str)).map(String::from);
        return Err(ConfigError::UnknownWave { wave: name.to_string(), path, known, suggestion });
    };
    let envs_known = file.env.keys().map(String::as_str).collect();
    let wave = wave::validate(name, settings, &envs_known).map_err(|reason| ConfigError::InvalidWave {
        path: path.clone(),
        wave: name.to_string(),
        reason,
    })?;
    let mut envs = Vec::new();
    for env_name in wave.envs() {
        let settings = file.env.remove(env_name).unwrap_or_default();
        let mut env = merge(env_name.to_string(), settings, &sel.overrides)?;
        if let Some(secs) = sel.unsafe_session_seconds.filter(|s| *s > 0) {
            env.duration = std::time::Duration::from_secs(secs);
        }
        envs.push(env);
    }
    one_group_once_per_stage(&wave, &envs).map_err(|reason| ConfigError::InvalidWave {
        path: path.clone(),
        wave: name.to_string(),
        reason,
    })?;
    Ok((wave, envs))
}

/// Two environments of one stage that name the same deployment group
/// (account, region, application, group) would race for it: the second
/// would adopt the first's deployment as its own.
fn one_group_once_per_stage(wave: &Wave, envs: &[Environment]) -> Result<(), String> {
    let mut first = 0;
    for (i, stage) in wave.stages.iter().enumerate() {
        let stage_envs = &envs[first..first + stage.len()];
        first += stage.len();
        for (j, a) in stage_envs.iter().enumerate() {
            let same = |b: &&Environment| {
                (&a.role.account, &a.region, &a.application, &a.deployment_group)
                    == (&b.role.account, &b.region, &b.application, &b.deployment_group)
            };
            if let Some(b) = stage_envs[j + 1..].iter().find(same) {
                return Err(format!(
                    "stage {} releases `{}` and `{}` to one deployment group ({}/{} in account {}, {}): the second \
                     would take the first's deployment for its own. Put them in different stages, or keep one.",
                    i + 1,
                    a.name,
                    b.name,
                    a.application,
                    a.deployment_group,
                    a.role.account,
                    a.region
                ));
            }
        }
    }
    Ok(())
}

/// Parses ferry.toml text. Unknown keys are errors, named with their line.
pub fn parse_file(path: &Path, text: &str) -> Result<BTreeMap<String, EnvSettings>, ConfigError> {
    parse(path, text).map(|f| f.env)
}

/// The file's text, or which byte makes it not UTF-8.
fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, ConfigError> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        ConfigError::Encoding { path: path.to_path_buf(), line, byte: bytes[at] }
    })
}

fn parse(path: &Path, text: &str) -> Result<FileSettings, ConfigError> {
    let file = parse_toml(path, text)?;
    // Every wave is checked whatever the command: a wave naming an
    // environment that is gone is a broken file, found before it is needed.
    let envs = file.env.keys().map(String::as_str).collect();
    for (name, settings) in &file.wave {
        wave::validate(name, settings, &envs).map_err(|reason| ConfigError::InvalidWave {
            path: path.to_path_buf(),
            wave: name.clone(),
            reason,
        })?;
    }
    Ok(file)
}

fn parse_toml(path: &Path, text: &str) -> Result<FileSettings, ConfigError> {
    toml::from_str::<FileSettings>(text).map_err(|e| {
        // The parser's own layout (the line, a caret under the column, the
        // reason) is kept as it is: flattened onto one line it is unreadable.
        // The line it quotes may hold a secret: hidden first.
        let mut message = format!("\n{}", secrets::redact(text, e.to_string().trim_end()));
        if let Some(hint) = unknown_key_hint(e.message()) {
            message.push_str(&format!("\n{hint}"));
        }
        ConfigError::Parse { path: path.to_path_buf(), message }
    })
}

/// "Did you mean `deployment_group`?" for a misspelt key or table.
fn unknown_key_hint(message: &str) -> Option<String> {
    let unknown = message.strip_prefix("unknown field `")?.split('`').next()?;
    let (candidates, what): (&[&str], &str) = if message.contains("expected `env`") {
        (&["env", "wave"], "table")
    } else if message.contains("expected one of `stages`") {
        (wave::WAVE_KEYS, "wave key")
    } else {
        (&[], "key")
    };
    let near =
        if what == "key" { did_you_mean(unknown, keys::names())? } else { did_you_mean(unknown, candidates.iter().copied())? };
    Some(format!("Did you mean `{near}`? (`{unknown}` is not a ferry.toml {what}; docs/configuration.md lists them all.)"))
}

/// The environment from the file's keys with the flags' over them, each
/// checked.
fn merge(name: String, file: EnvSettings, flags: &Overrides) -> Result<Environment, ConfigError> {
    let mut keys = flags.keys.clone().or(file);
    keys.region = keys.region.filter(|r| !r.is_empty()).or_else(|| aws_defaults().region);
    let missing: Vec<&'static str> = [
        ("role_arn", &keys.role_arn),
        ("region", &keys.region),
        ("bucket", &keys.bucket),
        ("application", &keys.application),
        ("deployment_group", &keys.deployment_group),
    ]
    .into_iter()
    .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
    .map(|(k, _)| k)
    .collect();
    if !missing.is_empty() {
        return Err(ConfigError::Missing { env: name, keys: missing });
    }
    let required = |key: &'static str, v: Option<String>| {
        v.filter(|v| !v.is_empty()).ok_or_else(|| ConfigError::Missing { env: name.clone(), keys: vec![key] })
    };
    let set = |v: Option<String>| v.filter(|v| !v.is_empty());

    let deploy = deploy_options(&keys, flags.ignore_poll_alarm_failure)?;
    let web_identity = web_identity(&keys)?;
    let platform = platform::platform(&name, &keys)?;
    let role_arn = required("role_arn", keys.role_arn)?;
    let role =
        RoleArn::parse(&role_arn).map_err(|reason| ConfigError::Invalid { key: "role_arn", value: role_arn.clone(), reason })?;
    let region = required("region", keys.region)?;
    validate_region(&region)?;
    let bucket = required("bucket", keys.bucket)?;
    validate_bucket(&bucket)?;
    let prefix = set(keys.prefix).unwrap_or_default().trim_matches('/').to_string();
    let application = required("application", keys.application)?;
    let deployment_group = required("deployment_group", keys.deployment_group)?;
    let external_id = set(keys.external_id);
    if let Some(id) = &external_id {
        validate_external_id(id)?;
    }
    let duration = match keys.duration {
        Some(d) => session_duration(&d)?,
        None => std::time::Duration::from_secs(DEFAULT_SESSION_SECONDS),
    };
    let source_identity = set(keys.source_identity);
    if let Some(id) = &source_identity {
        validate_source_identity(id)?;
    }
    let role_chain = keys
        .role_chain
        .unwrap_or_default()
        .iter()
        .map(|arn| RoleArn::parse(arn).map_err(|reason| ConfigError::Invalid { key: "role_chain", value: arn.clone(), reason }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Environment {
        name,
        role,
        external_id,
        region,
        bucket,
        prefix,
        application,
        deployment_group,
        deployment_config: set(keys.deployment_config),
        confirm: keys.confirm.unwrap_or(false),
        duration,
        source_identity,
        session_tags: keys.session_tags.unwrap_or(false),
        session_name: set(keys.session_name),
        role_chain,
        session_policy: keys.session_policy.unwrap_or(false),
        kms_key_id: set(keys.kms_key_id),
        tags: validate_tags(keys.tags.unwrap_or_default())?,
        metadata: validate_metadata(keys.metadata.unwrap_or_default())?,
        deploy,
        web_identity,
        platform,
    })
}

/// The web identity hop; the token file and the role come together or not
/// at all.
fn web_identity(keys: &EnvSettings) -> Result<Option<WebIdentity>, ConfigError> {
    let (token_file, role) = match (keys.web_identity_token_file.clone(), keys.web_identity_role_arn.clone()) {
        (None, None) => return Ok(None),
        (Some(t), Some(r)) => (t, r),
        (Some(t), None) => {
            return Err(ConfigError::Invalid {
                key: "web_identity_role_arn",
                value: String::new(),
                reason: format!(
                    "a web identity token file is set ({}) but no role to exchange it for: set AWS_ROLE_ARN (as \
                     withCredentials does for the OIDC plugin's credential) or `web_identity_role_arn`",
                    t.display()
                ),
            });
        }
        (None, Some(r)) => {
            return Err(ConfigError::Invalid {
                key: "web_identity_token_file",
                value: String::new(),
                reason: format!(
                    "a web identity role is set ({r}) but no token file: bind the OIDC plugin's \
                     \"id token as file\" credential to AWS_WEB_IDENTITY_TOKEN_FILE, or set `web_identity_token_file`"
                ),
            });
        }
    };
    let role =
        RoleArn::parse(&role).map_err(|reason| ConfigError::Invalid { key: "web_identity_role_arn", value: role, reason })?;
    Ok(Some(WebIdentity {
        token_file,
        role,
        issuer: keys.oidc_issuer.clone().filter(|s| !s.is_empty()),
        audience: keys.oidc_audience.clone().filter(|s| !s.is_empty()),
    }))
}

/// The CreateDeployment options; `--ignore-poll-alarm-failure` changes the
/// configured alarm override.
fn deploy_options(keys: &EnvSettings, ignore_poll_alarm_failure: bool) -> Result<DeployOptions, ConfigError> {
    let mut override_alarm_configuration = keys.override_alarm_configuration.clone();
    if ignore_poll_alarm_failure {
        match override_alarm_configuration.as_mut() {
            Some(o) => o.ignore_poll_alarm_failure = true,
            None => {
                return Err(ConfigError::Invalid {
                    key: "override_alarm_configuration",
                    value: "--ignore-poll-alarm-failure".into(),
                    reason: "the flag changes this deployment's alarm override, and the environment has none: add \
                             [env.NAME.override_alarm_configuration] with `enabled` and `alarms` to ferry.toml"
                        .into(),
                });
            }
        }
    }
    let options = DeployOptions {
        file_exists_behavior: keys.file_exists_behavior,
        ignore_application_stop_failures: keys.ignore_application_stop_failures.unwrap_or(false),
        target_instances: keys.target_instances.clone(),
        update_outdated_instances_only: keys.update_outdated_instances_only.unwrap_or(false),
        description: keys.description.clone(),
        override_alarm_configuration,
    };
    options.validate().map_err(|(key, value, reason)| ConfigError::Invalid { key, value, reason })?;
    Ok(options)
}

/// `duration` in STS's accepted range. Real STS refuses anything outside
/// 900-43200 s (and the role's own maximum, which only STS knows).
fn session_duration(setting: &DurationSetting) -> Result<std::time::Duration, ConfigError> {
    let (value, secs) = match setting {
        DurationSetting::Seconds(n) => (n.to_string(), Some(*n)),
        DurationSetting::Text(t) => (t.clone(), crate::duration::parse(t).ok().map(|d| d.as_secs())),
    };
    match secs {
        Some(n) if SESSION_SECONDS.contains(&n) => Ok(std::time::Duration::from_secs(n)),
        _ => Err(ConfigError::Invalid {
            key: "duration",
            value,
            reason: "STS issues role sessions of 900 to 43200 seconds (15m to 12h); write seconds or a length \
                     like `1h` or `90m`, and raise the role's MaxSessionDuration if you need more than 1h."
                .into(),
        }),
    }
}

/// STS accepts 2-64 characters of `[\w+=,.@-]` as a source identity, and
/// refuses values starting with `aws:`.
fn validate_source_identity(id: &str) -> Result<(), ConfigError> {
    let ok = (2..=64).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        && !id.to_ascii_lowercase().starts_with("aws:");
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: "source_identity",
            value: id.to_string(),
            reason: "STS accepts 2 to 64 characters of letters, digits and _+=,.@- as a source identity; \
                     write `build-user` to use the build user (BUILD_USER_ID or $USER)."
                .into(),
        })
    }
}

fn validate_region(region: &str) -> Result<(), ConfigError> {
    let ok = region.len() <= 32
        && region.split('-').count() >= 3
        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: "region",
            value: region.to_string(),
            reason: "an AWS region looks like `eu-west-1` or `us-east-1`.".into(),
        })
    }
}

/// S3's bucket naming rules, so a typo fails here rather than as an opaque
/// signature or DNS error later.
fn validate_bucket(bucket: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "bucket",
        value: bucket.to_string(),
        reason: format!(
            "{reason} S3 bucket names are 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
        ),
    };
    if !(3..=63).contains(&bucket.len()) {
        return Err(invalid("it has the wrong length."));
    }
    if !bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-') {
        return Err(invalid("it has a character S3 does not allow (uppercase, `_`, `/`, space or `s3://`?)."));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(bucket.chars().next()) || !edge_ok(bucket.chars().last()) {
        return Err(invalid("it must start and end with a letter or digit."));
    }
    if bucket.contains("..") {
        return Err(invalid("it has two dots in a row."));
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(invalid("it is formatted as an IP address, which S3 forbids."));
    }
    // Prefixes and suffixes S3 keeps for its own naming schemes (access
    // point aliases, Object Lambda, directory and table buckets, ...).
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if bucket.starts_with(prefix) {
            return Err(invalid(&format!("it starts with `{prefix}`, a prefix S3 reserves.")));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if bucket.ends_with(suffix) {
            return Err(invalid(&format!("it ends with `{suffix}`, a suffix S3 reserves.")));
        }
    }
    Ok(())
}

/// [`validate_bucket`] for a bucket named elsewhere (a promotion's
/// `s3://BUCKET/KEY`): why S3 would refuse the name, if it would.
pub(crate) fn check_bucket_name(bucket: &str) -> Result<(), String> {
    validate_bucket(bucket).map_err(|e| match e {
        ConfigError::Invalid { reason, .. } => format!("the bucket name `{bucket}` is not valid: {reason}"),
        other => other.to_string(),
    })
}

/// S3 allows 10 tags per object, keys up to 128 and values up to 256
/// characters.
fn validate_tags(tags: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError> {
    let invalid = |value: String, reason: &str| ConfigError::Invalid { key: "tags", value, reason: reason.into() };
    if tags.len() > 10 {
        return Err(invalid(format!("{} tags", tags.len()), "S3 allows at most 10 tags per object; remove some."));
    }
    for (k, v) in &tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 || k.starts_with("aws:") {
            return Err(invalid(
                k.clone(),
                "tag keys are 1-128 characters, not starting with `aws:`, and values at most 256 characters.",
            ));
        }
    }
    Ok(tags)
}

/// Metadata keys become `x-amz-meta-*` headers: lowercase token characters,
/// and not ferry's own.
fn validate_metadata(meta: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError> {
    for k in meta.keys() {
        let token = !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !token || k.starts_with("ferry-") {
            return Err(ConfigError::Invalid {
                key: "metadata",
                value: k.clone(),
                reason: "metadata keys are lowercase letters, digits, `-` and `_`, and `ferry-*` keys are ferry's own.".into(),
            });
        }
    }
    Ok(meta)
}

/// STS accepts 2-1224 characters of `[\w+=,.@:/-]` as an external ID.
fn validate_external_id(id: &str) -> Result<(), ConfigError> {
    let ok = (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: "external_id",
            value: "(hidden)".into(),
            reason: "STS accepts 2 to 1224 characters of letters, digits and _+=,.@:/- as an external ID.".into(),
        })
    }
}

/// Archive formats CodeDeploy accepts for EC2 deployments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleType {
    /// `.zip`
    Zip,
    /// `.tar`
    Tar,
    /// `.tgz` / `.tar.gz`
    Tgz,
}

impl BundleType {
    /// The file extension ferry uses for keys.
    pub fn extension(self) -> &'static str {
        match self {
            BundleType::Zip => "zip",
            BundleType::Tar => "tar",
            BundleType::Tgz => "tgz",
        }
    }

    /// Parses `zip`, `tar` or `tgz` (as given to `--bundle-type`).
    pub fn parse(s: &str) -> Result<BundleType, String> {
        match s.to_ascii_lowercase().as_str() {
            "zip" => Ok(BundleType::Zip),
            "tar" => Ok(BundleType::Tar),
            "tgz" | "tar.gz" => Ok(BundleType::Tgz),
            other => Err(format!("`{other}` is not a bundle type; use zip, tar or tgz")),
        }
    }

    /// Recognises a bundle file by its name.
    pub fn from_path(path: &Path) -> Option<BundleType> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".zip") {
            Some(BundleType::Zip)
        } else if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
            Some(BundleType::Tgz)
        } else if name.ends_with(".tar") {
            Some(BundleType::Tar)
        } else {
            None
        }
    }
}

#[cfg(test)]
impl Environment {
    /// A valid environment for unit tests: role R in 222222222222, bucket
    /// `b`, prefix `releases`, application `web`, group `web-prod`.
    pub(crate) fn example() -> Environment {
        Environment {
            name: "production".into(),
            role: RoleArn::parse("arn:aws:iam::222222222222:role/R").expect("valid ARN"),
            external_id: None,
            region: "us-east-1".into(),
            bucket: "b".into(),
            prefix: "releases".into(),
            application: "web".into(),
            deployment_group: "web-prod".into(),
            deployment_config: None,
            confirm: false,
            duration: std::time::Duration::from_secs(3600),
            source_identity: None,
            session_tags: false,
            session_name: None,
            role_chain: Vec::new(),
            session_policy: false,
            kms_key_id: None,
            tags: Default::default(),
            metadata: Default::default(),
            deploy: Default::default(),
            web_identity: None,
            platform: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[env.production]
role_arn = "arn:aws:iam::222222222222:role/CA_ServiceDeployer"
external_id = "ops-to-prod"
region = "eu-west-1"
bucket = "acme-prod-releases"
prefix = "/releases/"
application = "web"
deployment_group = "web-prod"
"#;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn did_you_mean_finds_the_key_or_environment_that_was_meant() {
        assert_eq!(did_you_mean("deploymentgroup", keys::names()), Some("deployment_group"));
        assert_eq!(did_you_mean("buckt", keys::names()), Some("bucket"));
        assert_eq!(did_you_mean("Role-ARN", keys::names()), Some("role_arn"));
        assert_eq!(did_you_mean("regoin", keys::names()), Some("region"));
        assert_eq!(did_you_mean("prod", ["staging", "production"]), Some("production"));
        assert_eq!(did_you_mean("stagign", ["staging", "production"]), Some("staging"));
        assert_eq!(did_you_mean("frobnicate", keys::names()), None);
        assert_eq!(did_you_mean("qa", ["staging", "production"]), None);
    }

    #[test]
    fn a_wave_resolves_each_environment_with_its_own_target_in_stage_order() {
        let text = format!(
            "{GOOD}\n[env.us]\nrole_arn = \"arn:aws:iam::333333333333:role/D\"\nregion = \"us-east-1\"\nbucket = \"acme-us\"\n\
             application = \"web\"\ndeployment_group = \"web-us\"\n\n[wave.prod]\nstages = [[\"us\"], [\"production\"]]\n\
             rollback = \"all\"\n"
        );
        let (_dir, path) = write(&text);
        let sel = Selection { path: Some(path), ..Default::default() };
        let (wave, envs) = resolve_wave(&sel, "prod").unwrap();
        assert_eq!(wave.rollback, WaveRollback::All);
        let targets: Vec<(&str, &str, &str, &str)> =
            envs.iter().map(|e| (e.name.as_str(), e.region.as_str(), e.bucket.as_str(), e.role.account.as_str())).collect();
        assert_eq!(
            targets,
            [("us", "us-east-1", "acme-us", "333333333333"), ("production", "eu-west-1", "acme-prod-releases", "222222222222")]
        );
        let e = resolve_wave(&sel, "prdo").unwrap_err().to_string();
        assert!(e.contains("wave `prdo` is not defined") && e.contains("Did you mean `--wave prod`?"), "{e}");
    }

    /// Issue 23 item 11: the second environment adopted the first's
    /// deployment with a false message.
    #[test]
    fn a_wave_stage_with_two_environments_of_one_group_is_refused() {
        let twin = GOOD.replace("[env.production]", "[env.twin]");
        let text = format!("{GOOD}\n{twin}\n[wave.prod]\nstages = [[\"production\", \"twin\"]]\n");
        let (_dir, path) = write(&text);
        let sel = Selection { path: Some(path), ..Default::default() };
        let e = resolve_wave(&sel, "prod").unwrap_err();
        assert!(matches!(e, ConfigError::InvalidWave { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("`production` and `twin` to one deployment group (web/web-prod"), "{e}");
        // One after the other, the same group is fine.
        let text = format!("{GOOD}\n{twin}\n[wave.prod]\nstages = [[\"production\"], [\"twin\"]]\n");
        let (_dir, path) = write(&text);
        resolve_wave(&Selection { path: Some(path), ..Default::default() }, "prod").unwrap();
    }

    #[test]
    fn a_wave_table_with_an_unknown_key_names_the_wave_keys() {
        let text = format!("{GOOD}\n[wave.prod]\nstages = [[\"production\"]]\nbaek = \"1m\"\n");
        let e = parse(Path::new("f.toml"), &text).unwrap_err().to_string();
        assert!(e.contains("Did you mean `bake`?"), "{e}");
    }

    #[test]
    fn env_keys_are_exactly_the_keys_the_parser_accepts() {
        let e = parse(Path::new("f.toml"), "[env.p]\nnot_a_key = 1\n").unwrap_err().to_string();
        let expected: Vec<&str> = e.split("expected one of ").nth(1).unwrap().split('`').skip(1).step_by(2).collect();
        assert_eq!(expected, keys::names().collect::<Vec<_>>(), "{e}");
    }

    #[test]
    fn a_misspelt_key_keeps_the_parsers_line_and_column_layout_and_suggests_the_key() {
        let text = GOOD.replace("deployment_group", "deploymentgroup");
        let e = parse(Path::new("ferry.toml"), &text).unwrap_err().to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines[0], "config file ferry.toml is invalid:", "{e}");
        assert!(lines[1].starts_with("TOML parse error at line 9, column 1"), "{e}");
        assert!(lines.iter().any(|l| l.starts_with("9 | deploymentgroup")), "the offending line is shown: {e}");
        assert!(lines.iter().any(|l| l.trim_start().starts_with("| ^")), "a caret marks the column: {e}");
        assert!(e.ends_with("Did you mean `deployment_group`? (`deploymentgroup` is not a ferry.toml key; docs/configuration.md lists them all.)"), "{e}");
    }

    #[test]
    fn a_misspelt_top_level_table_suggests_env() {
        let e = parse(Path::new("ferry.toml"), "[envs.production]\nregion = \"eu-west-1\"\n").unwrap_err().to_string();
        assert!(e.contains("Did you mean `env`?"), "{e}");
    }

    #[test]
    fn an_unknown_env_suggests_the_closest_defined_one() {
        let (_d, path) = write(GOOD);
        let sel = Selection { path: Some(path), env: Some("prod".into()), ..Default::default() };
        let e = resolve(&sel).unwrap_err().to_string();
        assert!(e.contains("environment `prod` is not defined"), "{e}");
        assert!(e.contains("Did you mean `--env production`?"), "{e}");
    }

    #[test]
    fn without_ferry_toml_a_missing_setting_names_the_flag_and_no_internal_environment() {
        let sel = Selection {
            path: None,
            env: None,
            overrides: Overrides {
                keys: EnvSettings { region: Some("eu-west-1".into()), ..Default::default() },
                ..Default::default()
            },
            ..Default::default()
        };
        // resolve() looks for ./ferry.toml: unit tests run in the crate root, which has none.
        assert!(!Path::new(DEFAULT_FILE).exists());
        let e = resolve(&sel).unwrap_err().to_string();
        assert!(
            e.contains("no `role_arn`, `bucket`, `application`, `deployment_group` were given. Pass --role-arn, --bucket"),
            "every missing setting at once: {e}"
        );
        assert!(!e.contains("env.cli") && !e.contains("`cli`"), "{e}");
    }

    fn select(path: &Path, env: &str) -> Selection {
        Selection { path: Some(path.to_path_buf()), env: Some(env.into()), ..Selection::default() }
    }

    #[test]
    fn resolves_a_complete_environment() {
        let (_d, path) = write(GOOD);
        let env = resolve(&select(&path, "production")).unwrap();
        assert_eq!(env.role.account, "222222222222");
        assert_eq!(env.prefix, "releases");
        assert_eq!(env.external_id.as_deref(), Some("ops-to-prod"));
        assert_eq!(env.deployment_config, None);
    }

    #[test]
    fn flags_override_the_file() {
        let (_d, path) = write(GOOD);
        let mut sel = select(&path, "production");
        sel.overrides.keys.bucket = Some("other-bucket".into());
        sel.overrides.keys.deployment_config = Some("CodeDeployDefault.AllAtOnce".into());
        let env = resolve(&sel).unwrap();
        assert_eq!(env.bucket, "other-bucket");
        assert_eq!(env.deployment_config.as_deref(), Some("CodeDeployDefault.AllAtOnce"));
    }

    #[test]
    fn unknown_key_is_named_in_the_error() {
        let (_d, path) = write(&GOOD.replace("prefix", "prefx"));
        let err = resolve(&select(&path, "production")).unwrap_err().to_string();
        assert!(err.contains("prefx"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn unknown_env_lists_the_defined_ones() {
        let (_d, path) = write(GOOD);
        let err = resolve(&select(&path, "prod")).unwrap_err().to_string();
        assert!(err.contains("`prod`") && err.contains("production"), "{err}");
    }

    #[test]
    fn missing_setting_names_key_and_flag() {
        let (_d, path) = write(&GOOD.replace("bucket = \"acme-prod-releases\"\n", ""));
        let err = resolve(&select(&path, "production")).unwrap_err().to_string();
        assert!(err.contains("`bucket`") && err.contains("--bucket"), "{err}");
    }

    #[test]
    fn explicit_config_path_must_exist() {
        let err = resolve(&select(Path::new("/nonexistent/ferry.toml"), "production")).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }));
    }

    #[test]
    fn invalid_bucket_names_are_refused() {
        for bad in ["s3://acme", "Acme-Releases", "ab", "acme_releases", "-acme", "acme..x"] {
            assert!(validate_bucket(bad).is_err(), "{bad} should be refused");
        }
        validate_bucket("acme-prod.releases-1").unwrap();
    }

    #[test]
    fn session_settings_default_to_an_hour_and_nothing_extra() {
        let (_d, path) = write(GOOD);
        let env = resolve(&select(&path, "production")).unwrap();
        assert_eq!(env.duration, std::time::Duration::from_secs(3600));
        assert_eq!(env.source_identity, None);
        assert!(!env.session_tags && !env.session_policy);
        assert!(env.role_chain.is_empty());
    }

    #[test]
    fn duration_accepts_seconds_and_lengths() {
        for (written, secs) in [("duration = 7200", 7200), ("duration = \"90m\"", 5400), ("duration = \"12h\"", 43200)] {
            let (_d, path) = write(&format!("{GOOD}{written}\n"));
            let env = resolve(&select(&path, "production")).unwrap();
            assert_eq!(env.duration.as_secs(), secs, "{written}");
        }
    }

    #[test]
    fn duration_outside_what_sts_issues_is_refused_with_the_range() {
        for written in ["duration = 60", "duration = \"13h\"", "duration = \"soon\""] {
            let (_d, path) = write(&format!("{GOOD}{written}\n"));
            let err = resolve(&select(&path, "production")).unwrap_err().to_string();
            assert!(err.contains("`duration`") && err.contains("900 to 43200"), "{written}: {err}");
        }
    }

    #[test]
    fn unsafe_session_seconds_overrides_the_floor_only_when_asked() {
        let (_d, path) = write(GOOD);
        let mut sel = select(&path, "production");
        sel.unsafe_session_seconds = Some(5);
        assert_eq!(resolve(&sel).unwrap().duration.as_secs(), 5);
        sel.unsafe_session_seconds = Some(0);
        assert!(resolve(&sel).is_err());
    }

    #[test]
    fn provenance_chain_and_policy_keys_are_read() {
        let extra = r#"source_identity = "build-user"
session_tags = true
session_policy = true
kms_key_id = "alias/releases"
role_chain = ["arn:aws:iam::333333333333:role/hub", "arn:aws:iam::222222222222:role/app-hop"]
"#;
        let (_d, path) = write(&format!("{GOOD}{extra}"));
        let env = resolve(&select(&path, "production")).unwrap();
        assert_eq!(env.source_identity.as_deref(), Some("build-user"));
        assert!(env.session_tags && env.session_policy);
        assert_eq!(env.kms_key_id.as_deref(), Some("alias/releases"));
        let names: Vec<&str> = env.role_chain.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["hub", "app-hop"]);
    }

    #[test]
    fn malformed_chain_role_is_named() {
        let (_d, path) = write(&format!("{GOOD}role_chain = [\"arn:aws:iam::1:role/x\"]\n"));
        let err = resolve(&select(&path, "production")).unwrap_err().to_string();
        assert!(err.contains("`role_chain`") && err.contains("not 12 digits"), "{err}");
    }

    #[test]
    fn source_identity_sts_would_refuse_is_refused() {
        for bad in ["x", "has space", "aws:me"] {
            assert!(validate_source_identity(bad).is_err(), "{bad}");
        }
        validate_source_identity("alice@example.com").unwrap();
    }

    #[test]
    fn metadata_cannot_override_ferrys_own_keys() {
        let err = validate_metadata(BTreeMap::from([("ferry-sha256".to_string(), "x".to_string())])).unwrap_err();
        assert!(err.to_string().contains("ferry's own"), "{err}");
        assert!(validate_metadata(BTreeMap::from([("Has Space".to_string(), "x".to_string())])).is_err());
    }

    #[test]
    fn more_than_ten_tags_are_refused() {
        let tags = (0..11).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(validate_tags(tags).unwrap_err().to_string().contains("at most 10 tags"));
    }

    /// Issue 18 item 9: names every other check passes, that S3 refuses.
    #[test]
    fn bucket_names_s3_reserves_or_forbids_are_refused() {
        for bad in [
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "bucket--x-s3",
            "sthree-x",
            "amzn-s3-demo-x",
            "b--ol-s3",
            "b.mrap",
            "b--table-s3",
        ] {
            assert!(validate_bucket(bad).is_err(), "{bad} passed");
        }
        for good in ["192.168.1.1a", "my-xn--bucket", "s3alias-first", "a.b.c", "ferry-prod-releases"] {
            assert!(validate_bucket(good).is_ok(), "{good} refused");
        }
    }

    /// Issue 18 item 5: the parse error quotes the broken line; the external
    /// id on it must not be in the message.
    #[test]
    fn external_id_is_redacted_from_toml_parse_errors() {
        for line in [
            "external_id = \"Tr0ub4dor-and-3",
            "external_id = \"Tr0ub4dor-and-3\" x",
            "\"external_id\" = 'Tr0ub4dor-and-3",
            "external_id = Tr0ub4dor-and-3",
        ] {
            let text = format!("[env.production]\nregion = \"us-east-1\"\n{line}\n");
            let (_dir, path) = write(&text);
            let err = resolve(&select(&path, "production")).unwrap_err().to_string();
            assert!(!err.contains("Tr0ub4dor"), "{line}: {err}");
            assert!(err.contains("(hidden)"), "{line}: {err}");
        }
    }

    #[test]
    fn a_config_that_is_not_utf8_is_blamed_on_its_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, b"[env.production]\n# caf\xe9\nregion = \"us-east-1\"\n").unwrap();
        let err = resolve(&select(&path, "production")).unwrap_err().to_string();
        assert!(err.contains("not UTF-8") && err.contains("line 2") && err.contains("0xe9"), "{err}");
        assert!(!err.contains("permissions"), "{err}");
    }

    #[test]
    fn external_id_is_never_echoed_in_errors() {
        let err = validate_external_id("has a space secret").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
