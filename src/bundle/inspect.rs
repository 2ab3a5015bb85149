//! Reads a ready-made archive: its entry names (refusing ones that would
//! unpack outside the deployment directory) and single files for the
//! appspec checks.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::tree::{LinkProblem, check_links};
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
    /// Lists `path`, applying the rules a directory is held to: no absolute
    /// or `..` names, no links leaving the bundle (alone or chained), no
    /// link cycles, nothing written through a link, no hard links to
    /// anything but a file earlier in the archive, no devices, FIFOs or
    /// sockets, no name twice, and no truncated archive.
    pub fn open(path: &Path, kind: BundleType) -> Result<ArchiveIndex, BundleError> {
        let mut list = Listing { path, entries: BTreeMap::new(), links: Vec::new() };
        let file = File::open(path).map_err(io_err("read", path))?;
        match kind {
            BundleType::Zip => list_zip(&mut list, file)?,
            BundleType::Tar | BundleType::Tgz => list_tar(&mut list, file, kind)?,
        }
        let Listing { entries, links, .. } = list;
        let targets: BTreeMap<&str, &str> = links.iter().map(|(l, t)| (l.as_str(), t.as_str())).collect();
        let all = entries.keys().map(|n| (n.as_str(), targets.get(n.as_str()).copied()));
        check_links(all).map_err(|p| BundleError::UnsafeLink {
            path: path.to_path_buf(),
            detail: match p {
                LinkProblem::Escapes { link, target } => {
                    format!("the symlink `{link}` → `{target}`, which leads outside the bundle")
                }
                LinkProblem::Cycle { link } => format!("the symlink `{link}`, which leads back to itself (a link cycle)"),
                LinkProblem::Through { entry, link } => {
                    format!("`{entry}`, which is written through the symlink `{link}` (it would land wherever the link points)")
                }
            },
        })?;
        Ok(ArchiveIndex { path: path.to_path_buf(), kind, entries })
    }

    /// The appspec's text, or [`BundleError::NoAppSpec`].
    pub fn appspec_text(&self, archive: &Path) -> Result<String, BundleError> {
        self.read(appspec::FILE_NAME)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| BundleError::no_appspec(archive, self))
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

/// What an archive holds, gathered entry by entry.
struct Listing<'a> {
    path: &'a Path,
    entries: BTreeMap<String, Kind>,
    /// Symlinks: name → target, as written.
    links: Vec<(String, String)>,
}

impl Listing<'_> {
    fn special(&self, entry: &str, what: &str) -> BundleError {
        list_special(self.path, entry, what)
    }

    /// Adds an entry under its normalized name; `None` for the archive's root.
    fn add(&mut self, raw: &str, k: Kind) -> Result<Option<String>, BundleError> {
        let name =
            normalize(raw).ok_or_else(|| BundleError::UnsafeEntry { path: self.path.to_path_buf(), entry: raw.to_string() })?;
        if name.is_empty() {
            return Ok(None);
        }
        match self.entries.insert(name.clone(), k) {
            // A directory listed twice is harmless; anything else is two files.
            Some(Kind::Dir) if k == Kind::Dir => {}
            Some(_) => return Err(BundleError::DuplicateEntry { path: self.path.to_path_buf(), entry: name }),
            None => {}
        }
        Ok(Some(name))
    }

    fn link(&mut self, raw: &str, target: &str) -> Result<(), BundleError> {
        if let Some(name) = self.add(raw, Kind::Symlink)? {
            self.links.push((name, target.replace('\\', "/")));
        }
        Ok(())
    }
}

fn list_zip(list: &mut Listing<'_>, file: File) -> Result<(), BundleError> {
    let path = list.path;
    let file_len = file.metadata().map_err(io_err("read", path))?.len();
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| zip_corrupt(path, e))?;
    // The zip crate keeps one entry per name, silently: the central
    // directory itself says whether a name is there twice.
    let start = zip.central_directory_start();
    repeated_name(path, start)
        .map_err(io_err("read", path))?
        .map_or(Ok(()), |entry| Err(BundleError::DuplicateEntry { path: path.to_path_buf(), entry }))?;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| zip_corrupt(path, e))?;
        let name = entry.name().to_string();
        // The central directory survived, but an entry's bytes are not all there.
        if entry.data_start().saturating_add(entry.compressed_size()) > file_len {
            let detail = format!("the data of `{name}` runs past the end of the file");
            return Err(BundleError::Corrupt { path: path.to_path_buf(), kind: "zip", detail });
        }
        let mode = entry.unix_mode();
        let is_dir = entry.is_dir();
        drop(entry);
        match mode.map(|m| m & 0o170000) {
            _ if is_dir => {
                list.add(&name, Kind::Dir)?;
            }
            Some(0o120000) => {
                let mut target = String::new();
                let mut link = zip.by_index(i).map_err(|e| zip_corrupt(path, e))?;
                link.read_to_string(&mut target).map_err(|e| BundleError::Corrupt {
                    path: path.to_path_buf(),
                    kind: "zip",
                    detail: format!("the symlink `{name}`: {e}"),
                })?;
                list.link(&name, &target)?;
            }
            Some(0o010000) => return Err(list.special(&name, "a FIFO")),
            Some(0o020000) => return Err(list.special(&name, "a character device")),
            Some(0o060000) => return Err(list.special(&name, "a block device")),
            Some(0o140000) => return Err(list.special(&name, "a socket")),
            _ => {
                list.add(&name, Kind::File { executable: mode.is_some_and(|m| m & 0o111 != 0) })?;
            }
        }
    }
    Ok(())
}

fn list_tar(list: &mut Listing<'_>, file: File, kind: BundleType) -> Result<(), BundleError> {
    let path = list.path;
    let label = if kind == BundleType::Tar { "tar" } else { "tgz" };
    let corrupt = |e: io::Error| BundleError::Corrupt { path: path.to_path_buf(), kind: label, detail: e.to_string() };
    let mut archive = tar::Archive::new(tar_reader(file, kind));
    for entry in archive.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes();
        let Ok(name) = std::str::from_utf8(&raw) else {
            let shown = raw.escape_ascii().to_string();
            return Err(list.special(&shown, "a name that is not UTF-8 (the CodeDeploy agent would mangle or refuse it)"));
        };
        let name = name.to_string();
        let header = entry.header();
        let target = || -> Result<String, BundleError> {
            let t = entry.link_name_bytes().unwrap_or_default();
            std::str::from_utf8(&t).map(String::from).map_err(|_| list_special(path, &name, "a link whose target is not UTF-8"))
        };
        match header.entry_type() {
            tar::EntryType::Directory => {
                list.add(&name, Kind::Dir)?;
            }
            tar::EntryType::Symlink => {
                let target = target()?;
                list.link(&name, &target)?;
            }
            tar::EntryType::Link => {
                // A hard link is a second name for a file the archive already
                // holds; anything else would make the unpacker link to a file
                // outside (`/etc/shadow`) or to nothing.
                let target = target()?;
                let earlier = normalize(&target).and_then(|t| list.entries.get(&t).copied());
                let Some(Kind::File { executable }) = earlier else {
                    return Err(
                        list.special(&name, &format!("a hard link to `{target}`, which is not a file earlier in the archive"))
                    );
                };
                list.add(&name, Kind::File { executable })?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let executable = header.mode().map_err(corrupt)? & 0o111 != 0;
                list.add(&name, Kind::File { executable })?;
            }
            tar::EntryType::Char => return Err(list.special(&name, "a character device")),
            tar::EntryType::Block => return Err(list.special(&name, "a block device")),
            tar::EntryType::Fifo => return Err(list.special(&name, "a FIFO")),
            other => return Err(list.special(&name, &format!("an entry of tar type {other:?} that CodeDeploy does not unpack"))),
        }
    }
    Ok(())
}

/// The first name the zip's central directory (at `start`) lists twice,
/// normalized as entries are.
fn repeated_name(path: &Path, start: u64) -> io::Result<Option<String>> {
    use std::io::{Seek, SeekFrom};
    const HEADER: u32 = 0x0201_4b50;
    let mut f = BufReader::new(File::open(path)?);
    f.seek(SeekFrom::Start(start))?;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let mut fixed = [0u8; 46];
        if f.read_exact(&mut fixed).is_err() || u32::from_le_bytes(fixed[..4].try_into().unwrap_or_default()) != HEADER {
            return Ok(None);
        }
        let le16 = |at: usize| u16::from_le_bytes([fixed[at], fixed[at + 1]]) as usize;
        let (name_len, rest) = (le16(28), le16(30) + le16(32));
        let mut name = vec![0u8; name_len];
        f.read_exact(&mut name)?;
        f.seek(SeekFrom::Current(rest as i64))?;
        let name = String::from_utf8_lossy(&name).into_owned();
        if let Some(n) = normalize(&name).filter(|n| !n.is_empty() && !name.ends_with('/'))
            && !seen.insert(n.clone())
        {
            return Ok(Some(n));
        }
    }
}

fn list_special(path: &Path, entry: &str, what: &str) -> BundleError {
    BundleError::SpecialEntry { path: path.to_path_buf(), entry: entry.to_string(), what: what.to_string() }
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
