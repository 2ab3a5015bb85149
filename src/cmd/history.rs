//! `ferry history`: the group's recent deployments, newest first, from
//! CodeDeploy and the bundles' S3 metadata (nothing local, so it survives a
//! Jenkins restart).

use std::path::PathBuf;

use crate::cli::HistoryArgs;
use crate::cmd::error::Error;
use crate::deployments::{self, Filter};
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;
use crate::rollback::RollbackError;
use crate::{config, upload};

/// Lists the deployments; one `history_entry` event each.
pub async fn run(args: &HistoryArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let (sdk, _session) = super::assume_role(&env, reporter).await?;
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let found = deployments::list(&cd, &env, &Filter { limit: args.limit.max(1), ..Default::default() }).await.map_err(|f| {
        let action = format!("list the deployments of {}", env.deployment_group);
        if f.unreachable {
            RollbackError::Unreachable { action, detail: f.detail }
        } else {
            RollbackError::Refused { action, detail: f.detail }
        }
    })?;
    let mut entries: Vec<_> = found.iter().map(deployments::entry).collect();
    deployments::add_object_metadata(&upload::s3_client(&sdk), &env.role.account, &mut entries).await;
    if entries.is_empty() {
        reporter.report(&Event::Warning { message: format!("{} has no deployments", env.deployment_group) });
    }
    for e in entries {
        reporter.report(&Event::HistoryEntry(e));
    }
    Ok(ExitCode::Success)
}
