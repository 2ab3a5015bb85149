//! wave: one release through several environments, stage by stage
//! (`ferry release DIR --wave NAME`, issue 16).
//!
//! The bundle is built once by the caller; every environment gets the same
//! bytes under the same content address. Per environment the single-env
//! path runs as it is (assume its role, upload verified to its bucket,
//! [`launch::launch`] to create and follow the deployment), with its events
//! marked by [`Tagged`]. Environments of a stage run concurrently; stages in
//! order; an optional bake after each stage watches the stage's groups for a
//! new Failed or Stopped deployment. The first failure halts the wave: later
//! stages are never started, and the rollback policy decides what
//! `rollback::plan` + [`launch::launch`] roll back.
//!
//! One receipt for the wave: each environment keeps its own [`Keeper`], whose
//! saves go to the wave's [`Board`], which rewrites the file. So an abort's
//! first save (before StopDeployment, see `crate::abort`) reaches the disk
//! exactly as in a single-environment release.
//!
//! Signals: every environment installs its own [`Guard`] (tokio hands each
//! signal to every listener), so each applies `--on-abort` to its own
//! deployment at once and concurrently with the others; the wave's guard
//! keeps later stages and the bake from going on.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_codedeploy::types::{AutoRollbackConfiguration, DeploymentStatus};
use futures_util::future::join_all;

use crate::abort::{Guard, OnAbort, Received};
use crate::bundle::Bundle;
use crate::config::{Environment, Wave, WaveRollback};
use crate::deployments::{self, Filter};
use crate::event::{Event, Outcome, Receipt, Reporter, Tagged, WaveEnvReceipt, WaveOutcome, WaveReceipt};
use crate::exit::ExitCode;
use crate::launch::{self, Following};
use crate::pipeline::{self, Clients, Release, Shipping};
use crate::receipt::{self, Clock, Keeper};
use crate::{queue, rollback};

/// Why one environment ended without an outcome: the exit code its own
/// release would have ended with, and the one-paragraph error.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The row of the exit-code table.
    pub code: ExitCode,
    /// The step, as the `error` event's `class` names it (`assume`, `upload`, `deploy`, …).
    pub class: &'static str,
    /// The error, as `ferry release --env` would print it.
    pub message: String,
}

/// Everything a wave needs besides its environments' state.
pub struct Plan<'a> {
    /// The wave, validated.
    pub wave: &'a Wave,
    /// Its environments, in stage order (as [`Wave::envs`]).
    pub envs: &'a [Environment],
    /// The one bundle, built and checked.
    pub bundle: &'a Bundle,
    /// What a failure rolls back (`--wave-rollback` or the wave's key).
    pub policy: WaveRollback,
    /// How each environment's deployment is followed and aborted.
    pub following: Following,
    /// `--rollback-on`, for each environment's deployment.
    pub auto_rollback: Option<AutoRollbackConfiguration>,
    /// How long to wait for a busy group.
    pub queue_timeout: Duration,
    /// Parallel part uploads per environment.
    pub upload_concurrency: usize,
}

/// The wave's receipt, shared by every environment's [`Keeper`] and
/// rewritten (atomically) on each save.
pub struct Board {
    receipt: Mutex<WaveReceipt>,
    path: Option<PathBuf>,
    clock: Clock,
}

impl Board {
    /// A receipt for `wave` written to `path` (none: kept in memory only).
    pub fn new(wave: &Wave, policy: WaveRollback, clock: Clock, path: Option<PathBuf>) -> Arc<Board> {
        let envs = wave
            .stages
            .iter()
            .enumerate()
            .flat_map(|(i, stage)| {
                stage.iter().map(move |env| WaveEnvReceipt {
                    stage: i + 1,
                    receipt: Receipt { environment: env.clone(), ..Default::default() },
                    ..Default::default()
                })
            })
            .collect();
        let receipt = WaveReceipt {
            wave: wave.name.clone(),
            build: receipt::build_from_env(),
            rollback_policy: policy.as_str().into(),
            stages: wave.stages.clone(),
            envs,
            ..Default::default()
        };
        Arc::new(Board { receipt: Mutex::new(receipt), path, clock })
    }

    /// Changes the receipt and writes it. A failure to write is left to
    /// [`Board::finish`], which reports it for good.
    pub fn update(&self, change: impl FnOnce(&mut WaveReceipt)) {
        let mut r = self.receipt.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut r);
        if let Some(path) = &self.path {
            self.clock.stamp_wave(&mut r);
            let _ = receipt::write_wave(path, &r);
        }
    }

    /// The receipt as it stands.
    pub fn snapshot(&self) -> WaveReceipt {
        self.receipt.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Ends the command: stamps, writes (reporting where) and announces the
    /// receipt. A receipt that cannot be written is the command's error
    /// when it would otherwise have succeeded.
    pub fn finish(
        &self,
        code: ExitCode,
        error: Option<String>,
        reporter: &dyn Reporter,
    ) -> Result<ExitCode, receipt::ReceiptError> {
        let mut r = self.snapshot();
        self.clock.stamp_wave(&mut r);
        if r.error.is_none() {
            r.error = error;
        }
        let written = match &self.path {
            Some(path) => receipt::write_wave(path, &r).map(|()| {
                reporter.report(&Event::ReceiptWritten { path: path.display().to_string() });
            }),
            None => Ok(()),
        };
        if r.envs.iter().any(|e| e.receipt.deployment_id.is_some()) {
            reporter.report(&Event::WaveReceipt(r));
        }
        match written {
            Ok(()) => Ok(code),
            Err(e) if code == ExitCode::Success => Err(e),
            Err(e) => {
                reporter.report(&Event::Warning { message: e.to_string() });
                Ok(code)
            }
        }
    }
}

/// One environment of the wave as it goes.
struct EnvRun<'a> {
    index: usize,
    env: &'a Environment,
    keeper: Keeper,
    clients: Option<Clients>,
    code: Option<ExitCode>,
}

/// Runs the wave and returns its exit code: the worst of its environments'
/// ([`severity`]). `guard` has caught SIGINT/SIGTERM since the command began.
pub async fn run(plan: &Plan<'_>, guard: &mut Guard, board: &Arc<Board>, reporter: &dyn Reporter) -> ExitCode {
    let wave = plan.wave;
    board.update(|r| r.sha256 = plan.bundle.sha256.clone());
    reporter.report(&Event::WaveStarted {
        wave: wave.name.clone(),
        stages: wave.stages.clone(),
        sha256: plan.bundle.sha256.clone(),
        rollback: plan.policy.as_str().into(),
    });
    let mut runs: Vec<EnvRun<'_>> = plan
        .envs
        .iter()
        .enumerate()
        .map(|(index, env)| {
            let board = Arc::clone(board);
            let sink: receipt::Sink = Arc::new(move |r: &Receipt| board.update(|w| set_env(w, index, r)));
            let receipt = Receipt { build: receipt::build_from_env(), ..Default::default() };
            EnvRun { index, env, keeper: Keeper::with_sink(receipt, Clock::start(), sink), clients: None, code: None }
        })
        .collect();

    let (signal, halt) = match run_stages(plan, &mut runs, guard, board, reporter).await {
        Stages::Done => (None, None),
        Stages::Halted(halt) => (None, Some(halt)),
        Stages::Signalled(sig) => (Some(sig), None),
    };
    let signal = match &halt {
        Some(halt) => halt_and_roll_back(plan, halt, &mut runs, board, reporter).await,
        None => signal,
    };
    let outcome = match (signal, &halt) {
        (Some(_), _) => WaveOutcome::Aborted,
        (None, Some(_)) => WaveOutcome::Halted,
        (None, None) => WaveOutcome::Succeeded,
    };
    let code = signal.map_or_else(|| worst(runs.iter().filter_map(|r| r.code)), Received::exit_code);
    board.update(|r| {
        r.outcome = Some(outcome);
        if let Some(sig) = signal {
            r.signal = Some(sig.name().into());
        }
        r.exit_code = Some(code.code());
        for run in &runs {
            r.envs[run.index].exit_code = run.code.map(ExitCode::code);
        }
    });
    reporter.report(&Event::WaveFinished { wave: wave.name.clone(), outcome, exit_code: code.code() });
    code
}

/// A stage (or its bake) failed: says so, records it, and rolls back what
/// the policy names, in parallel. Returns the signal that came while the
/// rollbacks ran, if one did: they are left running (as `ferry rollback`
/// leaves its own) and the wave ends as interrupted.
async fn halt_and_roll_back(
    plan: &Plan<'_>,
    halt: &Halt,
    runs: &mut [EnvRun<'_>],
    board: &Board,
    reporter: &dyn Reporter,
) -> Option<Received> {
    let targets = rollback_targets(plan.policy, halt, runs);
    reporter.report(&Event::WaveHalted {
        stage: halt.stage,
        envs: halt.envs.iter().map(|i| runs[*i].env.name.clone()).collect(),
        reason: halt.reason.clone(),
        rollback: targets.iter().map(|i| runs[*i].env.name.clone()).collect(),
    });
    board.update(|r| {
        r.outcome = Some(WaveOutcome::Halted);
        r.halted_at_stage = Some(halt.stage);
        r.halted_reason = Some(halt.reason.clone());
    });
    // A bake failure is the group's, not the release's: the environment
    // that passed is counted failed (or, cut by --timeout, timed out) from here on.
    let counted = if halt.timed_out { ExitCode::TimedOut } else { ExitCode::DeploymentFailed };
    for i in &halt.envs {
        if runs[*i].code.is_some_and(passes) {
            runs[*i].code = Some(counted);
        }
    }
    let rollbacks: Vec<_> =
        runs.iter_mut().filter(|r| targets.contains(&r.index)).map(|run| roll_back_env(plan, run, board, reporter)).collect();
    join_all(rollbacks).await.into_iter().flatten().next()
}

/// How the stages ended.
enum Stages {
    /// Every stage (and bake) passed.
    Done,
    /// A stage or its bake failed; later stages were not started.
    Halted(Halt),
    /// A signal came; nothing more was started.
    Signalled(Received),
}

/// Runs the stages in order, each stage's environments together, each
/// passed stage followed by its bake.
async fn run_stages(
    plan: &Plan<'_>,
    runs: &mut [EnvRun<'_>],
    guard: &mut Guard,
    board: &Board,
    reporter: &dyn Reporter,
) -> Stages {
    let wave = plan.wave;
    let mut first = 0;
    for (i, stage) in wave.stages.iter().enumerate() {
        let n = i + 1;
        let range = first..first + stage.len();
        first += stage.len();
        // A signal that came between stages (or during the last) is kept by
        // the guard: nothing more is started.
        if let Err(sig) = guard.run(std::future::ready(())).await {
            return Stages::Signalled(sig);
        }
        reporter.report(&Event::StageStarted { stage: n, stages: wave.stages.len(), envs: stage.clone() });
        let stage_started = SystemTime::now();
        board.update(|r| {
            for e in &mut r.envs[range.clone()] {
                e.started = true;
            }
        });
        let releases: Vec<_> = runs[range.clone()].iter_mut().map(|run| release_env(plan, run, reporter)).collect();
        join_all(releases).await;

        let stage_runs = &runs[range.clone()];
        if let Some(sig) = stage_runs.iter().find_map(|r| r.code.and_then(signal_of)) {
            return Stages::Signalled(sig);
        }
        let failed: Vec<&EnvRun<'_>> = stage_runs.iter().filter(|r| !r.code.is_some_and(passes)).collect();
        if !failed.is_empty() {
            let reason = failed.iter().map(|r| format!("{}: {}", r.env.name, ending_words(r))).collect::<Vec<_>>().join("; ");
            return Stages::Halted(Halt { stage: n, envs: failed.iter().map(|r| r.index).collect(), reason, timed_out: false });
        }
        reporter.report(&Event::StageDone { stage: n, envs: stage.clone() });
        let Some(bake) = wave.bake else { continue };
        match guard.run(bake_stage(n, bake, stage_started, &runs[range.clone()], reporter)).await {
            Err(sig) => return Stages::Signalled(sig),
            Ok(Baked::Failed(envs, reason)) => return Stages::Halted(Halt { stage: n, envs, reason, timed_out: false }),
            Ok(Baked::TimedOut(reason)) => {
                return Stages::Halted(Halt { stage: n, envs: range.collect(), reason, timed_out: true });
            }
            Ok(Baked::Passed) => reporter.report(&Event::BakeDone { stage: n }),
        }
    }
    Stages::Done
}

/// Where and why a wave halted.
struct Halt {
    stage: usize,
    /// Indexes of the environments that failed (or whose group failed during the bake).
    envs: Vec<usize>,
    reason: String,
    /// `--timeout` ran out during the bake: nothing failed, and with the
    /// deadline passed no rollback could be created.
    timed_out: bool,
}

/// A bake longer than the clock can count lasts this long: for ever.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// How a stage's bake ended.
enum Baked {
    /// No new Failed or Stopped deployment for the whole bake.
    Passed,
    /// One appeared: the environments it appeared in, and why.
    Failed(Vec<usize>, String),
    /// `--timeout` ran out before the bake did.
    TimedOut(String),
}

/// Copies an environment's receipt into the wave's; an abort in it marks
/// the whole wave aborted at once, before its StopDeployment goes out.
fn set_env(wave: &mut WaveReceipt, index: usize, r: &Receipt) {
    let entry = &mut wave.envs[index];
    entry.receipt = Receipt {
        // The wave's own timing stands for the command's.
        started_at: None,
        finished_at: None,
        elapsed_ms: None,
        ..r.clone()
    };
    if r.outcome == Some(Outcome::Aborted) {
        wave.outcome = Some(WaveOutcome::Aborted);
        wave.signal = r.signal.clone();
    }
}

/// Whether an environment's ending lets the wave go on: it Succeeded (or,
/// with `--no-wait`, was created), or a newer build already owns the group.
fn passes(code: ExitCode) -> bool {
    matches!(code, ExitCode::Success | ExitCode::Superseded)
}

/// The signal an environment's exit code says it was stopped by.
fn signal_of(code: ExitCode) -> Option<Received> {
    match code {
        ExitCode::Interrupted => Some(Received::Interrupt),
        ExitCode::Terminated => Some(Received::Terminate),
        _ => None,
    }
}

/// `deployment d-… Failed`, or the error, for the halt's reason.
fn ending_words(run: &EnvRun<'_>) -> String {
    let r = &run.keeper.receipt;
    match (&r.deployment_id, r.outcome, &r.error) {
        (_, _, Some(e)) => format!("could not be released: {e}"),
        (Some(d), Some(o), _) => format!("deployment {d} ended {}", outcome_word(o)),
        (Some(d), None, _) => format!("deployment {d} did not end well"),
        (None, _, _) => "was not released".into(),
    }
}

/// An outcome as the halt's reason words it.
fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Created => "created",
        Outcome::Succeeded => "Succeeded",
        Outcome::Failed => "Failed",
        Outcome::Stopped => "Stopped",
        Outcome::TimedOut => "timed out",
        Outcome::Ready => "Ready (waiting for traffic)",
        Outcome::RolledBack => "Failed and was rolled back by CodeDeploy",
        Outcome::Superseded => "superseded",
        Outcome::Aborted => "aborted",
    }
}

/// How bad an exit code is for a wave, worst highest: an interrupt, then
/// bad input, AWS refusing, a failed, stopped or timed-out deployment, one
/// CodeDeploy rolled back, blue/green waiting, superseded, success.
pub fn severity(code: ExitCode) -> u8 {
    match code {
        ExitCode::Success => 0,
        ExitCode::Superseded => 1,
        ExitCode::Ready => 2,
        ExitCode::RolledBack => 3,
        ExitCode::TimedOut => 4,
        ExitCode::Stopped => 5,
        ExitCode::DeploymentFailed => 6,
        ExitCode::Aws => 7,
        ExitCode::Usage | ExitCode::Child(_) => 8,
        ExitCode::Interrupted => 9,
        ExitCode::Terminated => 10,
    }
}

/// The worst of `codes` by [`severity`]; success when there are none.
pub fn worst(codes: impl IntoIterator<Item = ExitCode>) -> ExitCode {
    codes.into_iter().max_by_key(|c| severity(*c)).unwrap_or(ExitCode::Success)
}

/// Which environments a halted wave rolls back: the failed ones (`failed`),
/// every one released to (`all`), or none. One whose failed deployment
/// CodeDeploy already rolled back is left alone, and one the wave never
/// deployed to has nothing to roll back.
fn rollback_targets(policy: WaveRollback, halt: &Halt, runs: &[EnvRun<'_>]) -> Vec<usize> {
    let deployed = |r: &EnvRun<'_>| {
        r.keeper.receipt.deployment_id.is_some()
            && r.clients.is_some()
            && r.keeper.receipt.outcome != Some(Outcome::RolledBack)
            && r.keeper.receipt.outcome != Some(Outcome::Superseded)
    };
    match policy {
        // Past the deadline no deployment is created, a rollback's neither.
        _ if halt.timed_out => Vec::new(),
        WaveRollback::None => Vec::new(),
        WaveRollback::Failed => halt.envs.iter().copied().filter(|i| deployed(&runs[*i])).collect(),
        WaveRollback::All => runs.iter().filter(|r| deployed(r)).map(|r| r.index).collect(),
    }
}

/// One environment's release: the single-environment path, with its own
/// signal handlers, its events marked with its name, and its receipt saved
/// into the wave's.
async fn release_env(plan: &Plan<'_>, run: &mut EnvRun<'_>, reporter: &dyn Reporter) {
    let tagged = Tagged { inner: reporter, env: run.env.name.clone() };
    let code = match release_one(plan, run, &tagged).await {
        Ok(code) => code,
        Err(f) => {
            run.keeper.receipt.error = Some(f.message.clone());
            tagged.report(&Event::Error { class: f.class.into(), exit_code: f.code.code(), message: f.message });
            f.code
        }
    };
    run.code = Some(code);
    run.keeper.save(&tagged);
}

/// `ferry release --env`'s steps after the bundle, for one environment:
/// [`pipeline::release`] with the environment's own signal guard.
async fn release_one(plan: &Plan<'_>, run: &mut EnvRun<'_>, reporter: &dyn Reporter) -> Result<ExitCode, Failure> {
    let mut guard = Guard::install(reporter);
    let step = Release {
        env: run.env,
        upload_concurrency: plan.upload_concurrency,
        auto_rollback: plan.auto_rollback.clone(),
        queue_timeout: plan.queue_timeout,
        following: &plan.following,
        wave: Some(&plan.wave.name),
    };
    let shipping = Shipping::Upload(plan.bundle);
    pipeline::release(&step, shipping, &mut run.clients, &mut guard, &mut run.keeper, reporter).await.map_err(|e| Failure {
        code: e.exit_code(),
        class: e.class(),
        message: e.to_string(),
    })
}

/// Watches the stage's groups for `bake`: any deployment created since the
/// stage started that ends Failed or Stopped halts the wave. The bake ends
/// at the command's `--timeout` if that comes first: one deadline over the
/// stages, the bakes and the rollbacks.
async fn bake_stage(stage: usize, bake: Duration, since: SystemTime, runs: &[EnvRun<'_>], reporter: &dyn Reporter) -> Baked {
    reporter.report(&Event::BakeStarted {
        stage,
        duration_s: bake.as_secs(),
        groups: runs.iter().map(|r| format!("{}/{}", r.env.application, r.env.deployment_group)).collect(),
    });
    let secs = since.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    let filter = Filter {
        statuses: vec![DeploymentStatus::Failed, DeploymentStatus::Stopped],
        created_after: Some(aws_smithy_types::DateTime::from_secs(secs)),
        limit: 10,
    };
    // tokio's clock, not std's: the same in a release, and a test can pause
    // it and count the polls of a bake of known length.
    let now = tokio::time::Instant::now();
    let bake_end = now.checked_add(bake).unwrap_or_else(|| now + FOREVER);
    let end = tokio::time::Instant::from_std(crate::deadline::earlier(bake_end.into_std()));
    loop {
        let mut bad: Vec<(usize, String)> = Vec::new();
        for run in runs {
            let Some(clients) = &run.clients else { continue };
            let tagged = Tagged { inner: reporter, env: run.env.name.clone() };
            match deployments::list(&clients.cd, run.env, &filter).await {
                Ok(found) => {
                    if let Some(d) = found.first() {
                        let status = d.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                        bad.push((
                            run.index,
                            format!(
                                "deployment {} in {} ended {status} during the bake",
                                d.deployment_id().unwrap_or("?"),
                                run.env.deployment_group
                            ),
                        ));
                    }
                }
                // One unanswered poll is no verdict on the group: said, and
                // asked again at the next poll.
                Err(f) => tagged.report(&Event::Warning {
                    message: format!("cannot read {}'s deployments during the bake: {}", run.env.deployment_group, f.detail),
                }),
            }
        }
        if !bad.is_empty() {
            let reason = bad.iter().map(|(_, why)| why.as_str()).collect::<Vec<_>>().join("; ");
            return Baked::Failed(bad.into_iter().map(|(i, _)| i).collect(), reason);
        }
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            if end < bake_end {
                return Baked::TimedOut(bake_timed_out(stage, bake));
            }
            return Baked::Passed;
        }
        tokio::time::sleep(left.min(crate::watch::SLOW)).await;
    }
}

/// Why a bake cut by `--timeout` halts the wave.
fn bake_timed_out(stage: usize, bake: Duration) -> String {
    let budget = crate::deadline::command().map(|d| d.budget()).unwrap_or_default();
    format!(
        "--timeout ({}) ran out during stage {stage}'s bake ({}): the bake did not finish, so no later stage was \
         started and nothing was rolled back. Raise --timeout above the stages' deployments plus every bake.",
        humantime::format_duration(budget),
        humantime::format_duration(bake)
    )
}

/// Rolls one environment back to its last good release (`rollback::plan`,
/// as `ferry rollback`) and follows it; records it in the wave's receipt.
/// Returns the signal that cut the rollback's following short, if one did.
async fn roll_back_env(plan: &Plan<'_>, run: &mut EnvRun<'_>, board: &Board, reporter: &dyn Reporter) -> Option<Received> {
    let tagged = Tagged { inner: reporter, env: run.env.name.clone() };
    let index = run.index;
    let result = roll_back_one(plan, run, &tagged).await;
    let (id, outcome, error, signal) = match result {
        Ok((keeper, code)) => {
            let r = keeper.receipt;
            (r.deployment_id, r.outcome, r.error, signal_of(code))
        }
        Err(f) => {
            tagged.report(&Event::Warning { message: format!("the wave could not roll {} back: {}", run.env.name, f.message) });
            (None, None, Some(f.message), None)
        }
    };
    // The failed release whose rollback Succeeded: the group runs the
    // previous revision again, as exit 7 says alone.
    if outcome == Some(Outcome::Succeeded)
        && run.code.is_some_and(|c| matches!(c, ExitCode::DeploymentFailed | ExitCode::Stopped))
    {
        run.code = Some(ExitCode::RolledBack);
    }
    board.update(|r| {
        let e = &mut r.envs[index];
        e.wave_rollback_deployment_id = id;
        e.wave_rollback_outcome = outcome;
        e.wave_rollback_error = error;
    });
    signal
}

/// `ferry rollback --env`'s steps for one environment, with the clients its
/// release made: plan, report, create and follow; returns its receipt and
/// exit code.
async fn roll_back_one(plan: &Plan<'_>, run: &EnvRun<'_>, reporter: &dyn Reporter) -> Result<(Keeper, ExitCode), Failure> {
    let env = run.env;
    let Some(clients) = &run.clients else {
        return Err(Failure { code: ExitCode::Aws, class: "rollback", message: "the role was never assumed".into() });
    };
    let (revision, description) = match env.platform.lambda() {
        Some(function) => {
            // The alias goes back to the version it was on, as `ferry rollback` does.
            let client = aws_sdk_lambda::Client::new(&clients.sdk);
            let target = pipeline::lambda::rollback_plan(&clients.cd, &client, env, function, None).await.map_err(|e| {
                let code = match &e {
                    pipeline::lambda::RollbackError::Lambda(e) => e.exit_code(),
                    pipeline::lambda::RollbackError::Rollback(e) => e.exit_code(),
                };
                Failure { code, class: "rollback", message: e.to_string() }
            })?;
            reporter.report(&target.event(env, function));
            let v = &target.versions;
            let description = env.deploy.describe(&format!(
                "ferry rollback by {} of {}:{} from version {} to {} (wave {} halted)",
                clients.session_name, function.name, function.alias, v.current, v.target, plan.wave.name
            ));
            (crate::deploy::appspec_revision(&target.appspec), description)
        }
        None => {
            let fail = |e: rollback::RollbackError| Failure { code: e.exit_code(), class: "rollback", message: e.to_string() };
            let target = rollback::plan(&clients.cd, &clients.s3, env, None).await.map_err(fail)?;
            reporter.report(&target.event(env));
            let from = target.from.as_ref().and_then(|d| d.deployment_id()).unwrap_or("nothing");
            let description = env.deploy.describe(&format!(
                "ferry rollback by {} from {from} to {} (wave {} halted)",
                clients.session_name,
                deployments::s3_url(&target.revision),
                plan.wave.name
            ));
            (target.revision_location(), description)
        }
    };
    let request = queue::Request {
        env,
        revision,
        description,
        auto_rollback: None,
        // A rollback deliberately deploys an older build.
        build: None,
        queue_timeout: Duration::ZERO,
    };
    // Followed to the end; left running on abort, as `ferry rollback` does:
    // stopping it half-way would leave the group on neither revision.
    let following = Following { wait: true, on_abort: OnAbort::Leave, ..plan.following.clone() };
    let mut guard = Guard::install(reporter);
    let mut keeper = Keeper::new(Receipt::default(), Clock::start(), None);
    match launch::launch(&clients.cd, &request, &following, &mut guard, &mut keeper, reporter).await {
        Ok(code) => Ok((keeper, code)),
        Err(e) => {
            keeper.receipt.error = Some(e.to_string());
            Ok((keeper, ExitCode::Aws))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;

    /// CodeDeploy and S3 in-process: every request is answered at once
    /// (ListDeployments with no deployment) and noted with the operation and
    /// when, on tokio's clock, it came.
    #[derive(Clone, Debug)]
    struct Counting {
        start: tokio::time::Instant,
        seen: Arc<Mutex<Vec<(String, Duration)>>>,
    }

    impl HttpConnector for Counting {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let op = request.headers().get("x-amz-target").unwrap_or_default().rsplit('.').next().unwrap_or_default();
            self.seen.lock().unwrap().push((op.to_string(), self.start.elapsed()));
            let body = if op == "ListDeployments" { r#"{"deployments":[]}"# } else { "{}" };
            let status = aws_smithy_runtime_api::http::StatusCode::try_from(200).unwrap();
            HttpConnectorFuture::ready(Ok(aws_smithy_runtime_api::http::Response::new(status, SdkBody::from(body))))
        }
    }

    impl HttpClient for Counting {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    struct Quiet;
    impl Reporter for Quiet {
        fn report(&self, _: &Event) {}
    }

    fn clients(http: &Counting) -> Clients {
        use aws_sdk_codedeploy::config::{BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig};
        let creds = Credentials::new("AKIDEXAMPLE", "not-a-secret", None, None, "test");
        let cd = aws_sdk_codedeploy::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(creds.clone())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .http_client(http.clone())
            .build();
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(creds)
            .http_client(http.clone())
            .build();
        Clients {
            cd: aws_sdk_codedeploy::Client::from_conf(cd),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sdk: aws_config::SdkConfig::builder().build(),
            session_name: "test".into(),
        }
    }

    /// Issue 24 item 8: the bake reads each group every 2 s (watch::SLOW),
    /// counted on a paused clock rather than bounded by a wall-clock time:
    /// a bake of 10 s polls at 0, 2, 4, 6, 8 and 10 s, one of 7 s at 0, 2,
    /// 4, 6 and at its end.
    #[tokio::test(start_paused = true)]
    async fn the_bake_polls_each_group_every_two_seconds_and_once_at_its_end() {
        let env = Environment::example();
        for (bake, want) in [(10, vec![0, 2000, 4000, 6000, 8000, 10_000]), (7, vec![0, 2000, 4000, 6000, 7000])] {
            let http = Counting { start: tokio::time::Instant::now(), seen: Arc::default() };
            let keeper = Keeper::new(Receipt::default(), Clock::start(), None);
            let runs = [EnvRun { index: 0, env: &env, keeper, clients: Some(clients(&http)), code: None }];
            let baked = bake_stage(1, Duration::from_secs(bake), SystemTime::now(), &runs, &Quiet).await;
            assert!(matches!(baked, Baked::Passed), "a {bake} s bake of a healthy group passes");
            let seen = http.seen.lock().unwrap().clone();
            assert!(seen.iter().all(|(op, _)| op == "ListDeployments"), "{seen:?}");
            let at: Vec<u128> = seen.iter().map(|(_, t)| t.as_millis()).collect();
            assert_eq!(at, want, "a {bake} s bake's polls, ms after it began");
        }
    }

    #[test]
    fn the_worst_code_of_a_wave_is_a_failure_over_a_rollback_over_success() {
        assert_eq!(worst([ExitCode::Success, ExitCode::Success]), ExitCode::Success);
        assert_eq!(worst([ExitCode::Success, ExitCode::RolledBack, ExitCode::DeploymentFailed]), ExitCode::DeploymentFailed);
        assert_eq!(worst([ExitCode::RolledBack, ExitCode::Success]), ExitCode::RolledBack);
        assert_eq!(worst([ExitCode::DeploymentFailed, ExitCode::Aws]), ExitCode::Aws);
        assert_eq!(worst([ExitCode::Aws, ExitCode::Terminated, ExitCode::Usage]), ExitCode::Terminated);
        assert_eq!(worst([ExitCode::Superseded, ExitCode::Success]), ExitCode::Superseded);
        assert_eq!(worst(Vec::new()), ExitCode::Success);
    }
}
