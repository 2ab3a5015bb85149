//! Exit codes: the one table ferry documents in README.md and docs/jenkins.md.
//!
//! Data layer: every other layer may name a code; this module names nothing.

/// The process exit codes ferry documents in README.md and docs/jenkins.md.
///
/// Jenkins only sees the number, so each one means exactly one thing for the
/// build: retry, fix the input, or look at the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitCode {
    /// The command did what was asked (for a release: the deployment Succeeded,
    /// or, with `--no-wait`, it was created).
    Success,
    /// Bad input: command line, ferry.toml, bundle or appspec. Nothing was sent to AWS.
    Usage,
    /// AWS refused or could not be reached: credentials, permissions, endpoints.
    Aws,
    /// The deployment ran and failed.
    DeploymentFailed,
    /// The deployment was stopped (by someone, or by CodeDeploy's rollback).
    Stopped,
    /// `--timeout` elapsed before the deployment reached a final state.
    TimedOut,
    /// A blue/green deployment is Ready: installed, waiting for traffic to be rerouted.
    Ready,
    /// The deployment failed or was stopped, and CodeDeploy's rollback
    /// deployment then Succeeded: the group runs the previous revision again.
    /// (A rollback that fails too is 3, [`ExitCode::DeploymentFailed`].)
    RolledBack,
    /// Not deployed: the group already runs, or is running, a newer build of
    /// the same job (see docs/rollback.md, "Busy group"). Nothing was changed.
    Superseded,
    /// Interrupted by SIGINT (Ctrl-C).
    Interrupted,
    /// Terminated by SIGTERM (Jenkins' abort).
    Terminated,
    /// `ferry exec`: the command's own exit status (128+N if signal N killed
    /// it; 127 if it could not be found, 126 if it could not be run).
    Child(u8),
}

impl ExitCode {
    /// The numeric process exit status.
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Usage => 1,
            ExitCode::Aws => 2,
            ExitCode::DeploymentFailed => 3,
            ExitCode::Stopped => 4,
            ExitCode::TimedOut => 5,
            ExitCode::Ready => 6,
            ExitCode::RolledBack => 7,
            ExitCode::Superseded => 8,
            ExitCode::Interrupted => 130,
            ExitCode::Terminated => 143,
            ExitCode::Child(code) => code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code but `Child`, with a word its documented row must contain.
    const DOCUMENTED: [(ExitCode, &str); 11] = [
        (ExitCode::Success, "succeeded"),
        (ExitCode::Usage, "bad input"),
        (ExitCode::Aws, "aws refused"),
        (ExitCode::DeploymentFailed, "failed"),
        (ExitCode::Stopped, "stopped"),
        (ExitCode::TimedOut, "--timeout"),
        (ExitCode::Ready, "ready"),
        (ExitCode::RolledBack, "rollback"),
        (ExitCode::Superseded, "superseded"),
        (ExitCode::Interrupted, "sigint"),
        (ExitCode::Terminated, "sigterm"),
    ];

    /// `code → row` from a markdown table whose first column is the code
    /// (`| 7 |`, or `| 130 / 143 |` for two codes sharing a row).
    fn table(markdown: &str) -> std::collections::BTreeMap<u8, String> {
        let mut rows = std::collections::BTreeMap::new();
        for line in markdown.lines().filter(|l| l.starts_with('|')) {
            let first = line.split('|').nth(1).unwrap_or("").trim();
            let codes: Vec<u8> = first.split('/').filter_map(|c| c.trim().parse().ok()).collect();
            if codes.is_empty() || codes.len() != first.split('/').count() {
                continue;
            }
            for code in codes {
                rows.insert(code, line.to_lowercase());
            }
        }
        rows
    }

    fn check_against(name: &str, markdown: &str) {
        let rows = table(markdown);
        for (code, word) in DOCUMENTED {
            let row =
                rows.get(&code.code()).unwrap_or_else(|| panic!("{name} has no row for exit code {} ({code:?})", code.code()));
            assert!(row.contains(word), "{name}: the row for {} ({code:?}) does not say `{word}`: {row}", code.code());
        }
        let known: Vec<u8> = DOCUMENTED.iter().map(|(c, _)| c.code()).collect();
        for documented in rows.keys() {
            assert!(known.contains(documented), "{name} documents exit code {documented}, which ferry never returns");
        }
    }

    #[test]
    fn readme_documents_every_exit_code_with_its_meaning() {
        check_against("README.md", include_str!("../README.md"));
    }

    #[test]
    fn jenkins_guide_documents_every_exit_code_with_its_meaning() {
        let guide = include_str!("../docs/jenkins.md");
        // Only the exit-code table: other tables in the guide start with numbers too.
        let start = guide.find("| 0 |").expect("docs/jenkins.md has an exit-code table");
        let end = guide[start..].find("\n\n").map_or(guide.len(), |e| start + e);
        check_against("docs/jenkins.md", &guide[start..end]);
    }
}
