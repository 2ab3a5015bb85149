//! Handing assumed credentials to other programs: as environment variables
//! of a child process (`ferry exec`), as text another tool reads
//! (`ferry env`), or as `credential_process` JSON.
//!
//! These are the only places secrets leave ferry, and only on the stdout or
//! environment the user asked for them on.

use std::ffi::OsString;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use serde_json::json;

use crate::exit::ExitCode;

/// `ferry env --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `export NAME='value'` lines for sh, bash, zsh (`eval "$(ferry env …)"`).
    Sh,
    /// `set -gx NAME 'value';` lines for fish.
    Fish,
    /// One JSON object of variable names to values.
    Json,
    /// `NAME=value` lines to append to `$GITHUB_ENV`.
    Github,
}

/// Why credentials could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// `ferry env` or `ferry credential-process` would print secrets onto a terminal.
    #[error(
        "ferry {command} prints the session's secret key and token, and stdout is a terminal, where they would stay \
         in the scrollback and any screen recording. {capture}, use `ferry exec -- <command>`, or pass --force if you \
         really want them on screen."
    )]
    Terminal {
        /// `env` or `credential-process`.
        command: &'static str,
        /// How that command's output is meant to be captured.
        capture: &'static str,
    },
    /// The command for `ferry exec` does not exist.
    #[error("cannot run {program}: no such command. Check the spelling and PATH; ferry exec runs it without a shell.")]
    NotFound {
        /// The program.
        program: String,
    },
    /// The command exists but could not be started.
    #[error("cannot run {program}: {detail}. Check that it is executable.")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        detail: String,
    },
    /// stdout could not be written.
    #[error("cannot write to stdout: {detail}")]
    Write {
        /// The I/O error.
        detail: String,
    },
}

impl HandoffError {
    /// Exit code: 1 for a refusal, 127/126 like a shell for a command that
    /// cannot be found or run.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            HandoffError::Terminal { .. } | HandoffError::Write { .. } => ExitCode::Usage,
            HandoffError::NotFound { .. } => ExitCode::Child(127),
            HandoffError::Spawn { .. } => ExitCode::Child(126),
        }
    }
}

/// The standard AWS variables for `creds` in `region`, in the order they are
/// printed.
pub fn variables(creds: &Credentials, region: &str) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("AWS_ACCESS_KEY_ID", creds.access_key_id().to_string()),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key().to_string()),
    ];
    if let Some(token) = creds.session_token() {
        vars.push(("AWS_SESSION_TOKEN", token.to_string()));
    }
    if let Some(exp) = creds.expiry() {
        vars.push(("AWS_CREDENTIAL_EXPIRATION", rfc3339(exp)));
    }
    vars.push(("AWS_REGION", region.to_string()));
    vars.push(("AWS_DEFAULT_REGION", region.to_string()));
    vars
}

/// Renders `vars` in `format`, one trailing newline.
pub fn render(format: Format, vars: &[(&'static str, String)]) -> String {
    match format {
        Format::Sh => vars.iter().map(|(k, v)| format!("export {k}={}\n", single_quote(v))).collect(),
        Format::Fish => vars.iter().map(|(k, v)| format!("set -gx {k} {};\n", single_quote_fish(v))).collect(),
        Format::Github => vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
        Format::Json => {
            let map: serde_json::Map<String, serde_json::Value> =
                vars.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
            format!("{}\n", serde_json::Value::Object(map))
        }
    }
}

/// The `credential_process` output format, version 1.
pub fn credential_process_json(creds: &Credentials) -> String {
    let mut doc = json!({
        "Version": 1,
        "AccessKeyId": creds.access_key_id(),
        "SecretAccessKey": creds.secret_access_key(),
    });
    if let Some(token) = creds.session_token() {
        doc["SessionToken"] = json!(token);
    }
    // Without Expiration, SDKs cache the credentials forever.
    if let Some(exp) = creds.expiry() {
        doc["Expiration"] = json!(rfc3339(exp));
    }
    format!("{doc}\n")
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn single_quote_fish(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// Runs `command` with `vars` added to ferry's own environment (and
/// `AWS_PROFILE` removed, so nothing points the child elsewhere), forwarding
/// SIGINT and SIGTERM, and returns its exit status.
pub async fn run_child(command: &[OsString], vars: &[(&'static str, String)]) -> Result<ExitCode, HandoffError> {
    use tokio::signal::unix::{SignalKind, signal};

    let (program, args) = command.split_first().expect("clap requires a command");
    let name = program.to_string_lossy().into_owned();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_remove("AWS_PROFILE").envs(vars.iter().map(|(k, v)| (k, v)));
    // Listen before spawning, so a signal that arrives right after the
    // spawn reaches the child instead of killing ferry.
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| spawn_error(&name, e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| spawn_error(&name, e))?;
    let mut child = cmd.spawn().map_err(|e| spawn_error(&name, e))?;
    // The child is not reaped before `wait` returns, so its pid cannot have
    // been reused while we forward to it.
    let pid = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32));
    let forward = |sig: rustix::process::Signal| {
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, sig);
        }
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = sigint.recv() => forward(rustix::process::Signal::INT),
            _ = sigterm.recv() => forward(rustix::process::Signal::TERM),
        }
    };
    let status = status.map_err(|e| spawn_error(&name, e))?;
    Ok(ExitCode::Child(exit_status_code(status)))
}

/// The shell's convention: the exit code, or 128+N for death by signal N.
fn exit_status_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

fn spawn_error(program: &str, e: std::io::Error) -> HandoffError {
    if e.kind() == std::io::ErrorKind::NotFound {
        HandoffError::NotFound { program: program.to_string() }
    } else {
        HandoffError::Spawn { program: program.to_string(), detail: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds() -> Credentials {
        Credentials::new(
            "ASIAEXAMPLE",
            "se'cret",
            Some("tok".into()),
            Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            "test",
        )
    }

    #[test]
    fn sh_lines_quote_values_that_contain_quotes() {
        let text = render(Format::Sh, &variables(&creds(), "eu-west-1"));
        assert!(text.contains("export AWS_SECRET_ACCESS_KEY='se'\\''cret'\n"), "{text}");
        assert!(text.contains("export AWS_SESSION_TOKEN='tok'\n"), "{text}");
        assert!(text.contains("export AWS_CREDENTIAL_EXPIRATION='2027-01-15T08:00:00Z'\n"), "{text}");
    }

    #[test]
    fn fish_and_github_formats_carry_every_variable() {
        let vars = variables(&creds(), "eu-west-1");
        let fish = render(Format::Fish, &vars);
        assert!(fish.contains("set -gx AWS_SECRET_ACCESS_KEY 'se\\'cret';\n"), "{fish}");
        let gh = render(Format::Github, &vars);
        assert_eq!(gh.lines().count(), vars.len());
        assert!(gh.contains("AWS_REGION=eu-west-1\n"));
    }

    #[test]
    fn json_format_is_an_object_of_variables() {
        let v: serde_json::Value = serde_json::from_str(&render(Format::Json, &variables(&creds(), "eu-west-1"))).unwrap();
        assert_eq!(v["AWS_ACCESS_KEY_ID"], "ASIAEXAMPLE");
        assert_eq!(v["AWS_DEFAULT_REGION"], "eu-west-1");
    }

    #[test]
    fn credential_process_output_is_version_1_with_expiration() {
        let v: serde_json::Value = serde_json::from_str(&credential_process_json(&creds())).unwrap();
        assert_eq!(v["Version"], 1);
        assert_eq!(v["SessionToken"], "tok");
        assert_eq!(v["Expiration"], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn death_by_signal_maps_to_128_plus_the_signal() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_status_code(std::process::ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_status_code(std::process::ExitStatus::from_raw(7 << 8)), 7);
    }
}
