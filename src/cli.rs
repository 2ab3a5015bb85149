//! The command line: clap definitions and dispatch to one file per
//! subcommand under `cmd/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::abort::OnAbort;
use crate::config::{EnvSettings, Overrides, Selection};
use crate::handoff::Format as EnvFormat;
use crate::policy::Kind as PolicyKind;
use crate::report::{OutputFormat, Progress};
use crate::rollback::RollbackOn;

/// Lets clap take one of the core's plain enums as a value. The core stays
/// free of clap (see the layering in `lib.rs`); the names and help users see
/// are written here, at the face.
macro_rules! value_enum {
    ($ty:ty { $($variant:path => $name:literal : $help:literal),+ $(,)? }) => {
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),+]
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(match self {
                    $($variant => clap::builder::PossibleValue::new($name).help($help)),+
                })
            }
        }
    };
}

value_enum!(OutputFormat {
    OutputFormat::Text => "text": "Human lines on stderr; the result (deployment id) on stdout",
    OutputFormat::Json => "json": "One JSON object per event on stdout",
});
value_enum!(Progress {
    Progress::Auto => "auto": "Bars on a terminal, plain lines in CI",
    Progress::Tty => "tty": "Progress bars",
    Progress::Plain => "plain": "Timestamped lines, no ANSI",
});
value_enum!(RollbackOn {
    RollbackOn::Failure => "failure": "Roll back when the deployment fails (DEPLOYMENT_FAILURE)",
    RollbackOn::Stop => "stop": "Roll back when it fails or is stopped (adds DEPLOYMENT_STOP_ON_REQUEST)",
    RollbackOn::Never => "never": "Never roll back automatically (autoRollbackConfiguration enabled=false)",
});
value_enum!(OnAbort {
    OnAbort::Stop => "stop": "StopDeployment without rollback: instances keep what they have",
    OnAbort::StopAndRollback => "stop-and-rollback": "StopDeployment with rollback: CodeDeploy redeploys the last good revision",
    OnAbort::Leave => "leave": "Leave the deployment running; `ferry watch` can follow it later",
});
value_enum!(crate::deploy::ContinueWait {
    crate::deploy::ContinueWait::Ready => "ready": "Reroute traffic of a deployment standing Ready (READY_WAIT)",
    crate::deploy::ContinueWait::Termination => "termination": "Terminate the original instances now, not after the group's wait (TERMINATION_WAIT)",
});
value_enum!(PolicyKind {
    PolicyKind::Trust => "trust": "Trust policy of the production role (who may assume it)",
    PolicyKind::Deploy => "deploy": "Permissions of the production role: this environment's releases only",
    PolicyKind::Jenkins => "jenkins": "Identity policy of the Jenkins role: assume exactly the first role",
    PolicyKind::Instance => "instance": "Policy of the instances' profile: the CodeDeploy agent reads the bundles",
});
value_enum!(EnvFormat {
    EnvFormat::Sh => "sh": "`export NAME='value'` lines for sh, bash, zsh (`eval \"$(ferry env …)\"`)",
    EnvFormat::Fish => "fish": "`set -gx NAME 'value';` lines for fish",
    EnvFormat::Json => "json": "One JSON object of variable names to values",
    EnvFormat::Github => "github": "`NAME=value` lines to append to `$GITHUB_ENV`",
});

/// ferry: ship a release into your production AWS account with CodeDeploy.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, max_term_width = 100)]
pub struct Cli {
    /// ferry.toml to read (default: ./ferry.toml).
    #[arg(long, global = true, env = "FERRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The AWS profile to start from (a manual release): its credentials,
    /// and its region when ferry.toml names none.
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// The code your MFA device shows now, when the first role ferry
    /// assumes needs MFA (FERRY_MFA_SERIAL or the profile's mfa_serial).
    /// Without it ferry asks on a terminal, and refuses without one. The
    /// session is cached for its lifetime (docs/manual.md).
    #[arg(long, global = true, value_name = "CODE")]
    pub mfa_code: Option<String>,
    /// What stdout carries: `text` (the result only) or `json` (one event per line).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Progress display: bars on a terminal, timestamped lines in CI.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Log what ferry and the AWS SDK do (each request, retry, credential
    /// refresh) to stderr. Secrets are never logged: the SDK's signing and
    /// wire-level logs, which carry the session token, stay off.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Also write a JUnit XML report here (one testsuite per deployment, one
    /// testcase per instance) for Jenkins' `junit` step. Rewritten whenever a
    /// deployment ends, the command fails or an abort is reported.
    #[arg(long, global = true, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// ferry's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bundle, upload and deploy a release, and follow it to the end: bundle → assume → upload → deploy → watch.
    Release(ReleaseArgs),
    /// Show what a release would change against what the group runs now:
    /// files, hooks, deployment config, who deployed the current revision.
    /// Reads only; uploads and deploys nothing.
    Plan(PlanArgs),
    /// Follow an existing deployment (started by ferry or anything else) to its end.
    Watch(WatchArgs),
    /// Print an IAM policy for the environment: the role's trust or deploy policy, or Jenkins'.
    Policy(PolicyArgs),
    /// Run a command with the environment's assumed credentials in its environment.
    Exec(ExecArgs),
    /// Print the assumed credentials as variables (sh, fish, json, github).
    Env(EnvArgs),
    /// Print credentials as `credential_process` JSON, for a profile in ~/.aws/config.
    CredentialProcess(CredentialProcessArgs),
    /// Check every link from this agent to the deployment group, with fixes.
    Doctor(DoctorArgs),
    /// Print a deployment's state word on stdout (its instances' lifecycle
    /// events on stderr) once; the exit code says the state.
    Status(StatusArgs),
    /// Redeploy an earlier revision (default: the group's last good one before the current).
    Rollback(RollbackArgs),
    /// Stop a running deployment, optionally rolling it back.
    Stop(StopArgs),
    /// Continue a blue/green deployment that is Ready: reroute traffic, then follow it to its end.
    Continue(ContinueArgs),
    /// List the group's recent deployments from CodeDeploy (survives a Jenkins restart).
    History(HistoryArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print ferry's man page, or one subcommand's (roff), to stdout; or write them all into a directory.
    Man(ManArgs),
    /// Build the reproducible bundle of a directory into a file and print its SHA-256.
    Bundle(BundleArgs),
    /// Check an appspec.yml against its bundle (directory or archive) without AWS.
    Check(CheckArgs),
    /// Bundle, check and upload (verified) without deploying; prints the s3:// URI.
    Upload(UploadArgs),
}

/// `ferry completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, required_unless_present = "env_names")]
    pub shell: Option<clap_complete::Shell>,
    /// The completion scripts' own call: print the environments of
    /// ferry.toml (`--config`, `FERRY_CONFIG` or ./ferry.toml), one a line.
    #[arg(long, hide = true, conflicts_with = "shell")]
    pub env_names: bool,
}

/// `ferry man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand whose page to print (`ferry man release`: ferry-release(1)).
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "out_dir", value_parser = subcommand_name)]
    pub subcommand: Option<String>,
    /// Write ferry.1 and a ferry-SUBCOMMAND.1 for each subcommand into this directory.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Selects an environment and overrides any of its settings.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Environment from ferry.toml (`[env.NAME]`).
    #[arg(long = "env", short = 'e', env = "FERRY_ENV", value_name = "NAME")]
    pub env: Option<String>,
    /// Role to assume in the target account.
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// External ID the role's trust policy requires.
    #[arg(long, value_name = "ID", env = "FERRY_EXTERNAL_ID", hide_env_values = true)]
    pub external_id: Option<String>,
    /// AWS region.
    #[arg(long)]
    pub region: Option<String>,
    /// Bucket for bundles.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Key prefix in the bucket.
    #[arg(long)]
    pub prefix: Option<String>,
    /// CodeDeploy application.
    #[arg(long)]
    pub application: Option<String>,
    /// CodeDeploy deployment group.
    #[arg(long)]
    pub deployment_group: Option<String>,
    /// CodeDeploy deployment configuration (default: the group's).
    #[arg(long)]
    pub deployment_config: Option<String>,
    /// Role session name for CloudTrail (default: Jenkins' BUILD_TAG, else ferry-$USER).
    #[arg(long, value_name = "NAME")]
    pub session_name: Option<String>,
    /// Keyless: a file holding an OIDC id token to exchange with
    /// AssumeRoleWithWebIdentity (Jenkins' OpenID Connect Provider plugin).
    #[arg(long, env = "AWS_WEB_IDENTITY_TOKEN_FILE", value_name = "FILE", hide_env_values = true)]
    pub web_identity_token_file: Option<PathBuf>,
    /// Keyless: the role the token is exchanged for; when it is the deployer
    /// role itself, ferry makes no further AssumeRole.
    #[arg(long, env = "AWS_ROLE_ARN", value_name = "ARN")]
    pub web_identity_role_arn: Option<String>,
    /// Test emulators only: session length in seconds below STS's 900 s floor.
    #[arg(long, hide = true, env = "FERRY_UNSAFE_SESSION_SECONDS", value_name = "SECONDS")]
    pub unsafe_session_seconds: Option<u64>,
}

impl TargetArgs {
    /// The flags given here that override ferry.toml, as ` --flag value`
    /// pieces, so a command ferry suggests (`ferry policy …`) names the
    /// same role, bucket and group as the one that ran.
    pub fn override_flags(&self) -> String {
        let given = [
            ("--role-arn", &self.role_arn),
            ("--region", &self.region),
            ("--bucket", &self.bucket),
            ("--prefix", &self.prefix),
            ("--application", &self.application),
            ("--deployment-group", &self.deployment_group),
        ];
        let mut out = String::new();
        for (flag, value) in given {
            if let Some(v) = value {
                out.push_str(&format!(" {flag} {}", shell_word(v)));
            }
        }
        out
    }
}

/// `v` quoted for a POSIX shell when it holds anything but safe characters.
fn shell_word(v: &str) -> String {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c)) {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

impl TargetArgs {
    /// The config selection these flags describe.
    pub fn selection(&self, config: Option<PathBuf>) -> Selection {
        Selection {
            path: config,
            env: self.env.clone(),
            overrides: Overrides {
                keys: EnvSettings {
                    role_arn: self.role_arn.clone(),
                    external_id: self.external_id.clone(),
                    region: self.region.clone(),
                    bucket: self.bucket.clone(),
                    prefix: self.prefix.clone(),
                    application: self.application.clone(),
                    deployment_group: self.deployment_group.clone(),
                    deployment_config: self.deployment_config.clone(),
                    session_name: self.session_name.clone(),
                    web_identity_token_file: self.web_identity_token_file.clone(),
                    web_identity_role_arn: self.web_identity_role_arn.clone(),
                    ..EnvSettings::default()
                },
                ..Overrides::default()
            },
            unsafe_session_seconds: self.unsafe_session_seconds,
        }
    }
}

/// `ferry upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Application directory (must contain appspec.yml) or a ready .zip/.tar/.tgz bundle.
    #[arg(value_name = "DIR|FILE")]
    pub path: PathBuf,
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How the bundle is built and uploaded.
    #[command(flatten)]
    pub shipping: ShippingArgs,
    /// Use the ambient AWS credentials as they are instead of assuming role_arn
    /// (for an agent that already runs as the production identity). role_arn's
    /// account is still the expected bucket owner.
    #[arg(long)]
    pub no_assume: bool,
}

/// `ferry bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Application directory (must contain appspec.yml).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to write the bundle: a new or regular file (a FIFO, device or
    /// symlink is refused), or `-` for stdout. (`--output` is taken by the
    /// global output format, so this is `--out`.)
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// Archive format (default: from --out's extension, else zip).
    #[arg(long, value_name = "zip|tar|tgz", value_parser = crate::bundle::BundleType::parse)]
    pub bundle_type: Option<crate::bundle::BundleType>,
}

/// `ferry check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Application directory, its appspec.yml, or a ready .zip/.tar/.tgz bundle.
    #[arg(value_name = "DIR|FILE")]
    pub path: PathBuf,
}

/// `ferry plan`: the bundle and the target, as `release` takes them.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Application directory, or a ready .zip/.tar/.tgz bundle.
    #[arg(value_name = "DIR|FILE")]
    pub path: PathBuf,
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Bundle format for a directory.
    #[arg(long, value_name = "zip|tar|tgz", default_value = "zip", value_parser = crate::bundle::BundleType::parse)]
    pub bundle_type: crate::bundle::BundleType,
}

/// `ferry release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// Application directory (must contain appspec.yml) or a ready .zip/.tar/.tgz bundle
    /// (none for an ECS environment: give --image).
    // Empty when not given (`--image`): the release says what is missing.
    #[arg(
        value_name = "DIR|FILE",
        required_unless_present = "image",
        default_value = "",
        hide_default_value = true,
        value_parser = clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from)
    )]
    pub path: PathBuf,
    /// ECS: the container image to deploy (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG` or
    /// `…@sha256:…`). A tag is resolved to its digest through ECR, and the digest is what
    /// deploys (docs/ecs.md).
    #[arg(long, value_name = "URI", conflicts_with = "wave")]
    pub image: Option<String>,
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only create the deployment and exit 0 once CodeDeploy accepted it,
    /// without following it. By default ferry follows the deployment (and
    /// its rollback) to the end, and the exit code says how it ended.
    #[arg(long, overrides_with = "wait")]
    pub no_wait: bool,
    /// Accepted for compatibility: following is the default now.
    #[arg(long, hide = true, overrides_with = "no_wait")]
    pub wait: bool,
    /// How to follow.
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Rollback policy and busy-group handling.
    #[command(flatten)]
    pub policy: RollbackPolicyArgs,
    /// Abort handling and the receipt.
    #[command(flatten)]
    pub ending: EndingArgs,
    /// How the bundle is built and uploaded.
    #[command(flatten)]
    pub shipping: ShippingArgs,
    /// CreateDeployment options.
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Show the plan (what this release changes against what the group
    /// runs) and stop: nothing is uploaded or deployed.
    #[arg(long, conflicts_with = "wave")]
    pub plan: bool,
    /// Release to an environment marked `confirm = true` without asking
    /// (what Jenkins passes after its own input step).
    #[arg(long)]
    pub yes: bool,
    /// Release through every environment of ferry.toml's `[wave.NAME]`,
    /// stage by stage, halting on the first failure (docs/waves.md). The
    /// bundle is built once; each environment keeps its own role, bucket
    /// and group, so the flags that pick one target do not apply.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with_all = ["role_arn", "region", "bucket", "prefix", "application", "deployment_group", "deployment_config"]
    )]
    pub wave: Option<String>,
    /// With --wave: what a failure rolls back: `failed` (the environments
    /// that failed), `all` (every environment the wave released to) or
    /// `none`. Overrides the wave's `rollback` key.
    #[arg(long, value_name = "POLICY", requires = "wave", value_parser = crate::config::WaveRollback::parse)]
    pub wave_rollback: Option<crate::config::WaveRollback>,
}

/// CreateDeployment options, as `aws deploy create-deployment` names them;
/// each overrides the ferry.toml key of the same name.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// What the agent does with a file at the destination that the previous
    /// revision did not install: DISALLOW (fail Install), OVERWRITE or RETAIN.
    #[arg(long, value_name = "BEHAVIOR", value_parser = crate::config::FileExistsBehavior::parse)]
    pub file_exists_behavior: Option<crate::config::FileExistsBehavior>,
    /// A failing ApplicationStop hook (of the revision being replaced) does not fail the deployment.
    #[arg(long)]
    pub ignore_application_stop_failures: bool,
    /// Blue/green: the replacement environment's instances (CodeDeploy's
    /// targetInstances; an in-place deployment still goes to the whole
    /// group): tag:KEY=VALUE, tag:KEY or asg:NAME; repeat for more (replaces
    /// ferry.toml's target_instances).
    #[arg(long, value_name = "TARGET", value_parser = parse_target)]
    pub target_instances: Vec<String>,
    /// Deploy only to instances not already running the group's current revision.
    #[arg(long)]
    pub update_outdated_instances_only: bool,
    /// Text put before ferry's own deployment description (which keeps the build).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Go on when CloudWatch cannot be polled for the alarms of the
    /// environment's override_alarm_configuration.
    #[arg(long)]
    pub ignore_poll_alarm_failure: bool,
}

fn parse_target(s: &str) -> Result<String, String> {
    crate::config::TargetInstances::default().add_flag(s).map(|()| s.to_string())
}

impl DeployArgs {
    /// Puts these flags into the overrides of a selection.
    pub fn apply(&self, o: &mut Overrides) {
        let k = &mut o.keys;
        k.file_exists_behavior = self.file_exists_behavior;
        // A switch left off leaves the file's value.
        k.ignore_application_stop_failures = self.ignore_application_stop_failures.then_some(true);
        if !self.target_instances.is_empty() {
            let mut t = crate::config::TargetInstances::default();
            for v in &self.target_instances {
                // Each value passed parse_target already.
                let _ = t.add_flag(v);
            }
            k.target_instances = Some(t);
        }
        k.update_outdated_instances_only = self.update_outdated_instances_only.then_some(true);
        k.description = self.description.clone();
        o.ignore_poll_alarm_failure = self.ignore_poll_alarm_failure;
    }
}

/// Bundle format and upload settings, shared by `release` and `upload`.
#[derive(Debug, Clone, Args)]
pub struct ShippingArgs {
    /// Archive format when bundling a directory (a ready archive keeps its own).
    #[arg(long, value_name = "zip|tar|tgz", default_value = "zip", value_parser = crate::bundle::BundleType::parse)]
    pub bundle_type: crate::bundle::BundleType,
    /// Upload parts in flight at once for a multipart upload (memory is about this times the part size).
    #[arg(long, value_name = "N", default_value_t = crate::upload::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub upload_concurrency: u16,
}

/// How long and how far to follow a deployment.
#[derive(Debug, Clone, Args)]
pub struct FollowArgs {
    /// Give up after this long, counted from the start of the command (bundle,
    /// upload and queueing included; e.g. 90s, 30m, 1h30m); exit code 5. Once
    /// it has passed no deployment is created.
    #[arg(long, default_value = "60m", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Blue/green: keep waiting while the deployment is Ready (waiting for
    /// traffic to be rerouted) instead of exiting with code 6.
    #[arg(long)]
    pub wait_ready: bool,
}

impl Command {
    /// Whether stdout is the command's product, read by another program
    /// (credentials; a bundle written to `--out -`): then events, JSON ones
    /// included, go to stderr.
    pub fn stdout_is_product(&self) -> bool {
        match self {
            Command::Env(_) | Command::CredentialProcess(_) => true,
            Command::Bundle(a) => a.out.as_os_str() == "-",
            _ => false,
        }
    }

    /// `--receipt`, for the commands that keep a receipt.
    pub fn receipt(&self) -> Option<&std::path::Path> {
        match self {
            Command::Release(a) => a.ending.receipt.as_deref(),
            Command::Watch(a) => a.ending.receipt.as_deref(),
            Command::Rollback(a) => a.ending.receipt.as_deref(),
            _ => None,
        }
    }

    /// Whether the command keeps a receipt (written by default in Jenkins).
    pub fn keeps_receipt(&self) -> bool {
        matches!(self, Command::Release(_) | Command::Watch(_) | Command::Rollback(_))
    }

    /// The `--timeout` that bounds the whole command, for the commands that
    /// have one: from the start to the last AWS call, upload and queueing
    /// included.
    pub fn timeout(&self) -> Option<Duration> {
        match self {
            Command::Release(a) => Some(a.follow.timeout),
            Command::Watch(a) => Some(a.follow.timeout),
            Command::Rollback(a) => Some(a.follow.timeout),
            Command::Stop(a) => Some(a.follow.timeout),
            Command::Continue(a) => Some(a.follow.timeout),
            _ => None,
        }
    }
}

impl FollowArgs {
    /// The watch options these flags describe.
    pub fn options(&self) -> crate::watch::WatchOptions {
        crate::watch::WatchOptions { timeout: self.timeout, wait_ready: self.wait_ready }
    }
}

/// `ferry watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The deployment to follow (d-XXXXXXXXX).
    #[arg(value_name = "DEPLOYMENT_ID", value_parser = crate::deployments::parse_id)]
    pub deployment_id: String,
    /// Which environment (for the role and region), and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to follow.
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Abort handling and the receipt.
    #[command(flatten)]
    pub ending: EndingArgs,
}

/// `ferry status`. Exit codes, as `release`'s: 0 Succeeded, 3 Failed, 4
/// Stopped, 6 Ready, 5 not ended yet (Created, Queued, InProgress, Baking);
/// 1 and 2 when the state could not be read.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The deployment to show (d-XXXXXXXXX).
    #[arg(value_name = "DEPLOYMENT_ID", value_parser = crate::deployments::parse_id)]
    pub deployment_id: String,
    /// Which environment (for the role and region), and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `ferry policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Which document.
    #[arg(value_enum, default_value = "deploy")]
    pub kind: crate::policy::Kind,
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// With `trust`: a principal ARN to trust (repeatable). Default: the
    /// previous role of `role_chain`, else the identity running ferry.
    #[arg(long, value_name = "ARN")]
    pub principal: Vec<String>,
    /// With `trust`: trust tokens from this OIDC issuer instead (keyless
    /// Jenkins: the OpenID Connect Provider plugin's issuer, e.g.
    /// https://jenkins.example.com/oidc). Default: ferry.toml's `oidc_issuer`.
    #[arg(long, value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// With --oidc-issuer: the token audience the role accepts (default:
    /// ferry.toml's `oidc_audience`, else sts.amazonaws.com).
    #[arg(long, value_name = "AUDIENCE")]
    pub audience: Option<String>,
    /// With --oidc-issuer: the `sub` claim the role accepts, e.g. the job's
    /// URL https://jenkins.example.com/job/web-deploy/ (`*` and `?` match).
    #[arg(long, value_name = "PATTERN")]
    pub subject: Option<String>,
}

/// `ferry exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

/// `ferry env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to print the variables.
    #[arg(long, value_enum, default_value = "sh")]
    pub format: crate::handoff::Format,
    /// Print secrets even though stdout is a terminal.
    #[arg(long)]
    pub force: bool,
}

/// `ferry credential-process`.
#[derive(Debug, Args)]
pub struct CredentialProcessArgs {
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the credentials even though stdout is a terminal.
    #[arg(long)]
    pub force: bool,
}

/// `ferry doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// How a release deployment may roll back, and how it waits for a busy group.
#[derive(Debug, Clone, Args)]
pub struct RollbackPolicyArgs {
    /// When CodeDeploy rolls this deployment back: `failure`, `stop` (failure
    /// or stop) or `never`. Default: the deployment group's own setting.
    /// ferry follows the rollback (unless --no-wait); a successful rollback exits 7.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub rollback_on: Option<crate::rollback::RollbackOn>,
    /// When another deployment runs in the group, wait this long for it, then
    /// give up (exit 5). A newer build of the same job is never overwritten (exit 8).
    #[arg(long, default_value = "30m", value_parser = parse_queue_timeout, value_name = "DURATION")]
    pub queue_timeout: Duration,
}

/// What to do on SIGINT/SIGTERM, and where the receipt goes.
#[derive(Debug, Clone, Args)]
pub struct EndingArgs {
    /// On SIGINT/SIGTERM once a deployment exists: `stop`, `stop-and-rollback`
    /// or `leave` it. Default: stop-and-rollback for release, leave otherwise.
    /// Before that (bundling, uploading) the step is stopped and cleaned up.
    /// The receipt is written at once and as the stop progresses. Exits 130
    /// (SIGINT) or 143 (SIGTERM); a second signal exits at once.
    #[arg(long, value_enum, value_name = "ACTION")]
    pub on_abort: Option<crate::abort::OnAbort>,
    /// How long an abort may wait for the stop and the rollback before
    /// reporting. Keep it below Jenkins' SoftKillWaitSeconds (5 s by default:
    /// past it, the receipt on disk says how far the stop had got).
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse_nonzero, value_name = "DURATION")]
    pub abort_grace: Duration,
    /// Write a JSON receipt here (default in Jenkins, i.e. with JENKINS_URL or
    /// BUILD_TAG set: ./ferry-receipt.json). Written on success, failure and abort.
    #[arg(long, value_name = "FILE")]
    pub receipt: Option<PathBuf>,
}

/// `ferry rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The revision to restore: a deployment id (d-XXXXXXXXX), a bundle's
    /// sha256 (12+ characters), or an S3 key in the bucket. Default: the
    /// revision of the group's last successful deployment before the current one.
    #[arg(long, value_name = "DEPLOYMENT|SHA256|KEY", value_parser = crate::deployments::parse_revision)]
    pub to: Option<String>,
    /// Only create the rollback deployment, without following it. By default
    /// ferry follows it to the end, and the exit code says how it ended.
    #[arg(long, overrides_with = "wait")]
    pub no_wait: bool,
    /// Accepted for compatibility: following is the default now.
    #[arg(long, hide = true, overrides_with = "no_wait")]
    pub wait: bool,
    /// How to follow.
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Abort handling and the receipt.
    #[command(flatten)]
    pub ending: EndingArgs,
    /// CreateDeployment options.
    #[command(flatten)]
    pub deploy: DeployArgs,
}

/// `ferry continue`.
#[derive(Debug, Args)]
pub struct ContinueArgs {
    /// The deployment waiting in Ready (d-XXXXXXXXX).
    #[arg(value_name = "DEPLOYMENT_ID", value_parser = crate::deployments::parse_id)]
    pub deployment_id: String,
    /// Which environment (for the role and region), and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only ask CodeDeploy to continue; do not follow the deployment.
    #[arg(long)]
    pub no_wait: bool,
    /// Which wait to end.
    #[arg(long, value_enum, default_value = "ready")]
    pub wait_type: crate::deploy::ContinueWait,
    /// How to follow.
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// `ferry stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The deployment to stop (d-XXXXXXXXX).
    #[arg(value_name = "DEPLOYMENT_ID", value_parser = crate::deployments::parse_id)]
    pub deployment_id: String,
    /// Have CodeDeploy roll back to the previous revision (and follow that).
    /// Without it the instances keep whatever they have.
    #[arg(long)]
    pub rollback: bool,
    /// Which environment (for the role and region), and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long to follow the stop (and rollback).
    #[command(flatten)]
    pub follow: FollowArgs,
}

/// `ferry history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Which environment, and overrides.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How many deployments, newest first.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Only deployments in these states (repeatable or comma-separated:
    /// Created, Queued, InProgress, Baking, Ready, Succeeded, Failed,
    /// Stopped), as `aws deploy list-deployments --include-only-statuses`.
    #[arg(long, value_name = "STATUS", value_delimiter = ',', value_parser = crate::deployments::parse_status, conflicts_with = "wave")]
    pub status: Vec<aws_sdk_codedeploy::types::DeploymentStatus>,
    /// Only deployments created since then: a duration back from now (24h,
    /// 7d) or a UTC date or time (2026-12-01, 2026-12-01T09:00:00Z), as
    /// `--create-time-range start=…`.
    #[arg(long, value_name = "WHEN", value_parser = crate::deployments::parse_since, conflicts_with = "wave")]
    pub since: Option<aws_smithy_types::DateTime>,
    /// Per environment of ferry.toml's `[wave.NAME]`, the release its group
    /// runs: the newest Succeeded deployment, its sha256 and status.
    #[arg(long, value_name = "NAME")]
    pub wave: Option<String>,
}

impl EndingArgs {
    /// How `release` and `rollback` follow what they create; `default_abort`
    /// when `--on-abort` is not given.
    pub fn following(&self, wait: bool, follow: &FollowArgs, default_abort: OnAbort) -> crate::launch::Following {
        crate::launch::Following {
            wait,
            watch: follow.options(),
            on_abort: self.on_abort.unwrap_or(default_abort),
            abort_grace: self.abort_grace,
        }
    }
}

/// `ferry man SUBCOMMAND`: one of ferry's (visible) subcommands.
fn subcommand_name(s: &str) -> Result<String, String> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let names: Vec<&str> = cli.get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name()).collect();
    if names.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a ferry subcommand; one of: {}", names.join(", ")))
    }
}

/// A bare number has no unit: Jenkins' `timeout(time: 5)` counts minutes,
/// ferry's durations seconds, so `5` is refused rather than guessed.
fn unit_required(s: &str) -> Result<(), String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{t}` has no unit. Write {t}m for minutes (as Jenkins' timeout step counts) or {t}s for seconds; \
             e.g. 90s, 30m, 1h30m."
        ));
    }
    Ok(())
}

/// `--timeout`: a nonzero duration with its unit.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    unit_required(s)?;
    crate::duration::parse_nonzero(s)
}

/// `--queue-timeout`: a duration with its unit (zero: do not wait).
fn parse_queue_timeout(s: &str) -> Result<Duration, String> {
    unit_required(s)?;
    crate::duration::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    fn release_args(args: &[&str]) -> ReleaseArgs {
        let argv = ["ferry", "release", "app"].iter().chain(args).copied();
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Release(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn release_follows_by_default_no_wait_only_creates_and_wait_is_still_accepted() {
        assert!(!release_args(&[]).no_wait, "following is the default");
        assert!(release_args(&["--no-wait"]).no_wait);
        assert!(!release_args(&["--wait"]).no_wait, "--wait is accepted and changes nothing");
        assert!(!release_args(&["--no-wait", "--wait"]).no_wait, "the last one given wins");
        assert!(release_args(&["--wait", "--no-wait"]).no_wait);
        use clap::CommandFactory;
        let help = Cli::command().find_subcommand_mut("release").unwrap().render_long_help().to_string();
        assert!(help.contains("--no-wait") && !help.contains("--wait "), "--wait is hidden:\n{help}");
    }

    #[test]
    fn rollback_follows_by_default_too() {
        let parse = |args: &[&str]| match Cli::try_parse_from(["ferry", "rollback"].iter().chain(args).copied()).unwrap().command
        {
            Command::Rollback(r) => r.no_wait,
            other => panic!("{other:?}"),
        };
        assert!(!parse(&[]));
        assert!(!parse(&["--wait"]));
        assert!(parse(&["--no-wait"]));
    }

    /// Every ferry.toml key `config::KEYS` says a flag sets is a flag of
    /// `release` (named after it), and every flag of `release` named after a
    /// key is one `KEYS` says a flag sets, and reaches that key.
    #[test]
    fn the_flags_that_set_ferry_toml_keys_are_the_ones_keys_lists() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let release = cli.find_subcommand_mut("release").unwrap();
        let longs: Vec<String> = release.get_arguments().filter_map(|a| a.get_long()).map(String::from).collect();
        for key in crate::config::KEYS {
            assert_eq!(longs.contains(&key.flag_name()), key.flag, "`{}`: KEYS and the flags of release disagree", key.name);
        }
        let r = release_args(&[
            "--role-arn=arn:aws:iam::222222222222:role/R",
            "--external-id=id",
            "--region=r",
            "--bucket=b",
            "--prefix=p",
            "--application=a",
            "--deployment-group=g",
            "--deployment-config=c",
            "--session-name=s",
            "--file-exists-behavior=RETAIN",
            "--ignore-application-stop-failures",
            "--target-instances=asg:x",
            "--update-outdated-instances-only",
            "--description=d",
            "--web-identity-token-file=t",
            "--web-identity-role-arn=w",
        ]);
        let mut sel = r.target.selection(None);
        r.deploy.apply(&mut sel.overrides);
        let set = format!("{:?}", sel.overrides.keys);
        for key in crate::config::KEYS.iter().filter(|k| k.flag) {
            assert!(!set.contains(&format!("{}: None", key.name)), "--{} does not reach `{}`: {set}", key.flag_name(), key.name);
        }
    }
}
