//! The emulator's domain types. Members that appear on the wire carry the
//! service's exact names so they serialise straight into responses.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Seconds since the epoch, the JSON 1.1 protocol's timestamp format.
pub type Timestamp = f64;

/// The current time as a protocol timestamp (millisecond precision, as AWS).
pub fn now() -> Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// Where a revision lives. Only S3 revisions can be deployed by the emulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RevisionLocation {
    /// `S3`, `GitHub`, `String` or `AppSpecContent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_type: Option<String>,
    /// The S3 object holding the bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_location: Option<S3Location>,
    /// GitHub location; accepted for round-tripping, never deployable here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_hub_location: Option<Value>,
    /// An appspec given inline (`content`, `sha256`): how Lambda deployments
    /// name their function and versions here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_spec_content: Option<Value>,
}

/// An S3 bundle location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// Bucket name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Object key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `zip`, `tar` or `tgz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_type: Option<String>,
    /// Object version id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Expected ETag; the download is conditional on it.
    #[serde(rename = "eTag", skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
}

impl RevisionLocation {
    /// A stable identity used to find the registered revision again.
    pub fn identity(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `s3://bucket/key` for messages.
    pub fn describe(&self) -> String {
        match &self.s3_location {
            Some(s3) => format!("s3://{}/{}", s3.bucket.as_deref().unwrap_or(""), s3.key.as_deref().unwrap_or("")),
            None => format!("{} revision", self.revision_type.as_deref().unwrap_or("unknown")),
        }
    }
}

/// Which events trigger an automatic rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AutoRollbackConfiguration {
    /// Whether automatic rollback is on.
    #[serde(default)]
    pub enabled: bool,
    /// `DEPLOYMENT_FAILURE`, `DEPLOYMENT_STOP_ON_ALARM`, `DEPLOYMENT_STOP_ON_REQUEST`.
    #[serde(default)]
    pub events: Vec<String>,
}

impl AutoRollbackConfiguration {
    /// Whether this configuration rolls back on `event`.
    pub fn covers(&self, event: &str) -> bool {
        self.enabled && self.events.iter().any(|e| e == event)
    }
}

/// A deployment's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    /// Accepted, not yet started.
    Created,
    /// Waiting for another deployment.
    Queued,
    /// Instances are being deployed to.
    InProgress,
    /// Blue/green only; never produced here.
    Baking,
    /// Every instance needed succeeded.
    Succeeded,
    /// Too many instances failed.
    Failed,
    /// Stopped on request.
    Stopped,
    /// Blue/green: the replacement is installed and waits for
    /// ContinueDeployment to reroute traffic.
    Ready,
}

impl DeploymentStatus {
    /// Whether the deployment has finished.
    pub fn is_complete(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }
}

/// The status of one instance (a deployment target) or one lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetStatus {
    /// Not started.
    Pending,
    /// Running.
    InProgress,
    /// Done and healthy.
    Succeeded,
    /// Done and unhealthy.
    Failed,
    /// Never attempted because the deployment ended first.
    Skipped,
    /// Blue/green: installed on a replacement instance, waiting for traffic.
    Ready,
    /// Unknown.
    Unknown,
}

/// Why a lifecycle event failed, as reported by the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostics {
    /// `ScriptFailed`, `ScriptTimedOut`, `ScriptMissing`, `UnknownError`, ...
    pub error_code: String,
    /// The hook script location of a failed script; empty otherwise.
    pub script_name: String,
    /// What went wrong (`Succeeded` on success).
    pub message: String,
    /// The agent's log of the event (see [`crate::hooks::ScriptLog`]) when a
    /// script failed; empty otherwise.
    pub log_tail: String,
}

/// One lifecycle event of one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEvent {
    /// e.g. `DownloadBundle`.
    pub lifecycle_event_name: String,
    /// Event status.
    pub status: TargetStatus,
    /// When it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// Failure details (also present, with `Success` and empty script name
    /// and log, on succeeded events; absent on skipped ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Diagnostics>,
}

/// The in-place lifecycle events, in the order the agent runs them.
pub const LIFECYCLE_EVENTS: [&str; 7] =
    ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"];

/// The events that move traffic onto an instance, in order. AWS's
/// "Lifecycle event hook availability" table runs them on a blue/green
/// deployment's replacement instances, after the install events, and on the
/// original instances of a blue/green rollback.
pub const ALLOW_TRAFFIC_EVENTS: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

/// The events that take traffic off an instance, in order: a blue/green
/// deployment's original instances, and the replacement instances of its
/// rollback (the same table).
pub const BLOCK_TRAFFIC_EVENTS: [&str; 3] = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];

/// Every event name a target may show, for validating fault tags.
pub fn all_event_names() -> impl Iterator<Item = &'static str> {
    LIFECYCLE_EVENTS.into_iter().chain(ALLOW_TRAFFIC_EVENTS).chain(BLOCK_TRAFFIC_EVENTS).chain(crate::ecs::EVENTS)
}

/// Which environment of a blue/green deployment a target belongs to
/// (`instanceLabel`); every in-place target is `Blue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Label {
    /// The original environment.
    Blue,
    /// The replacement environment.
    Green,
}

impl Label {
    /// The label's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Blue => "Blue",
            Label::Green => "Green",
        }
    }
}

/// One instance's part in a deployment.
#[derive(Debug, Clone)]
pub struct InstanceRun {
    /// EC2 instance id; also the deployment target id.
    pub instance_id: String,
    /// Instance status.
    pub status: TargetStatus,
    /// Last change.
    pub last_updated: Timestamp,
    /// Its lifecycle events.
    pub events: Vec<LifecycleEvent>,
    /// Blue (original) or Green (replacement).
    pub label: Label,
}

impl InstanceRun {
    /// A pending in-place instance with all events pending.
    pub fn new(instance_id: String) -> Self {
        Self::with_events(instance_id, Label::Blue, &LIFECYCLE_EVENTS)
    }

    /// A pending instance that runs `events`, labelled `label`.
    pub fn with_events(instance_id: String, label: Label, events: &[&str]) -> Self {
        Self {
            instance_id,
            status: TargetStatus::Pending,
            last_updated: now(),
            label,
            events: events
                .iter()
                .map(|name| LifecycleEvent {
                    lifecycle_event_name: name.to_string(),
                    status: TargetStatus::Pending,
                    start_time: None,
                    end_time: None,
                    diagnostics: None,
                })
                .collect(),
        }
    }
}

/// The service-level reason a deployment failed or stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorInformation {
    /// An `ErrorCode` such as `HEALTH_CONSTRAINTS`.
    pub code: String,
    /// Message.
    pub message: String,
}

/// Links between a deployment and its rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RollbackInfo {
    /// On the rolled-back deployment: the rollback deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
    /// On the rollback deployment: the deployment it rolls back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_triggering_deployment_id: Option<String>,
    /// Why a rollback did or did not happen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_message: Option<String>,
}

/// A pointer to a group's last successful / attempted deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastDeploymentInfo {
    /// Deployment id.
    pub deployment_id: String,
    /// Its status when recorded.
    pub status: DeploymentStatus,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// When it was created.
    pub create_time: Timestamp,
}

/// An application.
#[derive(Debug, Clone)]
pub struct Application {
    /// Generated id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Creation time.
    pub create_time: Timestamp,
    /// `Server` (the only platform the emulator runs).
    pub compute_platform: String,
}

/// A deployment group and the simulated instances behind it.
#[derive(Debug, Clone)]
pub struct DeploymentGroup {
    /// Generated id.
    pub id: String,
    /// Owning application.
    pub application_name: String,
    /// Name.
    pub name: String,
    /// Default deployment config.
    pub deployment_config_name: String,
    /// Group-level rollback settings.
    pub auto_rollback: Option<AutoRollbackConfiguration>,
    /// The instances the group resolves to.
    pub instances: Vec<String>,
    /// Tags given at creation (used for emulator settings).
    pub tags: BTreeMap<String, String>,
    /// Input members the emulator does not model, echoed back as given.
    pub echoed: serde_json::Map<String, Value>,
    /// Revision of the last attempted deployment.
    pub target_revision: Option<RevisionLocation>,
    /// Last successful deployment.
    pub last_successful: Option<LastDeploymentInfo>,
    /// Last attempted deployment.
    pub last_attempted: Option<LastDeploymentInfo>,
    /// Revision of the last successful deployment (what rollbacks restore).
    pub last_successful_revision: Option<RevisionLocation>,
    /// Set when the group's `deploymentStyle` is BLUE_GREEN (EC2).
    pub blue_green: Option<BlueGreenConfig>,
    /// Set for a group of an ECS application.
    pub ecs: Option<EcsGroup>,
    /// `Server` or `Lambda`: its application's.
    pub compute_platform: String,
}

/// A Lambda deployment's function and versions (from its appspec) and where
/// its traffic and hooks stand.
#[derive(Debug, Clone, Default)]
pub struct LambdaRun {
    /// The function.
    pub function: String,
    /// The alias whose traffic moves.
    pub alias: String,
    /// The version the alias points at before.
    pub current: String,
    /// The version it points at after.
    pub target: String,
    /// (lifecycle event, hook function), in the appspec's order.
    pub hooks: Vec<(String, String)>,
    /// The target version's share of the alias's traffic, 0 to 1.
    pub target_weight: f64,
    /// A rollback: the alias goes back all at once, no hooks run.
    pub rollback: bool,
}

/// One invocation of a hook function (Lambda or ECS deployments), waiting
/// for its status.
#[derive(Debug, Clone, PartialEq)]
pub struct HookExecution {
    /// The lifecycle event it hooks, e.g. `BeforeAllowTraffic`.
    pub event: String,
    /// The hook function.
    pub function: String,
    /// What PutLifecycleEventHookExecutionStatus reported, if it did.
    pub status: Option<String>,
}

/// An ECS group's service, its load balancer's target groups and listeners,
/// and its blue/green waits.
#[derive(Debug, Clone, PartialEq)]
pub struct EcsGroup {
    /// `ecsServices[0].clusterName`.
    pub cluster: String,
    /// `ecsServices[0].serviceName`.
    pub service: String,
    /// The two target group names of `targetGroupPairInfoList[0]`, in order:
    /// the first serves the original task set, the second the replacement.
    pub target_groups: [String; 2],
    /// Whether the pair names a test listener (`testTrafficRoute`).
    pub test_listener: bool,
    /// The group's `loadBalancerInfo` as sent.
    pub load_balancer_info: Value,
    /// Its `blueGreenDeploymentConfiguration`.
    pub config: BlueGreenConfig,
}

/// What an ECS appspec names (`Resources` → `TargetService`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EcsAppSpec {
    /// `Properties.TaskDefinition`: the replacement task set's.
    pub task_definition: String,
    /// `LoadBalancerInfo.ContainerName`.
    pub container_name: String,
    /// `LoadBalancerInfo.ContainerPort`.
    pub container_port: i32,
    /// `PlatformVersion`, if given.
    pub platform_version: Option<String>,
    /// `NetworkConfiguration.AwsvpcConfiguration`, if given (as JSON).
    pub awsvpc: Option<Value>,
    /// (lifecycle event, hook function), in the appspec's order.
    pub hooks: Vec<(String, String)>,
}

/// One task set of an ECS deployment, as `taskSetsInfo` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSetRun {
    /// The task set's ARN in ECS.
    pub arn: String,
    /// Its id (`ecs-svc/…`): `identifer` on the wire.
    pub id: String,
    /// Its task count (the service's desired count at full scale).
    pub desired_count: i64,
    /// `PRIMARY`, `ACTIVE` or `DRAINING`.
    pub status: String,
    /// Its share of production traffic, 0 to 100.
    pub traffic_weight: f64,
    /// The target group it is registered with.
    pub target_group: String,
    /// Blue (original) or Green (replacement).
    pub label: Label,
}

/// An ECS deployment: the group's service, the appspec, and the two task
/// sets as they stand.
#[derive(Debug, Clone)]
pub struct EcsRun {
    /// The group's ECS settings when the deployment was created.
    pub group: EcsGroup,
    /// The appspec, once read.
    pub appspec: Option<EcsAppSpec>,
    /// The original task set (found or stood up when the deployment starts).
    pub original: Option<TaskSetRun>,
    /// The replacement task set (created by Install).
    pub replacement: Option<TaskSetRun>,
    /// A rollback: traffic goes back to `original`, `replacement` is removed.
    pub rollback: bool,
    /// ContinueDeployment READY_WAIT arrived.
    pub continue_ready: bool,
    /// ContinueDeployment TERMINATION_WAIT arrived.
    pub continue_termination: bool,
    /// The wait before the original task set is removed has begun.
    pub termination_wait_started: bool,
}

/// A blue/green group's `blueGreenDeploymentConfiguration`, as sent and as
/// the engine reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreenConfig {
    /// The configuration as given (echoed in the group and deployment infos).
    pub raw: Value,
    /// `deploymentReadyOption.actionOnTimeout` is STOP_DEPLOYMENT: the
    /// deployment stands Ready until ContinueDeployment, or is Stopped when
    /// the wait runs out.
    pub stop_when_ready: bool,
    /// `deploymentReadyOption.waitTimeInMinutes`.
    pub ready_wait_minutes: u64,
    /// `terminateBlueInstancesOnDeploymentSuccess.action` is TERMINATE.
    pub terminate_blue: bool,
    /// `terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes`.
    pub termination_wait_minutes: u64,
}

/// What a blue/green deployment deploys to and where it stands in its waits.
#[derive(Debug, Clone)]
pub struct BlueGreenRun {
    /// The group's configuration when the deployment was created.
    pub config: BlueGreenConfig,
    /// The group's `loadBalancerInfo`, echoed in `deploymentInfo`.
    pub load_balancer_info: Option<Value>,
    /// The original environment: the group's instances.
    pub blue: Vec<String>,
    /// The replacement environment: found by the deployment's `targetInstances`.
    pub green: Vec<String>,
    /// A rollback: traffic goes back to `blue` and off `green`; nothing is installed.
    pub rollback: bool,
    /// ContinueDeployment READY_WAIT arrived.
    pub continue_ready: bool,
    /// ContinueDeployment TERMINATION_WAIT arrived.
    pub continue_termination: bool,
    /// Traffic is on the replacement and the wait before terminating the
    /// originals has begun (`instanceTerminationWaitTimeStarted`).
    pub termination_wait_started: bool,
}

/// Minimum healthy hosts of a deployment config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinimumHealthyHosts {
    /// `HOST_COUNT`, `FLEET_PERCENT` (or `MOST_CONCURRENCY` for OneAtATime).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The value. Absent means 0: the SDKs leave out zero-valued numbers.
    #[serde(default)]
    pub value: i64,
}

/// A deployment configuration.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// Generated id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Health rule (Server configs).
    pub minimum_healthy_hosts: MinimumHealthyHosts,
    /// Creation time.
    pub create_time: Timestamp,
    /// `Server` or `Lambda`.
    pub compute_platform: String,
    /// How a Lambda config moves traffic (`trafficRoutingConfig`).
    pub traffic_routing: Option<Value>,
}

/// A registered application revision.
#[derive(Debug, Clone)]
pub struct RegisteredRevision {
    /// Where it lives.
    pub location: RevisionLocation,
    /// Description given at registration.
    pub description: Option<String>,
    /// Groups it has been deployed to.
    pub deployment_groups: Vec<String>,
    /// First deployment.
    pub first_used_time: Option<Timestamp>,
    /// Last deployment.
    pub last_used_time: Option<Timestamp>,
    /// Registration.
    pub register_time: Timestamp,
}

/// A stop request recorded on a deployment for the engine to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopRequest {
    /// The caller's `autoRollbackEnabled`, if given.
    pub auto_rollback: Option<bool>,
}

/// A deployment.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `d-XXXXXXXXX`.
    pub id: String,
    /// Application.
    pub application_name: String,
    /// Group.
    pub group_name: String,
    /// Group id (hooks see it).
    pub group_id: String,
    /// Config used.
    pub config_name: String,
    /// What is deployed.
    pub revision: RevisionLocation,
    /// The group's last successful revision when this one was created.
    pub previous_revision: Option<RevisionLocation>,
    /// Status.
    pub status: DeploymentStatus,
    /// Why it failed or stopped.
    pub error: Option<ErrorInformation>,
    /// Creation.
    pub create_time: Timestamp,
    /// Start of the first instance.
    pub start_time: Option<Timestamp>,
    /// End.
    pub complete_time: Option<Timestamp>,
    /// Caller's description.
    pub description: Option<String>,
    /// `user` or `codeDeployRollback`.
    pub creator: String,
    /// Whether ApplicationStop failures are ignored.
    pub ignore_application_stop_failures: bool,
    /// Deployment-level rollback settings (override the group's).
    pub auto_rollback: Option<AutoRollbackConfiguration>,
    /// Rollback links.
    pub rollback_info: Option<RollbackInfo>,
    /// `DISALLOW`, `OVERWRITE` or `RETAIN`.
    pub file_exists_behavior: String,
    /// Whether only outdated instances are targeted (echoed only).
    pub update_outdated_instances_only: bool,
    /// Input members the emulator does not model, echoed back.
    pub echoed: serde_json::Map<String, Value>,
    /// The instances, in deployment order (empty until it starts).
    pub instances: Vec<InstanceRun>,
    /// Pending stop request.
    pub stop: Option<StopRequest>,
    /// Set for a deployment to a blue/green group.
    pub blue_green: Option<BlueGreenRun>,
    /// Set for a deployment to a Lambda group (once its appspec was read).
    pub lambda: Option<LambdaRun>,
    /// Set for a deployment to an ECS group (the appspec, once read, in
    /// its `appspec`).
    pub ecs: Option<EcsRun>,
    /// Hook function invocations by `lifecycleEventHookExecutionId`.
    pub hook_executions: BTreeMap<String, HookExecution>,
    /// `Server` or `Lambda`: its group's.
    pub compute_platform: String,
}

impl Deployment {
    /// The per-status instance counts of `deploymentOverview`.
    pub fn overview(&self) -> Value {
        let mut counts =
            BTreeMap::from([("Pending", 0u64), ("InProgress", 0), ("Succeeded", 0), ("Failed", 0), ("Skipped", 0), ("Ready", 0)]);
        for instance in &self.instances {
            let key = match instance.status {
                TargetStatus::Pending | TargetStatus::Unknown => "Pending",
                TargetStatus::InProgress => "InProgress",
                TargetStatus::Succeeded => "Succeeded",
                TargetStatus::Failed => "Failed",
                TargetStatus::Skipped => "Skipped",
                TargetStatus::Ready => "Ready",
            };
            *counts.entry(key).or_default() += 1;
        }
        serde_json::to_value(counts).unwrap_or_default()
    }

    /// The rollback settings in force: the deployment's, else the group's.
    pub fn effective_auto_rollback<'a>(&'a self, group: Option<&'a DeploymentGroup>) -> Option<&'a AutoRollbackConfiguration> {
        self.auto_rollback.as_ref().or_else(|| group.and_then(|g| g.auto_rollback.as_ref()))
    }
}
