//! The `appspec.yml` checks ferry runs before anything leaves the machine.
//!
//! CodeDeploy only reads the appspec on the instance, minutes into a
//! deployment; a typo found there has already cost a deployment and possibly
//! a failed instance. These checks catch what can be known from the bundle:
//! the YAML, the version and os, that every `files` source and hook script is
//! in the bundle, that scripts are executable files without CRLF line
//! endings, timeouts, and hook names valid for EC2/on-premises.

mod locate;

use std::fmt;

use serde_yaml_ng::Value;

use locate::Locator;

/// The file name CodeDeploy requires at the bundle's root (EC2/on-premises).
pub const FILE_NAME: &str = "appspec.yml";

/// Lifecycle hooks an EC2/on-premises appspec may run scripts in.
pub const HOOKS: [&str; 9] = [
    "ApplicationStop",
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// Lifecycle events CodeDeploy runs itself; scripts cannot be attached.
const RESERVED: [&str; 6] = ["Start", "DownloadBundle", "Install", "BlockTraffic", "AllowTraffic", "End"];

/// Hooks that exist only for ECS or Lambda deployments.
const OTHER_PLATFORMS: [&str; 1] = ["AfterAllowTestTraffic"];

/// The longest a single hook script may run, in seconds.
pub const MAX_TIMEOUT: i64 = 3600;

/// The largest appspec ferry reads. Real ones are a few KiB.
pub const MAX_BYTES: usize = 256 << 10;
/// The deepest nesting of lists and mappings ferry reads. A real appspec
/// nests four or five levels.
pub const MAX_DEPTH: usize = 64;
/// The deepest indentation ferry reads, in columns.
pub const MAX_INDENT: usize = 256;

/// A problem if `text` is larger or nested deeper than any appspec needs,
/// found in one linear pass, before the YAML parser sees it.
fn too_big(text: &str) -> Option<Problem> {
    if text.len() > MAX_BYTES {
        return Some(Problem {
            line: None,
            message: format!(
                "the file is {} KiB; an appspec is a few KiB and ferry reads at most {} KiB. Is this the right file?",
                text.len() >> 10,
                MAX_BYTES >> 10
            ),
        });
    }
    // Flow collections by their brackets, counted everywhere (in quotes and
    // comments too: an unbalanced bracket in a string is rare, and a scanner
    // that understood quoting could be fooled into under-counting), and
    // block nesting by indentation (each level indents at least a column).
    let deep = |line: usize| Problem {
        line: Some(line),
        message: format!(
            "lists and mappings are nested deeper than ferry reads ({MAX_DEPTH} levels, {MAX_INDENT} columns of \
             indentation); an appspec needs a handful. Is this the right file?"
        ),
    };
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        if line.len() - line.trim_start().len() > MAX_INDENT {
            return Some(deep(n + 1));
        }
        for b in line.bytes() {
            match b {
                b'[' | b'{' => depth += 1,
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_DEPTH {
                return Some(deep(n + 1));
            }
        }
    }
    None
}

/// What kind of thing sits at a path in the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File {
        /// Whether any execute bit is set.
        executable: bool,
    },
    /// A directory (explicit, or implied by files below it).
    Dir,
    /// A symbolic link.
    Symlink,
}

/// The contents of a bundle, as the checks need to see them: a directory
/// about to be archived, or a ready archive.
pub trait Contents {
    /// What is at `path` (relative to the bundle root, `/`-separated).
    fn lookup(&self, path: &str) -> Option<Kind>;
    /// The bytes of the file at `path`.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
}

/// One thing wrong with an appspec: where, what, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in appspec.yml, where it can be found.
    pub line: Option<usize>,
    /// Cause and fix.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{FILE_NAME} line {line}: {}", self.message),
            None => write!(f, "{FILE_NAME}: {}", self.message),
        }
    }
}

/// Checks `text` on its own (no bundle contents): YAML, version, os, hook
/// names and timeouts.
pub fn check(text: &str) -> Vec<Problem> {
    Checker::new(text, None).run()
}

/// Checks `text` against the bundle it belongs to: everything [`check`] does,
/// plus that every `files` source and hook script is there and usable.
pub fn check_with(text: &str, contents: &dyn Contents) -> Vec<Problem> {
    Checker::new(text, Some(contents)).run()
}

struct Checker<'a> {
    text: &'a str,
    at: Locator<'a>,
    contents: Option<&'a dyn Contents>,
    problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    fn new(text: &'a str, contents: Option<&'a dyn Contents>) -> Self {
        Checker { text, at: Locator::new(text), contents, problems: Vec::new() }
    }

    fn push(&mut self, line: Option<usize>, message: String) {
        self.problems.push(Problem { line, message });
    }

    fn run(mut self) -> Vec<Problem> {
        // The YAML parser's time grows faster than the input with nesting
        // (100 000 `[` took 39 s): bound both before it runs.
        if let Some(problem) = too_big(self.text) {
            self.problems.push(problem);
            return self.problems;
        }
        let doc: Value = match serde_yaml_ng::from_str(self.text) {
            Ok(doc) => doc,
            Err(e) => {
                let line = e.location().map(|l| l.line());
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                self.push(
                    line,
                    format!("not valid YAML: {msg}. Fix the indentation or quoting there (YAML forbids tabs for indentation)."),
                );
                return self.problems;
            }
        };
        let Value::Mapping(top) = doc else {
            self.push(Some(1), "the file is not a YAML mapping of keys. Start it with `version: 0.0` and `os: linux`.".into());
            return self.problems;
        };
        self.version(top.get("version"));
        let os = self.os(top.get("os"));
        if let Some(files) = top.get("files") {
            self.files(files);
        }
        if let Some(hooks) = top.get("hooks") {
            self.hooks(hooks, os);
        }
        self.problems
    }

    fn version(&mut self, v: Option<&Value>) {
        let line = self.at.top_key("version");
        let ok = match v {
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            Some(Value::String(s)) => s == "0.0",
            _ => false,
        };
        match v {
            _ if ok => {}
            None => self.push(None, "there is no `version:` key. Add `version: 0.0` as the first line.".into()),
            Some(v) => {
                self.push(line, format!("`version: {}` is not a version CodeDeploy accepts. Use `version: 0.0`.", scalar(v)))
            }
        }
    }

    fn os(&mut self, v: Option<&Value>) -> Option<&'static str> {
        match v {
            Some(Value::String(s)) if s == "linux" => Some("linux"),
            Some(Value::String(s)) if s == "windows" => Some("windows"),
            None => {
                self.push(None, "there is no `os:` key. Add `os: linux` (or `os: windows`).".into());
                None
            }
            Some(other) => {
                let line = self.at.top_key("os");
                self.push(
                    line,
                    format!("`os: {}` is not an os CodeDeploy knows. Use `os: linux` or `os: windows`.", scalar(other)),
                );
                None
            }
        }
    }

    fn files(&mut self, files: &Value) {
        let section = self.at.top_key("files");
        let Value::Sequence(items) = files else {
            if !files.is_null() {
                self.push(section, "`files:` must be a list of `- source: … destination: …` items.".into());
            }
            return;
        };
        let mut from = section.unwrap_or(0);
        for item in items {
            let line = self.at.key_after("source", from).or(section);
            from = line.unwrap_or(from);
            let source = item.get("source").and_then(Value::as_str);
            let Some(source) = source else {
                self.push(line, "a `files` item has no `source:`. Give each item `source:` (a path in the bundle, `/` for all of it) and `destination:`.".into());
                continue;
            };
            if item.get("destination").and_then(Value::as_str).is_none() {
                self.push(line, format!("the `files` item with `source: {source}` has no `destination:`. Add the directory on the instance it should be copied to."));
            }
            let rel = bundle_path(source);
            if rel.is_empty() {
                continue;
            }
            if let Some(contents) = self.contents
                && contents.lookup(&rel).is_none()
            {
                self.push(line, format!("`source: {source}` is not in the bundle. Fix the path (relative to the bundle root) or add the file or directory to the bundle."));
            }
        }
    }

    fn hooks(&mut self, hooks: &Value, os: Option<&str>) {
        let section = self.at.top_key("hooks");
        let Value::Mapping(map) = hooks else {
            if !hooks.is_null() {
                self.push(
                    section,
                    "`hooks:` must map hook names (BeforeInstall, ApplicationStart, …) to lists of `- location: …` scripts."
                        .into(),
                );
            }
            return;
        };
        for (name, scripts) in map {
            let name = scalar(name);
            let line = self.at.key_after(&name, section.unwrap_or(0));
            self.hook_name(&name, line);
            let Value::Sequence(scripts) = scripts else {
                if !scripts.is_null() {
                    self.push(line, format!("`{name}:` must be a list of `- location: script` items."));
                }
                continue;
            };
            let mut from = line.unwrap_or(0);
            for script in scripts {
                let loc_line = self.at.key_after("location", from).or(line);
                from = loc_line.unwrap_or(from);
                self.script(&name, script, loc_line, os);
            }
        }
    }

    fn hook_name(&mut self, name: &str, line: Option<usize>) {
        if HOOKS.contains(&name) {
            return;
        }
        let msg = if RESERVED.contains(&name) {
            format!(
                "`{name}` is a lifecycle event CodeDeploy runs itself; scripts cannot be attached to it. Move them to BeforeInstall or AfterInstall."
            )
        } else if OTHER_PLATFORMS.contains(&name) {
            format!("`{name}` is a hook for ECS deployments, not EC2/on-premises. Use one of: {}.", HOOKS.join(", "))
        } else if let Some(right) = HOOKS.iter().find(|h| h.eq_ignore_ascii_case(name)) {
            format!("`{name}` is not a hook name; hook names are case-sensitive. Write `{right}`.")
        } else {
            format!("`{name}` is not a hook CodeDeploy knows. Use one of: {}.", HOOKS.join(", "))
        };
        self.push(line, msg);
    }

    fn script(&mut self, hook: &str, script: &Value, line: Option<usize>, os: Option<&str>) {
        let Some(location) = script.get("location").and_then(Value::as_str) else {
            self.push(
                line,
                format!(
                    "a `{hook}` item has no `location:`. Give the script's path in the bundle, e.g. `- location: scripts/{}.sh`.",
                    hook.to_ascii_lowercase()
                ),
            );
            return;
        };
        if let Some(t) = script.get("timeout") {
            let t_line = self.at.key_after("timeout", line.unwrap_or(0)).or(line);
            match t.as_i64() {
                Some(secs) if (1..=MAX_TIMEOUT).contains(&secs) => {}
                _ => self.push(
                    t_line,
                    format!(
                        "`timeout: {}` for {location} is out of range. Give whole seconds from 1 to {MAX_TIMEOUT} (one hour).",
                        scalar(t)
                    ),
                ),
            }
        }
        let Some(contents) = self.contents else { return };
        let rel = bundle_path(location);
        match contents.lookup(&rel) {
            None => self.push(line, format!("the {hook} script `{location}` is not in the bundle. Fix the path (relative to the bundle root) or add the script.")),
            Some(Kind::Dir) => self.push(line, format!("the {hook} script `{location}` is a directory. Point `location:` at the script file itself.")),
            Some(Kind::File { executable }) => {
                if os == Some("linux") && !executable {
                    self.push(line, format!("the {hook} script `{location}` is not executable. Run `chmod +x {rel}` and rebuild; ferry keeps the executable bit in the bundle."));
                }
                if let Some(bytes) = contents.read(&rel)
                    && bytes.starts_with(b"#!")
                    && bytes.windows(2).any(|w| w == b"\r\n")
                {
                    self.push(line, format!("the {hook} script `{location}` has CRLF (Windows) line endings; its `#!` line would name an interpreter ending in \\r and fail with \"bad interpreter\". Convert it with `dos2unix {rel}` or `sed -i 's/\\r$//' {rel}`."));
                }
            }
            Some(Kind::Symlink) => {}
        }
    }
}

/// A path as written in the appspec, relative to the bundle root.
fn bundle_path(p: &str) -> String {
    p.trim_start_matches(['/', '\\']).trim_end_matches('/').replace('\\', "/")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).map(|s| s.trim().to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A bundle in memory: path → (kind, bytes).
    struct Fake(BTreeMap<&'static str, (Kind, &'static [u8])>);

    impl Contents for Fake {
        fn lookup(&self, path: &str) -> Option<Kind> {
            self.0
                .get(path)
                .map(|(k, _)| *k)
                .or_else(|| self.0.keys().any(|k| k.starts_with(&format!("{path}/"))).then_some(Kind::Dir))
        }
        fn read(&self, path: &str) -> Option<Vec<u8>> {
            self.0.get(path).map(|(_, b)| b.to_vec())
        }
    }

    const EXEC: Kind = Kind::File { executable: true };

    fn bundle() -> Fake {
        Fake(BTreeMap::from([
            ("site/index.html", (Kind::File { executable: false }, &b"<h1>hi</h1>"[..])),
            ("scripts/start.sh", (EXEC, &b"#!/bin/bash\necho start\n"[..])),
            ("scripts/plain.sh", (Kind::File { executable: false }, &b"#!/bin/bash\necho\n"[..])),
            ("scripts/dos.sh", (EXEC, &b"#!/bin/bash\r\necho dos\r\n"[..])),
            ("scripts/dos.bat", (EXEC, &b"echo dos\r\n"[..])),
        ]))
    }

    fn spec(hooks: &str) -> String {
        format!("version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www\nhooks:\n{hooks}")
    }

    /// The only problem found, asserting there is exactly one.
    fn only(text: &str) -> Problem {
        let p = check_with(text, &bundle());
        assert_eq!(p.len(), 1, "{p:#?}");
        p.into_iter().next().unwrap()
    }

    #[test]
    fn complete_appspec_with_files_and_hooks_passes() {
        let text = spec("  ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 300\n      runas: root\n");
        assert_eq!(check_with(&text, &bundle()), vec![]);
        assert_eq!(check("version: 0.0\nos: linux\n"), vec![]);
    }

    /// Issue 18 item 10: 100 000 `[` took 39 s to reject inside the YAML
    /// parser; the bounds refuse it before the parser runs.
    #[test]
    fn a_deeply_nested_or_huge_appspec_is_refused_at_once() {
        let started = std::time::Instant::now();
        let nested = format!("version: 0.0\nos: linux\nx: {}\n", "[".repeat(100_000));
        let p = only(&nested);
        assert!(p.message.contains("nested deeper"), "{p}");
        assert_eq!(p.line, Some(3));
        let huge = format!("version: 0.0\nos: linux\n{}", "# padding\n".repeat(30_000));
        assert!(only(&huge).message.contains("KiB"));
        let indented = format!("version: 0.0\nos: linux\nx:\n{}y: 1\n", " ".repeat(300));
        assert!(only(&indented).message.contains("nested deeper"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
        // A real appspec's few levels pass.
        assert!(check("version: 0.0\nos: linux\nx: [[1, {a: [2]}]]\n").iter().all(|p| !p.message.contains("nested")));
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let p = only("version: 0.0\nos: linux\nhooks:\n\t- bad\n");
        assert_eq!(p.line, Some(4), "{p}");
        assert!(p.message.contains("not valid YAML") && p.message.contains("tabs"), "{p}");
    }

    #[test]
    fn a_document_that_is_not_a_mapping_is_reported() {
        let p = only("- version: 0.0\n");
        assert!(p.message.contains("not a YAML mapping"), "{p}");
    }

    #[test]
    fn wrong_version_is_reported_with_its_line() {
        let p = only("os: linux\nversion: 1.0\n");
        assert_eq!(p.line, Some(2));
        assert!(p.message.contains("`version: 1.0`") && p.message.contains("Use `version: 0.0`"), "{p}");
        assert_eq!(p.to_string(), format!("appspec.yml line 2: {}", p.message));
    }

    #[test]
    fn missing_version_is_reported() {
        let p = only("os: linux\n");
        assert!(p.message.contains("no `version:` key"), "{p}");
    }

    #[test]
    fn unknown_os_is_reported_with_its_line() {
        let p = only("version: 0.0\nos: macos\n");
        assert_eq!(p.line, Some(2));
        assert!(p.message.contains("`os: macos`") && p.message.contains("`os: linux` or `os: windows`"), "{p}");
    }

    #[test]
    fn missing_os_is_reported() {
        let p = only("version: 0.0\n");
        assert!(p.message.contains("no `os:` key"), "{p}");
    }

    #[test]
    fn files_source_missing_from_the_bundle_is_reported() {
        let p = only(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /a\n  - source: /config/app.env\n    destination: /b\n",
        );
        assert_eq!(p.line, Some(6));
        assert!(p.message.contains("`source: /config/app.env` is not in the bundle"), "{p}");
    }

    #[test]
    fn files_item_without_destination_is_reported() {
        let p = only("version: 0.0\nos: linux\nfiles:\n  - source: /\n");
        assert_eq!(p.line, Some(4));
        assert!(p.message.contains("has no `destination:`"), "{p}");
    }

    #[test]
    fn hook_script_missing_from_the_bundle_is_reported() {
        let p = only(&spec("  BeforeInstall:\n    - location: scripts/start.sh\n    - location: scripts/stop.sh\n"));
        assert_eq!(p.line, Some(9));
        assert!(p.message.contains("BeforeInstall script `scripts/stop.sh` is not in the bundle"), "{p}");
    }

    #[test]
    fn hook_location_that_is_a_directory_is_reported() {
        let p = only(&spec("  BeforeInstall:\n    - location: scripts\n"));
        assert!(p.message.contains("is a directory"), "{p}");
    }

    #[test]
    fn hook_script_without_the_executable_bit_is_reported_on_linux_only() {
        let p = only(&spec("  AfterInstall:\n    - location: scripts/plain.sh\n"));
        assert_eq!(p.line, Some(8));
        assert!(p.message.contains("is not executable") && p.message.contains("chmod +x scripts/plain.sh"), "{p}");
        let windows = spec("  AfterInstall:\n    - location: scripts/plain.sh\n").replace("os: linux", "os: windows");
        assert_eq!(check_with(&windows, &bundle()), vec![]);
    }

    #[test]
    fn crlf_line_endings_in_a_shebang_script_are_reported() {
        let p = only(&spec("  ApplicationStart:\n    - location: scripts/dos.sh\n"));
        assert!(p.message.contains("CRLF") && p.message.contains("dos2unix scripts/dos.sh"), "{p}");
        // Without a #! line the interpreter is not named by the file: fine.
        assert_eq!(check_with(&spec("  ApplicationStart:\n    - location: scripts/dos.bat\n"), &bundle()), vec![]);
    }

    #[test]
    fn timeouts_outside_one_to_3600_seconds_are_reported() {
        for bad in ["0", "3601", "ten", "1.5"] {
            let p = only(&spec(&format!("  ValidateService:\n    - location: scripts/start.sh\n      timeout: {bad}\n")));
            assert_eq!(p.line, Some(9), "{p}");
            assert!(p.message.contains(&format!("`timeout: {bad}`")) && p.message.contains("from 1 to 3600"), "{p}");
        }
        assert_eq!(
            check_with(&spec("  ValidateService:\n    - location: scripts/start.sh\n      timeout: 3600\n"), &bundle()),
            vec![]
        );
    }

    #[test]
    fn hook_item_without_location_is_reported() {
        let p = only(&spec("  ValidateService:\n    - timeout: 30\n"));
        assert!(p.message.contains("has no `location:`"), "{p}");
    }

    #[test]
    fn reserved_lifecycle_events_cannot_have_scripts() {
        let p = only(&spec("  DownloadBundle:\n    - location: scripts/start.sh\n"));
        assert_eq!(p.line, Some(7));
        assert!(p.message.contains("`DownloadBundle` is a lifecycle event CodeDeploy runs itself"), "{p}");
        for reserved in ["Install", "Start", "End", "BlockTraffic", "AllowTraffic"] {
            let p = only(&spec(&format!("  {reserved}:\n    - location: scripts/start.sh\n")));
            assert!(p.message.contains("runs itself"), "{p}");
        }
    }

    #[test]
    fn hook_names_are_case_sensitive() {
        let p = only(&spec("  afterinstall:\n    - location: scripts/start.sh\n"));
        assert!(p.message.contains("Write `AfterInstall`"), "{p}");
    }

    #[test]
    fn ecs_and_unknown_hook_names_are_reported() {
        let p = only(&spec("  AfterAllowTestTraffic:\n    - location: scripts/start.sh\n"));
        assert!(p.message.contains("for ECS deployments"), "{p}");
        let p = only(&spec("  PostDeploy:\n    - location: scripts/start.sh\n"));
        assert!(
            p.message.contains("`PostDeploy` is not a hook CodeDeploy knows") && p.message.contains("ValidateService"),
            "{p}"
        );
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let text = "version: 2\nos: linux\nhooks:\n  Install:\n    - location: nope.sh\n      timeout: 0\n";
        assert_eq!(check_with(text, &bundle()).len(), 4);
    }
}
