//! `ferry completions <shell>` and `ferry man`: generated from the clap
//! definitions, so they can never drift from the real flags.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::cmd::error::Error;
use crate::exit::ExitCode;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, Error> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "ferry", &mut std::io::stdout());
    Ok(ExitCode::Success)
}

/// Writes the man page (roff) to stdout: `ferry man > /usr/local/share/man/man1/ferry.1`.
pub fn man() -> Result<ExitCode, Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out).map_err(crate::cmd::error::Error::Output)?;
    std::io::stdout().write_all(&out).map_err(crate::cmd::error::Error::Output)?;
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
