//! `ferry doctor`: checks each link from this agent to the deployment group
//! and prints ✓/✗ with the fix; exits 2 if any link is broken.

use std::path::PathBuf;

use crate::cli::DoctorArgs;
use crate::cmd::error::Error;
use crate::event::Reporter;
use crate::exit::ExitCode;
use crate::{config, doctor};

/// Runs the checks; the exit code says whether all passed.
pub async fn run(args: &DoctorArgs, config_path: Option<PathBuf>, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let env = config::resolve(&args.target.selection(config_path))?;
    let opts = super::assume_options(&env, reporter);
    let all_ok = doctor::check(&env, &opts, &args.target.override_flags(), reporter).await;
    Ok(if all_ok { ExitCode::Success } else { ExitCode::Aws })
}
