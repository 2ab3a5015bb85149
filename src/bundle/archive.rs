//! Writes a [`Tree`] as a zip, tar or tgz that depends only on the names,
//! contents and executable bits of its files: entries sorted, one fixed
//! timestamp, modes 0644/0755 (links 0777), owner root, no host fields.
//! The same tree gives the same bytes, so the same SHA-256 and S3 key.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::tree::{Entry, EntryKind, Seen, Tree};
use super::{BundleError, BundleType, io_err};

/// 1980-01-01T00:00:00Z: the earliest time a zip can hold, used in tar too so
/// both formats carry the same date.
const FIXED_MTIME: u64 = 315_532_800;

fn mode(kind: &EntryKind) -> u32 {
    match kind {
        EntryKind::File { executable: true } => 0o755,
        EntryKind::File { executable: false } => 0o644,
        EntryKind::Symlink { .. } => 0o777,
    }
}

/// Writes `tree` as `kind` into `file` and returns the archive's size and
/// SHA-256 (hex).
pub fn write(tree: &Tree, kind: BundleType, file: File) -> Result<(u64, String), BundleError> {
    match kind {
        BundleType::Zip => write_zip(tree, file),
        BundleType::Tar => {
            let out = write_tar(tree, HashingWriter::new(BufWriter::new(file)))?;
            out.finish(&tree.root)
        }
        BundleType::Tgz => {
            // GzBuilder's defaults leave the header's mtime 0 and no file name.
            let gz = flate2::GzBuilder::new().write(HashingWriter::new(BufWriter::new(file)), flate2::Compression::default());
            let gz = write_tar(tree, gz)?;
            let out = gz.finish().map_err(io_err("write the bundle for", &tree.root))?;
            out.finish(&tree.root)
        }
    }
}

fn write_tar<W: Write>(tree: &Tree, out: W) -> Result<W, BundleError> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    for entry in &tree.entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(mode(&entry.kind));
        header.set_mtime(FIXED_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        let werr = io_err("write the bundle for", &entry.path);
        match &entry.kind {
            EntryKind::File { .. } => {
                let mut src = Exact::open(entry)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(src.len);
                let appended = tar.append_data(&mut header, &entry.name, &mut src);
                // A short read is the file's doing; any other failure (a
                // full disk) is reported as itself.
                src.check_short(entry)?;
                appended.map_err(werr)?;
                src.finish(entry)?;
            }
            EntryKind::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, &entry.name, target).map_err(werr)?;
            }
        }
    }
    tar.into_inner().map_err(io_err("write the bundle for", &tree.root))
}

fn write_zip(tree: &Tree, file: File) -> Result<(u64, String), BundleError> {
    // Zip seeks back to patch headers, so it cannot be hashed as it streams;
    // it is read once more from the page cache instead.
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    let base = zip::write::SimpleFileOptions::default()
        .last_modified_time(zip::DateTime::default())
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    let zerr = |path: &Path, e: zip::result::ZipError| BundleError::Io {
        action: "write the bundle for",
        path: path.to_path_buf(),
        source: io::Error::other(e),
    };
    for entry in &tree.entries {
        let opts = base.unix_permissions(mode(&entry.kind));
        match &entry.kind {
            EntryKind::Symlink { target } => {
                zip.add_symlink(entry.name.as_str(), target.as_str(), opts).map_err(|e| zerr(&entry.path, e))?;
            }
            EntryKind::File { .. } => {
                let mut src = Exact::open(entry)?;
                zip.start_file(entry.name.as_str(), opts.large_file(src.len >= 0xFFFF_FFFF)).map_err(|e| zerr(&entry.path, e))?;
                let copied = io::copy(&mut src, &mut zip);
                src.check_short(entry)?;
                copied.map_err(io_err("read", &entry.path))?;
                src.finish(entry)?;
            }
        }
    }
    let out = zip.finish().map_err(|e| zerr(&tree.root, e))?;
    let mut file = out.into_inner().map_err(|e| io_err("write the bundle for", &tree.root)(e.into_error()))?;
    file.flush().map_err(io_err("write the bundle for", &tree.root))?;
    file.sync_data().ok();
    file.rewind().map_err(io_err("write the bundle for", &tree.root))?;
    hash_open(file, &tree.root)
}

/// A file read for the archive: exactly the size it had when the directory
/// was walked, and refused ([`BundleError::Changed`]) if it is not the file
/// that was walked any more: another size or modification time when opened
/// or when done, or fewer bytes than its size (truncated while read).
struct Exact {
    file: File,
    len: u64,
    left: u64,
    short: bool,
}

impl Exact {
    fn open(entry: &Entry) -> Result<Exact, BundleError> {
        let file = File::open(&entry.path).map_err(io_err("read", &entry.path))?;
        let now = Seen::of(&file.metadata().map_err(io_err("read", &entry.path))?);
        let seen = entry.seen.unwrap_or(now);
        if now != seen {
            return Err(BundleError::Changed { path: entry.path.clone() });
        }
        Ok(Exact { file, len: seen.len, left: seen.len, short: false })
    }

    /// Whether the file ended before its size: it was truncated while read.
    fn check_short(&self, entry: &Entry) -> Result<(), BundleError> {
        if self.short {
            return Err(BundleError::Changed { path: entry.path.clone() });
        }
        Ok(())
    }

    /// After the copy: every byte came, and the file is still as walked.
    fn finish(&self, entry: &Entry) -> Result<(), BundleError> {
        let now = Seen::of(&self.file.metadata().map_err(io_err("read", &entry.path))?);
        if self.short || self.left > 0 || entry.seen.is_some_and(|seen| seen != now) {
            return Err(BundleError::Changed { path: entry.path.clone() });
        }
        Ok(())
    }
}

impl io::Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = io::Read::read(&mut self.file, &mut buf[..want])?;
        if n == 0 {
            // Fewer bytes than the size it had: truncated while ferry read it.
            self.short = true;
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended early"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn hash_open(mut file: File, root: &Path) -> Result<(u64, String), BundleError> {
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher).map_err(io_err("read back the bundle for", root))?;
    hasher.finish(root)
}

/// Passes bytes through to `inner` while hashing and counting them, so a
/// streamed archive's SHA-256 costs no second read.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    fn finish(mut self, root: &Path) -> Result<(u64, String), BundleError> {
        self.inner.flush().map_err(io_err("write the bundle for", root))?;
        Ok((self.len, hex::encode(self.hasher.finalize())))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
