//! `ferry.toml`: named environments, merged with command-line overrides into
//! one validated [`Environment`].
//!
//! Everything here runs before any AWS call, so a typo in a key, a missing
//! bucket or a malformed role ARN stops ferry with exit code 1 and nothing
//! sent anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::assume::RoleArn;

/// The file ferry looks for in the working directory when neither `--config`
/// nor `FERRY_CONFIG` names one.
pub const DEFAULT_FILE: &str = "ferry.toml";

/// One `[env.NAME]` table as written in ferry.toml. Every key is optional here
/// because a flag may supply it; [`resolve`] checks what is still missing.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    /// IAM role to assume in the target account.
    pub role_arn: Option<String>,
    /// External ID the role's trust policy requires, if any.
    pub external_id: Option<String>,
    /// AWS region of the bucket and the CodeDeploy application.
    pub region: Option<String>,
    /// S3 bucket that receives bundles.
    pub bucket: Option<String>,
    /// Key prefix inside the bucket.
    pub prefix: Option<String>,
    /// CodeDeploy application name.
    pub application: Option<String>,
    /// CodeDeploy deployment group name.
    pub deployment_group: Option<String>,
    /// CodeDeploy deployment configuration; the group's own when unset.
    pub deployment_config: Option<String>,
    /// KMS key (id, alias or ARN) to encrypt bundles with (SSE-KMS); the
    /// bucket's default encryption when unset.
    pub kms_key_id: Option<String>,
    /// S3 object tags for uploaded bundles (`[env.NAME.tags]`).
    pub tags: Option<BTreeMap<String, String>>,
    /// Extra S3 user metadata for uploaded bundles (`[env.NAME.metadata]`);
    /// ferry's own `ferry-*` keys cannot be overridden.
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    #[serde(default)]
    env: BTreeMap<String, EnvSettings>,
}

/// A fully resolved, validated target environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    /// The environment's name (`production`), or `cli` when only flags were given.
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
    /// SSE-KMS key for uploaded bundles.
    pub kms_key_id: Option<String>,
    /// Object tags for uploaded bundles.
    pub tags: BTreeMap<String, String>,
    /// Extra user metadata for uploaded bundles.
    pub metadata: BTreeMap<String, String>,
}

/// Where the configuration comes from and which environment to take.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// `--config` / `FERRY_CONFIG`: this file must exist.
    pub path: Option<PathBuf>,
    /// `--env`.
    pub env: Option<String>,
    /// Command-line values that win over the file.
    pub overrides: EnvSettings,
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
    /// The config file is not valid TOML or has an unknown key.
    #[error("config file {} is invalid: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line and column.
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
        "environment `{env}` is not defined in {}. Defined environments: {}. Add an [env.{env}] table or pick one of those.",
        path.display(),
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    UnknownEnv {
        /// The name asked for.
        env: String,
        /// The file searched.
        path: PathBuf,
        /// The environments the file defines.
        known: Vec<String>,
    },
    /// A required setting has no value from the file or the flags.
    #[error(
        "environment `{env}` has no `{key}`. Add `{key} = \"...\"` under [env.{env}] in ferry.toml, or pass --{flag}."
    )]
    Missing {
        /// The environment.
        env: String,
        /// The ferry.toml key.
        key: &'static str,
        /// The equivalent flag.
        flag: String,
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

/// Reads the configuration file (if any) and merges the selected environment
/// with the overrides.
pub fn resolve(sel: &Selection) -> Result<Environment, ConfigError> {
    let (path, must_exist) = match &sel.path {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_FILE), false),
    };
    let file = match std::fs::read_to_string(&path) {
        Ok(text) => Some(parse(&path, &text)?),
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
                return Err(ConfigError::UnknownEnv {
                    env: env.clone(),
                    path,
                    known: file.env.keys().cloned().collect(),
                });
            }
        },
        (Some(file), None) if !file.env.is_empty() => {
            return Err(ConfigError::NoEnvSelected { known: file.env.keys().cloned().collect() });
        }
        (Some(_), None) => ("cli".to_string(), EnvSettings::default()),
        (None, Some(env)) => return Err(ConfigError::NoFile { env: env.clone() }),
        (None, None) => ("cli".to_string(), EnvSettings::default()),
    };
    merge(name, from_file, &sel.overrides)
}

/// Parses ferry.toml text. Unknown keys are errors, named with their line.
pub fn parse_file(path: &Path, text: &str) -> Result<BTreeMap<String, EnvSettings>, ConfigError> {
    parse(path, text).map(|f| f.env)
}

fn parse(path: &Path, text: &str) -> Result<FileSettings, ConfigError> {
    toml::from_str::<FileSettings>(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

fn merge(name: String, file: EnvSettings, flags: &EnvSettings) -> Result<Environment, ConfigError> {
    let pick = |flag: &Option<String>, file: Option<String>| flag.clone().or(file).filter(|v| !v.is_empty());
    let required = |key: &'static str, v: Option<String>| {
        v.ok_or_else(|| ConfigError::Missing { env: name.clone(), key, flag: key.replace('_', "-") })
    };

    let role_arn = required("role_arn", pick(&flags.role_arn, file.role_arn))?;
    let role = RoleArn::parse(&role_arn).map_err(|reason| ConfigError::Invalid {
        key: "role_arn",
        value: role_arn.clone(),
        reason,
    })?;
    let region = required("region", pick(&flags.region, file.region))?;
    validate_region(&region)?;
    let bucket = required("bucket", pick(&flags.bucket, file.bucket))?;
    validate_bucket(&bucket)?;
    let prefix = pick(&flags.prefix, file.prefix).unwrap_or_default();
    let prefix = prefix.trim_matches('/').to_string();
    let application = required("application", pick(&flags.application, file.application))?;
    let deployment_group = required("deployment_group", pick(&flags.deployment_group, file.deployment_group))?;
    let external_id = pick(&flags.external_id, file.external_id);
    if let Some(id) = &external_id {
        validate_external_id(id)?;
    }
    Ok(Environment {
        name,
        role,
        external_id,
        region,
        bucket,
        prefix,
        application,
        deployment_group,
        deployment_config: pick(&flags.deployment_config, file.deployment_config),
        kms_key_id: pick(&flags.kms_key_id, file.kms_key_id),
        tags: validate_tags(file.tags.unwrap_or_default())?,
        metadata: validate_metadata(file.metadata.unwrap_or_default())?,
    })
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
        reason: format!("{reason} S3 bucket names are 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."),
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
    Ok(())
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
    let ok = (2..=1224).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
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
kms_key_id = "alias/releases"

[env.production.tags]
team = "web"

[env.production.metadata]
change = "CHG-1"
"#;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn select(path: &Path, env: &str) -> Selection {
        Selection { path: Some(path.to_path_buf()), env: Some(env.into()), overrides: EnvSettings::default() }
    }

    #[test]
    fn resolves_a_complete_environment() {
        let (_d, path) = write(GOOD);
        let env = resolve(&select(&path, "production")).unwrap();
        assert_eq!(env.role.account, "222222222222");
        assert_eq!(env.prefix, "releases");
        assert_eq!(env.external_id.as_deref(), Some("ops-to-prod"));
        assert_eq!(env.deployment_config, None);
        assert_eq!(env.kms_key_id.as_deref(), Some("alias/releases"));
        assert_eq!(env.tags.get("team").map(String::as_str), Some("web"));
        assert_eq!(env.metadata.get("change").map(String::as_str), Some("CHG-1"));
    }

    #[test]
    fn flags_override_the_file() {
        let (_d, path) = write(GOOD);
        let mut sel = select(&path, "production");
        sel.overrides.bucket = Some("other-bucket".into());
        sel.overrides.deployment_config = Some("CodeDeployDefault.AllAtOnce".into());
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

    #[test]
    fn external_id_is_never_echoed_in_errors() {
        let err = validate_external_id("has a space secret").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
