//! The Install event as the agent's `Installer` and `InstallInstruction`
//! do it (installer.rb, install_instruction.rb), inside an instance root:
//!
//! 1. Remove what the previous install recorded in `<group id>-cleanup`,
//!    newest first (files and links; directories only when empty).
//! 2. Plan every copy and mkdir before touching anything: a DISALLOW
//!    conflict, two sources for one destination, or a file where a
//!    directory goes fails the event with nothing copied.
//! 3. Carry the plan out, recording each destination in the cleanup file.
//!
//! `file_exists_behavior` from the appspec wins over the deployment's. A
//! symlink in the revision is installed as a symlink; a symlink to a
//! directory is followed and its content copied, as `File.directory?` does.
//! Copies keep the file's mode and modification time (`:preserve => true`).
//!
//! Paths are handled as the instance sees them (absolute, `/`-rooted) and
//! mapped under the instance root only to touch the disk, so messages name
//! the paths the agent would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::bundle::{self, AppSpec};

/// One planned step.
enum Step {
    Mkdir(String),
    Copy(String, String),
}

/// The plan, with the agent's checks (`CommandBuilder`).
struct Plan<'a> {
    root: &'a Path,
    steps: Vec<Step>,
    copy_targets: BTreeMap<String, String>,
    mkdir_targets: BTreeSet<String>,
}

/// `File.expand_path` for the absolute paths the installer handles:
/// `.` and empty segments dropped, `..` resolved.
fn expand(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Ruby's `File.join(a, b)`: one `/` between them.
fn join(a: &str, b: &str) -> String {
    format!("{}/{}", a.trim_end_matches('/'), b.trim_start_matches('/'))
}

/// Ruby's `File.dirname`.
fn dirname(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].to_string(),
        None => ".".into(),
    }
}

/// Ruby's `File.basename`.
fn basename(p: &str) -> String {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string()
}

impl Plan<'_> {
    fn real(&self, p: &str) -> Result<PathBuf, String> {
        bundle::confine(self.root, p)
    }

    fn copy(&mut self, source: &str, destination: &str) -> Result<(), String> {
        let destination = expand(destination);
        if let Some(other) = self.copy_targets.get(&destination) {
            return Err(format!(
                "The deployment failed because the application specification file specifies two source files named {source} and {other} for the same destination ({destination}). Remove one of the source file paths from the AppSpec file, and then try again."
            ));
        }
        if self.mkdir_targets.contains(&destination) {
            return Err(format!(
                "The deployment failed because the application specification file calls for installing the file {source}, but a file with that name already exists at the location ({destination}). Update your AppSpec file or directory structure, and then try again."
            ));
        }
        self.steps.push(Step::Copy(source.to_string(), destination.clone()));
        self.copy_targets.insert(destination, source.to_string());
        Ok(())
    }

    fn mkdir(&mut self, destination: &str) -> Result<(), String> {
        let destination = expand(destination);
        if let Some(from) = self.copy_targets.get(&destination) {
            return Err(format!(
                "The deployment failed because the application specification file includes an mkdir command more than once for the same destination path ({destination}) from ({from}). Update the files section of the AppSpec file, and then try again."
            ));
        }
        if self.mkdir_targets.insert(destination.clone()) {
            self.steps.push(Step::Mkdir(destination));
        }
        Ok(())
    }

    fn fill_in_missing_ancestors(&mut self, destination: &str) -> Result<(), String> {
        let mut missing = Vec::new();
        let mut parent = dirname(destination);
        while !self.real(&parent)?.exists() && parent != "." && parent != "/" {
            missing.insert(0, parent.clone());
            parent = dirname(&parent);
        }
        for dir in missing {
            self.mkdir(&dir)?;
        }
        Ok(())
    }

    fn directory_copy(&mut self, source: &str, destination: &str, behavior: &str) -> Result<(), String> {
        if !self.real(destination)?.is_dir() {
            self.mkdir(destination)?;
        }
        let real = self.real(source)?;
        let entries = std::fs::read_dir(&real).map_err(|e| format!("{e} @ dir_initialize - {source}"))?;
        for entry in entries {
            let name = entry.map_err(|e| e.to_string())?.file_name().to_string_lossy().into_owned();
            let (from, to) = (join(source, &name), join(destination, &name));
            // File.directory? follows symlinks: a link to a directory is copied as one.
            if self.real(&from)?.is_dir() {
                self.directory_copy(&from, &to, behavior)?;
            } else {
                self.normal_copy(&from, &to, behavior)?;
            }
        }
        Ok(())
    }

    fn normal_copy(&mut self, source: &str, destination: &str, behavior: &str) -> Result<(), String> {
        // File.exist? follows symlinks too.
        if self.real(destination)?.exists() {
            match behavior {
                "DISALLOW" => {
                    Err(format!("The deployment failed because a specified file already exists at this location: {destination}"))
                }
                "OVERWRITE" => self.copy(source, destination),
                "RETAIN" => Ok(()),
                other => Err(format!(
                    "The deployment failed because an invalid option was specified for fileExistsBehavior: {other}. Valid options include OVERWRITE, RETAIN, and DISALLOW."
                )),
            }
        } else {
            self.copy(source, destination)
        }
    }
}

/// Where one install reads and records.
pub(super) struct Install<'a> {
    /// The instance root: `/` of the instance.
    pub root: &'a Path,
    /// The unpacked revision, as the instance sees it (absolute).
    pub archive: String,
    /// `<group id>-cleanup`, as the instance sees it.
    pub cleanup_file: String,
    /// The deployment's fileExistsBehavior.
    pub deployment_behavior: &'a str,
}

/// Installs `spec`'s files; the error is the event's message.
pub(super) fn install(i: &Install<'_>, spec: &AppSpec) -> Result<(), String> {
    let cleanup = bundle::confine(i.root, &i.cleanup_file)?;
    remove_previous(i.root, &cleanup)?;

    let mut plan = Plan { root: i.root, steps: Vec::new(), copy_targets: BTreeMap::new(), mkdir_targets: BTreeSet::new() };
    let behavior = spec.file_exists_behavior.as_deref().unwrap_or(i.deployment_behavior);
    for fi in &spec.files {
        let source = join(&i.archive, &fi.source);
        if plan.real(&source)?.is_dir() {
            plan.fill_in_missing_ancestors(&fi.destination)?;
            plan.directory_copy(&source, &fi.destination, behavior)?;
        } else {
            let destination = join(&fi.destination, &basename(&source));
            plan.fill_in_missing_ancestors(&destination)?;
            plan.normal_copy(&source, &destination, behavior)?;
        }
    }

    if let Some(dir) = cleanup.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut record = String::new();
    let result = plan.steps.iter().try_for_each(|step| match step {
        Step::Mkdir(d) => {
            std::fs::create_dir(plan.real(d)?).map_err(|e| format!("{e} @ dir_s_mkdir - {d}"))?;
            record.push_str(&format!("{d}\n"));
            Ok::<(), String>(())
        }
        Step::Copy(from, to) => {
            record.push_str(&format!("{to}\n"));
            copy(&plan.real(from)?, &plan.real(to)?).map_err(|e| format!("{e} - {to}"))
        }
    });
    // What was done is recorded even when a step failed, as the agent writes
    // each line before (copy) or after (mkdir) the step.
    std::fs::write(&cleanup, record).map_err(|e| e.to_string())?;
    result
}

/// Copies one file, link or not, keeping mode and modification time.
fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        return std::os::unix::fs::symlink(std::fs::read_link(from)?, to);
    }
    std::fs::copy(from, to)?;
    let modified = meta.modified()?;
    std::fs::File::options().write(true).open(to)?.set_modified(modified)
}

/// Removes what the previous install recorded, newest first; a last line
/// without its newline was never finished and is skipped.
fn remove_previous(root: &Path, cleanup: &Path) -> Result<(), String> {
    let Ok(text) = std::fs::read_to_string(cleanup) else { return Ok(()) };
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.pop();
    }
    for line in lines.iter().rev() {
        let path = bundle::confine(root, line.trim())?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() || m.is_file() => {
                let _ = std::fs::remove_file(&path);
            }
            // Only an empty directory goes (ENOTEMPTY is ignored).
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir(&path);
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_file(cleanup);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_path_helpers() {
        assert_eq!(expand("/a/./b//c/../d"), "/a/b/d");
        assert_eq!(join("/a/", "/b"), "/a/b");
        assert_eq!(dirname("/a/b"), "/a");
        assert_eq!(dirname("/a"), "/");
        assert_eq!(basename("/a/b/"), "b");
    }
}
