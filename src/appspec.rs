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
            self.push(
                Some(1),
                "the file is not a YAML mapping of keys. Start it with `version: 0.0` and `os: linux`.".into(),
            );
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
            Some(v) => self.push(
                line,
                format!("`version: {}` is not a version CodeDeploy accepts. Use `version: 0.0`.", scalar(v)),
            ),
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
                self.push(line, format!("`os: {}` is not an os CodeDeploy knows. Use `os: linux` or `os: windows`.", scalar(other)));
                None
            }
        }
    }

    fn files(&mut self, files: &Value) {
        let section = self.at.top_key("files");
        let Value::Sequence(items) = files else {
            if !files.is_null() {
                self.push(
                    section,
                    "`files:` must be a list of `- source: … destination: …` items.".into(),
                );
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
                self.push(section, "`hooks:` must map hook names (BeforeInstall, ApplicationStart, …) to lists of `- location: …` scripts.".into());
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
            format!("`{name}` is a lifecycle event CodeDeploy runs itself; scripts cannot be attached to it. Move them to BeforeInstall or AfterInstall.")
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
            self.push(line, format!("a `{hook}` item has no `location:`. Give the script's path in the bundle, e.g. `- location: scripts/{}.sh`.", hook.to_ascii_lowercase()));
            return;
        };
        if let Some(t) = script.get("timeout") {
            let t_line = self.at.key_after("timeout", line.unwrap_or(0)).or(line);
            match t.as_i64() {
                Some(secs) if (1..=MAX_TIMEOUT).contains(&secs) => {}
                _ => self.push(t_line, format!("`timeout: {}` for {location} is out of range. Give whole seconds from 1 to {MAX_TIMEOUT} (one hour).", scalar(t))),
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
