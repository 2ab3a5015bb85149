//! A local two-account AWS for ferry's tests and demo.
//!
//! [`Stack::start`] runs a fresh moto server (STS, IAM, S3) and the
//! CodeDeploy emulator on free loopback ports and lays out:
//!
//! - Operations (111111111111): user `jenkins`, allowed only
//!   `sts:AssumeRole` on the deployer role; its access key is what ferry gets
//!   from the standard credential chain ([`Stack::ops_access_key`]).
//! - Production (222222222222): role `CA_ServiceDeployer` trusting
//!   `jenkins`, with S3 rights on the release bucket and CodeDeploy rights;
//!   user `codedeploy-agent` that may only read the bucket (the emulator
//!   fetches bundles with it); the bucket itself, created by the role.
//! - In the emulator: application and deployment group.
//!
//! Then moto starts enforcing signatures and identity policies, so the
//! jenkins keys alone are denied on the bucket. What moto does *not* check:
//! cross-account trust policies (any principal may assume the role, with any
//! external id), bucket ownership and checksums. Tests must not claim those.
//!
//! Everything is torn down when the [`Stack`] drops; if the test process dies
//! instead, the kernel kills moto (see `spawn`).

mod accounts;
pub mod agent;
pub mod application;
mod aws;
mod ferry_env;
mod http;
mod localstack;
mod moto;
mod ports;
mod spawn;
pub mod sso;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use codedeploy_emulator::iam::IdentityPolicy;
use codedeploy_emulator::{Config as EmulatorConfig, Emulator};
use tokio::runtime::Runtime;

pub use accounts::{
    AGENT_USER, DEPLOYER_ROLE, HUB_ACCOUNT, HUB_ROLE, INSPECTOR_ROLE, JENKINS_USER, OPERATIONS_ACCOUNT, PRODUCTION_ACCOUNT,
};
pub use application::INSTANCES_TAG;
pub use localstack::{LOCALSTACK_PYTHON_ENV, LocalStackS3};
pub use moto::MOTO_SERVER_ENV;

use accounts::Accounts;
use aws::{Keys, Target};
use moto::MotoServer;

type Result<T> = std::result::Result<T, String>;

/// The region everything lives in.
pub const REGION: &str = "us-east-1";
/// The key prefix [`Stack::write_config`] puts in ferry.toml.
pub const PREFIX: &str = "releases";

/// Who runs the lifecycle events of the main deployment group's instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgentMode {
    /// The emulator's own hook runner on simulated EC2 instances: fast,
    /// scales to a thousand instances.
    #[default]
    Emulated,
    /// One real CodeDeploy agent process per instance, registered as an
    /// on-premises instance ([`agent`]). Needs `scripts/setup-agent` and
    /// root. Hooks then run on this machine for real, and appspec
    /// destinations are real paths: use [`agent::INSTANCE_ROOT`], which each
    /// agent sees as its own directory.
    Real,
}

/// The tag the stack's on-premises instances carry; the main group selects it.
pub const ON_PREMISES_TAG: &str = "ferry-stack-group";

/// What a test may vary about the stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Instances in the deployment group.
    pub instances: usize,
    /// Time the emulator spends on each lifecycle step of each instance.
    pub step_delay: Duration,
    /// Release bucket in Production.
    pub bucket: String,
    /// CodeDeploy application.
    pub application: String,
    /// CodeDeploy deployment group.
    pub deployment_group: String,
    /// `sts:ExternalId` written into the trust policy and ferry.toml.
    /// moto does not enforce it.
    pub external_id: Option<String>,
    /// The emulator's request-rate limits (requests per second by operation
    /// name, `*` for all): above them it answers `ThrottlingException`.
    pub rate_limits: BTreeMap<String, f64>,
    /// Extra deployment group tags, e.g. the emulator's fault injection
    /// (`emulator:fail-event`, `emulator:fail-instances`, `emulator:fail-rollbacks`).
    pub group_tags: Vec<(String, String)>,
    /// Give the deployment group automatic rollback on `DEPLOYMENT_FAILURE`.
    pub auto_rollback: bool,
    /// The deployer role's identity policy, enforced by moto (S3) and the
    /// emulator (CodeDeploy). `None`: what `ferry policy deploy` generates
    /// for this stack's ferry.toml, so every test proves that document
    /// grants what ferry does.
    pub deployer_policy: Option<serde_json::Value>,
    /// Further deployment groups of the application that tests create
    /// themselves (e.g. `web-staging`): the generated deployer policy also
    /// holds what `ferry policy deploy` prints for an environment naming each.
    pub policy_groups: Vec<String>,
    /// More deployment groups of the same application, each with a bucket of
    /// its own: the other environments of a wave ([`Stack::env_toml`]).
    pub extra_envs: Vec<ExtraEnv>,
    /// Who runs the main group's lifecycle events ([`AgentMode`]). The
    /// extra environments' groups always use the emulator's runner.
    pub agent: AgentMode,
    /// moto checks every caller's signature and policy (the default).
    /// `false` for Lambda: moto answers SignatureDoesNotMatch to every
    /// Lambda call of a non-root key (it recomputes the signature of Lambda's
    /// REST requests differently), so Lambda stacks run moto without auth;
    /// the emulator still holds CodeDeploy calls to the deployer's policy.
    pub moto_auth: bool,
    /// S3 is LocalStack's ([`LocalStackS3`]) instead of moto's: the release
    /// buckets live there, ferry and the agents use it, and STS, IAM and the
    /// deployer's S3 policy stay moto's (LocalStack enforces no policy). For
    /// `scripts/bench e2e`, where moto's S3 is the slowest part.
    pub localstack_s3: bool,
}

/// A second (third, …) target in Production: its own deployment group and
/// bucket, same role, and optionally another region name. moto and the
/// emulator accept any region in a request's signature, so ferry really signs
/// this environment's calls for `region`; but the emulator keeps one store
/// and puts its own region in ARNs, and the bucket is created in [`REGION`],
/// so a second region name is not a second region's isolation.
#[derive(Clone, Debug, Default)]
pub struct ExtraEnv {
    /// The deployment group, in [`StackOptions::application`].
    pub deployment_group: String,
    /// Its release bucket (the deployer role and the agent may use it).
    pub bucket: String,
    /// Its tags: the emulator's fault injection (`emulator:fail-event`, …).
    pub group_tags: Vec<(String, String)>,
    /// Automatic rollback on `DEPLOYMENT_FAILURE`.
    pub auto_rollback: bool,
    /// The `region` its `[env.*]` table names; [`REGION`] when `None`.
    pub region: Option<String>,
}

impl ExtraEnv {
    /// A healthy group `deployment_group` with bucket `bucket`.
    pub fn new(deployment_group: &str, bucket: &str) -> ExtraEnv {
        ExtraEnv { deployment_group: deployment_group.into(), bucket: bucket.into(), ..Default::default() }
    }

    /// The same, with every deployment failing `event` (emulator fault injection).
    pub fn failing(deployment_group: &str, bucket: &str, event: &str) -> ExtraEnv {
        ExtraEnv { group_tags: vec![("emulator:fail-event".into(), event.into())], ..ExtraEnv::new(deployment_group, bucket) }
    }
}

impl Default for StackOptions {
    fn default() -> StackOptions {
        StackOptions {
            instances: 1,
            step_delay: Duration::from_millis(20),
            bucket: "ferry-prod-releases".into(),
            application: "web".into(),
            deployment_group: "web-prod".into(),
            external_id: None,
            rate_limits: BTreeMap::new(),
            group_tags: Vec::new(),
            auto_rollback: false,
            deployer_policy: None,
            policy_groups: Vec::new(),
            extra_envs: Vec::new(),
            agent: AgentMode::Emulated,
            moto_auth: true,
            localstack_s3: false,
        }
    }
}

/// A running moto + CodeDeploy emulator with both accounts laid out.
///
/// One per test. Dropping it stops both servers and deletes its temp files;
/// if the thread is panicking, the temp files (moto's log, the emulator's
/// work dir) are kept and their path printed.
pub struct Stack {
    // Fields drop in this order: the agents first (they poll the emulator),
    // then the emulator, since it reads from moto.
    agents: Option<agent::Fleet>,
    emulator: Emulator,
    localstack: Option<LocalStackS3>,
    moto: MotoServer,
    runtime: BackgroundRuntime,
    root: Option<tempfile::TempDir>,
    moto_endpoint: String,
    s3_endpoint: String,
    codedeploy_endpoint: String,
    accounts: Accounts,
    opts: StackOptions,
}

impl Stack {
    /// Starts a stack with [`StackOptions::default`]. Blocking; usable from a
    /// plain `#[test]` and from inside a tokio runtime.
    ///
    /// # Panics
    /// If anything fails to start, with a message saying what and where the
    /// logs are (e.g. "moto not found: run scripts/setup-venv").
    pub fn start() -> Stack {
        Stack::start_with(StackOptions::default())
    }

    /// Starts a stack with the given options. See [`Stack::start`].
    pub fn start_with(opts: StackOptions) -> Stack {
        Stack::try_start_with(opts).unwrap_or_else(|e| panic!("ferry-test-stack: {e}"))
    }

    /// [`Stack::start_with`] that returns what failed (and where its logs
    /// are kept) instead of panicking: the `ferry-test-stack` binary says it
    /// as a message.
    pub fn try_start_with(opts: StackOptions) -> Result<Stack> {
        let root =
            tempfile::Builder::new().prefix("ferry-stack-").tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
        match Stack::try_start(opts, &root) {
            Ok(mut stack) => {
                stack.root = Some(root);
                Ok(stack)
            }
            Err(e) => {
                let has_logs = std::fs::read_dir(root.path().join("logs")).is_ok_and(|mut d| d.next().is_some());
                if has_logs {
                    return Err(format!("{e}\n(logs kept in {})", root.keep().display()));
                }
                Err(e)
            }
        }
    }

    /// A server the stack started that has exited since (moto; the
    /// emulator runs in this process): which, how it ended, and its log.
    pub fn dead_server(&mut self) -> Option<String> {
        let endpoint = self.moto_endpoint.clone();
        self.moto
            .exited()
            .map(|how| format!("moto (STS, IAM, S3) at {endpoint} {how}; its log: {}", self.moto.log_path().display()))
    }

    /// moto's process id (the leader of its process group).
    pub fn moto_pid(&self) -> u32 {
        self.moto.pid()
    }

    /// Everything but the temp dir, which the caller keeps on failure.
    fn try_start(opts: StackOptions, root: &tempfile::TempDir) -> Result<Stack> {
        let dir = |name: &str| -> Result<PathBuf> {
            let p = root.path().join(name);
            std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
            Ok(p)
        };
        let (logs, emulator_dir) = (dir("logs")?, dir("emulator")?);
        dir("home")?;
        dir("work")?;
        // Checked first, so a machine without ruby fails at once and says how to fix it.
        let agent_source = match opts.agent {
            AgentMode::Real => {
                let source = agent::source()?;
                agent::check_ruby()?;
                Some(source)
            }
            AgentMode::Emulated => None,
        };
        let pki = match opts.agent {
            AgentMode::Real => Some(codedeploy_emulator::pki::Pki::create(&dir("pki")?)?),
            AgentMode::Emulated => None,
        };

        let runtime = BackgroundRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                // Tests run many stacks at once on 2 cores; one worker is plenty
                // for a handful of loopback requests.
                .worker_threads(1)
                .thread_name("ferry-test-stack")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot build a tokio runtime: {e}"))?,
        ));

        let moto = MotoServer::start(&logs)?;
        let moto_endpoint = moto.endpoint();
        let buckets: Vec<&str> =
            std::iter::once(opts.bucket.as_str()).chain(opts.extra_envs.iter().map(|e| e.bucket.as_str())).collect();
        let deployer_policy = match &opts.deployer_policy {
            Some(p) => p.clone(),
            None => generated_deployer_policy(&opts, root.path())?,
        };
        let layout =
            accounts::Layout { buckets: &buckets, external_id: opts.external_id.as_deref(), deployer_policy: &deployer_policy };
        let accounts = block_on_any(runtime.get(), accounts::lay_out(&moto_endpoint, REGION, &layout))
            .map_err(|e| format!("{e}\n(moto log: {})", moto.log_path().display()))?;
        let localstack = if opts.localstack_s3 { Some(localstack_buckets(&runtime, &buckets)?) } else { None };
        let s3_endpoint = localstack.as_ref().map_or_else(|| moto_endpoint.clone(), LocalStackS3::endpoint);

        let emulator = Emulator::start(EmulatorConfig {
            s3_endpoint: Some(s3_endpoint.clone()),
            s3_credentials: Some((accounts.agent.access_key_id.clone(), accounts.agent.secret_access_key.clone())),
            region: REGION.into(),
            step_delay: opts.step_delay,
            // Blue/green wait times: a minute lasts 50 steps (1 s by default).
            minute: opts.step_delay * 50,
            default_instances: opts.instances,
            work_dir: Some(emulator_dir),
            rate_limits: opts.rate_limits.clone(),
            // Instance ARNs belong to the account the fleet is in.
            account_id: PRODUCTION_ACCOUNT.into(),
            // The deployer's CodeDeploy calls are held to the same policy
            // as its S3 calls; the tests' own inspector is not.
            identity_policy: Some(
                IdentityPolicy::parse(
                    &deployer_policy.to_string(),
                    &format!("arn:aws:sts::{PRODUCTION_ACCOUNT}:assumed-role/{DEPLOYER_ROLE}/ferry"),
                    [accounts.inspector.access_key_id.clone(), accounts.agent.access_key_id.clone()].into(),
                )
                .map_err(|e| format!("the deployer policy: {e}"))?,
            ),
            agent_pki: pki.clone(),
            // Lambda deployments move moto's aliases.
            lambda_endpoint: Some(moto_endpoint.clone()),
            // ECS deployments create and move moto's task sets.
            ecs_endpoint: Some(moto_endpoint.clone()),
            ..EmulatorConfig::default()
        })
        .map_err(|e| format!("cannot start the CodeDeploy emulator: {e}"))?;
        let codedeploy_endpoint = emulator.endpoint();
        let codedeploy = aws::codedeploy(&Target { endpoint: &codedeploy_endpoint, region: REGION, keys: &accounts.inspector });
        let on_premises: Vec<(String, String)> = match opts.agent {
            AgentMode::Real => (1..=opts.instances)
                .map(|i| {
                    let name = format!("agent-{i}");
                    let host = agent::host_identifier(PRODUCTION_ACCOUNT, &name);
                    (name, host)
                })
                .collect(),
            AgentMode::Emulated => Vec::new(),
        };
        if !on_premises.is_empty() {
            block_on_any(
                runtime.get(),
                application::register_on_premises(&codedeploy, &on_premises, (ON_PREMISES_TAG, &opts.deployment_group)),
            )?;
        }
        block_on_any(
            runtime.get(),
            application::create(
                &codedeploy,
                &application::Group {
                    application: &opts.application,
                    name: &opts.deployment_group,
                    instances: opts.instances,
                    extra_tags: &opts.group_tags,
                    auto_rollback: opts.auto_rollback,
                    on_premises_tag: (!on_premises.is_empty()).then_some((ON_PREMISES_TAG, opts.deployment_group.as_str())),
                },
            ),
        )?;
        for extra in &opts.extra_envs {
            block_on_any(
                runtime.get(),
                application::create_group(
                    &codedeploy,
                    &application::Group {
                        application: &opts.application,
                        name: &extra.deployment_group,
                        instances: opts.instances,
                        extra_tags: &extra.group_tags,
                        auto_rollback: extra.auto_rollback,
                        on_premises_tag: None,
                    },
                ),
            )?;
        }

        // Last: everything above acted as whichever account it liked.
        if opts.moto_auth {
            moto.enforce_auth()?;
        }
        let agents = match (&agent_source, &pki, emulator.command_endpoint()) {
            (Some(source), Some(pki), Some(command_endpoint)) => {
                let fleet = agent::Fleet::start(
                    &dir("agents")?,
                    &on_premises,
                    &agent::Settings {
                        source,
                        command_endpoint: &command_endpoint,
                        s3_endpoint: &s3_endpoint,
                        ca_cert: &pki.ca_cert,
                        region: REGION,
                        keys: (&accounts.agent.access_key_id, &accounts.agent.secret_access_key),
                    },
                )?;
                fleet.wait_polling(|host| emulator.agent_has_polled(host))?;
                Some(fleet)
            }
            _ => None,
        };
        Ok(Stack {
            agents,
            emulator,
            localstack,
            moto,
            runtime,
            root: None,
            moto_endpoint,
            s3_endpoint,
            codedeploy_endpoint,
            accounts,
            opts,
        })
    }

    /// moto's endpoint, `http://127.0.0.1:PORT` (STS, IAM, S3).
    pub fn moto_endpoint(&self) -> &str {
        &self.moto_endpoint
    }

    /// Where the release buckets are: moto's endpoint, or LocalStack's with
    /// [`StackOptions::localstack_s3`].
    pub fn s3_endpoint(&self) -> &str {
        &self.s3_endpoint
    }

    /// The CodeDeploy emulator's endpoint, `http://127.0.0.1:PORT`.
    pub fn codedeploy_endpoint(&self) -> &str {
        &self.codedeploy_endpoint
    }

    /// The region, `us-east-1`.
    pub fn region(&self) -> &str {
        REGION
    }

    /// `arn:aws:iam::222222222222:role/CA_ServiceDeployer`.
    pub fn role_arn(&self) -> &str {
        &self.accounts.role_arn
    }

    /// `arn:aws:iam::444444444444:role/HubDeployer`: trusted by jenkins,
    /// allowed only to assume [`Stack::role_arn`]; the middle hop of a chain.
    pub fn hub_role_arn(&self) -> &str {
        &self.accounts.hub_role_arn
    }

    /// Access key id of the Operations `jenkins` user (ferry's source credentials).
    pub fn ops_access_key(&self) -> &str {
        &self.accounts.ops.access_key_id
    }

    /// Secret key of the Operations `jenkins` user.
    pub fn ops_secret_key(&self) -> &str {
        &self.accounts.ops.secret_access_key
    }

    /// The release bucket in Production.
    pub fn bucket(&self) -> &str {
        &self.opts.bucket
    }

    /// The CodeDeploy application.
    pub fn application(&self) -> &str {
        &self.opts.application
    }

    /// The CodeDeploy deployment group.
    pub fn deployment_group(&self) -> &str {
        &self.opts.deployment_group
    }

    /// The external id in the trust policy and ferry.toml, if any.
    pub fn external_id(&self) -> Option<&str> {
        self.opts.external_id.as_deref()
    }

    /// Options the stack was started with.
    pub fn options(&self) -> &StackOptions {
        &self.opts
    }

    /// The AWS variables ferry runs with: source keys, region, endpoints, and
    /// config files that do not exist so no developer profile leaks in.
    /// Exactly what [`Stack::ferry_command`] sets, minus `HOME` and `PATH`.
    pub fn ferry_env(&self) -> Vec<(String, String)> {
        let home = self.home_dir();
        let s = |v: &str| v.to_owned();
        let mut env = vec![
            (s("AWS_ACCESS_KEY_ID"), s(self.ops_access_key())),
            (s("AWS_SECRET_ACCESS_KEY"), s(self.ops_secret_key())),
            (s("AWS_REGION"), s(REGION)),
            (s("AWS_ENDPOINT_URL"), s(&self.moto_endpoint)),
            (s("AWS_ENDPOINT_URL_CODEDEPLOY"), s(&self.codedeploy_endpoint)),
            (s("AWS_EC2_METADATA_DISABLED"), s("true")),
            (s("AWS_CONFIG_FILE"), home.join(".aws/config").display().to_string()),
            (s("AWS_SHARED_CREDENTIALS_FILE"), home.join(".aws/credentials").display().to_string()),
        ];
        if self.localstack.is_some() {
            env.push((s("AWS_ENDPOINT_URL_S3"), s(&self.s3_endpoint)));
        }
        env
    }

    /// A command for `ferry_bin` with a clean environment: `PATH`, a temp
    /// `HOME` and [`Stack::ferry_env`], nothing else (no `NO_COLOR`, no
    /// developer AWS settings). Runs in a temp dir the stack owns.
    pub fn ferry_command(&self, ferry_bin: &str) -> Command {
        let mut cmd = Command::new(ferry_bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home_dir())
            .envs(self.ferry_env())
            .current_dir(self.root().join("work"));
        cmd
    }

    /// ferry.toml text with one `[env.<env_name>]` table pointing at this
    /// stack (role, external id if any, region, bucket, prefix `releases`,
    /// application, deployment group).
    pub fn config_toml(&self, env_name: &str) -> String {
        ferry_env::ferry_toml(
            env_name,
            &ferry_env::EnvConfig {
                role_arn: self.role_arn(),
                external_id: self.external_id(),
                region: REGION,
                bucket: self.bucket(),
                prefix: PREFIX,
                application: self.application(),
                deployment_group: self.deployment_group(),
            },
        )
    }

    /// `[env.<env_name>]` for one of [`StackOptions::extra_envs`] (by its
    /// deployment group): same role, region and application, its own group
    /// and bucket.
    ///
    /// # Panics
    /// If no extra environment has that group.
    pub fn env_toml(&self, env_name: &str, deployment_group: &str) -> String {
        let (bucket, region) = if deployment_group == self.opts.deployment_group {
            (&self.opts.bucket, REGION)
        } else {
            let extra = self.opts.extra_envs.iter().find(|e| e.deployment_group == deployment_group);
            let extra = extra.unwrap_or_else(|| panic!("ferry-test-stack: no extra env has group {deployment_group}"));
            (&extra.bucket, extra.region.as_deref().unwrap_or(REGION))
        };
        ferry_env::ferry_toml(
            env_name,
            &ferry_env::EnvConfig {
                role_arn: self.role_arn(),
                external_id: self.external_id(),
                region,
                bucket,
                prefix: PREFIX,
                application: self.application(),
                deployment_group,
            },
        )
    }

    /// Writes [`Stack::config_toml`] to `dir/ferry.toml` and returns its path.
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write_config(&self, dir: &Path, env_name: &str) -> PathBuf {
        let path = dir.join("ferry.toml");
        std::fs::write(&path, self.config_toml(env_name))
            .unwrap_or_else(|e| panic!("ferry-test-stack: cannot write {}: {e}", path.display()));
        path
    }

    /// Writes a sourceable shell file exporting [`Stack::ferry_env`].
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write_env_file(&self, path: &Path) {
        std::fs::write(path, ferry_env::env_file(&self.ferry_env()))
            .unwrap_or_else(|e| panic!("ferry-test-stack: cannot write {}: {e}", path.display()));
    }

    /// S3 as the jenkins user's own keys: denied on the bucket.
    pub fn s3_as_ops(&self) -> aws_sdk_s3::Client {
        aws::s3(&self.s3_target(&self.accounts.ops))
    }

    /// S3 in Production as the tests' inspector (every right on the
    /// bucket), to arrange and check what ferry did. Sessions are assumed
    /// once at start-up and last an hour, far longer than any test.
    pub fn s3_as_prod(&self) -> aws_sdk_s3::Client {
        aws::s3(&self.s3_target(&self.accounts.inspector))
    }

    /// S3 as a session of `CA_ServiceDeployer`: only what ferry's generated
    /// policy (or [`StackOptions::deployer_policy`]) allows.
    pub fn s3_as_deployer(&self) -> aws_sdk_s3::Client {
        aws::s3(&self.s3_target(&self.accounts.prod))
    }

    /// CodeDeploy client for the emulator as the tests' inspector, whom the
    /// emulator does not hold to the deployer's policy.
    pub fn codedeploy(&self) -> aws_sdk_codedeploy::Client {
        aws::codedeploy(&Target { endpoint: &self.codedeploy_endpoint, region: REGION, keys: &self.accounts.inspector })
    }

    /// CodeDeploy client for the emulator as the deployer session: held to
    /// the deployer's policy, as ferry is.
    pub fn codedeploy_as_deployer(&self) -> aws_sdk_codedeploy::Client {
        aws::codedeploy(&Target { endpoint: &self.codedeploy_endpoint, region: REGION, keys: &self.accounts.prod })
    }

    pub fn iam_as_prod(&self) -> aws_sdk_iam::Client {
        aws::iam(&self.target(&self.accounts.prod))
    }

    /// Lambda (moto's) in Production as the tests' inspector, to lay out
    /// functions and check what a deployment did to them.
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws::lambda(&self.target(&self.accounts.inspector))
    }

    /// ECS (moto's) in Production as the tests' inspector, to lay out
    /// services and check what a deployment did to their task sets.
    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws::ecs(&self.target(&self.accounts.inspector))
    }

    /// ECR (moto's) in Production as the tests' inspector, to push images.
    pub fn ecr(&self) -> aws_sdk_ecr::Client {
        aws::ecr(&self.target(&self.accounts.inspector))
    }

    /// The CodeDeploy emulator, for what only it knows (the Lambda hook
    /// executions waiting for a status).
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// STS client as the jenkins user, i.e. what ferry starts from.
    pub fn sts_as_ops(&self) -> aws_sdk_sts::Client {
        aws::sts(&self.target(&self.accounts.ops))
    }

    /// Runs `f` to completion on the stack's runtime. For synchronous tests;
    /// inside an async test just `.await` instead (this would panic there).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.get().block_on(f)
    }

    /// Every secret the stack handed out or holds (ops secret key, agent
    /// secret key, the deployer session's secret and token), for tests that
    /// scan ferry's output for leaks.
    pub fn secrets(&self) -> Vec<String> {
        let a = &self.accounts;
        let mut out = vec![
            a.ops.secret_access_key.clone(),
            a.agent.secret_access_key.clone(),
            a.prod.secret_access_key.clone(),
            a.inspector.secret_access_key.clone(),
        ];
        out.extend(a.prod.session_token.clone());
        out.extend(a.inspector.session_token.clone());
        out
    }

    /// The real agents ([`AgentMode::Real`]), in instance order; empty otherwise.
    pub fn agents(&self) -> &[agent::AgentInstance] {
        self.agents.as_ref().map_or(&[], |f| f.agents.as_slice())
    }

    /// The emulator's work dir (fetched bundles, instance file systems).
    pub fn emulator_work_dir(&self) -> &Path {
        self.emulator.work_dir()
    }

    /// moto's request log; read it when a test fails in a surprising way.
    pub fn moto_log(&self) -> &Path {
        self.moto.log_path()
    }

    fn root(&self) -> &Path {
        self.root.as_ref().expect("root lives until drop").path()
    }

    fn home_dir(&self) -> PathBuf {
        self.root().join("home")
    }

    fn target<'a>(&'a self, keys: &'a Keys) -> Target<'a> {
        Target { endpoint: &self.moto_endpoint, region: REGION, keys }
    }

    /// Where the release buckets are ([`Stack::s3_endpoint`]), as `keys`.
    fn s3_target<'a>(&'a self, keys: &'a Keys) -> Target<'a> {
        Target { endpoint: &self.s3_endpoint, region: REGION, keys }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A test that failed because moto died says so, not only the
        // "connection refused" its next call got.
        if std::thread::panicking()
            && let Some(dead) = self.dead_server()
        {
            eprintln!("ferry-test-stack: {dead}");
        }
        if std::thread::panicking()
            && let Some(root) = self.root.take()
        {
            eprintln!("ferry-test-stack: test failed; moto log and emulator files kept in {}", root.keep().display());
        }
    }
}

/// A runtime that never blocks when dropped: dropping a plain one inside
/// another runtime panics, and async tests own stacks too.
struct BackgroundRuntime(Option<Runtime>);

impl BackgroundRuntime {
    fn get(&self) -> &Runtime {
        self.0.as_ref().expect("taken only in drop")
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// `runtime.block_on`, also from inside another runtime (an async test
/// calling [`Stack::start`]), where it has to happen on another thread.
/// LocalStack's S3 holding `buckets`, owned by Production: LocalStack files
/// a request under the account a 12-digit access key names.
fn localstack_buckets(runtime: &BackgroundRuntime, buckets: &[&str]) -> Result<LocalStackS3> {
    let localstack = LocalStackS3::start()?;
    let endpoint = localstack.endpoint();
    let keys = aws::Keys { access_key_id: PRODUCTION_ACCOUNT.into(), secret_access_key: "x".into(), session_token: None };
    let s3 = aws::s3(&Target { endpoint: &endpoint, region: REGION, keys: &keys });
    for bucket in buckets {
        block_on_any(runtime.get(), s3.create_bucket().bucket(*bucket).send())
            .map_err(|e| format!("LocalStack: cannot create bucket {bucket}: {e}\n(log: {})", localstack.log_path().display()))?;
    }
    Ok(localstack)
}

fn block_on_any<F: Future + Send>(runtime: &Runtime, f: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(f);
    }
    std::thread::scope(|s| s.spawn(|| runtime.block_on(f)).join().expect("setup thread panicked"))
}

/// What `ferry policy deploy --env production` prints for this stack's
/// ferry.toml: ferry's own generator, given the same file a test gives ferry.
/// With [`StackOptions::policy_groups`], the statements for each of those
/// groups' environments too, as a team would attach each environment's.
fn generated_deployer_policy(opts: &StackOptions, root: &Path) -> Result<serde_json::Value> {
    let role_arn = format!("arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{DEPLOYER_ROLE}");
    // (group, bucket) of every environment the tests deploy to. An extra
    // environment naming another region gets the emulator's: it puts its
    // own region in every ARN it evaluates (see ExtraEnv).
    let groups = std::iter::once((opts.deployment_group.as_str(), opts.bucket.as_str()))
        .chain(opts.policy_groups.iter().map(|g| (g.as_str(), opts.bucket.as_str())))
        .chain(opts.extra_envs.iter().map(|e| (e.deployment_group.as_str(), e.bucket.as_str())));
    let mut toml = String::new();
    let mut names = Vec::new();
    for (i, (group, bucket)) in groups.enumerate() {
        let name = format!("env{i}");
        toml.push_str(&ferry_env::ferry_toml(
            &name,
            &ferry_env::EnvConfig {
                role_arn: &role_arn,
                external_id: opts.external_id.as_deref(),
                region: REGION,
                bucket,
                prefix: PREFIX,
                application: &opts.application,
                deployment_group: group,
            },
        ));
        names.push(name);
    }
    let path = root.join("policy-ferry.toml");
    std::fs::write(&path, toml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut policy: Option<serde_json::Value> = None;
    for name in names {
        let selection = ferry::config::Selection {
            path: Some(path.clone()),
            env: Some(name),
            overrides: ferry::config::Overrides::default(),
            unsafe_session_seconds: None,
        };
        let env = ferry::config::resolve(&selection).map_err(|e| format!("ferry.toml of the stack: {e}"))?;
        let doc = ferry::policy::deploy(&env);
        match &mut policy {
            None => policy = Some(doc),
            Some(p) => {
                // One document; statement ids made unique per environment.
                let extra = doc["Statement"].as_array().cloned().unwrap_or_default();
                let all = p["Statement"].as_array_mut().ok_or("the generated policy has no Statement list")?;
                let n = all.len();
                for (j, mut st) in extra.into_iter().enumerate() {
                    st["Sid"] = serde_json::json!(format!("{}{}", st["Sid"].as_str().unwrap_or("S"), n + j));
                    all.push(st);
                }
            }
        }
    }
    policy.ok_or_else(|| "no environment to generate a policy for".to_string())
}
