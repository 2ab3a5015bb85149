//! The files of an application directory that go into its bundle: `.git/`,
//! `.ferryignore` and what it names are left out; links that leave the tree
//! are refused. Each entry keeps what the instance needs of it: its mode
//! bits as on disk and a time (see [`stamp`]); directories are entries too,
//! so empty ones reach the instance.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::ignore::{self, IgnoreRules};
use super::{BundleError, io_err};
use crate::appspec::{self, Contents, Kind};

/// One file or symlink, under its `/`-separated name relative to the root.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name in the archive.
    pub name: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// File or link.
    pub kind: EntryKind,
    /// A file's size and modification time when the directory was read:
    /// the archive writer refuses a file that no longer matches them.
    pub seen: Option<Seen>,
    /// Permission bits as on disk, setuid, setgid and sticky included
    /// (0o7777 at most); 0o777 for a link.
    pub mode: u32,
    /// Seconds since 1970 the archive records for it, from [`stamp`]; a
    /// directory's is the newest of what it holds (its own when empty), so
    /// creating and deleting a scratch file in it changes nothing.
    pub time: i64,
}

/// 1980-01-01T00:00:00Z: the earliest time a zip can hold.
pub const ZIP_EPOCH: i64 = 315_532_800;
/// 2107-12-31T23:59:58Z: the latest.
pub const ZIP_END: i64 = 4_354_819_198;

/// The time an entry modified at `mtime` carries: its own, no later than
/// `SOURCE_DATE_EPOCH` when that is set (the reproducible-builds clamp, so
/// a fresh checkout of one commit bundles to the same bytes), floored to
/// the zip's 2 s and kept within what a zip can hold. tar and tgz carry the
/// same value, so all three formats agree.
pub fn stamp(mtime: i64, source_date_epoch: Option<i64>) -> i64 {
    let t = source_date_epoch.map_or(mtime, |e| mtime.min(e)).clamp(ZIP_EPOCH, ZIP_END);
    t - t.rem_euclid(2)
}

/// `SOURCE_DATE_EPOCH` as whole seconds, when set and not empty.
pub fn source_date_epoch(dir: &Path) -> Result<Option<i64>, BundleError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse::<i64>().map(Some).map_err(|_| BundleError::Io {
            action: "use SOURCE_DATE_EPOCH for",
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("SOURCE_DATE_EPOCH={v:?} is not whole seconds since 1970 (set it with `git log -1 --format=%ct`)"),
            ),
        }),
        Err(_) => Ok(None),
    }
}

/// What a file looked like when the directory was walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, where the file system keeps one.
    pub modified: Option<std::time::SystemTime>,
}

impl Seen {
    /// From a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> Seen {
        Seen { len: meta.len(), modified: meta.modified().ok() }
    }
}

/// What an [`Entry`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File {
        /// Any execute bit set on disk.
        executable: bool,
    },
    /// A symlink that stays inside the tree.
    Symlink {
        /// Its (relative) target, as written.
        target: String,
    },
    /// A directory.
    Dir,
}

/// A directory's bundle contents, sorted by name so the archive is the same
/// whatever order the file system lists them in.
#[derive(Debug)]
pub struct Tree {
    /// The directory.
    pub root: PathBuf,
    /// Files and links, sorted by name.
    pub entries: Vec<Entry>,
    by_name: BTreeMap<String, usize>,
}

impl Tree {
    /// Walks `dir`, applying `.ferryignore` and the link checks.
    pub fn walk(dir: &Path) -> Result<Tree, BundleError> {
        let ignore_path = dir.join(ignore::FILE_NAME);
        let rules = match crate::small_file::read(&ignore_path, ignore::MAX_BYTES) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    io_err("read", &ignore_path)(std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text"))
                })?;
                IgnoreRules::parse(&text).map_err(|reason| BundleError::Ignore { path: ignore_path.clone(), reason })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
            Err(e) => return Err(io_err("read", &ignore_path)(e)),
        };
        let epoch = source_date_epoch(dir)?;
        let mut entries = Vec::new();
        let walker = walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().into_iter();
        let skip = |e: &walkdir::DirEntry| {
            if e.depth() == 0 {
                return false;
            }
            let rel = rel_name(dir, e.path());
            // The appspec always ships: an ignore rule cannot make a bundle
            // CodeDeploy would reject.
            if rel == appspec::FILE_NAME {
                return false;
            }
            rel == ".git" || rel == ignore::FILE_NAME || rules.is_ignored(&rel, e.file_type().is_dir())
        };
        for entry in walker.filter_entry(|e| !skip(e)) {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(dir).to_path_buf();
                BundleError::Io { action: "read", path, source: e.into() }
            })?;
            if entry.depth() == 0 {
                continue;
            }
            // The CodeDeploy agent's unzip and Ruby mangle or refuse names
            // that are not UTF-8; a lossy name here would ship another file.
            if entry.file_name().to_str().is_none() {
                return Err(BundleError::NonUtf8Name { path: entry.path().to_path_buf() });
            }
            let name = rel_name(dir, entry.path());
            let path = entry.path().to_path_buf();
            let lstat = std::fs::symlink_metadata(&path).map_err(io_err("read", &path))?;
            let (mode, time) = (perm_bits(&lstat), stamp(mtime_secs(&lstat), epoch));
            if entry.file_type().is_dir() {
                entries.push(Entry { name, path, kind: EntryKind::Dir, seen: None, mode, time });
                continue;
            }
            let (kind, seen) = if entry.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(io_err("read", &path))?;
                if !link_stays_inside(&name, &target) {
                    return Err(BundleError::EscapingLink { link: path, target });
                }
                let Some(target) = target.to_str() else {
                    return Err(BundleError::NonUtf8Name { path });
                };
                (EntryKind::Symlink { target: target.replace('\\', "/") }, None)
            } else if entry.file_type().is_file() {
                let meta = std::fs::metadata(&path).map_err(io_err("read", &path))?;
                (EntryKind::File { executable: is_executable(&meta) }, Some(Seen::of(&meta)))
            } else {
                // Never opened: reading a FIFO with no writer blocks forever.
                return Err(BundleError::SpecialFile { path });
            };
            let mode = if matches!(kind, EntryKind::Symlink { .. }) { 0o777 } else { mode };
            entries.push(Entry { name, path, kind, seen, mode, time });
        }
        // walkdir sorts per directory by OS string; sort the full names so the
        // order depends on nothing but the names.
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        newest_inside(&mut entries);
        // Each link alone stays inside; chains and cycles are judged together.
        let links = entries.iter().map(|e| match &e.kind {
            EntryKind::Symlink { target } => (e.name.as_str(), Some(target.as_str())),
            EntryKind::File { .. } | EntryKind::Dir => (e.name.as_str(), None),
        });
        if let Err(bad) = check_links(links) {
            let at = |name: &str| dir.join(name);
            return Err(match bad {
                LinkProblem::Escapes { link, target } => BundleError::EscapingLink { link: at(&link), target: target.into() },
                LinkProblem::Cycle { link } => BundleError::LinkCycle { link: at(&link) },
                // walkdir does not descend into links: nothing is under one.
                LinkProblem::Through { entry, .. } => BundleError::SpecialFile { path: at(&entry) },
            });
        }
        let by_name = entries.iter().enumerate().map(|(i, e)| (e.name.clone(), i)).collect();
        Ok(Tree { root: dir.to_path_buf(), entries, by_name })
    }
}

/// Links longer than this chain of hops count as a cycle (Linux's own limit).
const MAX_HOPS: usize = 40;

/// Why a bundle's links are unsafe to unpack, judged on the bundle's own
/// entries (what an instance unpacks), not on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkProblem {
    /// Following `link` (through any chain of links) leaves the bundle.
    Escapes {
        /// The link.
        link: String,
        /// Its target as written.
        target: String,
    },
    /// `link` leads back to itself, directly or round a chain.
    Cycle {
        /// The link.
        link: String,
    },
    /// `entry` lies under the link `link`: unpacking it writes wherever the
    /// link points.
    Through {
        /// The entry.
        entry: String,
        /// The link it goes through.
        link: String,
    },
}

/// Checks every link of a bundle: `(name, Some(target))` for a link,
/// `(name, None)` for anything else. Links are resolved hop by hop against
/// the other entries, so a chain of links that each stay inside but
/// together leave the bundle is caught, and so is a cycle.
pub fn check_links<'a>(entries: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> Result<(), LinkProblem> {
    let entries: Vec<(&str, Option<&str>)> = entries.collect();
    let links: BTreeMap<&str, &str> = entries.iter().filter_map(|(n, t)| t.map(|t| (*n, t))).collect();
    for (name, _) in &entries {
        let mut prefix = String::new();
        let parts: Vec<&str> = name.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if links.contains_key(prefix.as_str()) {
                return Err(LinkProblem::Through { entry: name.to_string(), link: prefix });
            }
        }
    }
    for (link, target) in &links {
        resolve(link, target, &links)?;
    }
    Ok(())
}

/// Follows `link` → `target` through the bundle's other links.
fn resolve(link: &str, target: &str, links: &BTreeMap<&str, &str>) -> Result<(), LinkProblem> {
    let escapes = || LinkProblem::Escapes { link: link.to_string(), target: target.to_string() };
    if target.starts_with('/') {
        return Err(escapes());
    }
    // The path resolved so far, and the components still to walk.
    let mut at: Vec<String> = link.split('/').map(String::from).collect();
    at.pop();
    let mut todo: Vec<String> = target.split('/').rev().map(String::from).collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => {}
            ".." => {
                if at.pop().is_none() {
                    return Err(escapes());
                }
            }
            _ => {
                at.push(part);
                let here = at.join("/");
                if let Some(next) = links.get(here.as_str()) {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(LinkProblem::Cycle { link: link.to_string() });
                    }
                    if next.starts_with('/') {
                        return Err(escapes());
                    }
                    at.pop();
                    todo.extend(next.split('/').rev().map(String::from));
                }
            }
        }
    }
    Ok(())
}

impl Contents for Tree {
    fn lookup(&self, path: &str) -> Option<Kind> {
        if let Some(&i) = self.by_name.get(path) {
            return Some(match &self.entries[i].kind {
                EntryKind::File { executable } => Kind::File { executable: *executable },
                EntryKind::Symlink { .. } => Kind::Symlink,
                EntryKind::Dir => Kind::Dir,
            });
        }
        let prefix = format!("{path}/");
        self.by_name.range(prefix.clone()..).next().filter(|(n, _)| n.starts_with(&prefix)).map(|_| Kind::Dir)
    }

    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let &i = self.by_name.get(path)?;
        std::fs::read(&self.entries[i].path).ok()
    }

    fn files_under(&self, dir: &str) -> Option<Vec<String>> {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let under = self.by_name.range(prefix.clone()..).take_while(|(n, _)| n.starts_with(&prefix));
        let files = under.filter(|(_, i)| self.entries[**i].kind != EntryKind::Dir);
        Some(files.map(|(n, _)| n[prefix.len()..].to_string()).collect())
    }
}

/// Gives each directory the newest time of the entries below it, keeping
/// its own only when it is empty.
fn newest_inside(entries: &mut [Entry]) {
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    for e in entries.iter() {
        let mut name = e.name.as_str();
        while let Some((parent, _)) = name.rsplit_once('/') {
            let t = newest.entry(parent.to_string()).or_insert(e.time);
            *t = (*t).max(e.time);
            name = parent;
        }
    }
    for e in entries.iter_mut().filter(|e| e.kind == EntryKind::Dir) {
        if let Some(t) = newest.get(&e.name) {
            e.time = *t;
        }
    }
}

#[cfg(unix)]
fn perm_bits(meta: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
}

#[cfg(not(unix))]
fn perm_bits(meta: &std::fs::Metadata) -> u32 {
    if meta.is_dir() {
        0o755
    } else if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

#[cfg(unix)]
fn mtime_secs(meta: &std::fs::Metadata) -> i64 {
    std::os::unix::fs::MetadataExt::mtime(meta)
}

#[cfg(not(unix))]
fn mtime_secs(meta: &std::fs::Metadata) -> i64 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs() as i64)
}

fn rel_name(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).expect("walkdir yields paths under its root");
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Whether a symlink named `rel` pointing at `target` resolves inside the tree.
pub fn link_stays_inside(rel: &str, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = rel.matches('/').count() as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}
