//! `ferry completions <shell>` and `ferry man`: generated from the clap
//! definitions, so they can never drift from the real flags.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::cmd::error::Error;
use crate::exit::ExitCode;
use crate::handoff::HandoffError;
use crate::report::write_product;

/// Writes the completion script for `shell` to stdout. Generated into memory
/// first: clap_complete's own writer panics when stdout is closed
/// (`ferry completions fish | head -c1`), where this is an error, exit 1.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, Error> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut out);
    write(&out)
}

/// Writes the man page (roff) to stdout: `ferry man > /usr/local/share/man/man1/ferry.1`.
pub fn man() -> Result<ExitCode, Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out).map_err(|e| HandoffError::Write { detail: e.to_string() })?;
    write(&out)
}

fn write(bytes: &[u8]) -> Result<ExitCode, Error> {
    write_product(&String::from_utf8_lossy(bytes)).map_err(|e| HandoffError::Write { detail: e.to_string() })?;
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_knows_the_subcommands() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("release") && text.contains("watch"), "{shell:?}");
        }
    }

    #[test]
    fn man_page_documents_the_subcommands() {
        let mut out = Vec::new();
        clap_mangen::Man::new(Cli::command()).render(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(".ie") && text.contains("ferry\\-release"), "{}", &text[..200]);
    }
}
