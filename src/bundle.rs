//! bundle: a directory becomes a reproducible CodeDeploy zip or tgz; a ready
//! archive is taken as is. Either way the appspec is checked against the
//! bundle's contents and the SHA-256 is known before upload.
//!
//! [`tree`] walks a directory (ignore rules, link checks), [`archive`] writes
//! it byte-for-byte reproducibly, [`inspect`] reads a ready archive.

pub mod archive;
pub mod cache;
pub mod cachedir;
pub mod ignore;
pub mod inspect;
pub mod known;
pub mod near_miss;
pub mod parallel;
pub mod sums;
pub mod tree;
pub mod zipstream;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::appspec;

pub use crate::config::BundleType;
pub use near_miss::NearMiss;

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
    /// CRC-64/NVME of the archive bytes, computed in the same pass: what S3
    /// checks a multipart upload against.
    pub crc64nvme: u64,
    /// Whether ferry built the archive (from a directory).
    pub built: bool,
    /// Whether it is the cached bundle of the unchanged directory, reused
    /// without reading or compressing anything ([`cache`]); for a ready
    /// archive, whether its sums were known from before ([`known`]).
    pub cached: bool,
    /// Why no cache was used (or an entry was dropped), when that is worth
    /// saying.
    pub cache_off: Option<String>,
    /// The known-sums record the SHA-256 came from, when no pass of this
    /// run computed it ([`known`]): the upload computes it in its own read
    /// of the bytes and refuses, creating nothing, when they differ.
    pub sha256_record: Option<PathBuf>,
    // Keeps a built archive alive until the upload is done.
    _temp: Option<Temp>,
}

impl Bundle {
    /// A bundle ferry built (or verified from the cache) at `path`, with the
    /// sums computed from its bytes in this run, kept alive by `temp`.
    fn built(path: PathBuf, kind: BundleType, sums: sums::Sums, temp: Temp) -> Bundle {
        let sums::Sums { size, sha256, crc64nvme } = sums;
        Bundle {
            path,
            kind,
            size,
            sha256,
            crc64nvme,
            built: true,
            cached: false,
            cache_off: None,
            sha256_record: None,
            _temp: Some(temp),
        }
    }
}

/// Where a built archive lives until the upload is done. Preferably a file
/// with no name at all, so nothing is left in `$TMPDIR` however ferry ends
/// (SIGINT, SIGKILL, a crash); else a named temp file deleted on drop.
#[derive(Debug)]
// Held, never read: dropping the handle is what removes the file.
#[allow(dead_code)]
enum Temp {
    /// Reachable as `/proc/self/fd/N` while this handle is open, whatever
    /// happens to its name (unlinked at once, or evicted from the cache by
    /// a concurrent run).
    Anonymous(File),
    /// Named, deleted on drop.
    Named(tempfile::TempPath),
    /// Held open as `Anonymous` while a thread keeps it in the bundle
    /// cache. The keeping is waited for before the handle closes: the
    /// handle holds the lock that stops a concurrent run sweeping the
    /// half-kept file, and a run that ends normally leaves its record.
    Keeping(Settle, File),
}

/// The threads keeping this process's built bundles in the cache.
static KEEPING: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());

/// Waits for every bundle this process built to be kept in the cache, so a
/// later lookup in this process finds it as if it had been kept in line.
fn settle() {
    let threads = std::mem::take(&mut *KEEPING.lock().unwrap_or_else(|e| e.into_inner()));
    for thread in threads {
        let _ = thread.join();
    }
}

/// Lets this process end without waiting for its bundles to be kept: after
/// a signal, ending inside Jenkins' 5 s matters more than the cache record
/// (a 1 GiB fsync takes 8 s on a 125 MB/s volume), and the half-kept
/// `.building-*` file is swept by a later run once no one holds its lock.
pub fn abandon_keeping() {
    KEEPING.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// [`settle`]s on drop.
#[derive(Debug)]
struct Settle;

impl Drop for Settle {
    fn drop(&mut self) {
        settle();
    }
}

/// A temporary file for a built bundle: its handle (to write), the path to
/// read it back by, and what keeps it alive.
fn bundle_temp(kind: BundleType, temp_dir: Option<&Path>) -> io::Result<(File, PathBuf, Temp)> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // O_TMPFILE where the file system has it, else created and unlinked
        // at once: either way no name outlives the process.
        let file = match temp_dir {
            Some(d) => tempfile::tempfile_in(d)?,
            None => tempfile::tempfile()?,
        };
        // The writer consumes `file`; the path names the handle kept open.
        let keep = file.try_clone()?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", keep.as_raw_fd()));
        if path.exists() {
            return Ok((file, path, Temp::Anonymous(keep)));
        }
    }
    let suffix = format!(".{}", kind.extension());
    let mut builder = tempfile::Builder::new();
    builder.prefix("ferry-bundle-").suffix(&suffix);
    let tmp = match temp_dir {
        Some(d) => builder.tempfile_in(d)?,
        None => builder.tempfile()?,
    };
    let (file, temp_path) = tmp.into_parts();
    let path = temp_path.to_path_buf();
    Ok((file, path, Temp::Named(temp_path)))
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
    /// A `.ferryignore` line is not a valid gitignore pattern.
    #[error("{} has a pattern git's glob syntax refuses: {reason}. Fix or escape it (`\\[` for a literal bracket).", path.display())]
    Ignore {
        /// The .ferryignore file.
        path: PathBuf,
        /// The line and the reason.
        reason: String,
    },
    /// No appspec.yml at the bundle's root.
    #[error("{}", near_miss::message(path, instead.as_ref()))]
    NoAppSpec {
        /// The directory or archive.
        path: PathBuf,
        /// A file at the root that was probably meant as the appspec
        /// (`appspec.yaml`, `AppSpec.yml`, …), and what it holds.
        instead: Option<NearMiss>,
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
    /// A symlink that never resolves: it leads back to itself.
    #[error(
        "{} is a symlink that leads back to itself (a link cycle); on an instance it resolves to nothing. \
         Remove it or point it at a file in the bundle.",
        link.display()
    )]
    LinkCycle {
        /// The link.
        link: PathBuf,
    },
    /// A file or directory name that is not UTF-8.
    #[error(
        "{} has a name that is not UTF-8 ({}); the CodeDeploy agent's unzip and Ruby would mangle or refuse it. \
         Rename it to UTF-8 (e.g. `convmv -f latin1 -t utf8 --notest`) or leave it out with .ferryignore.",
        path.display(), escaped(path)
    )]
    NonUtf8Name {
        /// The file.
        path: PathBuf,
    },
    /// A file changed between reading the directory and archiving it.
    #[error(
        "{} changed while ferry was bundling it (size or modification time differ from when the directory was read, \
         or it ended early); the bundle would hold a mix of old and new. Nothing was sent. Let whatever writes the \
         application directory finish, then re-run.",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// A ready archive holds a link that leaves the bundle, a cycle, or an
    /// entry written through a link.
    #[error("{} contains {detail}. ferry refuses the same in a directory; rebuild the archive without it (or let ferry build it from the directory).", path.display())]
    UnsafeLink {
        /// The archive.
        path: PathBuf,
        /// Which entry and why.
        detail: String,
    },
    /// A ready archive holds a device, FIFO or socket, or a hard link to
    /// something that is not a file before it in the archive.
    #[error(
        "{} contains `{entry}`, {what}; ferry refuses the same in a directory. Rebuild the archive with regular files, \
         directories and links inside it only.",
        path.display()
    )]
    SpecialEntry {
        /// The archive.
        path: PathBuf,
        /// The entry.
        entry: String,
        /// What it is.
        what: String,
    },
    /// A ready archive holds the same name twice.
    #[error(
        "{} contains `{entry}` more than once; which copy lands on an instance depends on the unpacker. \
         Rebuild the archive with each file once.",
        path.display()
    )]
    DuplicateEntry {
        /// The archive.
        path: PathBuf,
        /// The repeated name.
        entry: String,
    },
    /// A ready archive holds an entry that could be written outside the
    /// deployment directory when unpacked.
    #[error(
        "{} contains the entry `{entry}`, which is an absolute path or goes up with `..`; unpacked on an instance it \
         could land outside the deployment directory. Rebuild the archive with paths relative to the application root \
         (or let ferry build it from the directory).",
        path.display()
    )]
    UnsafeEntry {
        /// The archive.
        path: PathBuf,
        /// The offending entry name.
        entry: String,
    },
    /// `--out` names a directory or a file of another bundle type.
    #[error("cannot write a {kind} bundle to {}: {reason}", path.display())]
    BadOutput {
        /// The output path.
        path: PathBuf,
        /// The bundle type asked for.
        kind: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
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
    #[error("{} is not a readable {kind} archive: it is truncated or corrupt ({detail}). Rebuild the bundle.", path.display())]
    Corrupt {
        /// The archive.
        path: PathBuf,
        /// Its expected format.
        kind: &'static str,
        /// What the reader said.
        detail: String,
    },
}

impl BundleError {
    /// [`BundleError::NoAppSpec`] for `path`, naming the file in `contents`
    /// that was probably meant as the appspec.
    pub(crate) fn no_appspec(path: &Path, contents: &dyn appspec::Contents) -> BundleError {
        BundleError::NoAppSpec { path: path.to_path_buf(), instead: near_miss::find(contents) }
    }
}

/// A path with bytes that are not UTF-8 shown as `\xNN`.
fn escaped(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().escape_ascii().to_string()
}

pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BundleError + use<> {
    let path = path.to_path_buf();
    move |source| BundleError::Io { action, path, source }
}

/// Turns `input` into a checked bundle: builds a directory as `kind` (or
/// reuses its cached bundle, see [`cache`]), or checks a ready archive
/// (which keeps its own type).
pub fn prepare_as(input: &Path, kind: BundleType) -> Result<Bundle, BundleError> {
    prepare_in(input, kind, None)
}

/// Like [`prepare_as`], with a built archive's temporary file inside
/// `temp_dir` (default: `$TMPDIR`) when it is not built into the bundle
/// cache: a release interrupted while bundling removes that directory, and
/// with it the half-written file, without waiting for the bundling thread.
/// (One interrupted while building into the cache leaves a `.building-PID-`
/// file there, which the next run removes.)
pub fn prepare_in(input: &Path, kind: BundleType, temp_dir: Option<&Path>) -> Result<Bundle, BundleError> {
    prepare_with(input, kind, temp_dir, cache::Cache::for_root)
}

/// What a bundle is for, which decides what it must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// A CodeDeploy revision: an appspec.yml at its root, checked.
    Revision,
    /// A Lambda function's code: anything; ferry writes the appspec.
    FunctionCode,
}

/// [`prepare_in`] for a bundle that holds `holds`.
pub fn prepare_holding(input: &Path, kind: BundleType, temp_dir: Option<&Path>, holds: Holds) -> Result<Bundle, BundleError> {
    prepare_with_holding(input, kind, temp_dir, cache::Cache::for_root, holds)
}

/// [`prepare_in`] with the cache chosen by `cache_for` (tests point it at a
/// directory of their own, or turn it off).
fn prepare_with(
    input: &Path,
    kind: BundleType,
    temp_dir: Option<&Path>,
    cache_for: impl FnOnce(&Path) -> Result<cache::Cache, Option<String>>,
) -> Result<Bundle, BundleError> {
    prepare_with_holding(input, kind, temp_dir, cache_for, Holds::Revision)
}

fn prepare_with_holding(
    input: &Path,
    kind: BundleType,
    temp_dir: Option<&Path>,
    cache_for: impl FnOnce(&Path) -> Result<cache::Cache, Option<String>>,
    holds: Holds,
) -> Result<Bundle, BundleError> {
    let meta = match std::fs::metadata(input) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BundleError::Missing { path: input.to_path_buf() });
        }
        Err(e) => return Err(io_err("read", input)(e)),
    };
    if meta.is_dir() {
        return build_cached(input, kind, temp_dir, cache_for, holds);
    }
    let kind = BundleType::from_path(input).ok_or_else(|| BundleError::UnknownType { path: input.to_path_buf() })?;
    let index = inspect::ArchiveIndex::open(input, kind)?;
    if holds == Holds::Revision {
        check_appspec(input, &index)?;
    }
    // A file ferry wrote or hashed before, unchanged: its SHA-256 is known
    // (and verified by the upload's read of the bytes).
    let (known, cache_off) = match cache_for(input) {
        Ok(c) => (Some(c.known_sums()), None),
        // Only a cache that cannot be trusted is worth a warning here.
        Err(why) => (None, why.filter(|w| w.contains("plant a bundle"))),
    };
    let (sums, record) = match known.as_ref().and_then(|k| k.lookup(input)) {
        Some((sums, record)) => (sums, Some(record)),
        None => {
            let sums = hash_file(input)?;
            if let Some(k) = &known {
                k.remember(input, &sums);
            }
            (sums, None)
        }
    };
    let sums::Sums { size, sha256, crc64nvme } = sums;
    Ok(Bundle {
        path: input.to_path_buf(),
        kind,
        size,
        sha256,
        crc64nvme,
        built: false,
        cached: record.is_some(),
        cache_off,
        sha256_record: record,
        _temp: None,
    })
}

/// Builds `dir` as a `kind` archive at `output` (written to a temporary file
/// beside it and renamed, so a failed run leaves no partial bundle) and
/// returns its size and SHA-256.
pub fn write_to(dir: &Path, kind: BundleType, output: &Path) -> Result<(u64, String), BundleError> {
    write_to_remembering(dir, kind, output, cache::Cache::known_sums_from_env())
}

/// [`write_to`], remembering the written archive's sums in `known` so that
/// releasing it needs no SHA-256 pass ([`known`]).
fn write_to_remembering(
    dir: &Path,
    kind: BundleType,
    output: &Path,
    known: Option<known::KnownSums>,
) -> Result<(u64, String), BundleError> {
    if output.is_dir() {
        return Err(BundleError::BadOutput {
            path: output.to_path_buf(),
            kind: kind.extension(),
            reason: "it is a directory. Pass a file name, e.g. --out app.zip.".into(),
        });
    }
    // A FIFO, device or symlink there would be replaced by the rename.
    crate::outfile::check(output).map_err(|reason| BundleError::BadOutput {
        path: output.to_path_buf(),
        kind: kind.extension(),
        reason: format!("{reason} (`--out -` writes the bundle to stdout.)"),
    })?;
    if let Some(named) = BundleType::from_path(output).filter(|k| *k != kind) {
        return Err(BundleError::BadOutput {
            path: output.to_path_buf(),
            kind: kind.extension(),
            reason: format!(
                "its name says {}. Name it .{} or pass --bundle-type {}.",
                named.extension(),
                kind.extension(),
                named.extension()
            ),
        });
    }
    let tree = load_dir(dir, Holds::Revision)?;
    // The umask's mode (as `>` would give), not tempfile's private 0600.
    let tmp = crate::outfile::temp_beside(output).map_err(io_err("create a temporary file beside", output))?;
    let (file, temp_path) = tmp.into_parts();
    let written = archive::write(&tree, kind, file)?;
    temp_path.persist(output).map_err(|e| io_err("write", output)(e.error))?;
    if let Some(k) = known {
        k.remember(output, &written_sums(&written));
    }
    Ok((written.size, written.sha256))
}

/// Builds `dir` as a `kind` archive and copies it to `out` (stdout for
/// `ferry bundle --out -`); returns its size and SHA-256.
pub fn write_stream(dir: &Path, kind: BundleType, out: &mut dyn io::Write) -> Result<(u64, String), BundleError> {
    let tree = load_dir(dir, Holds::Revision)?;
    let bundle = build_temp(&tree, kind, None)?;
    let mut f = File::open(&bundle.path).map_err(io_err("read back the bundle for", dir))?;
    io::copy(&mut f, out).and_then(|_| out.flush()).map_err(io_err("write the bundle of", dir))?;
    Ok((bundle.size, bundle.sha256))
}

/// The checks a ready archive gets (entries, links, appspec), on `path`:
/// what promotion runs on an object it downloaded.
pub fn check_archive(path: &Path, kind: BundleType) -> Result<(), BundleError> {
    let index = inspect::ArchiveIndex::open(path, kind)?;
    check_appspec(path, &index)
}

/// Checks the appspec of a directory or archive without building anything:
/// what `ferry check` runs. Returns the appspec's location and its problems.
pub fn check_only(input: &Path) -> Result<(PathBuf, Vec<appspec::Problem>), BundleError> {
    let meta = std::fs::metadata(input).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => BundleError::Missing { path: input.to_path_buf() },
        _ => io_err("read", input)(e),
    })?;
    if meta.is_dir() {
        let tree = tree::Tree::walk(input)?;
        // No appspec.yml but an ECS or Lambda appspec (appspec.yaml or
        // .json): that is the file a user of those platforms writes.
        if appspec::Contents::lookup(&tree, appspec::FILE_NAME).is_none()
            && let Some(m) = near_miss::find(&tree)
        {
            let path = input.join(&m.name);
            let text = read_appspec(&path)?;
            if m.ecs_or_lambda || appspec::resources::describes_resources(&text) {
                return Ok((path, appspec::resources::check(&text)));
            }
        }
        let text = appspec_text(input, &tree)?;
        let problems = match appspec::resources::describes_resources(&text) {
            true => appspec::resources::check(&text),
            false => appspec::check_with(&text, &tree),
        };
        Ok((input.join(appspec::FILE_NAME), problems))
    } else if input.file_name().is_some_and(|n| n == appspec::FILE_NAME) {
        // A lone appspec.yml: its directory is the bundle.
        let dir = input.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        check_only(dir)
    } else if input.extension().is_some_and(|e| ["yaml", "yml", "json"].iter().any(|x| e.eq_ignore_ascii_case(x))) {
        // Any other appspec file is one CodeDeploy reads itself: ECS or Lambda.
        Ok((input.to_path_buf(), appspec::resources::check(&read_appspec(input)?)))
    } else {
        let kind = BundleType::from_path(input).ok_or_else(|| BundleError::UnknownType { path: input.to_path_buf() })?;
        let index = inspect::ArchiveIndex::open(input, kind)?;
        let text = index.appspec_text(input)?;
        Ok((input.join(appspec::FILE_NAME), appspec::check_with(&text, &index)))
    }
}

/// An appspec file's text, read no further than any appspec needs (the
/// checks then say it is too big).
fn read_appspec(path: &Path) -> Result<String, BundleError> {
    let bytes = crate::small_file::read(path, appspec::MAX_BYTES as u64 + 1).map_err(io_err("read", path))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn appspec_text(dir: &Path, tree: &tree::Tree) -> Result<String, BundleError> {
    if appspec::Contents::lookup(tree, appspec::FILE_NAME).is_none() {
        return Err(BundleError::no_appspec(dir, tree));
    }
    let path = dir.join(appspec::FILE_NAME);
    std::fs::read_to_string(&path).map_err(io_err("read", &path))
}

fn check_appspec(path: &Path, contents: &dyn appspec::Contents) -> Result<(), BundleError> {
    let text = match contents.read(appspec::FILE_NAME) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => return Err(BundleError::no_appspec(path, contents)),
    };
    let problems = appspec::check_with(&text, contents);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BundleError::AppSpec { path: path.to_path_buf(), problems: problems.iter().map(|p| p.to_string()).collect() })
    }
}

/// Walks `dir` and, for a revision, checks its appspec against what will be
/// in the bundle.
fn load_dir(dir: &Path, holds: Holds) -> Result<tree::Tree, BundleError> {
    let tree = tree::Tree::walk(dir)?;
    if holds == Holds::Revision {
        check_appspec(dir, &tree)?;
    }
    Ok(tree)
}

/// Builds `dir`, or reuses its cached bundle when nothing in it changed.
/// The cache is an optimisation only: when it cannot be used, or fails,
/// the bundle is built into a temporary file as without it.
fn build_cached(
    dir: &Path,
    kind: BundleType,
    temp_dir: Option<&Path>,
    cache_for: impl FnOnce(&Path) -> Result<cache::Cache, Option<String>>,
    holds: Holds,
) -> Result<Bundle, BundleError> {
    let tree = load_dir(dir, holds)?;
    settle();
    let cache = match cache_for(&tree.root) {
        Ok(c) => c,
        Err(why) => {
            let mut bundle = build_temp(&tree, kind, temp_dir)?;
            bundle.cache_off = why;
            return Ok(bundle);
        }
    };
    let Ok(fp) = cache.fingerprint(&tree, kind) else { return build_temp(&tree, kind, temp_dir) };
    let dropped = match cache.lookup(&tree, &fp) {
        cache::Lookup::Hit(hit) => {
            let (path, held) = held_open(hit.file, &hit.path);
            return Ok(Bundle { cached: true, ..Bundle::built(path, kind, hit.sums, held) });
        }
        cache::Lookup::Damaged(why) => Some(why),
        cache::Lookup::Miss => None,
    };
    let Ok((tmp, lock)) = cache.temp_file(kind) else { return build_temp(&tree, kind, temp_dir) };
    let (file, temp_path) = tmp.into_parts();
    let written = match archive::write(&tree, kind, file) {
        Ok(w) => w,
        // The cache's disk may be full where $TMPDIR is not, and the cache
        // only ever saves time: build as without it.
        Err(BundleError::Io { action: "write the bundle for", .. }) => {
            drop(temp_path);
            return build_temp(&tree, kind, temp_dir);
        }
        Err(e) => return Err(e),
    };
    let sums = written_sums(&written);
    let (path, temp) = match fd_path(&lock) {
        // Read through its handle, the bundle is the same whatever its name,
        // so keeping it (its bytes synced to disk before a record may name
        // them: 0.2-0.8 s for 300 MiB on a local disk, seconds on a network
        // volume) runs beside the upload instead of before it. Should the
        // cache refuse it, only its name goes.
        Some(path) => {
            let keeper = std::thread::spawn(move || {
                let _ = cache.store(temp_path, kind, &tree, &fp, &written);
            });
            KEEPING.lock().unwrap_or_else(|e| e.into_inner()).push(keeper);
            (path, Temp::Keeping(Settle, lock))
        }
        None => match cache.store(temp_path, kind, &tree, &fp, &written) {
            // Held open (and locked) while the release uses it.
            Ok(path) => (path, Temp::Anonymous(lock)),
            Err(temp) => (temp.to_path_buf(), Temp::Named(temp)),
        },
    };
    Ok(Bundle { cache_off: dropped, ..Bundle::built(path, kind, sums, temp) })
}

/// The sums an archive was written with.
fn written_sums(w: &archive::Written) -> sums::Sums {
    sums::Sums { size: w.size, sha256: w.sha256.clone(), crc64nvme: w.crc64nvme }
}

/// A path that reaches `file` for as long as the returned handle lives,
/// whatever happens to its name: `/proc/self/fd/N` where there is one,
/// else `named`.
fn held_open(file: File, named: &Path) -> (PathBuf, Temp) {
    let path = fd_path(&file).unwrap_or_else(|| named.to_path_buf());
    (path, Temp::Anonymous(file))
}

/// `/proc/self/fd/N` for `file`, where the system has it.
fn fd_path(file: &File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if path.exists() {
            return Some(path);
        }
    }
    let _ = file;
    None
}

fn build_temp(tree: &tree::Tree, kind: BundleType, temp_dir: Option<&Path>) -> Result<Bundle, BundleError> {
    let (file, path, temp) = bundle_temp(kind, temp_dir).map_err(io_err("create a temporary file for", &tree.root))?;
    let written = archive::write(tree, kind, file)?;
    Ok(Bundle::built(path, kind, written_sums(&written), temp))
}

/// Size and lowercase hex SHA-256 of a file, read once.
pub fn hash_file(path: &Path) -> Result<sums::Sums, BundleError> {
    let mut f = File::open(path).map_err(io_err("read", path))?;
    sums::Summer::of(&mut f).map_err(io_err("read", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the cache: unit tests never write to ~/.cache.
    fn prepare(input: &Path) -> Result<Bundle, BundleError> {
        prepare_with(input, BundleType::Zip, None, |_| Err(None))
    }

    fn prepare_tgz(input: &Path) -> Result<Bundle, BundleError> {
        prepare_with(input, BundleType::Tgz, None, |_| Err(None))
    }
    use std::io::Write;

    fn app_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
        std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
        std::fs::write(dir.path().join("scripts/start.sh"), "#!/bin/bash\necho hi\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("scripts/start.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
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

    /// Rewrites `scripts/start.sh` with the same bytes: with its old mtime
    /// put back when `same_time`, else a mtime 10 s later.
    fn rewrite_start(dir: &Path, same_time: bool) {
        let path = dir.join("scripts/start.sh");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, "#!/bin/bash\necho hi\n").unwrap();
        let at = if same_time { before } else { before + std::time::Duration::from_secs(10) };
        File::options().write(true).open(&path).unwrap().set_modified(at).unwrap();
    }

    /// The same tree (names, contents, modes, times) gives the same bytes;
    /// a file whose time moved gives other bytes, so the instance sees the
    /// change (a web server's Last-Modified and ETag follow the mtime).
    #[test]
    fn same_tree_bundles_to_the_same_bytes() {
        let dir = app_dir();
        let a = prepare(dir.path()).unwrap();
        rewrite_start(dir.path(), true);
        let b = prepare(dir.path()).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.size, b.size);
        rewrite_start(dir.path(), false);
        assert_ne!(prepare(dir.path()).unwrap().sha256, a.sha256, "a new mtime is a change");
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
        use tree::link_stays_inside;
        assert!(link_stays_inside("scripts/current", Path::new("../appspec.yml")));
        assert!(!link_stays_inside("current", Path::new("../x")));
        assert!(!link_stays_inside("a", Path::new("/etc/passwd")));
    }

    /// Issue 18 item 12: a file truncated between reading the directory and
    /// archiving it shipped short with exit 0. Each format refuses it.
    #[test]
    fn a_file_that_changes_while_bundling_is_refused_not_shipped_short() {
        for kind in [BundleType::Zip, BundleType::Tar, BundleType::Tgz] {
            let dir = app_dir();
            let big = dir.path().join("scripts/data.bin");
            std::fs::write(&big, vec![7u8; 1 << 20]).unwrap();
            let tree = tree::Tree::walk(dir.path()).unwrap();
            // Truncated after the walk, as a build step still writing would.
            std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(4096).unwrap();
            let out = tempfile::tempfile().unwrap();
            let err = archive::write(&tree, kind, out).unwrap_err();
            assert!(matches!(&err, BundleError::Changed { path } if path == &big), "{kind:?}: {err}");
            assert!(err.to_string().contains("changed while ferry was bundling it"), "{err}");
        }
    }

    /// The same when only the modification time moves (same size, new bytes).
    #[test]
    fn a_file_rewritten_in_place_while_bundling_is_refused() {
        let dir = app_dir();
        let file = dir.path().join("scripts/start.sh");
        let tree = tree::Tree::walk(dir.path()).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60)).unwrap();
        let err = archive::write(&tree, BundleType::Zip, tempfile::tempfile().unwrap()).unwrap_err();
        assert!(matches!(err, BundleError::Changed { .. }), "{err}");
    }

    /// Issue 18 item 16: a built bundle leaves nothing named in $TMPDIR,
    /// even while it exists (so a SIGKILL cannot leave it behind).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_built_bundle_has_no_name_in_the_temp_directory() {
        let dir = app_dir();
        let bundle = prepare(dir.path()).unwrap();
        assert!(bundle.path.starts_with("/proc/self/fd/"), "{}", bundle.path.display());
        assert_eq!(hash_file(&bundle.path).unwrap().sha256, bundle.sha256, "readable through its handle");
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
    fn same_tree_bundles_to_the_same_tgz_bytes() {
        let dir = app_dir();
        let a = prepare_tgz(dir.path()).unwrap();
        rewrite_start(dir.path(), true);
        let b = prepare_tgz(dir.path()).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(hash_file(&a.path).unwrap().sha256, a.sha256, "the streamed hash is the file's hash");
    }

    #[test]
    fn tgz_keeps_modes_and_times_fixes_owner_and_skips_git() {
        let dir = app_dir();
        let bundle = prepare_tgz(dir.path()).unwrap();
        let gz = flate2::read::GzDecoder::new(File::open(&bundle.path).unwrap());
        let mut tar = tar::Archive::new(gz);
        let mut seen = Vec::new();
        for e in tar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{name}");
            if h.entry_type() != tar::EntryType::Directory {
                let on_disk = std::fs::metadata(dir.path().join(&name)).unwrap();
                let time = tree::stamp(std::os::unix::fs::MetadataExt::mtime(&on_disk), None);
                assert_eq!(h.mtime().unwrap(), time as u64, "{name}: its own mtime");
                seen.push((name, h.mode().unwrap() & 0o777));
            }
        }
        assert_eq!(seen, vec![("appspec.yml".to_string(), 0o644), ("scripts/start.sh".to_string(), 0o755)]);
    }

    #[test]
    fn ferryignore_patterns_and_the_ignore_file_itself_are_left_out() {
        let dir = app_dir();
        std::fs::write(dir.path().join(".ferryignore"), "*.log\n/tmp/\n").unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/cache"), "x").unwrap();
        std::fs::write(dir.path().join("scripts/debug.log"), "x").unwrap();
        let tree = tree::Tree::walk(dir.path()).unwrap();
        let names: Vec<&str> = tree.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["appspec.yml", "scripts", "scripts/start.sh"]);
    }

    #[test]
    fn ready_archive_with_a_parent_dir_entry_is_refused() {
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("evil.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("appspec.yml", opts).unwrap();
        zip.write_all(b"version: 0.0\nos: linux\n").unwrap();
        zip.start_file("../../etc/cron.d/evil", opts).unwrap();
        zip.write_all(b"x").unwrap();
        zip.finish().unwrap();
        let err = prepare(&path).unwrap_err();
        assert!(matches!(&err, BundleError::UnsafeEntry { entry, .. } if entry == "../../etc/cron.d/evil"), "{err}");
    }

    #[test]
    fn write_to_refuses_an_output_named_for_another_type() {
        let dir = app_dir();
        let out = tempfile::tempdir().unwrap();
        let err = write_to_remembering(dir.path(), BundleType::Tgz, &out.path().join("app.zip"), None).unwrap_err().to_string();
        assert!(err.contains("--bundle-type zip"), "{err}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing half-written is left behind");
    }

    #[test]
    fn check_only_sees_the_contents_of_a_ready_archive() {
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("app.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let exec = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        zip.start_file("appspec.yml", exec).unwrap();
        zip.write_all(
            b"version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/a.sh\n    - location: scripts/b.sh\n",
        )
        .unwrap();
        zip.start_file("scripts/a.sh", exec).unwrap();
        zip.write_all(b"#!/bin/sh\n").unwrap();
        zip.finish().unwrap();
        let (_, problems) = check_only(&path).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(6));
        assert!(problems[0].message.contains("`scripts/b.sh` is not in the bundle"), "{problems:?}");
    }

    #[test]
    fn broken_appspec_is_refused_before_zipping() {
        let dir = app_dir();
        std::fs::write(dir.path().join("appspec.yml"), "version: 1\nos: linux\n").unwrap();
        let err = prepare(dir.path()).unwrap_err().to_string();
        assert!(err.contains("version: 0.0"), "{err}");
    }
}
