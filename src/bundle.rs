//! bundle: a directory becomes a CodeDeploy zip; a ready archive is taken as
//! is. Either way the appspec is checked and the SHA-256 known before upload.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::appspec;

/// Archive formats CodeDeploy accepts for EC2 deployments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleType {
    /// `.zip`
    Zip,
    /// `.tar`
    Tar,
    /// `.tgz` / `.tar.gz`
    Tgz,
}

impl BundleType {
    /// The file extension ferry uses for keys.
    pub fn extension(self) -> &'static str {
        match self {
            BundleType::Zip => "zip",
            BundleType::Tar => "tar",
            BundleType::Tgz => "tgz",
        }
    }

    /// Recognises a bundle file by its name.
    pub fn from_path(path: &Path) -> Option<BundleType> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".zip") {
            Some(BundleType::Zip)
        } else if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
            Some(BundleType::Tgz)
        } else if name.ends_with(".tar") {
            Some(BundleType::Tar)
        } else {
            None
        }
    }
}

/// A bundle ready to upload.
#[derive(Debug)]
pub struct Bundle {
    /// The archive on disk.
    pub path: PathBuf,
    /// Its format.
    pub kind: BundleType,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the archive bytes.
    pub sha256: String,
    /// Whether ferry built the archive (from a directory).
    pub built: bool,
    // Keeps a built archive alive until the upload is done; deleted on drop.
    _temp: Option<tempfile::TempPath>,
}

/// Why no bundle could be made. All of these happen before any AWS call.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The path does not exist.
    #[error("{} does not exist. Pass the directory of the built application or a .zip/.tar/.tgz bundle.", path.display())]
    Missing {
        /// What was given.
        path: PathBuf,
    },
    /// A file whose name is not a known archive type.
    #[error(
        "{} is not a directory or a .zip, .tar or .tgz file. Pass the application directory (ferry zips it) or an archive CodeDeploy accepts.",
        path.display()
    )]
    UnknownType {
        /// What was given.
        path: PathBuf,
    },
    /// No appspec.yml at the bundle's root.
    #[error(
        "{} has no appspec.yml at its root. CodeDeploy needs one to know where files go and which hooks to run; \
         add it at the top of the bundle (not in a subdirectory).",
        path.display()
    )]
    NoAppSpec {
        /// The directory or archive.
        path: PathBuf,
    },
    /// The appspec has problems.
    #[error("{} failed the appspec check: {}", path.display(), problems.join(" "))]
    AppSpec {
        /// The directory or archive.
        path: PathBuf,
        /// Each problem, with its fix.
        problems: Vec<String>,
    },
    /// A symlink points outside the bundle directory.
    #[error(
        "{} is a symlink to {}, outside the bundle directory; CodeDeploy would unpack a dangling or unsafe link. \
         Copy the target into the directory or remove the link.",
        link.display(), target.display()
    )]
    EscapingLink {
        /// The link.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A FIFO, socket or device file: reading it could block forever or
    /// yield endless bytes, and CodeDeploy cannot unpack it anyway.
    #[error(
        "{} is not a regular file, directory or symlink (a FIFO, socket or device?); it cannot go into a bundle. \
         Remove it from the application directory or build the bundle from a clean copy.",
        path.display()
    )]
    SpecialFile {
        /// The file.
        path: PathBuf,
    },
    /// Reading the input or writing the archive failed.
    #[error("cannot {action} {}: {source}. Check that the path is readable and the temp directory ($TMPDIR) has space.", path.display())]
    Io {
        /// What ferry was doing.
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The archive is not a readable zip/tar.
    #[error("{} is not a readable {kind} archive: {detail}. Rebuild the bundle.", path.display())]
    Corrupt {
        /// The archive.
        path: PathBuf,
        /// Its expected format.
        kind: &'static str,
        /// What the reader said.
        detail: String,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BundleError + use<> {
    let path = path.to_path_buf();
    move |source| BundleError::Io { action, path, source }
}

/// Turns `input` into a checked bundle: zips a directory, or checks an archive.
pub fn prepare(input: &Path) -> Result<Bundle, BundleError> {
    let meta = match std::fs::metadata(input) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BundleError::Missing { path: input.to_path_buf() });
        }
        Err(e) => return Err(io_err("read", input)(e)),
    };
    if meta.is_dir() {
        return zip_dir(input);
    }
    let kind = BundleType::from_path(input).ok_or_else(|| BundleError::UnknownType { path: input.to_path_buf() })?;
    let text = read_appspec_from_archive(input, kind)?
        .ok_or_else(|| BundleError::NoAppSpec { path: input.to_path_buf() })?;
    check_appspec(input, &text)?;
    let (size, sha256) = hash_file(input)?;
    Ok(Bundle { path: input.to_path_buf(), kind, size, sha256, built: false, _temp: None })
}

fn check_appspec(path: &Path, text: &str) -> Result<(), BundleError> {
    let problems = appspec::check(text);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BundleError::AppSpec { path: path.to_path_buf(), problems: problems.into_iter().map(|p| p.0).collect() })
    }
}

/// Files under `dir` in the order they go into the archive, relative paths
/// with `/` separators. Sorted so the same tree always gives the same bytes.
fn collect(dir: &Path) -> Result<Vec<(String, PathBuf)>, BundleError> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().into_iter();
    for entry in walker.filter_entry(|e| e.depth() == 0 || e.file_name() != ".git") {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            BundleError::Io { action: "read", path, source: e.into() }
        })?;
        if entry.depth() == 0 || entry.file_type().is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
        let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        out.push((name, entry.path().to_path_buf()));
    }
    Ok(out)
}

/// Whether a symlink at `link` (relative name `rel`) resolves inside the tree.
fn link_stays_inside(rel: &str, target: &Path) -> bool {
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

fn zip_dir(dir: &Path) -> Result<Bundle, BundleError> {
    let appspec_path = dir.join(appspec::FILE_NAME);
    let text = match std::fs::read_to_string(&appspec_path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BundleError::NoAppSpec { path: dir.to_path_buf() });
        }
        Err(e) => return Err(io_err("read", &appspec_path)(e)),
    };
    check_appspec(dir, &text)?;

    let files = collect(dir)?;
    let tmp = tempfile::Builder::new()
        .prefix("ferry-bundle-")
        .suffix(".zip")
        .tempfile()
        .map_err(io_err("create a temporary file for", dir))?;
    let (file, temp_path) = tmp.into_parts();
    let mut zip = zip::ZipWriter::new(io::BufWriter::new(file));
    // Fixed timestamp and normalised modes: a rebuild of the same tree gives
    // the same bytes, so the same SHA-256 and the same S3 key.
    let base = zip::write::SimpleFileOptions::default()
        .last_modified_time(zip::DateTime::default())
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    let zerr = |path: &Path, e: zip::result::ZipError| BundleError::Io {
        action: "write the bundle for",
        path: path.to_path_buf(),
        source: io::Error::other(e),
    };
    for (name, path) in &files {
        let meta = std::fs::symlink_metadata(path).map_err(io_err("read", path))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).map_err(io_err("read", path))?;
            if !link_stays_inside(name, &target) {
                return Err(BundleError::EscapingLink { link: path.clone(), target });
            }
            zip.add_symlink(name, target.to_string_lossy(), base.unix_permissions(0o777))
                .map_err(|e| zerr(path, e))?;
            continue;
        }
        if !meta.is_file() {
            return Err(BundleError::SpecialFile { path: path.clone() });
        }
        let mode = if is_executable(&meta) { 0o755 } else { 0o644 };
        let opts = base.unix_permissions(mode).large_file(meta.len() >= 0xFFFF_FFFF);
        zip.start_file(name, opts).map_err(|e| zerr(path, e))?;
        let mut src = File::open(path).map_err(io_err("read", path))?;
        io::copy(&mut src, &mut zip).map_err(io_err("read", path))?;
    }
    let mut out = zip.finish().map_err(|e| zerr(dir, e))?;
    out.flush().map_err(io_err("write the bundle for", dir))?;
    drop(out);
    let path = temp_path.to_path_buf();
    let (size, sha256) = hash_file(&path)?;
    Ok(Bundle { path, kind: BundleType::Zip, size, sha256, built: true, _temp: Some(temp_path) })
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

/// Size and lowercase hex SHA-256 of a file, read once.
pub fn hash_file(path: &Path) -> Result<(u64, String), BundleError> {
    let mut f = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err("read", path))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

fn read_appspec_from_archive(path: &Path, kind: BundleType) -> Result<Option<String>, BundleError> {
    let file = File::open(path).map_err(io_err("read", path))?;
    match kind {
        BundleType::Zip => {
            let corrupt = |e: zip::result::ZipError| BundleError::Corrupt {
                path: path.to_path_buf(),
                kind: "zip",
                detail: e.to_string(),
            };
            let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(corrupt)?;
            let mut entry = match archive.by_name(appspec::FILE_NAME) {
                Ok(e) => e,
                Err(zip::result::ZipError::FileNotFound) => return Ok(None),
                Err(e) => return Err(corrupt(e)),
            };
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(io_err("read appspec.yml from", path))?;
            Ok(Some(text))
        }
        BundleType::Tar => find_in_tar(path, "tar", BufReader::new(file)),
        BundleType::Tgz => find_in_tar(path, "tgz", flate2::read::GzDecoder::new(BufReader::new(file))),
    }
}

fn find_in_tar<R: Read>(path: &Path, kind: &'static str, reader: R) -> Result<Option<String>, BundleError> {
    let corrupt = |e: io::Error| BundleError::Corrupt { path: path.to_path_buf(), kind, detail: e.to_string() };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry.path().map_err(corrupt)?.to_string_lossy().trim_start_matches("./").to_string();
        if name == appspec::FILE_NAME {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(corrupt)?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
        std::fs::write(dir.path().join("scripts/start.sh"), "#!/bin/bash\necho hi\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("scripts/start.sh"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        dir
    }

    #[test]
    fn directory_without_appspec_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "hi").unwrap();
        assert!(matches!(prepare(dir.path()), Err(BundleError::NoAppSpec { .. })));
    }

    #[test]
    fn missing_path_is_refused() {
        assert!(matches!(prepare(Path::new("/nonexistent/app")), Err(BundleError::Missing { .. })));
    }

    #[test]
    fn same_tree_bundles_to_the_same_bytes() {
        let dir = app_dir();
        let a = prepare(dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(dir.path().join("scripts/start.sh"), "#!/bin/bash\necho hi\n").unwrap(); // new mtime
        let b = prepare(dir.path()).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.size, b.size);
    }

    #[test]
    fn zip_keeps_the_executable_bit_and_skips_git() {
        let dir = app_dir();
        let bundle = prepare(dir.path()).unwrap();
        let mut zip = zip::ZipArchive::new(File::open(&bundle.path).unwrap()).unwrap();
        let names: Vec<String> = zip.file_names().map(String::from).collect();
        assert!(!names.iter().any(|n| n.starts_with(".git")), "{names:?}");
        let mode = zip.by_name("scripts/start.sh").unwrap().unix_mode().unwrap();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(zip.by_name("appspec.yml").unwrap().unix_mode().unwrap() & 0o777, 0o644);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_out_of_the_tree_is_refused() {
        let dir = app_dir();
        std::os::unix::fs::symlink("../../etc/passwd", dir.path().join("scripts/passwd")).unwrap();
        assert!(matches!(prepare(dir.path()), Err(BundleError::EscapingLink { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn fifo_in_the_tree_is_refused_without_opening_it() {
        let dir = app_dir();
        let fifo = dir.path().join("scripts/pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // Opening a FIFO with no writer blocks; the check must not open it.
        assert!(matches!(prepare(dir.path()), Err(BundleError::SpecialFile { .. })));
    }

    #[test]
    fn link_inside_the_tree_is_allowed() {
        assert!(link_stays_inside("scripts/current", Path::new("../appspec.yml")));
        assert!(!link_stays_inside("current", Path::new("../x")));
        assert!(!link_stays_inside("a", Path::new("/etc/passwd")));
    }

    #[test]
    fn ready_zip_without_appspec_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        zip.start_file("index.html", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"hi").unwrap();
        zip.finish().unwrap();
        assert!(matches!(prepare(&path), Err(BundleError::NoAppSpec { .. })));
    }

    #[test]
    fn ready_tgz_with_appspec_is_taken_as_is() {
        let dir = app_dir();
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("app.tgz");
        let gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all(".", dir.path()).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let bundle = prepare(&path).unwrap();
        assert_eq!(bundle.kind, BundleType::Tgz);
        assert!(!bundle.built);
        assert_eq!(bundle.path, path);
    }

    #[test]
    fn broken_appspec_is_refused_before_zipping() {
        let dir = app_dir();
        std::fs::write(dir.path().join("appspec.yml"), "version: 1\nos: linux\n").unwrap();
        let err = prepare(dir.path()).unwrap_err().to_string();
        assert!(err.contains("version: 0.0"), "{err}");
    }
}
