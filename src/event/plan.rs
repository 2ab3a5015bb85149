//! The plan `ferry plan` (and `ferry release --plan`) reports: what a
//! release changes against what the deployment group runs now. One typed
//! value, so the JSON renderer writes it as it is and the text renderer
//! lays it out; both are documented in docs/plan.md.

use serde::Serialize;

/// What a release would change in one environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReleasePlan {
    /// The `[env.NAME]` name (empty when only flags were given).
    pub environment: String,
    /// CodeDeploy application.
    pub application: String,
    /// CodeDeploy deployment group.
    pub deployment_group: String,
    /// The bundle this release would deploy.
    pub bundle: PlannedBundle,
    /// The deployment configuration the release would use.
    pub deployment_config: String,
    /// Where it comes from: `environment` (ferry.toml or the flag),
    /// `group` (the group's own) or `default` (CodeDeploy's).
    pub deployment_config_from: String,
    /// The group has no successful deployment: nothing runs there yet.
    pub first_release: bool,
    /// What the group runs now, from its last successful deployment.
    pub running: Option<RunningRevision>,
    /// Files added, removed and changed.
    pub files: FileChanges,
    /// Hook scripts added, removed and changed, per lifecycle event.
    pub hooks: HookChanges,
    /// The environment is marked `confirm = true`.
    pub confirm: bool,
    /// A Lambda environment's function and alias (its bundle is the
    /// function's code: no files or hooks to compare).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<Box<LambdaPlan>>,
}

/// What a Lambda release would do: publish the bundle as the function's
/// next version and move the alias onto it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LambdaPlan {
    /// The function.
    pub function: String,
    /// The alias whose traffic moves.
    pub alias: String,
    /// The version the alias points at now.
    pub alias_version: String,
    /// That version's `CodeSha256` (base64, as Lambda writes it).
    pub alias_code_sha256: String,
    /// The new bundle's SHA-256 as Lambda would write it.
    pub new_code_sha256: String,
    /// The alias already runs this code: Lambda publishes no new version
    /// and the deployment moves no traffic.
    pub code_unchanged: bool,
    /// Hook function by lifecycle event, in the order CodeDeploy runs them.
    pub hooks: Vec<LambdaHook>,
}

/// A hook function of a Lambda deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LambdaHook {
    /// BeforeAllowTraffic or AfterAllowTraffic.
    pub event: String,
    /// The function CodeDeploy invokes.
    pub function: String,
}

/// The bundle a release would deploy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlannedBundle {
    /// Local path.
    pub path: String,
    /// `zip`, `tar` or `tgz`.
    pub bundle_type: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Files in it (directories not counted).
    pub files: usize,
}

/// The revision the group runs, and who put it there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunningRevision {
    /// The group's last successful deployment.
    pub deployment_id: String,
    /// Its revision, `s3://bucket/key` (empty when not in S3).
    pub revision: String,
    /// `user`, `autoscaling`, `codeDeployRollback`.
    pub creator: String,
    /// The deployment's description (ferry's names the build and session).
    pub description: Option<String>,
    /// When it was created, UTC.
    pub created_at: Option<String>,
    /// When it ended, UTC.
    pub completed_at: Option<String>,
    /// Instances it deployed to.
    pub instances: Option<i64>,
    /// How the running bundle's file list was read.
    pub read: Option<RangedRead>,
}

/// What reading the running bundle's central directory cost: ranged GETs
/// only, never the whole object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RangedRead {
    /// Ranged GetObject requests made.
    pub requests: u32,
    /// Bytes they returned.
    pub bytes: u64,
    /// The object's size.
    pub object_size: u64,
}

/// Files of the new bundle against the running one, by path, size and CRC-32.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FileChanges {
    /// Whether the running bundle's file list could be read; on a first
    /// release every file is `added`.
    pub compared: bool,
    /// Why not, when it could not.
    pub not_compared: Option<String>,
    /// In the new bundle only.
    pub added: Vec<PlannedFile>,
    /// In the running bundle only.
    pub removed: Vec<PlannedFile>,
    /// In both, with another size or CRC-32.
    pub changed: Vec<ChangedFile>,
    /// In both, the same.
    pub unchanged: usize,
}

/// One file of a bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    /// Path in the bundle.
    pub path: String,
    /// Uncompressed bytes.
    pub size: u64,
    /// CRC-32, 8 hex digits.
    pub crc32: String,
}

/// A file in both bundles that differs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    /// Path in the bundle.
    pub path: String,
    /// Its size in the running bundle.
    pub old_size: u64,
    /// Its size in the new one.
    pub new_size: u64,
    /// CRC-32 in the running bundle.
    pub old_crc32: String,
    /// CRC-32 in the new one.
    pub new_crc32: String,
}

/// The appspec's hooks, new against running.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HookChanges {
    /// Whether the running appspec could be read.
    pub compared: bool,
    /// Why not, when it could not.
    pub not_compared: Option<String>,
    /// Each lifecycle event with a change, in lifecycle order.
    pub events: Vec<HookEventChange>,
}

/// The scripts of one lifecycle event that differ.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HookEventChange {
    /// `BeforeInstall`, `ApplicationStart`, …
    pub event: String,
    /// Script locations only the new appspec runs.
    pub added: Vec<String>,
    /// Script locations only the running appspec runs.
    pub removed: Vec<String>,
    /// Scripts in both whose file, timeout or runas changed.
    pub changed: Vec<String>,
}
