//! No drift between the documentation and the CLI: every `ferry …` command
//! shown in README.md and docs/ — in shell blocks, console transcripts,
//! indented examples and the `sh` steps of Groovy snippets — must be accepted
//! by ferry's real command-line parser. A renamed flag or subcommand fails
//! here before a user copies a dead example. (What each command *does* is
//! covered by the integration tests listed in docs/reliability.md; the
//! Jenkinsfiles' steps are run for real by tests/jenkins.rs.)

use std::path::{Path, PathBuf};

use clap::Parser;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Markdown files that document ferry.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![Path::new(REPO).join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(REPO).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Lines of code blocks that hold commands: fenced blocks (except output
/// ones: `text`, `json`, `toml`; in `console` blocks only `$ ` lines) and
/// indented blocks.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().to_string()),
            };
            continue;
        }
        let keep = match fence.as_deref() {
            Some("text" | "json" | "toml") => false,
            Some("console") => line.trim_start().starts_with("$ "),
            Some(_) => true,
            None => line.starts_with("    "),
        };
        if keep {
            out.push((n + 1, line.to_string()));
        }
    }
    out
}

/// The ferry command a code line runs, if any: at the start of the line
/// (after an optional `$ ` prompt) or inside a Groovy `sh '…'` /
/// `script: '…'` string.
fn command_in(line: &str) -> Option<String> {
    let t = line.trim_start();
    let t = t.strip_prefix("$ ").unwrap_or(t);
    if let Some(rest) = t.strip_prefix("ferry ") {
        return Some(format!("ferry {rest}"));
    }
    for opener in ["sh '", "sh \"", "script: '", "script: \""] {
        if let Some(pos) = line.find(opener) {
            let quote = opener.chars().last().unwrap();
            let body = &line[pos + opener.len()..];
            if let Some(cmd) = body.strip_prefix("ferry ") {
                let end = cmd.find(quote).unwrap_or(cmd.len());
                return Some(format!("ferry {}", &cmd[..end]));
            }
        }
    }
    None
}

/// Splits a shell command line into words: quotes, `#` comments, and
/// `<placeholder>` / `…` standing for a value.
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in cmd.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '>' | '|') if !in_word => break, // a redirect or pipe ends ferry's arguments
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out.into_iter().map(|w| if w.contains('<') || w.contains('…') { "placeholder".into() } else { w }).collect()
}

#[test]
fn words_handle_quotes_comments_and_redirects() {
    assert_eq!(words("ferry env --env \"$ENV\" > out # note"), vec!["ferry", "env", "--env", "$ENV"]);
    assert_eq!(words("ferry rollback --to <sha256>"), vec!["ferry", "rollback", "--to", "placeholder"]);
}

#[test]
fn every_documented_ferry_command_is_accepted_by_the_cli() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (line_no, line) in code_lines(&text) {
            let Some(cmd) = command_in(&line) else { continue };
            checked += 1;
            if let Err(e) = ferry::cli::Cli::try_parse_from(words(&cmd)) {
                use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
                if !matches!(e.kind(), DisplayHelp | DisplayVersion) {
                    let name = doc.strip_prefix(REPO).unwrap_or(&doc).display().to_string();
                    failures.push(format!("{name}:{line_no}: {cmd}\n    {}", e.to_string().lines().next().unwrap_or("")));
                }
            }
        }
    }
    assert!(failures.is_empty(), "documented commands the CLI rejects:\n{}", failures.join("\n"));
    // The docs show every subcommand; far fewer found means the extraction broke.
    assert!(checked >= 30, "only {checked} documented commands found");
    eprintln!("docs: {checked} documented ferry commands parse");
}

#[test]
fn every_subcommand_is_documented() {
    use clap::CommandFactory;
    let all: String = documents().iter().map(|d| std::fs::read_to_string(d).unwrap()).collect();
    let missing: Vec<String> = ferry::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help" && !all.contains(&format!("ferry {name}")))
        .collect();
    assert!(missing.is_empty(), "subcommands no document shows: {missing:?}");
}
