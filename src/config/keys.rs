//! Every key of an `[env.NAME]` table, listed once. [`env_keys!`] makes of
//! the list the file's table ([`EnvSettings`]), the layering of flags over
//! the file ([`EnvSettings::or`]) and the table of keys ([`KEYS`]) that
//! did-you-mean, secret redaction, the command line's flags (a test in
//! `cli.rs`) and docs/configuration.md (a test here) are held to. Adding a
//! key is one entry here (and its use, where it is used).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{AlarmOverride, DurationSetting, FileExistsBehavior, TargetInstances};

/// One `[env.NAME]` key as [`KEYS`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// The ferry.toml key.
    pub name: &'static str,
    /// Whether a command-line flag of the same name (`_` → `-`) sets it too.
    pub flag: bool,
    /// Whether its value is a secret: never echoed, not even in a parse
    /// error's excerpt of the line.
    pub secret: bool,
}

impl Key {
    /// The flag that sets this key, as `ConfigError::Missing` names it.
    pub fn flag_name(&self) -> String {
        self.name.replace('_', "-")
    }
}

/// Declares the keys: for each, its doc comment, its name and type as
/// ferry.toml writes it, and whether a flag sets it (`flag`) or it is a
/// secret (`secret`).
macro_rules! env_keys {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty $([$($attr:ident),*])? ;)*) => {
        /// One `[env.NAME]` table as written in ferry.toml. Every key is
        /// optional here because a flag may supply it; `resolve` checks
        /// what is still missing.
        #[derive(Clone, Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct EnvSettings {
            $( $(#[doc = $doc])* pub $name: Option<$ty>, )*
        }

        impl EnvSettings {
            /// Each of `self`'s keys that is set, else `under`'s: flags over the file.
            pub fn or(self, under: EnvSettings) -> EnvSettings {
                EnvSettings { $( $name: self.$name.or(under.$name), )* }
            }
        }

        /// Every `[env.NAME]` key, in the order docs/configuration.md lists them.
        pub const KEYS: &[Key] = &[
            $( Key {
                name: stringify!($name),
                flag: env_keys!(@has flag $($($attr)*)?),
                secret: env_keys!(@has secret $($($attr)*)?),
            }, )*
        ];
    };
    (@has $want:ident) => { false };
    (@has flag flag $($rest:ident)*) => { true };
    (@has secret secret $($rest:ident)*) => { true };
    (@has $want:ident $other:ident $($rest:ident)*) => { env_keys!(@has $want $($rest)*) };
}

env_keys! {
    /// IAM role to assume in the target account.
    role_arn: String [flag];
    /// External ID the role's trust policy requires, if any.
    external_id: String [flag, secret];
    /// AWS region of the bucket and the CodeDeploy application.
    region: String [flag];
    /// S3 bucket that receives bundles.
    bucket: String [flag];
    /// Key prefix inside the bucket.
    prefix: String [flag];
    /// CodeDeploy application name.
    application: String [flag];
    /// CodeDeploy deployment group name.
    deployment_group: String [flag];
    /// CodeDeploy deployment configuration; the group's own when unset.
    deployment_config: String [flag];
    /// `ferry release` shows the plan and asks for the environment's name
    /// on a terminal, and refuses without one unless `--yes`.
    confirm: bool;
    /// Lifetime of each set of assumed credentials: seconds or `1h`, `90m`
    /// (900-43200; 3600 when unset). The SDK refreshes before expiry.
    duration: DurationSetting;
    /// `SourceIdentity` to set on the session (the role's trust policy must
    /// allow `sts:SetSourceIdentity`). `"build-user"` means the build user
    /// (`BUILD_USER_ID`, else `$USER`).
    source_identity: String;
    /// Tag the session with job, build number, commit and user (the trust
    /// policy must allow `sts:TagSession`).
    session_tags: bool;
    /// The role session name CloudTrail shows, instead of Jenkins'
    /// `BUILD_TAG` (mapped onto STS's alphabet; over 64 characters it keeps
    /// its start and end around a hash of the middle).
    session_name: String [flag];
    /// Roles assumed in order before `role_arn`, each with the previous
    /// hop's credentials (ops → hub → app).
    role_chain: Vec<String>;
    /// Scope the session down with an inline policy ferry generates from
    /// this environment (bucket/prefix, application, group).
    session_policy: bool;
    /// KMS key the bucket's default encryption uses (SSE-KMS), for the
    /// generated policies and `ferry doctor`; uploads also request SSE-KMS
    /// with it explicitly.
    kms_key_id: String;
    /// S3 object tags for uploaded bundles (`[env.NAME.tags]`).
    tags: BTreeMap<String, String>;
    /// Extra S3 user metadata for uploaded bundles (`[env.NAME.metadata]`);
    /// ferry's own `ferry-*` keys cannot be overridden.
    metadata: BTreeMap<String, String>;
    /// CreateDeployment `fileExistsBehavior`: DISALLOW, OVERWRITE or RETAIN.
    file_exists_behavior: FileExistsBehavior [flag];
    /// CreateDeployment `ignoreApplicationStopFailures`.
    ignore_application_stop_failures: bool [flag];
    /// CreateDeployment `targetInstances` (`[env.NAME.target_instances]`).
    target_instances: TargetInstances [flag];
    /// CreateDeployment `updateOutdatedInstancesOnly`.
    update_outdated_instances_only: bool [flag];
    /// Text put before ferry's own deployment description.
    description: String [flag];
    /// CreateDeployment `overrideAlarmConfiguration`
    /// (`[env.NAME.override_alarm_configuration]`).
    override_alarm_configuration: AlarmOverride;
    /// The CodeDeploy compute platform: `"Server"` (EC2/on-premises, the
    /// default), `"Lambda"` (`function_name` set implies it) or `"ECS"`.
    compute_platform: String;
    /// Lambda: the function whose code a release publishes.
    function_name: String;
    /// Lambda: the alias whose traffic the deployment moves.
    function_alias: String;
    /// Lambda and ECS: hook functions (Lambda functions) by lifecycle event
    /// (`[env.NAME.lambda_hooks]`, `BeforeAllowTraffic = "fn"`).
    lambda_hooks: BTreeMap<String, String>;
    /// ECS: the service's cluster; the deployment group's `ecsServices`
    /// otherwise.
    ecs_cluster: String;
    /// ECS: the service whose task sets the deployment replaces; the
    /// deployment group's `ecsServices` otherwise.
    ecs_service: String;
    /// ECS: the container whose image `--image` replaces and that takes the
    /// traffic; the one the service's load balancer names otherwise.
    container_name: String;
    /// ECS: the container port the load balancer sends traffic to; the
    /// service's load balancer's otherwise.
    container_port: u16;
    /// ECS: a task definition kept in the repo (`taskdef.json`, as
    /// RegisterTaskDefinition takes it) instead of the service's current one.
    task_definition: PathBuf;
    /// Keyless first hop: the file holding an OIDC token (Jenkins' OpenID
    /// Connect Provider plugin); the standard `AWS_WEB_IDENTITY_TOKEN_FILE`
    /// otherwise.
    web_identity_token_file: PathBuf [flag];
    /// The role the token is exchanged for; `AWS_ROLE_ARN` otherwise. When it
    /// is `role_arn` itself, no further AssumeRole is made.
    web_identity_role_arn: String [flag];
    /// The OIDC issuer the token must come from (`ferry doctor` checks it;
    /// `ferry policy trust` trusts it).
    oidc_issuer: String;
    /// The audience the token must carry (`sts.amazonaws.com` by convention).
    oidc_audience: String;
}

/// The names of every key, for did-you-mean.
pub fn names() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// Whether `key` (as written in a file, perhaps misspelt) holds a secret:
/// a secret key, or anything that looks like one (`externl_id`,
/// `aws_secret`), since an unknown-key error quotes it just the same.
pub fn looks_secret(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    KEYS.iter().any(|k| k.secret && k.name == key)
        || (!lower.ends_with("_file") && ["extern", "secret", "token", "password"].iter().any(|w| lower.contains(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[env.NAME]` keys docs/configuration.md's tables document, from
    /// `## Keys` up to the waves: `| \`key\` |` and `| \`[env.NAME.key]\` |` rows.
    fn documented() -> Vec<String> {
        let doc = include_str!("../../docs/configuration.md");
        let keys = doc.split("\n## Keys").nth(1).expect("docs/configuration.md has a ## Keys section");
        let keys = keys.split("\n## ").next().unwrap_or(keys);
        keys.lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .map(|k| k.strip_prefix("[env.NAME.").and_then(|k| k.strip_suffix(']')).unwrap_or(k).to_string())
            .collect()
    }

    #[test]
    fn docs_configuration_lists_exactly_the_keys_ferry_reads() {
        let documented = documented();
        let declared: Vec<String> = names().map(String::from).collect();
        let mut missing: Vec<&String> = declared.iter().filter(|k| !documented.contains(k)).collect();
        let mut unknown: Vec<&String> = documented.iter().filter(|k| !declared.contains(k)).collect();
        missing.sort();
        unknown.sort();
        assert!(missing.is_empty(), "keys ferry reads but docs/configuration.md does not document: {missing:?}");
        assert!(unknown.is_empty(), "keys docs/configuration.md documents but ferry does not read: {unknown:?}");
    }

    #[test]
    fn every_key_is_read_from_a_file() {
        let mut text = String::new();
        for k in KEYS {
            let value = match k.name {
                "duration" => "3600".to_string(),
                "session_tags"
                | "session_policy"
                | "ignore_application_stop_failures"
                | "update_outdated_instances_only"
                | "confirm" => "true".into(),
                "role_chain" => "[]".into(),
                "container_port" => "8080".into(),
                "tags" | "metadata" | "lambda_hooks" => "{}".into(),
                "file_exists_behavior" => "\"RETAIN\"".into(),
                "target_instances" => "{ auto_scaling_groups = [\"asg\"] }".into(),
                "override_alarm_configuration" => "{ enabled = false }".into(),
                _ => "\"x\"".into(),
            };
            text.push_str(&format!("{} = {value}\n", k.name));
        }
        let parsed: EnvSettings = toml::from_str(&text).unwrap();
        assert!(parsed.duration.is_some() && parsed.oidc_audience.is_some() && parsed.override_alarm_configuration.is_some());
    }

    #[test]
    fn flags_win_over_the_file_key_by_key() {
        let file = EnvSettings { region: Some("eu-west-1".into()), bucket: Some("file".into()), ..Default::default() };
        let flags = EnvSettings { bucket: Some("flag".into()), ..Default::default() };
        let both = flags.or(file);
        assert_eq!(both.bucket.as_deref(), Some("flag"));
        assert_eq!(both.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn external_id_is_the_secret_and_lookalikes_count_too() {
        let secrets: Vec<&str> = KEYS.iter().filter(|k| k.secret).map(|k| k.name).collect();
        assert_eq!(secrets, ["external_id"]);
        assert!(looks_secret("externl_id") && looks_secret("aws_secret") && !looks_secret("web_identity_token_file"));
        assert!(!looks_secret("bucket"));
    }
}
