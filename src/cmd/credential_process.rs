//! `ferry credential-process`: `credential_process` JSON (version 1) on
//! stdout, so a profile in ~/.aws/config can get its credentials from ferry:
//!
//! ```ini
//! [profile production]
//! credential_process = ferry credential-process --env production
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::CredentialProcessArgs;
use crate::cmd::error::Error;
use crate::event::Reporter;
use crate::exit::ExitCode;
use crate::handoff::{self, HandoffError};
use crate::report::write_product;
use crate::{assume, config};

/// Prints the JSON document on stdout.
pub async fn run(args: &CredentialProcessArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    // The AWS CLI and SDKs read this from a pipe; on a terminal it would
    // only leave the secrets in the scrollback. Refused before any session.
    if std::io::stdout().is_terminal() && !args.force {
        let capture = "It is meant for `credential_process = ferry credential-process …` in ~/.aws/config";
        return Err(HandoffError::Terminal { command: "credential-process", capture }.into());
    }
    let opts = super::assume_options(&env, reporter);
    let creds = assume::credentials(&env, &opts).await?;
    write_product(&handoff::credential_process_json(&creds)).map_err(|e| HandoffError::Write { detail: e.to_string() })?;
    Ok(ExitCode::Success)
}
