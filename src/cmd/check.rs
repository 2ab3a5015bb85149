//! `ferry check <DIR|FILE>`: the appspec checks a release runs, alone and
//! without AWS, listing every problem with its line and fix.

use crate::bundle;
use crate::cli::CheckArgs;
use crate::cmd::error::Error;
use crate::event::{Event, Reporter};
use crate::exit::ExitCode;

/// Reports each problem; exit code 1 when there is any, 0 when clean.
pub async fn run(args: &CheckArgs, reporter: &dyn Reporter) -> Result<ExitCode, Error> {
    let (file, problems) = bundle::check_only(&args.path)?;
    let file = file.display().to_string();
    for p in &problems {
        reporter.report(&Event::AppSpecProblem { file: file.clone(), line: p.line, message: p.message.clone() });
    }
    reporter.report(&Event::Checked { file, problems: problems.len() });
    Ok(if problems.is_empty() { ExitCode::Success } else { ExitCode::Usage })
}
