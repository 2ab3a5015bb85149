//! ferry: a release agent that ships a bundle into an AWS production account
//! through CodeDeploy, from Jenkins or by hand.
//!
//! The pipeline, one module per step: [`config`] → [`assume`] → [`bundle`] →
//! [`upload`] → [`deploy`] → [`watch`]. Steps emit [`report::Event`]s; only
//! [`report`] prints. [`cmd`] holds one file per subcommand.

pub mod abort;
pub mod appspec;
pub mod assume;
pub mod bundle;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod deploy;
pub mod doctor;
pub mod error;
pub mod follow;
pub mod handoff;
pub mod history;
pub mod launch;
pub mod policy;
pub mod queue;
pub mod receipt;
pub mod report;
pub mod rollback;
pub mod upload;
pub mod watch;

use crate::cli::{Cli, Command};
use crate::error::ExitCode;
use crate::report::Event;

/// Runs a parsed command line and returns the process exit code. Errors are
/// reported through the reporter, never printed here.
pub fn run(cli: Cli) -> ExitCode {
    let reporter = report::choose(cli.output, cli.progress);
    if cli.debug {
        report::debug::init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            reporter.report(&Event::Error {
                class: "internal".into(),
                exit_code: ExitCode::Aws.code(),
                message: format!("cannot start the async runtime: {e}"),
            });
            return ExitCode::Aws;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Release(args) => cmd::release::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Watch(args) => cmd::watch::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Bundle(args) => cmd::bundle::run(args, reporter.as_ref()).await,
            Command::Check(args) => cmd::check::run(args, reporter.as_ref()).await,
            Command::Upload(args) => cmd::upload::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Status(args) => cmd::status::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Completions(args) => cmd::completions::completions(args.shell),
            Command::Man => cmd::completions::man(),
            Command::Policy(args) => cmd::policy::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Exec(args) => cmd::exec::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Env(args) => cmd::env::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::CredentialProcess(args) => cmd::credential_process::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Doctor(args) => cmd::doctor::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Rollback(args) => cmd::rollback::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::Stop(args) => cmd::stop::run(args, cli.config.clone(), reporter.as_ref()).await,
            Command::History(args) => cmd::history::run(args, cli.config.clone(), reporter.as_ref()).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            let code = err.exit_code();
            reporter.report(&Event::Error { class: err.class().into(), exit_code: code.code(), message: err.to_string() });
            code
        }
    }
}
