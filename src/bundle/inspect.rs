//! Reads a ready-made archive: its entry names (refusing ones that would
//! unpack outside the deployment directory) and single files for the
//! appspec checks.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::{BundleError, BundleType, io_err};
use crate::appspec::{self, Contents, Kind};

/// The entries of an archive on disk.
#[derive(Debug)]
pub struct ArchiveIndex {
    path: PathBuf,
    kind: BundleType,
    entries: BTreeMap<String, Kind>,
}

impl ArchiveIndex {
    /// Lists `path`, refusing absolute and `..` entry names.
    pub fn open(path: &Path, kind: BundleType) -> Result<ArchiveIndex, BundleError> {
        let mut entries = BTreeMap::new();
        let mut add = |raw: &str, k: Kind| -> Result<(), BundleError> {
            let name =
                normalize(raw).ok_or_else(|| BundleError::UnsafeEntry { path: path.to_path_buf(), entry: raw.to_string() })?;
            if !name.is_empty() {
                entries.insert(name, k);
            }
            Ok(())
        };
        let file = File::open(path).map_err(io_err("read", path))?;
        match kind {
            BundleType::Zip => {
                let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| zip_corrupt(path, e))?;
                for i in 0..zip.len() {
                    let entry = zip.by_index_raw(i).map_err(|e| zip_corrupt(path, e))?;
                    let mode = entry.unix_mode();
                    let k = if entry.is_dir() {
                        Kind::Dir
                    } else if mode.is_some_and(|m| m & 0o170000 == 0o120000) {
                        Kind::Symlink
                    } else {
                        Kind::File { executable: mode.is_some_and(|m| m & 0o111 != 0) }
                    };
                    add(entry.name(), k)?;
                }
            }
            BundleType::Tar | BundleType::Tgz => {
                let label = if kind == BundleType::Tar { "tar" } else { "tgz" };
                let corrupt =
                    |e: io::Error| BundleError::Corrupt { path: path.to_path_buf(), kind: label, detail: e.to_string() };
                let reader = tar_reader(file, kind);
                let mut archive = tar::Archive::new(reader);
                for entry in archive.entries().map_err(corrupt)? {
                    let entry = entry.map_err(corrupt)?;
                    let header = entry.header();
                    let k = match header.entry_type() {
                        tar::EntryType::Directory => Kind::Dir,
                        tar::EntryType::Symlink | tar::EntryType::Link => Kind::Symlink,
                        _ => Kind::File { executable: header.mode().map_err(corrupt)? & 0o111 != 0 },
                    };
                    let name = entry.path().map_err(corrupt)?.to_string_lossy().into_owned();
                    add(&name, k)?;
                }
            }
        }
        Ok(ArchiveIndex { path: path.to_path_buf(), kind, entries })
    }

    /// The appspec's text, or [`BundleError::NoAppSpec`].
    pub fn appspec_text(&self, archive: &Path) -> Result<String, BundleError> {
        self.read(appspec::FILE_NAME)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| BundleError::NoAppSpec { path: archive.to_path_buf() })
    }

    fn read_entry(&self, wanted: &str) -> io::Result<Option<Vec<u8>>> {
        let file = File::open(&self.path)?;
        let mut out = Vec::new();
        match self.kind {
            BundleType::Zip => {
                let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(io::Error::other)?;
                for i in 0..zip.len() {
                    let mut entry = zip.by_index(i).map_err(io::Error::other)?;
                    if normalize(entry.name()).as_deref() == Some(wanted) {
                        entry.read_to_end(&mut out)?;
                        return Ok(Some(out));
                    }
                }
            }
            BundleType::Tar | BundleType::Tgz => {
                let mut archive = tar::Archive::new(tar_reader(file, self.kind));
                for entry in archive.entries()? {
                    let mut entry = entry?;
                    if normalize(&entry.path()?.to_string_lossy()).as_deref() == Some(wanted) {
                        entry.read_to_end(&mut out)?;
                        return Ok(Some(out));
                    }
                }
            }
        }
        Ok(None)
    }
}

impl Contents for ArchiveIndex {
    fn lookup(&self, path: &str) -> Option<Kind> {
        if let Some(k) = self.entries.get(path) {
            return Some(*k);
        }
        let prefix = format!("{path}/");
        self.entries.range(prefix.clone()..).next().filter(|(n, _)| n.starts_with(&prefix)).map(|_| Kind::Dir)
    }

    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.read_entry(path).ok().flatten()
    }
}

fn tar_reader(file: File, kind: BundleType) -> Box<dyn Read> {
    let buffered = BufReader::new(file);
    if kind == BundleType::Tgz { Box::new(flate2::read::GzDecoder::new(buffered)) } else { Box::new(buffered) }
}

fn zip_corrupt(path: &Path, e: zip::result::ZipError) -> BundleError {
    BundleError::Corrupt { path: path.to_path_buf(), kind: "zip", detail: e.to_string() }
}

/// `./a//b/` → `a/b`; `None` for absolute names and `..` components.
fn normalize(raw: &str) -> Option<String> {
    let raw = raw.replace('\\', "/");
    let mut parts = Vec::new();
    for c in Path::new(&raw).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_normalized_and_escapes_refused() {
        assert_eq!(normalize("./scripts//start.sh").as_deref(), Some("scripts/start.sh"));
        assert_eq!(normalize("site/").as_deref(), Some("site"));
        assert_eq!(normalize("/etc/passwd"), None);
        assert_eq!(normalize("a/../../x"), None);
        assert_eq!(normalize("..\\x"), None);
    }
}
