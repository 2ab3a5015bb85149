//! `ferry history`: the group's recent deployments, newest first, from
//! CodeDeploy and the bundles' S3 metadata (nothing local, so it survives a
//! Jenkins restart). `--status` and `--since` filter as `aws deploy
//! list-deployments` does. `--wave NAME`: what each environment of a wave runs.

use std::path::PathBuf;

use crate::cli::HistoryArgs;
use crate::cmd::error::Error;
use crate::deployments::{self, Filter};
use aws_sdk_codedeploy::types::DeploymentStatus;

use crate::config::Environment;
use crate::event::{Event, HistoryEntry, Reporter, Tagged};
use crate::exit::ExitCode;
use crate::rollback::RollbackError;
use crate::{config, upload};

/// Lists the deployments; one `history_entry` event each.
pub async fn run(args: &HistoryArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    if let Some(wave) = &args.wave {
        super::check_no_env_with_wave(&args.target, wave)?;
        return wave_history(args, wave, config_path, reporter).await;
    }
    let env = config::resolve(&args.target.selection(config_path))?;
    let filter = Filter { statuses: args.status.clone(), created_after: args.since, limit: args.limit.max(1) };
    let entries = entries(&env, &filter, reporter).await?;
    if entries.is_empty() {
        let filtered = if args.status.is_empty() && args.since.is_none() { "" } else { " that match --status/--since" };
        reporter.report(&Event::Warning { message: format!("{} has no deployments{filtered}", env.deployment_group) });
    }
    for e in entries {
        reporter.report(&Event::HistoryEntry(e));
    }
    Ok(ExitCode::Success)
}

/// The group's deployments matching `filter`, with their bundles' metadata.
async fn entries(env: &Environment, filter: &Filter, reporter: &dyn Reporter) -> Result<Vec<HistoryEntry>, Error> {
    let (sdk, _session) = super::assume_role(env, reporter).await?;
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let found = deployments::list(&cd, env, filter).await.map_err(|f| {
        let action = format!("list the deployments of {}", env.deployment_group);
        if f.unreachable {
            RollbackError::Unreachable { action, detail: f.detail }
        } else {
            RollbackError::Refused { action, detail: f.detail }
        }
    })?;
    let mut entries: Vec<_> = found.iter().map(deployments::entry).collect();
    deployments::add_object_metadata(&upload::s3_client(&sdk), &env.role.account, &mut entries).await;
    Ok(entries)
}

/// `--wave NAME`: per environment of the wave, in stage order, the release
/// its group runs: its newest Succeeded deployment (one row, led by the
/// environment's name). An environment that cannot be read is an error
/// line of its own; the others are still listed, and the exit code is the
/// worst.
async fn wave_history(
    args: &HistoryArgs,
    wave: &str,
    config_path: Option<PathBuf>,
    reporter: &dyn Reporter,
) -> Result<ExitCode, Error> {
    let (_, envs) = config::resolve_wave(&args.target.selection(config_path), wave)?;
    let filter = Filter { statuses: vec![DeploymentStatus::Succeeded], limit: 1, ..Default::default() };
    let mut codes = Vec::new();
    for env in &envs {
        let tagged = Tagged { inner: reporter, env: env.name.clone() };
        match entries(env, &filter, &tagged).await {
            Ok(found) if found.is_empty() => tagged.report(&Event::Warning {
                message: format!("{} has no Succeeded deployment: the wave has never released there", env.deployment_group),
            }),
            Ok(found) => found.into_iter().for_each(|e| tagged.report(&Event::HistoryEntry(e))),
            Err(e) => {
                codes.push(e.exit_code());
                tagged.report(&Event::Error { class: e.class().into(), exit_code: e.exit_code().code(), message: e.to_string() });
            }
        }
    }
    Ok(crate::wave::worst(codes))
}
