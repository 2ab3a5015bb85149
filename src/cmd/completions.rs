//! `ferry completions <shell>` and `ferry man`: generated from the clap
//! definitions, so they can never drift from the real flags.
//!
//! Completions leave out hidden flags (test-only ones such as
//! `--unsafe-session-seconds`, compatibility ones such as `--wait`), which
//! clap_complete's generators emit, and complete `--env` with the
//! environments of the ferry.toml at hand when the shell asks (bash, zsh,
//! fish), by calling `ferry completions --env-names`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::cmd::error::Error;
use crate::exit::ExitCode;
use crate::handoff::HandoffError;
use crate::report::write_product;

/// The command the completion scripts run for `--env`'s values.
const ENV_NAMES: &str = "ferry completions --env-names 2>/dev/null";

/// `ferry completions SHELL`, or the scripts' own `--env-names`.
pub fn run(args: &CompletionsArgs, config: Option<PathBuf>) -> Result<ExitCode, Error> {
    match args.shell {
        Some(shell) if !args.env_names => completions(shell),
        _ => env_names(config),
    }
}

/// Writes the completion script for `shell` to stdout. Generated into memory
/// first: clap_complete's own writer panics when stdout is closed
/// (`ferry completions fish | head -c1`), where this is an error, exit 1.
pub fn completions(shell: Shell) -> Result<ExitCode, Error> {
    write(script(shell).as_bytes())
}

/// The environments of ferry.toml, one a line. Whatever goes wrong (no
/// file, a parse error) prints nothing and exits 0: a completion must
/// never spill an error into the command line being typed.
fn env_names(config: Option<PathBuf>) -> Result<ExitCode, Error> {
    let path = config.unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_FILE));
    let names = crate::small_file::read(&path, 1 << 20)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| crate::config::parse_file(&path, &text).ok())
        .map(|envs| envs.into_keys().map(|n| format!("{n}\n")).collect::<String>())
        .unwrap_or_default();
    write(names.as_bytes())
}

/// The completion script for `shell`: clap_complete's, without hidden
/// flags, with `--env` completed from ferry.toml.
pub(crate) fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let text = hidden_longs().iter().fold(text, |t, long| drop_flag(shell, &t, long));
    with_env_values(shell, &text)
}

/// Long flags hidden everywhere they appear (a name visible on any
/// subcommand stays).
fn hidden_longs() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, hidden: &mut BTreeSet<String>, visible: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                let set = if arg.is_hide_set() { &mut *hidden } else { &mut *visible };
                set.insert(long.to_string());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, hidden, visible);
        }
    }
    let (mut hidden, mut visible) = (BTreeSet::new(), BTreeSet::new());
    let mut cli = Cli::command();
    cli.build();
    walk(&cli, &mut hidden, &mut visible);
    hidden.difference(&visible).cloned().collect()
}

/// `text` without `--long` (by each generator's layout).
fn drop_flag(shell: Shell, text: &str, long: &str) -> String {
    let flag = format!("--{long}");
    let mut out = String::with_capacity(text.len());
    let mut skipping_case = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        let drop = match shell {
            // A `--flag)` arm of a `case`, to its `;;`.
            Shell::Bash if t == format!("{flag})") => {
                skipping_case = true;
                true
            }
            Shell::Bash if skipping_case => {
                skipping_case = t != ";;";
                true
            }
            Shell::Zsh => t.starts_with(&format!("'{flag}=[")) || t.starts_with(&format!("'{flag}[")),
            Shell::Fish => t.contains(&format!(" -l {long} ")) || t.ends_with(&format!(" -l {long}")),
            Shell::Elvish => t.starts_with(&format!("cand {flag} ")),
            Shell::PowerShell => t.contains(&format!("::new('{flag}',")),
            _ => false,
        };
        if drop {
            continue;
        }
        if shell == Shell::Bash {
            // The word lists: `opts="… --flag …"`.
            out.push_str(&line.replace(&format!(" {flag} "), " ").replace(&format!(" {flag}\""), "\""));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// `text` with `--env`/`-e` completed by [`ENV_NAMES`] at the prompt.
fn with_env_values(shell: Shell, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 512);
    let mut env_arm = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        match shell {
            Shell::Bash if env_arm && t.starts_with("COMPREPLY=") => {
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push_str(&format!("{indent}COMPREPLY=($(compgen -W \"$({ENV_NAMES})\" -- \"${{cur}}\"))\n"));
                env_arm = false;
                continue;
            }
            Shell::Bash => env_arm = t == "--env)" || t == "-e)",
            Shell::Zsh if t.starts_with("'--env=[") || t.starts_with("'-e+[") => {
                out.push_str(&line.replacen(":NAME:_default'", ":NAME:_ferry_env_names'", 1));
                continue;
            }
            Shell::Zsh if t.starts_with("if [ \"$funcstack[1]\" = \"_ferry\" ]") => {
                out.push_str(&format!(
                    "(( $+functions[_ferry_env_names] )) ||\n_ferry_env_names() {{\n    local -a names\n    \
                     names=(${{(f)\"$({ENV_NAMES})\"}})\n    _describe -t environments 'environment' names\n}}\n\n"
                ));
            }
            Shell::Fish if t.contains(" -s e -l env ") => {
                out.push_str(&format!("{} -f -a \"({ENV_NAMES})\"\n", line.trim_end()));
                continue;
            }
            _ => {}
        }
        out.push_str(line);
    }
    out
}

/// `ferry man`: the top page, one subcommand's (`ferry man release`:
/// ferry-release(1)), or with `--out-dir` every page as a file there.
pub fn man(args: &ManArgs) -> Result<ExitCode, Error> {
    let write_err = |e: std::io::Error| HandoffError::Write { detail: e.to_string() };
    if let Some(dir) = &args.out_dir {
        for (name, page) in pages().map_err(write_err)? {
            let path = dir.join(format!("{name}.1"));
            std::fs::write(&path, page)
                .map_err(|e| HandoffError::Write { detail: format!("cannot write {}: {e}", path.display()) })?;
        }
        return Ok(ExitCode::Success);
    }
    write(&page(args.subcommand.as_deref()).map_err(write_err)?)
}

/// Every page: `ferry` and `ferry-SUBCOMMAND` for each visible subcommand.
pub(crate) fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = vec![("ferry".to_string(), page(None)?)];
    // Built, as the top page is: clap's `help` subcommand is cited there too.
    let mut cli = Cli::command();
    cli.build();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        out.push((format!("ferry-{}", sub.get_name()), page(Some(sub.get_name()))?));
    }
    Ok(out)
}

/// One page in roff: clap_mangen's, with EXIT STATUS and (on a
/// subcommand's page) SEE ALSO before its closing VERSION section.
fn page(subcommand: Option<&str>) -> std::io::Result<Vec<u8>> {
    let mut top = Cli::command();
    // Built, so the global flags are on each subcommand too.
    top.build();
    let cmd = match subcommand {
        Some(name) => top
            .find_subcommand(name)
            .cloned()
            .ok_or_else(|| std::io::Error::other(format!("no subcommand {name}")))?
            .display_name(format!("ferry-{name}"))
            .bin_name(format!("ferry {name}"))
            .version(env!("CARGO_PKG_VERSION")),
        None => top,
    };
    let man = clap_mangen::Man::new(cmd).source(format!("ferry {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render(&mut out)?;
    let mut text = String::from_utf8_lossy(&out).into_owned();
    let mut ours = exit_status(subcommand.unwrap_or(""));
    if subcommand.is_some() {
        ours.push_str(".SH \"SEE ALSO\"\n\\fBferry\\fR(1)\n");
    }
    // Before the version, which clap_mangen puts last.
    let at = text.find(".SH VERSION").unwrap_or(text.len());
    text.insert_str(at, &ours);
    Ok(text.into_bytes())
}

/// README's exit-code table, as the commands that follow a deployment use it.
const EXIT_CODES: &[(u8, &str)] = &[
    (0, "success: the deployment Succeeded (or, with --no-wait, was created)"),
    (1, "bad input: command line, ferry.toml, bundle or appspec; nothing was sent to AWS"),
    (2, "AWS refused or was unreachable: credentials, trust policy, permissions, bucket owner, endpoint"),
    (3, "the deployment ran and failed"),
    (4, "the deployment was stopped"),
    (5, "--timeout elapsed before the deployment ended; it may still be running (ferry watch ID follows it)"),
    (6, "blue/green: the deployment is Ready, waiting for traffic to be rerouted"),
    (7, "failed or stopped, and CodeDeploy's rollback succeeded: the previous revision runs again"),
    (8, "superseded: the group has a newer build of the same job; nothing was deployed"),
    (130, "interrupted by SIGINT; --on-abort was applied and the receipt written"),
    (143, "terminated by SIGTERM; --on-abort was applied and the receipt written"),
];

/// The EXIT STATUS section of `subcommand`'s page ("" for the top page).
fn exit_status(subcommand: &str) -> String {
    let rows: Vec<(String, String)> = match subcommand {
        "" | "release" | "watch" | "rollback" | "stop" | "continue" => {
            EXIT_CODES.iter().map(|(c, m)| (c.to_string(), m.to_string())).collect()
        }
        "status" => [
            ("0", "the deployment Succeeded"),
            ("1", "bad input; nothing was sent to AWS"),
            ("2", "AWS refused or was unreachable: the state could not be read"),
            ("3", "the deployment Failed"),
            ("4", "the deployment was Stopped"),
            ("5", "the deployment has not ended yet (Created, Queued, InProgress, Baking)"),
            ("6", "blue/green: the deployment is Ready, waiting for traffic to be rerouted"),
        ]
        .iter()
        .map(|(c, m)| (c.to_string(), m.to_string()))
        .collect(),
        "exec" => vec![
            ("N".into(), "the command's own exit status (128+N if signal N killed it)".into()),
            ("1".into(), "bad input; the command was not run".into()),
            ("2".into(), "AWS refused or was unreachable; the command was not run".into()),
            ("126, 127".into(), "the command could not be run, or was not found".into()),
        ],
        _ => EXIT_CODES[..3].iter().map(|(c, m)| (c.to_string(), m.to_string())).collect(),
    };
    let mut s = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in rows {
        s.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff_text(&code), roff_text(&meaning)));
    }
    s
}

/// `text` safe as a roff text line: hyphens as `\-`, backslashes doubled,
/// no leading dot or quote.
fn roff_text(text: &str) -> String {
    let t = text.replace('\\', "\\\\").replace('-', "\\-");
    if t.starts_with(['.', '\'']) { format!("\\&{t}") } else { t }
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
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
            let text = script(shell);
            assert!(text.contains("release") && text.contains("watch"), "{shell:?}");
        }
    }

    #[test]
    fn hidden_flags_are_left_out_of_every_shells_script() {
        let hidden = hidden_longs();
        assert!(hidden.contains("unsafe-session-seconds") && hidden.contains("wait") && hidden.contains("env-names"));
        assert!(!hidden.contains("wait-ready"), "a visible flag is not hidden: {hidden:?}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
            let text = script(shell);
            assert!(!text.contains("unsafe-session-seconds") && !text.contains("env-names\""), "{shell:?}:\n{text}");
            assert!(text.contains("wait-ready") && text.contains("no-wait"), "{shell:?} lost visible flags");
            let bare_wait =
                text.matches("--wait").count() - text.matches("--wait-ready").count() - text.matches("--wait-type").count();
            let fish_wait = text.lines().filter(|l| l.contains(" -l wait ")).count();
            assert_eq!((bare_wait, fish_wait), (0, 0), "{shell:?} offers the hidden --wait:\n{text}");
        }
    }

    #[test]
    fn env_is_completed_from_ferry_toml_in_bash_zsh_and_fish() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell);
            assert!(text.contains(ENV_NAMES), "{shell:?}:\n{text}");
        }
        let bash = script(Shell::Bash);
        assert!(!bash.contains("--env)\n                    COMPREPLY=($(compgen -f"), "{bash}");
        assert!(script(Shell::Zsh).contains("'--env=[Environment from ferry.toml"));
    }

    #[test]
    fn each_subcommand_has_a_page_with_its_options_and_exit_status() {
        let pages = pages().unwrap();
        assert!(pages.iter().any(|(n, _)| n == "ferry-history") && pages.len() > 15, "{}", pages.len());
        for (name, page) in pages {
            let text = String::from_utf8(page).unwrap();
            assert!(text.contains(".SH \"EXIT STATUS\""), "{name}");
            assert!(name == "ferry-help" || text.contains(".SH OPTIONS"), "{name}");
        }
        let release = String::from_utf8(page(Some("release")).unwrap()).unwrap();
        assert!(release.starts_with(".ie") && release.contains(".TH ferry-release 1  \"ferry 0.1.0\""), "{}", &release[..300]);
        assert!(release.contains("\\-\\-rollback\\-on") && release.contains("\\-\\-config"), "own and global flags");
        assert!(!release.contains("unsafe\\-session"), "hidden flags stay out");
        let status = String::from_utf8(page(Some("status")).unwrap()).unwrap();
        assert!(status.contains("has not ended yet"), "status's own codes");
        let top = String::from_utf8(page(None).unwrap()).unwrap();
        assert!(top.contains("ferry\\-release(1)") && top.contains("\\fB7\\fR"), "the top page cites the pages");
    }
}
