//! No drift between the documentation and the CLI: every `ferry …` command
//! shown in README.md and docs/ — in shell blocks, console transcripts,
//! indented examples and the `sh` steps of Groovy snippets — must be accepted
//! by ferry's real command-line parser. A renamed flag or subcommand fails
//! here before a user copies a dead example. (What each command *does* is
//! covered by the integration tests listed in docs/reliability.md; the
//! Jenkinsfiles' steps are run for real by tests/jenkins.rs.)

use std::path::{Path, PathBuf};

use clap::Parser;

mod common;

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

/// The section of `doc` from the heading that starts with `heading` to
/// the next heading of its level or above.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc.find(heading).unwrap_or_else(|| panic!("no section {heading}"));
    let level = heading.chars().take_while(|c| *c == '#').count();
    let rest = &doc[start + heading.len()..];
    let end = rest
        .lines()
        .scan(0, |at, l| {
            let here = *at;
            *at += l.len() + 1;
            Some((here, l))
        })
        .find(|(_, l)| l.starts_with('#') && l.chars().take_while(|c| *c == '#').count() <= level)
        .map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

/// The fenced blocks of `section` whose info string is `info`, joined.
fn fenced(section: &str, info: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in section.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            inside = !inside && rest.trim() == info;
            continue;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// docs/output.md's event table: each event's name and the field names of
/// its row (top level only: what parentheses, braces and brackets hold
/// describes values or nested objects).
fn event_table(doc: &str) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut table = std::collections::BTreeMap::new();
    for line in section(doc, "## JSON events").lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').splitn(2, '|').collect();
        let name = cells[0].trim().trim_matches('`').to_string();
        let mut top = String::new();
        let mut depth = 0;
        for c in cells[1].chars() {
            match c {
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' => depth -= 1,
                c if depth == 0 => top.push(c),
                _ => {}
            }
        }
        let fields = top
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| {
                w.starts_with(|c: char| c.is_ascii_lowercase())
                    && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .map(String::from)
            .collect();
        table.insert(name, fields);
    }
    table
}

/// A line of a plain log reduced to its kind: the indentation and first
/// word after the timestamp, ids and numbers replaced (`deployment` lines
/// told apart by whether they are the summary).
fn line_kind(line: &str) -> String {
    let body = line.get(21..).unwrap_or_default();
    let indent = body.len() - body.trim_start().len();
    let first = body.split_whitespace().next().unwrap_or_default();
    let first = if first.starts_with("i-") { "i-…" } else { first };
    let summary = if first == "deployment" && body.contains(" after ") { " summary" } else { "" };
    format!("{}{first}{summary}", " ".repeat(indent))
}

/// Issue 26 item 14: docs/output.md's recorded log, JSON example and event
/// table are checked against a run of what they record (4 instances, one
/// at a time, a ValidateService hook that cannot reach the service): the
/// same kinds of log lines, and every event's fields as its table row
/// names them. Run with --no-capture to print a fresh recording.
#[test]
fn output_md_has_the_shape_of_a_recorded_run() {
    use common::{FERRY, Stack, StackOptions, run};
    let doc = std::fs::read_to_string(Path::new(REPO).join("docs/output.md")).unwrap();
    // Steps slow enough that ferry sees each lifecycle event in progress.
    let step_delay = std::time::Duration::from_millis(400);
    let stack = Stack::start_with(StackOptions { instances: 4, step_delay, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = common::app_tree(
        dir.path(),
        "echo 'ValidateService: checking http://localhost:8080/health'\n\
         echo 'curl: (7) Failed to connect to localhost port 8080: Connection refused' >&2\nexit 7",
    );
    let release = run(stack
        .ferry_command(FERRY)
        .args(["--progress", "plain", "release", app.to_str().unwrap(), "--env", "production", "--config"])
        .arg(&config)
        .args(["--deployment-config", "CodeDeployDefault.OneAtATime"]));
    assert_eq!(release.code, 3, "{}", release.all());
    eprintln!("recorded log:\n{}", release.stderr);
    let id = release.stdout.trim();

    // JSON: every event of a release and a watch has a row naming exactly its fields.
    let table = event_table(&doc);
    let json_release = run(stack
        .ferry_command(FERRY)
        .args(["--output", "json", "release", app.to_str().unwrap(), "--env", "production", "--config"])
        .arg(&config));
    let watch =
        run(stack.ferry_command(FERRY).args(["watch", id, "--env", "production", "--output", "json", "--config"]).arg(&config));
    eprintln!("recorded watch:\n{}", watch.stdout);
    let example = fenced(section(&doc, "## JSON events"), "json");
    let mut seen = std::collections::BTreeSet::new();
    let mut drift = std::collections::BTreeSet::new();
    for line in json_release.stdout.lines().chain(watch.stdout.lines()).chain(example.lines()) {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let name = event["event"].as_str().unwrap().to_string();
        let fields: std::collections::BTreeSet<String> =
            event.as_object().unwrap().keys().filter(|k| !matches!(k.as_str(), "event" | "ts")).cloned().collect();
        match table.get(&name) {
            None => drift.insert(format!("no row for `{name}`: {line}")),
            Some(row) if row != &fields => drift.insert(format!("`{name}`: the row names {row:?}, ferry writes {fields:?}")),
            Some(_) => false,
        };
        seen.insert(name);
    }
    assert!(drift.is_empty(), "docs/output.md's event table has drifted:\n{}", drift.into_iter().collect::<Vec<_>>().join("\n"));
    for name in ["session_planned", "lifecycle_failed", "finished", "receipt", "deployment_status"] {
        assert!(seen.contains(name), "the run had no `{name}`: {seen:?}");
    }

    // The plain log: the same kinds of line as the recording shows.
    let recorded = fenced(section(&doc, "## A failed deployment in Jenkins (plain)"), "text");
    let kinds = |log: &str| log.lines().map(line_kind).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        kinds(&recorded),
        kinds(&release.stderr),
        "docs/output.md's recorded log has drifted; a fresh one:\n{}",
        release.stderr
    );
}

/// Issue 26 item 14: configuration.md listed `--env` among the flags every
/// command takes. Its table of global flags is exactly clap's global flags.
#[test]
fn configurations_global_flags_are_the_clis_global_flags() {
    use clap::CommandFactory;
    let doc = std::fs::read_to_string(Path::new(REPO).join("docs/configuration.md")).unwrap();
    let documented: std::collections::BTreeSet<String> = section(&doc, "## Flags every command takes")
        .lines()
        .filter_map(|l| l.strip_prefix("| `--"))
        .map(|rest| rest.split([' ', '`']).next().unwrap().to_string())
        .collect();
    let global: std::collections::BTreeSet<String> = ferry::cli::Cli::command()
        .get_arguments()
        .filter(|a| a.is_global_set() && !a.is_hide_set())
        .filter_map(|a| a.get_long().map(String::from))
        .collect();
    assert_eq!(documented, global);
    assert!(!global.contains("env"), "--env is a flag of the commands that target an environment");
}

/// Issue 26 item 14: jenkins.md installed `0.2.0` and loaded
/// `ferry@v0.2.0` while ferry was 0.1.0. Every version it names is ferry's.
#[test]
fn the_versions_jenkins_md_pins_are_ferrys_own() {
    let doc = std::fs::read_to_string(Path::new(REPO).join("docs/jenkins.md")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let mut found = 0;
    // Where ferry's version is named: the install step, the tarballs' URL,
    // the library's ref and its default, the tag built.
    let before = ["version: '", "ferry/", "ferry@v", "defaultVersion: v", "tag `v", "`v"];
    for (n, line) in doc.lines().enumerate() {
        for prefix in before {
            for (at, _) in line.match_indices(prefix) {
                let named: String = line[at + prefix.len()..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
                if named.matches('.').count() == 2 {
                    found += 1;
                    assert_eq!(named, version, "docs/jenkins.md:{}: {line}", n + 1);
                }
            }
        }
    }
    assert!(found >= 5, "only {found} versions found");
}
