//! The emulator's in-memory state and the handle shared by the HTTP handlers
//! and the deployment engine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::Config;
use crate::iam::{Caller, IdentityPolicy};
use crate::model::{Application, Deployment, DeploymentConfig, DeploymentGroup, MinimumHealthyHosts, RegisteredRevision, now};
use crate::service_model::ServiceModel;

/// Everything the service knows.
#[derive(Debug, Default)]
pub struct Store {
    /// Applications by name.
    pub applications: BTreeMap<String, Application>,
    /// Groups by (application, group name).
    pub groups: BTreeMap<(String, String), DeploymentGroup>,
    /// Deployments by id.
    pub deployments: BTreeMap<String, Deployment>,
    /// Deployment ids in creation order (the newest last).
    pub deployment_order: Vec<String>,
    /// Deployment configs by name, the built-in ones included.
    pub configs: BTreeMap<String, DeploymentConfig>,
    /// Revisions by (application, revision identity).
    pub revisions: BTreeMap<(String, String), RegisteredRevision>,
    /// On-premises instances by name: their lifecycle events run on a real
    /// CodeDeploy agent through [`crate::commands`].
    pub on_premises: BTreeMap<String, OnPremisesInstance>,
    /// Simulated EC2 instances found or launched by tag for blue/green
    /// replacement environments, with their tags.
    pub ec2_tags: BTreeMap<String, BTreeMap<String, String>>,
    /// Instances terminated at the end of a blue/green deployment.
    pub terminated: std::collections::BTreeSet<String>,
}

/// An instance registered with RegisterOnPremisesInstance.
#[derive(Debug, Clone, Default)]
pub struct OnPremisesInstance {
    /// The IAM user ARN it was registered with: the agent's host identifier.
    pub iam_user_arn: String,
    /// Tags added with AddTagsToOnPremisesInstances.
    pub tags: BTreeMap<String, String>,
    /// When it was registered.
    pub register_time: crate::model::Timestamp,
}

impl Store {
    /// A store holding the built-in `CodeDeployDefault.*` server configs.
    pub fn with_default_configs() -> Self {
        let mut store = Store::default();
        // OneAtATime reports MOST_CONCURRENCY/1, as the real GetDeploymentConfig does.
        for (name, kind, value) in [
            ("CodeDeployDefault.AllAtOnce", "HOST_COUNT", 0),
            ("CodeDeployDefault.HalfAtATime", "FLEET_PERCENT", 50),
            ("CodeDeployDefault.OneAtATime", "MOST_CONCURRENCY", 1),
        ] {
            store.configs.insert(
                name.to_string(),
                DeploymentConfig {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: name.to_string(),
                    minimum_healthy_hosts: MinimumHealthyHosts { kind: kind.to_string(), value },
                    create_time: now(),
                    compute_platform: "Server".into(),
                    traffic_routing: None,
                },
            );
        }
        let canary = |m: u32| serde_json::json!({ "type": "TimeBasedCanary", "timeBasedCanary": { "canaryPercentage": 10, "canaryInterval": m } });
        let linear = |m: u32| serde_json::json!({ "type": "TimeBasedLinear", "timeBasedLinear": { "linearPercentage": 10, "linearInterval": m } });
        // AWS's predefined Lambda configs: all at once, a 10 % canary, or 10 % more every interval.
        let lambda =
            std::iter::once(("CodeDeployDefault.LambdaAllAtOnce".to_string(), serde_json::json!({ "type": "AllAtOnce" })))
                .chain([5, 10, 15, 30].map(|m| (format!("CodeDeployDefault.LambdaCanary10Percent{m}Minutes"), canary(m))))
                .chain(
                    [(1, "1Minute"), (2, "2Minutes"), (3, "3Minutes"), (10, "10Minutes")]
                        .map(|(m, every)| (format!("CodeDeployDefault.LambdaLinear10PercentEvery{every}"), linear(m))),
                )
                .map(|(name, routing)| (name, routing, "Lambda"));
        // AWS's predefined ECS configs ("Predefined deployment configurations
        // for an Amazon ECS compute platform").
        let ecs = [
            ("ECSAllAtOnce", serde_json::json!({ "type": "AllAtOnce" })),
            ("ECSLinear10PercentEvery1Minutes", linear(1)),
            ("ECSLinear10PercentEvery3Minutes", linear(3)),
            ("ECSCanary10Percent5Minutes", canary(5)),
            ("ECSCanary10Percent15Minutes", canary(15)),
        ]
        .map(|(name, routing)| (format!("CodeDeployDefault.{name}"), routing, "ECS"));
        for (name, routing, platform) in lambda.chain(ecs) {
            store.configs.insert(
                name.clone(),
                DeploymentConfig {
                    id: uuid::Uuid::new_v4().to_string(),
                    name,
                    minimum_healthy_hosts: MinimumHealthyHosts { kind: String::new(), value: 0 },
                    create_time: now(),
                    compute_platform: platform.into(),
                    traffic_routing: Some(routing),
                },
            );
        }
        store
    }

    /// The deployment currently active in a group, if any.
    pub fn active_deployment(&self, app: &str, group: &str) -> Option<&Deployment> {
        self.deployments.values().find(|d| d.application_name == app && d.group_name == group && !d.status.is_complete())
    }
}

/// State shared between the server and the engine.
#[derive(Debug)]
pub struct Shared {
    /// The state.
    store: Mutex<Store>,
    /// The emulator's configuration.
    pub config: Config,
    /// Where instance directories live.
    pub work_dir: PathBuf,
    /// S3 client for bundle downloads, built on first use.
    pub s3: tokio::sync::OnceCell<aws_sdk_s3::Client>,
    /// Lambda client for alias traffic shifting, built on first use.
    pub lambda: tokio::sync::OnceCell<aws_sdk_lambda::Client>,
    /// ECS client for task sets, built on first use.
    pub ecs: tokio::sync::OnceCell<aws_sdk_ecs::Client>,
    /// Request-rate limiter.
    pub throttle: crate::throttle::Throttle,
    /// Caps concurrently running hook scripts so large fleets don't fork-bomb.
    pub hook_slots: tokio::sync::Semaphore,
    /// The service model answers are checked against, if configured.
    pub model: Option<Arc<ServiceModel>>,
    /// Answers that did not fit the model.
    violations: Mutex<Vec<String>>,
    /// Operations answered, with how many successes and errors each.
    answered: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Callers resolved so far, by access key id.
    callers: Mutex<BTreeMap<String, Caller>>,
    /// Host commands for real agents.
    pub commands: crate::commands::CommandService,
}

impl Shared {
    /// New shared state for `config`, with instance directories under `work_dir`.
    pub fn new(config: Config, work_dir: PathBuf, model: Option<Arc<ServiceModel>>) -> Arc<Self> {
        Arc::new(Self {
            model,
            violations: Mutex::new(Vec::new()),
            answered: Mutex::new(BTreeMap::new()),
            callers: Mutex::new(BTreeMap::new()),
            store: Mutex::new(Store::with_default_configs()),
            throttle: crate::throttle::Throttle::new(&config.rate_limits),
            config,
            work_dir,
            s3: tokio::sync::OnceCell::new(),
            lambda: tokio::sync::OnceCell::new(),
            ecs: tokio::sync::OnceCell::new(),
            hook_slots: tokio::sync::Semaphore::new(16),
            commands: Default::default(),
        })
    }

    /// Records answers that broke the service model.
    pub fn record_violations(&self, found: Vec<String>) {
        self.violations.lock().unwrap_or_else(|e| e.into_inner()).extend(found);
    }

    /// The caller behind `access_key`, asked of the policy's resolver once
    /// and then remembered.
    pub fn caller(&self, access_key: &str, policy: &IdentityPolicy) -> Option<Caller> {
        if let Some(known) = self.callers.lock().unwrap_or_else(|e| e.into_inner()).get(access_key) {
            return Some(known.clone());
        }
        let found = (policy.resolver.as_ref()?.0)(access_key)?;
        self.callers.lock().unwrap_or_else(|e| e.into_inner()).insert(access_key.to_string(), found.clone());
        Some(found)
    }

    /// Counts one answer to `operation`.
    pub fn count_answer(&self, operation: &str, ok: bool) {
        let mut answered = self.answered.lock().unwrap_or_else(|e| e.into_inner());
        let entry = answered.entry(operation.to_string()).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }

    /// Successes and errors answered so far, by operation.
    pub fn answered(&self) -> BTreeMap<String, (u64, u64)> {
        self.answered.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The answers so far that broke the service model.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Locks the store. A panic while holding the lock is a bug; recover the
    /// data anyway so one bad request doesn't take the emulator down.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new deployment id, `d-` and nine upper-case alphanumerics like AWS's.
pub fn new_deployment_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let tail: String = bytes[..9].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    format!("d-{tail}")
}

/// Whether `id` has the shape of a deployment id.
pub fn is_deployment_id(id: &str) -> bool {
    id.strip_prefix("d-")
        .is_some_and(|rest| rest.len() == 9 && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
}

/// A new EC2 instance id, `i-` and 17 hex digits.
pub fn new_instance_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("i-{}", &hex[..17])
}
