//! `ferry release DIR --wave NAME`: the bundle is built and checked once,
//! then `crate::wave` ships it through the wave's stages. One receipt for
//! the whole wave; the exit code is the worst environment's.

use std::path::PathBuf;

use crate::abort::OnAbort;
use crate::bundle::Holds;
use crate::cli::ReleaseArgs;
use crate::cmd::error::Error;
use crate::config::{self, ConfigError, Environment};
use crate::event::{Event, Reporter, WaveOutcome, WaveReceipt};
use crate::exit::ExitCode;
use crate::pipeline::Start;
use crate::promote::S3Uri;
use crate::receipt;
use crate::wave::{self, Board, Plan};

/// Runs the wave `name` and returns the exit code of its worst environment.
pub async fn run(
    args: &ReleaseArgs,
    name: &str,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
) -> Result<ExitCode, Error> {
    let Start { mut guard, receipt_path, clock } = Start::begin(args.ending.receipt.as_deref(), reporter)?;
    let mut selection = args.target.selection(config_path);
    args.deploy.apply(&mut selection.overrides);
    let resolved = resolve(args, &selection, name).map_err(Error::from).and_then(|r| confirmed(args, name, r));
    let (wave, envs) = match resolved {
        Ok(resolved) => resolved,
        Err(e) => {
            // Nothing started; the receipt still says what was asked and why not.
            if let Some(path) = &receipt_path {
                let mut r = WaveReceipt { wave: name.into(), build: receipt::build_from_env(), ..Default::default() };
                r.error = Some(e.to_string());
                clock.stamp_wave(&mut r);
                if let Err(w) = receipt::write_wave(path, &r) {
                    reporter.report(&Event::Warning { message: w.to_string() });
                }
            }
            return Err(e);
        }
    };
    let policy = args.wave_rollback.unwrap_or(wave.rollback);
    let board = Board::new(&wave, policy, clock, receipt_path);

    let temp = match super::bundle_temp_dir() {
        Ok(t) => t,
        Err(e) => return finish_early(&board, Err(e), reporter),
    };
    let prepared = super::prepare_holding(&args.path, args.shipping.bundle_type, temp.path(), holds(&envs), reporter);
    let bundle = match guard.run(prepared).await {
        Ok(Ok(bundle)) => bundle,
        Ok(Err(e)) => return finish_early(&board, Err(e), reporter),
        Err(sig) => {
            drop(temp);
            crate::bundle::cache::Cache::discard_own_partials();
            reporter.report(&Event::Interrupted {
                signal: sig.name().into(),
                phase: "bundle".into(),
                detail: "stopped bundling; nothing was uploaded or deployed".into(),
            });
            board.update(|r| {
                r.outcome = Some(WaveOutcome::Aborted);
                r.signal = Some(sig.name().into());
            });
            return finish_early(&board, Ok(sig.exit_code()), reporter);
        }
    };

    let plan = Plan {
        wave: &wave,
        envs: &envs,
        bundle: &bundle,
        policy,
        following: args.ending.following(!args.no_wait, &args.follow, OnAbort::StopAndRollback),
        auto_rollback: args.policy.rollback_on.map(|p| p.configuration()),
        queue_timeout: args.policy.queue_timeout,
        upload_concurrency: args.shipping.upload_concurrency as usize,
    };
    let code = wave::run(&plan, &mut guard, &board, reporter).await;
    drop(bundle);
    drop(temp);
    Ok(board.finish(code, None, reporter)?)
}

/// The wave and its environments; `s3://` (promotion) is one environment's
/// feature, not a wave's.
fn resolve(
    args: &ReleaseArgs,
    selection: &config::Selection,
    name: &str,
) -> Result<(config::Wave, Vec<Environment>), ConfigError> {
    if let Some(uri) = args.path.to_str().and_then(S3Uri::parse) {
        return Err(ConfigError::Invalid {
            key: "DIR|FILE",
            value: format!("s3://{}/{}", uri.bucket, uri.key),
            reason: "--wave ships a bundle built here (a directory or a .zip/.tar/.tgz) to every environment's own \
                     bucket; promote an s3:// bundle one environment at a time with --env."
                .into(),
        });
    }
    let (wave, envs) = config::resolve_wave(selection, name)?;
    if let Some(env) = envs.iter().find(|e| matches!(e.platform, config::Platform::Ecs(_))) {
        return Err(ConfigError::InvalidWave {
            path: selection.path.clone().unwrap_or_else(|| config::DEFAULT_FILE.into()),
            wave: name.into(),
            reason: format!(
                "[env.{0}] deploys an ECS service, and a wave ships one bundle to every environment, while an ECS \
                 release ships an image (`ferry release --image URI --env {0}`). Nothing was sent. Take {0} out of the \
                 wave's stages and release it on its own with --image.",
                env.name
            ),
        });
    }
    Ok((wave, envs))
}

/// What the wave's one bundle must hold: an EC2/on-premises revision (its
/// appspec.yml checked) when any environment needs one; only code when
/// every environment is a Lambda function. A bundle checked as a revision
/// is still a function's code to Lambda.
fn holds(envs: &[Environment]) -> Holds {
    match envs.iter().all(|e| super::plan::holds(e) == Holds::FunctionCode) {
        true => Holds::FunctionCode,
        false => Holds::Revision,
    }
}

/// A wave does not stop between stages to ask: one holding an environment
/// marked `confirm = true` is refused, before any AWS call, unless `--yes`.
fn confirmed(
    args: &ReleaseArgs,
    name: &str,
    (wave, envs): (config::Wave, Vec<Environment>),
) -> Result<(config::Wave, Vec<Environment>), Error> {
    match envs.iter().find(|e| e.confirm) {
        Some(env) if !args.yes => Err(crate::plan::PlanError::NotConfirmed(format!(
            "wave {name} includes [env.{0}], which is marked confirm = true, and a wave does not stop to ask. \
             Nothing was sent. Show its plan (`ferry plan --env {0}`), then release the wave with --yes.",
            env.name
        ))
        .into()),
        _ => Ok((wave, envs)),
    }
}

/// Ends a wave that never started an environment: the receipt records the
/// error (or the signal) and the command ends with it.
fn finish_early(board: &Board, result: Result<ExitCode, Error>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    match result {
        Ok(code) => {
            board.update(|r| r.exit_code = Some(code.code()));
            Ok(board.finish(code, None, reporter)?)
        }
        Err(e) => {
            board.update(|r| r.exit_code = Some(e.exit_code().code()));
            // The command's own error wins over a receipt that cannot be written.
            let _ = board.finish(e.exit_code(), Some(e.to_string()), reporter);
            Err(e)
        }
    }
}
