//! `ferry status <deployment-id>`: the deployment's state once, with each
//! instance's lifecycle events, and no waiting. Scriptable: the state word
//! is the text-mode result on stdout, and the exit code says the state.

use std::path::PathBuf;

use crate::cli::StatusArgs;
use crate::cmd::error::Error;
use crate::config;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;
use crate::watch;

/// Reports the state and exits by it, as `release` would have ended on it
/// ([`exit_of`]); an unreadable state is an error (1 or 2) as usual.
pub async fn run(args: &StatusArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let (sdk, _session) = super::assume_role(&env, reporter).await?;
    let cd = aws_sdk_codedeploy::Client::new(&sdk);
    let status = watch::status(&cd, &args.deployment_id, reporter).await?;
    let code = exit_of(&status);
    reporter.report(&Event::StatusRead { deployment_id: args.deployment_id.clone(), status, exit_code: code.code() });
    Ok(code)
}

/// The exit code of a deployment state, from README's table: 0 Succeeded,
/// 3 Failed, 4 Stopped, 6 Ready, and 5 for one that has not ended yet
/// (the row of "it may still be running": `ferry watch` follows it).
pub fn exit_of(status: &str) -> ExitCode {
    match status {
        "Succeeded" => ExitCode::Success,
        "Failed" => ExitCode::DeploymentFailed,
        "Stopped" => ExitCode::Stopped,
        "Ready" => ExitCode::Ready,
        _ => ExitCode::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_exits_as_a_release_ending_there_would() {
        let codes: Vec<u8> = ["Succeeded", "Failed", "Stopped", "Ready", "InProgress", "Created", "Queued", "Baking"]
            .map(|s| exit_of(s).code())
            .into();
        assert_eq!(codes, [0, 3, 4, 6, 5, 5, 5, 5]);
    }
}
