//! The `appspec.yml` checks ferry runs before anything leaves the machine.
//!
//! CodeDeploy only reads the appspec on the instance, minutes into a
//! deployment; a typo found there has already cost a deployment and possibly
//! a failed instance. These checks catch what can be known from the bundle:
//! the YAML, the version and os, that every `files` source and hook script is
//! in the bundle, that scripts are executable files without CRLF line
//! endings, timeouts, and hook names valid for EC2/on-premises.

pub mod ecs;
pub mod lambda;
mod permissions;
mod psych;
pub mod resources;

use std::collections::BTreeMap;
use std::fmt;

use psych::{Node, Value};

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
    /// The files and links below directory `dir` (`""` for the root), as
    /// paths relative to it, where the contents can list them; the checks
    /// that need it (two sources for one destination) are skipped otherwise.
    fn files_under(&self, _dir: &str) -> Option<Vec<String>> {
        None
    }
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
    contents: Option<&'a dyn Contents>,
    problems: Vec<Problem>,
}

/// Where the agent stops on every instance when its parser refuses.
const REFUSED: &str = "the agent refuses it at BeforeInstall on every instance";

impl<'a> Checker<'a> {
    fn new(text: &'a str, contents: Option<&'a dyn Contents>) -> Self {
        Checker { text, contents, problems: Vec::new() }
    }

    fn push(&mut self, line: Option<usize>, message: String) {
        self.problems.push(Problem { line, message });
    }

    fn at(&mut self, node: &Node, message: String) {
        self.push(Some(node.line), message);
    }

    fn run(mut self) -> Vec<Problem> {
        // The YAML parser's time grows faster than the input with nesting
        // (100 000 `[` took 39 s): bound both before it runs.
        if let Some(problem) = too_big(self.text) {
            self.problems.push(problem);
            return self.problems;
        }
        // serde_yaml_ng, on libyaml like the agent's Psych, judges the syntax,
        // and refuses duplicate keys and a second document, which the agent
        // would silently resolve (the last key wins, the second document is
        // ignored): ferry is stricter there on purpose.
        if let Err(e) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(self.text) {
            let line = e.location().map(|l| l.line());
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            let message = if msg.contains("more than one document") {
                "the file holds more than one YAML document (a second `---`); the agent reads only the first and \
                 ignores the rest without a word. Keep one document."
                    .to_string()
            } else if let Some((_, key)) = msg.split_once("duplicate entry with key ") {
                format!(
                    "not valid YAML: the key {key} appears twice in one mapping; the agent keeps the last one without a \
                     word (a hook listed twice loses its first scripts). Keep one."
                )
            } else {
                format!("not valid YAML: {msg}. Fix the indentation or quoting there (YAML forbids tabs for indentation).")
            };
            self.push(line, message);
            return self.problems;
        }
        let doc = match psych::load(self.text) {
            Ok(doc) => doc,
            Err(refusal) => {
                self.push(Some(refusal.line), refusal.message);
                return self.problems;
            }
        };
        let Some(top) = doc.filter(|d| matches!(d.value, Value::Map(_))) else {
            self.push(
                Some(1),
                format!("the file is not a YAML mapping of keys, so {REFUSED}. Start it with `version: 0.0` and `os: linux`."),
            );
            return self.problems;
        };
        self.version(top.get("version"));
        let os = self.os(top.get("os"));
        self.hooks(top.get("hooks"));
        self.files(top.get("files"));
        self.permissions(top.get("permissions"), os);
        self.file_exists_behavior(top.get("file_exists_behavior"));
        self.problems
    }

    fn version(&mut self, v: Option<&Node>) {
        let Some(v) = v.filter(|v| !v.is_nil()) else {
            self.push(None, format!("there is no `version:` key. Add `version: 0.0` as the first line; without it {REFUSED}."));
            return;
        };
        match &v.value {
            Value::Int(0) => {}
            Value::Float(f) if *f == 0.0 => {}
            Value::Str(s) if v.quoted && s.trim().parse::<f64>() == Ok(0.0) => self.at(
                v,
                format!(
                    "version must be the number 0.0, not the string \"{s}\": {REFUSED}. Write `version: 0.0` without quotes."
                ),
            ),
            Value::Str(s) if v.plain.is_some() && s.parse::<f64>() == Ok(0.0) => self.at(
                v,
                format!(
                    "`version: {s}` is the string \"{s}\" to the agent's YAML reader (YAML 1.1 reads a number as a float \
                     only with a dot), and {REFUSED}. Write `version: 0.0`."
                ),
            ),
            _ => self
                .at(v, format!("`version: {}` is not a version CodeDeploy accepts. Use `version: 0.0`: {REFUSED}.", v.shown())),
        }
    }

    fn os(&mut self, v: Option<&Node>) -> Option<&'static str> {
        match v.map(|v| (&v.value, v)) {
            Some((Value::Str(s), _)) if s == "linux" => Some("linux"),
            Some((Value::Str(s), _)) if s == "windows" => Some("windows"),
            None | Some((Value::Null, _)) => {
                self.push(None, format!("there is no `os:` key. Add `os: linux` (or `os: windows`); without it {REFUSED}."));
                None
            }
            Some((_, v)) => {
                self.at(
                    v,
                    format!(
                        "`os: {}` is not an os CodeDeploy knows: the agent takes exactly `linux` or `windows`, lowercase \
                         and unquoted or quoted, and {REFUSED}. Use `os: linux` or `os: windows`.",
                        v.shown()
                    ),
                );
                None
            }
        }
    }

    /// A list section (`files`, `permissions`): its items, or `None` after
    /// reporting a shape the agent cannot iterate.
    fn list<'n>(&mut self, v: Option<&'n Node>, what: &str, item: &str) -> Option<&'n [Node]> {
        let v = v?;
        match &v.value {
            Value::Null | Value::Bool(false) => None,
            Value::Map(m) if m.is_empty() => None,
            Value::Seq(items) => Some(items),
            _ => {
                self.at(v, format!("`{what}:` must be a list of `- {item}` items; {REFUSED} otherwise."));
                None
            }
        }
    }

    fn files(&mut self, files: Option<&Node>) {
        let Some(items) = self.list(files, "files", "source: … destination: …") else { return };
        let mut targets: BTreeMap<String, String> = BTreeMap::new();
        for item in items {
            if !matches!(item.value, Value::Map(_)) {
                self.at(
                    item,
                    format!("a `files` item must be a mapping `- source: … destination: …`, not `{}`; {REFUSED}.", item.shown()),
                );
                continue;
            }
            let source = item.get("source").filter(|s| !s.is_nil());
            let destination = item.get("destination").filter(|d| !d.is_nil());
            let Some(source) = source else {
                self.at(item, format!("a `files` item has no `source:`, and {REFUSED}. Give each item `source:` (a path in the bundle, `/` for all of it) and `destination:`."));
                continue;
            };
            let Value::Str(src) = &source.value else {
                self.at(
                    source,
                    format!(
                        "`source: {}` is not a path; the agent fails at Install. Write the path in the bundle.",
                        source.shown()
                    ),
                );
                continue;
            };
            let Some(destination) = destination else {
                self.at(item, format!("the `files` item with `source: {src}` has no `destination:`, and {REFUSED}. Add the directory on the instance it should be copied to."));
                continue;
            };
            let Value::Str(dest) = &destination.value else {
                self.at(
                    destination,
                    format!(
                        "`destination: {}` is not a path; the agent fails at Install. Write the directory on the instance.",
                        destination.shown()
                    ),
                );
                continue;
            };
            let rel = bundle_path(src);
            let Some(contents) = self.contents else { continue };
            let kind = if rel.is_empty() { Some(Kind::Dir) } else { contents.lookup(&rel) };
            let copied: Vec<String> = match kind {
                None => {
                    self.at(source, format!("`source: {src}` is not in the bundle, so the agent fails at Install. Fix the path (relative to the bundle root) or add the file or directory to the bundle."));
                    continue;
                }
                Some(Kind::Dir) => contents.files_under(&rel).unwrap_or_default().into_iter().map(|f| join(dest, &f)).collect(),
                Some(_) => vec![join(dest, rel.rsplit('/').next().unwrap_or(&rel))],
            };
            for target in copied {
                if let Some(first) = targets.get(&target) {
                    self.at(
                        source,
                        format!(
                            "`source: {src}` copies to {target}, the same destination as `source: {first}`; the agent \
                             refuses two sources for the same destination at Install. Remove one of them or give them \
                             different destinations."
                        ),
                    );
                    break;
                }
                targets.insert(target, src.clone());
            }
        }
    }

    fn hooks(&mut self, hooks: Option<&Node>) {
        let Some(hooks) = hooks else { return };
        let map = match &hooks.value {
            Value::Null | Value::Bool(false) => return,
            Value::Map(map) => map,
            _ => {
                self.at(hooks, format!("`hooks:` must map hook names (BeforeInstall, ApplicationStart, …) to lists of `- location: …` scripts; {REFUSED} otherwise."));
                return;
            }
        };
        for (name, scripts) in map {
            let name_text = match &name.value {
                Value::Str(s) => s.clone(),
                _ => name.shown(),
            };
            let name_text = name_text.as_str();
            self.hook_name(name_text, name.line);
            let items = match &scripts.value {
                Value::Null | Value::Bool(false) => continue,
                Value::Map(m) if m.is_empty() => continue,
                Value::Seq(items) => items,
                _ => {
                    self.at(
                        scripts,
                        format!("`{name_text}:` must be a list of `- location: script` items; {REFUSED} otherwise."),
                    );
                    continue;
                }
            };
            for script in items {
                self.script(name_text, script);
            }
        }
    }

    fn hook_name(&mut self, name: &str, line: usize) {
        if HOOKS.contains(&name) {
            return;
        }
        // The agent runs only the hooks of its lifecycle events and ignores
        // every other name without a word: stricter on purpose.
        let msg = if RESERVED.contains(&name) {
            format!(
                "`{name}` is a lifecycle event CodeDeploy runs itself; scripts cannot be attached to it (the agent never runs them). Move them to BeforeInstall or AfterInstall."
            )
        } else if OTHER_PLATFORMS.contains(&name) {
            format!(
                "`{name}` is a hook for ECS deployments, not EC2/on-premises; the agent never runs it. Use one of: {}.",
                HOOKS.join(", ")
            )
        } else if let Some(right) = HOOKS.iter().find(|h| h.eq_ignore_ascii_case(name)) {
            format!(
                "`{name}` is not a hook name; hook names are case-sensitive and the agent silently never runs this one. Write `{right}`."
            )
        } else {
            format!(
                "`{name}` is not a hook CodeDeploy knows; the agent silently never runs its scripts. Use one of: {}.",
                HOOKS.join(", ")
            )
        };
        self.push(Some(line), msg);
    }

    fn script(&mut self, hook: &str, script: &Node) {
        let example = format!("e.g. `- location: scripts/{}.sh`", hook.to_ascii_lowercase());
        if !matches!(script.value, Value::Map(_)) {
            self.at(
                script,
                format!(
                    "a `{hook}` item must be a mapping with `location:`, not `{}`; {REFUSED}. Write it as {example}.",
                    script.shown()
                ),
            );
            return;
        }
        let Some(loc) = script.get("location").filter(|l| !l.is_nil()) else {
            self.at(
                script,
                format!("a `{hook}` item has no `location:`, and {REFUSED}. Give the script's path in the bundle, {example}."),
            );
            return;
        };
        let Some(location) = psych::ruby_to_s(&loc.value) else {
            self.at(
                loc,
                format!(
                    "the {hook} `location:` is a list or mapping, not a path. Give the script's path in the bundle, {example}."
                ),
            );
            return;
        };
        // The agent strips the location and joins it to the archive, so
        // `./scripts/a.sh` and `  scripts/a.sh ` are the same script.
        let location = location.trim();
        if location.is_empty() {
            self.at(
                loc,
                format!("the {hook} `location:` is empty, and {REFUSED}. Give the script's path in the bundle, {example}."),
            );
            return;
        }
        if let Some(t) = script.get("timeout") {
            self.timeout(location, t);
        }
        let Some(contents) = self.contents else { return };
        let rel = bundle_path(location);
        let line = Some(loc.line);
        match contents.lookup(&rel) {
            None => self.push(line, format!("the {hook} script `{location}` is not in the bundle; the agent fails the hook (\"Script does not exist\"). Fix the path (relative to the bundle root) or add the script.")),
            Some(Kind::Dir) => self.push(line, format!("the {hook} script `{location}` is a directory; the agent fails the hook when it runs it. Point `location:` at the script file itself.")),
            // No exec bit is fine: the agent runs `chmod +x` before the
            // script, and ferry keeps the mode in the bundle anyway.
            Some(Kind::File { .. }) => {
                if let Some(bytes) = contents.read(&rel)
                    && bytes.starts_with(b"#!")
                    && bytes.windows(2).any(|w| w == b"\r\n")
                {
                    self.push(line, format!("the {hook} script `{location}` has CRLF (Windows) line endings; its `#!` line would name an interpreter ending in \\r and fail with \"bad interpreter\" on every instance. Convert it with `dos2unix {rel}` or `sed -i 's/\\r$//' {rel}`."));
                }
            }
            Some(Kind::Symlink) => {}
        }
    }

    /// The agent takes `timeout.to_i` and refuses 0 or less; ferry also
    /// refuses what the agent would misread (a fraction, a unit) and more
    /// than the hour CodeDeploy allows a lifecycle event.
    fn timeout(&mut self, location: &str, t: &Node) {
        let range = format!("Give whole seconds from 1 to {MAX_TIMEOUT} (one hour)");
        let shown = t.shown();
        let secs: i128 = match &t.value {
            Value::Null | Value::Bool(false) => return,
            Value::Int(n) => *n,
            Value::Float(f) if f.is_finite() && f.fract() != 0.0 && *f >= 1.0 => {
                let whole = f.trunc();
                self.at(t, format!("`timeout: {shown}` for {location}: the agent truncates it to {whole} s. {range}."));
                return;
            }
            Value::Float(f) if f.is_finite() => *f as i128,
            Value::Str(s) => {
                let (n, rest) = ruby_to_i(s);
                if n > 0 && !rest.trim().is_empty() {
                    self.at(t, format!("`timeout: {shown}` for {location}: the agent reads it as {n} seconds (it takes the leading number and ignores `{}`). {range}.", rest.trim()));
                    return;
                }
                n
            }
            _ => {
                self.at(t, format!("`timeout: {shown}` for {location} is not a number, and {REFUSED}. {range}."));
                return;
            }
        };
        if secs <= 0 {
            self.at(
                t,
                format!("`timeout: {shown}` for {location} is out of range: {REFUSED} (\"invalid timeout value\"). {range}."),
            );
        } else if secs > MAX_TIMEOUT as i128 {
            self.at(t, format!("`timeout: {shown}` for {location} is out of range: {secs} s is more than the hour CodeDeploy allows a lifecycle event. {range}."));
        }
    }

    fn permissions(&mut self, permissions: Option<&Node>, os: Option<&str>) {
        let Some(items) = self.list(permissions, "permissions", "object: …") else { return };
        for item in items {
            if !matches!(item.value, Value::Map(_)) {
                self.at(
                    item,
                    format!("a `permissions` item must be a mapping `- object: …`, not `{}`; {REFUSED}.", item.shown()),
                );
                continue;
            }
            let object = item.get("object").filter(|o| !o.is_nil());
            let empty = object.and_then(|o| psych::ruby_to_s(&o.value)).is_some_and(|s| s.trim().is_empty());
            if object.is_none() || empty {
                self.at(item, format!("a `permissions` item has no `object:` (the path on the instance it applies to), and {REFUSED}. Add `object: /the/destination`."));
                continue;
            }
            if os == Some("windows") {
                self.at(item, format!("`permissions` are for Linux instances only; with `os: windows` {REFUSED}. Remove the `permissions` section or use `os: linux`."));
                return;
            }
            for problem in permissions::check(item) {
                let refused = if problem.agent_refuses { format!("; {REFUSED}") } else { String::new() };
                self.push(Some(problem.line), format!("{}{refused}. {}", problem.cause, problem.fix));
            }
        }
    }

    fn file_exists_behavior(&mut self, v: Option<&Node>) {
        let Some(v) = v.filter(|v| !v.is_nil()) else { return };
        const VALID: [&str; 3] = ["DISALLOW", "OVERWRITE", "RETAIN"];
        match &v.value {
            Value::Str(s) if VALID.contains(&s.as_str()) => {}
            Value::Str(s) if VALID.contains(&s.to_ascii_uppercase().as_str()) => self.at(
                v,
                format!("`file_exists_behavior: {s}` must be upper case: the agent takes exactly DISALLOW, OVERWRITE or RETAIN, and {REFUSED}. Write `file_exists_behavior: {}`.", s.to_ascii_uppercase()),
            ),
            _ => self.at(
                v,
                format!("`file_exists_behavior: {}` is not DISALLOW, OVERWRITE or RETAIN, and {REFUSED}. Use one of those, or leave the key out to use the deployment's setting.", v.shown()),
            ),
        }
    }
}

/// Ruby's `String#to_i`: leading blanks, a sign, digits (with `_` between
/// them); the number and what follows it.
fn ruby_to_i(s: &str) -> (i128, &str) {
    let t = s.trim_start();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut end = 0;
    let b = body.as_bytes();
    while end < b.len()
        && (b[end].is_ascii_digit() || (b[end] == b'_' && end > 0 && end + 1 < b.len() && b[end + 1].is_ascii_digit()))
    {
        end += 1;
    }
    let n: i128 = body[..end].replace('_', "").parse().unwrap_or(0).min(i64::MAX as i128);
    (if neg { -n } else { n }, &body[end..])
}

/// `dir/name` as the agent's `File.expand_path` sees it: no `.`, `..` or
/// doubled slashes.
fn join(dir: &str, name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in dir.split(['/', '\\']).chain(name.split('/')) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A path as written in the appspec, relative to the bundle root: the
/// agent joins it to the archive directory, so leading `/` and `./`, doubled
/// slashes and `.` parts change nothing.
fn bundle_path(p: &str) -> String {
    let p = p.trim().replace('\\', "/");
    p.split('/').filter(|part| !part.is_empty() && *part != ".").collect::<Vec<_>>().join("/")
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
        fn files_under(&self, dir: &str) -> Option<Vec<String>> {
            let prefix = format!("{dir}/");
            Some(self.0.keys().filter_map(|k| k.strip_prefix(&prefix)).map(String::from).collect())
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
    /// parser; the bounds refuse it before the parser runs. Their own
    /// messages (the parser has neither) show which refused it, so no clock
    /// is needed: `scripts/bench` is where speed is measured.
    #[test]
    fn a_deeply_nested_or_huge_appspec_is_refused_at_once() {
        let nested = format!("version: 0.0\nos: linux\nx: {}\n", "[".repeat(100_000));
        let p = only(&nested);
        assert!(p.message.contains("nested deeper"), "{p}");
        assert_eq!(p.line, Some(3));
        let huge = format!("version: 0.0\nos: linux\n{}", "# padding\n".repeat(30_000));
        assert!(only(&huge).message.contains("KiB"));
        let indented = format!("version: 0.0\nos: linux\nx:\n{}y: 1\n", " ".repeat(300));
        assert!(only(&indented).message.contains("nested deeper"));
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

    /// The agent runs `chmod +x` before a script without its exec bit.
    #[test]
    fn a_hook_script_without_its_exec_bit_passes() {
        assert_eq!(check_with(&spec("  AfterInstall:\n    - location: scripts/plain.sh\n"), &bundle()), vec![]);
    }

    /// Issue 22: the agent strips the location, joins it to the archive and
    /// calls `to_i` on the timeout; ferry refused these for nothing.
    #[test]
    fn locations_with_dot_slash_or_spaces_and_string_timeouts_pass() {
        for hook in [
            "  AfterInstall:\n    - location: ./scripts/start.sh\n",
            "  AfterInstall:\n    - location: \"  scripts/start.sh \"\n",
            "  AfterInstall:\n    - location: scripts/start.sh\n      timeout: \"30\"\n",
            "  AfterInstall:\n    - location: scripts/start.sh\n      timeout:\n",
        ] {
            assert_eq!(check_with(&spec(hook), &bundle()), vec![], "{hook}");
        }
    }

    #[test]
    fn a_quoted_or_yaml_1_1_string_version_names_the_agents_reason() {
        let p = only("version: \"0.0\"\nos: linux\n");
        assert!(
            p.message.starts_with(
                "version must be the number 0.0, not the string \"0.0\": the agent refuses it at BeforeInstall on every instance"
            ),
            "{p}"
        );
        let p = only("version: 0e0\nos: linux\n");
        assert!(p.message.contains("the string \"0e0\"") && p.message.contains("YAML 1.1"), "{p}");
        assert_eq!(check("version: 0\nos: linux\n"), vec![], "the integer 0 equals 0.0 to the agent");
    }

    #[test]
    fn a_leading_zero_mode_gets_its_own_message() {
        let perm = |mode: &str| format!("version: 0.0\nos: linux\npermissions:\n  - object: /var/www\n    mode: {mode}\n");
        let p = only(&perm("0644"));
        assert_eq!(p.line, Some(5));
        assert!(p.message.contains("octal number 420") && p.message.contains("0420") && p.message.contains("`mode: 644`"), "{p}");
        let p = only(&perm("0755"));
        assert!(p.message.contains("octal number 493") && p.message.contains("the agent refuses it at BeforeInstall"), "{p}");
        assert!(!only(&perm("0644")).message.contains("agent refuses"), "0644 passes the agent, wrongly");
        assert_eq!(check(&perm("644")), vec![]);
        assert_eq!(check(&perm("\"0644\"")), vec![]);
        assert!(only(&perm("999")).message.contains("not an octal digit"));
        assert!(only(&perm("u+rwx")).message.contains("longer than four digits"));
    }

    #[test]
    fn dates_aliases_and_lowercase_file_exists_behavior_are_refused() {
        assert!(only("version: 0.0\nos: linux\nreleased: 2024-01-01\n").message.contains("date or time"));
        assert!(only("version: 0.0\nos: linux\na: &x 1\nb: *x\n").message.contains("aliases"));
        let p = only("version: 0.0\nos: linux\nfile_exists_behavior: overwrite\n");
        assert!(p.message.contains("`file_exists_behavior: OVERWRITE`"), "{p}");
    }

    #[test]
    fn two_sources_for_one_destination_are_refused() {
        let text = "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /var/www\n  - source: site/index.html\n    destination: /var/www/\n";
        let p = only(text);
        assert_eq!(p.line, Some(6));
        assert!(p.message.contains("/var/www/index.html") && p.message.contains("same destination"), "{p}");
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
