//! `ferry env`: the assumed credentials as variables for a shell, fish,
//! JSON or GitHub Actions. Refuses a terminal unless `--force`.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::EnvArgs;
use crate::cmd::error::Error;
use crate::event::Reporter;
use crate::exit::ExitCode;
use crate::handoff::{self, HandoffError};
use crate::report::write_product;
use crate::{assume, config};

/// Prints the variables on stdout.
pub async fn run(args: &EnvArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    // Before assuming anything: a refusal must not cost a session.
    if std::io::stdout().is_terminal() && !args.force {
        let capture = "Capture them instead (eval \"$(ferry env …)\", or redirect to a file)";
        return Err(HandoffError::Terminal { command: "env", capture }.into());
    }
    let opts = super::assume_options(&env, reporter);
    let creds = assume::credentials(&env, &opts).await?;
    let text = handoff::render(args.format, &handoff::variables(&creds, &env.region));
    write_product(&text).map_err(|e| HandoffError::Write { detail: e.to_string() })?;
    Ok(ExitCode::Success)
}
